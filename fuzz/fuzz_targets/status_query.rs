//! The status query parser: never panics, and re-encoding what it read is stable.
#![no_main]

use erpc::Status;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let status = Status::decode_query(data);
    let again = Status::decode_query(&status.encode_query());
    assert_eq!(again, status);
    let _ = Status::from_json(data);
});
