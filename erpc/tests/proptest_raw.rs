//! Property tests: rawproto's encode then decode is the identity, and no input panics.

use bytes::BytesMut;
use erpc::proto::{Limits, Proto, RawProto};
use erpc::{CodecId, Message, MessageType, Meta, Status, XferPipe};
use proptest::prelude::*;

const LIMIT: usize = 1 << 20;

fn mtype() -> impl Strategy<Value = MessageType> {
    (1u8..=5).prop_map(|v| MessageType::from_u8(v).unwrap())
}

fn status() -> impl Strategy<Value = Status> {
    (any::<i32>(), ".{0,40}", prop::option::of(".{0,40}")).prop_map(|(code, msg, cause)| match cause {
        Some(cause) => Status::with_cause(code, msg, cause),
        None => Status::new(code, msg),
    })
}

fn meta() -> impl Strategy<Value = Meta> {
    // A pair with an empty key and an empty value is dropped by design (wire.md §3.2).
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..12),
            prop::collection::vec(any::<u8>(), 0..12),
        )
            .prop_filter("not both empty", |(k, v)| !(k.is_empty() && v.is_empty())),
        0..6,
    )
    .prop_map(|pairs| pairs.into_iter().collect())
}

prop_compose! {
    fn message()(
        seq in any::<i32>(),
        mtype in mtype(),
        service_method in "[a-zA-Z0-9/._é-]{0,60}",
        status in status(),
        meta in meta(),
        codec in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..600),
        xfer in prop::collection::vec(prop::sample::select(vec![b'g', b'm']), 0..3),
    ) -> Message {
        Message {
            seq,
            mtype,
            service_method,
            status,
            meta,
            body_codec: CodecId(codec),
            body: body.into(),
            xfer_pipe: XferPipe::from_ids(&xfer).unwrap(),
        }
    }
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(msg in message()) {
        let mut frame = BytesMut::new();
        RawProto.encode(&msg, &mut frame, LIMIT).unwrap();
        let decoded = RawProto.decode(&mut frame, &Limits::with_max_message_size(LIMIT)).unwrap().unwrap();
        prop_assert!(frame.is_empty());
        prop_assert_eq!(decoded, msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut input = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = RawProto.decode(&mut input, &Limits::with_max_message_size(LIMIT)) {}
    }

    #[test]
    fn corrupting_a_valid_frame_never_panics(msg in message(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut frame = BytesMut::new();
        RawProto.encode(&msg, &mut frame, LIMIT).unwrap();
        let i = at.index(frame.len());
        frame[i] = byte;
        let _ = RawProto.decode(&mut frame, &Limits::with_max_message_size(LIMIT));
    }

    #[test]
    fn status_and_meta_queries_round_trip(status in status(), meta in meta()) {
        prop_assert_eq!(Status::decode_query(&status.encode_query()), status);
        prop_assert_eq!(Meta::decode_query(&meta.encode_query()), meta);
    }
}
