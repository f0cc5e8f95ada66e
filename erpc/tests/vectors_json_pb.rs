//! jsonproto and pbproto against the frames Go eRPC wrote.

mod common;

use bytes::BytesMut;
use erpc::proto::{DEFAULT_MAX_MESSAGE_SIZE, JsonProto, Limits, PbProto, Proto};

fn check(proto: &dyn Proto, name: &str) {
    let vectors = common::vectors(name);
    assert_eq!(vectors.len(), 15);
    for v in &vectors {
        let mut input = BytesMut::from(&v.wire[..]);
        let decoded = proto
            .decode(&mut input, &Limits::default())
            .unwrap()
            .expect("a whole frame");
        assert!(input.is_empty());
        assert_eq!(
            decoded, v.message,
            "decoding {name}/{} (Go's own decoder ok: {})",
            v.case, v.roundtrip_ok
        );
        let mut ours = BytesMut::new();
        proto.encode(&v.message, &mut ours, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        if v.message.xfer_pipe.ids().contains(&b'g') {
            let head = 5 + v.message.xfer_pipe.len();
            assert_eq!(ours[4..head], v.wire[4..head], "pipe of {}", v.case);
            assert_eq!(proto.decode(&mut ours, &Limits::default()).unwrap().unwrap(), v.message);
        } else {
            assert_eq!(hex::encode(&ours), hex::encode(&v.wire), "encoding {name}/{}", v.case);
        }
    }
}

#[test]
fn jsonproto_vectors() {
    check(&JsonProto, "json");
}

#[test]
fn pbproto_vectors() {
    check(&PbProto, "pb");
}

#[test]
fn pbproto_negative_seq_is_a_ten_byte_varint() {
    let msg = erpc::Message::new(erpc::MessageType::Call, -1);
    let mut out = BytesMut::new();
    PbProto.encode(&msg, &mut out, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
    assert_eq!(
        &out[5..16],
        &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
    );
}
