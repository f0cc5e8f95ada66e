//! The meta query parser: never panics, and re-encoding what it read is stable.
#![no_main]

use erpc::Meta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let meta = Meta::decode_query(data);
    let again = Meta::decode_query(&meta.encode_query());
    assert_eq!(again, meta);
});
