//! rawproto's decoder on arbitrary bytes: decode frames until it needs more or refuses;
//! whatever decodes must encode again and decode to the same message.
#![no_main]

use bytes::BytesMut;
use erpc::proto::{Limits, Proto, RawProto};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = BytesMut::from(data);
    while let Ok(Some(msg)) = RawProto.decode(&mut input, &Limits::with_max_message_size(64 * 1024)) {
        let mut again = BytesMut::new();
        if RawProto.encode(&msg, &mut again, 1 << 20).is_ok() {
            let back = RawProto.decode(&mut again, &Limits::with_max_message_size(1 << 20)).expect("our own frame decodes").expect("whole");
            assert_eq!(back, msg);
        }
    }
});
