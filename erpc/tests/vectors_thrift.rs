//! thriftproto (binary) against the frames Go eRPC wrote. Go writes THeader info headers in
//! random order, so frames are compared by what they carry, and by everything outside the
//! header block.

mod common;

use bytes::BytesMut;
use erpc::MessageType;
use erpc::proto::{DEFAULT_MAX_MESSAGE_SIZE, Limits, Proto, ThriftProto};

#[test]
fn thrift_binary_vectors() {
    let vectors = common::vectors("thrift");
    assert_eq!(vectors.len(), 15);
    for v in &vectors {
        let mut input = BytesMut::from(&v.wire[..]);
        let mut decoded = ThriftProto
            .decode(&mut input, &Limits::default())
            .unwrap()
            .expect("a whole frame");
        assert!(input.is_empty());
        if v.message.mtype == MessageType::AuthReply {
            // Go writes AUTH_CALL and AUTH_REPLY identically (Thrift type 0); without our
            // Tp-Mtype header a type-0 frame reads as AUTH_CALL. Go itself reads both as PUSH.
            assert_eq!(decoded.mtype, MessageType::AuthCall, "{}", v.case);
            decoded.mtype = MessageType::AuthReply;
        }
        assert_eq!(
            decoded, v.message,
            "decoding {} (Go's own decoder ok: {})",
            v.case, v.roundtrip_ok
        );

        let mut ours = BytesMut::new();
        ThriftProto
            .encode(&v.message, &mut ours, DEFAULT_MAX_MESSAGE_SIZE)
            .unwrap();
        let back = ThriftProto
            .decode(&mut ours.clone(), &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(back, v.message, "our frame of {}", v.case);
        let auth = matches!(v.message.mtype, MessageType::AuthCall | MessageType::AuthReply);
        let gzip = v.message.xfer_pipe.ids().contains(&b'g');
        if !auth && !gzip {
            assert_eq!(ours.len(), v.wire.len(), "length of {}", v.case);
            // Same THeader fixed part and header length; same message after the headers.
            assert_eq!(ours[4..14], v.wire[4..14], "THeader of {}", v.case);
            let words = u16::from_be_bytes([v.wire[12], v.wire[13]]) as usize;
            let payload = 14 + words * 4;
            assert_eq!(
                hex::encode(&ours[payload..]),
                hex::encode(&v.wire[payload..]),
                "payload of {}",
                v.case
            );
        }
    }
}
