//! Every protocol's decoder (json, pb, http, thrift, thrift-struct, ws-json, ws-pb) on the same arbitrary
//! bytes: errors are fine, panics and runaway allocation are not.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in erpc::proto::NAMES {
        let proto = erpc::proto::by_name(name).expect("a built-in protocol");
        let mut input = BytesMut::from(data);
        while let Ok(Some(msg)) = proto.decode(&mut input, &erpc::proto::Limits::with_max_message_size(64 * 1024)) {
            // What decodes must encode again (or be refused cleanly).
            let _ = proto.encode(&msg, &mut BytesMut::new(), 1 << 20);
        }
    }
});
