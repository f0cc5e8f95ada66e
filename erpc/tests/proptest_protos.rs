//! Property tests for every protocol: encode then decode is the identity for the messages each
//! protocol can carry; arbitrary and corrupted bytes never panic; truncated frames ask for more.

use bytes::BytesMut;
use erpc::proto::{self, Limits, Proto};
use erpc::{CodecId, Message, MessageType, Meta, Status, XferPipe};
use proptest::prelude::*;

const LIMIT: usize = 1 << 20;

fn status() -> impl Strategy<Value = Status> {
    (any::<i32>(), "[ -~é]{0,30}", prop::option::of("[ -~é]{0,30}")).prop_map(|(code, msg, cause)| match cause {
        Some(cause) => Status::with_cause(code, msg, cause),
        None => Status::new(code, msg),
    })
}

fn bytes_meta() -> impl Strategy<Value = Meta> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..10),
            prop::collection::vec(any::<u8>(), 0..10),
        )
            .prop_filter("not both empty", |(k, v)| !(k.is_empty() && v.is_empty())),
        0..5,
    )
    .prop_map(|pairs| pairs.into_iter().collect())
}

/// Messages for raw, json, pb and thrift-binary: anything.
fn message(xfer: Vec<u8>) -> impl Strategy<Value = Message> {
    (
        any::<i32>(),
        (1u8..=5).prop_map(|v| MessageType::from_u8(v).unwrap()),
        "[a-zA-Z0-9/._é-]{0,40}",
        status(),
        bytes_meta(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(prop::sample::select(xfer), 0..3),
    )
        .prop_map(
            |(seq, mtype, service_method, status, meta, codec, body, xfer)| Message {
                seq,
                mtype,
                service_method,
                status,
                meta,
                body_codec: CodecId(codec),
                body: body.into(),
                xfer_pipe: XferPipe::from_ids(&xfer).unwrap(),
            },
        )
}

/// What HTTP carries: calls and replies, canonical header keys, the mapped codecs, gzip only;
/// replies with an error carry no body, requests no status; service methods are paths;
/// meta sorted by key.
fn http_message() -> impl Strategy<Value = Message> {
    (
        any::<i32>(),
        prop::sample::select(vec![
            MessageType::Call,
            MessageType::Reply,
            MessageType::AuthCall,
            MessageType::AuthReply,
        ]),
        "(/[a-z0-9_.]{1,10}){1,3}",
        status(),
        prop::collection::vec(
            ("X-[A-Z][a-z]{1,6}", "[!-~]([ -~]{0,10}[!-~])?")
                .prop_filter("not one of the protocol's own headers", |(k, _)| {
                    k != "X-Seq" && k != "X-Mtype"
                }),
            0..4,
        ),
        prop::sample::select(vec![
            CodecId::JSON,
            CodecId::PROTOBUF,
            CodecId::PLAIN,
            CodecId::FORM,
            CodecId::XML,
        ]),
        prop::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    )
        .prop_map(|(seq, mtype, path, status, meta, codec, body, gzip)| {
            let request = matches!(mtype, MessageType::Call | MessageType::AuthCall);
            let mut msg = Message::new(mtype, seq).with_body(codec, body);
            // Headers are written sorted by name (as Go does): only the order of repeated
            // names is kept.
            let mut meta = meta;
            meta.sort_by(|a, b| a.0.cmp(&b.0));
            msg.meta = meta.into_iter().collect();
            if request {
                msg.service_method = path;
            } else if status.code() != 0 {
                msg.status = Status::from_json(status.to_json().as_bytes()).unwrap();
                msg.body = Default::default();
                msg.body_codec = CodecId::NONE;
            }
            if gzip {
                msg.xfer_pipe = XferPipe::from_ids(b"g").unwrap();
            }
            msg
        })
}

fn round_trip(proto: &dyn Proto, msg: &Message) -> Result<Message, TestCaseError> {
    let mut frame = BytesMut::new();
    proto
        .encode(msg, &mut frame, LIMIT)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let whole = frame.clone();
    for cut in [0, 1, whole.len() / 2, whole.len() - 1] {
        let mut part = BytesMut::from(&whole[..cut]);
        prop_assert!(
            proto
                .decode(&mut part, &Limits::with_max_message_size(LIMIT))
                .map_err(|e| TestCaseError::fail(e.to_string()))?
                .is_none()
        );
    }
    let decoded = proto
        .decode(&mut frame, &Limits::with_max_message_size(LIMIT))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(frame.is_empty());
    decoded.ok_or_else(|| TestCaseError::fail("no message"))
}

proptest! {
    #[test]
    fn json_round_trips(msg in message(vec![b'g', b'm'])) {
        prop_assert_eq!(round_trip(&proto::JsonProto, &msg)?, msg);
    }

    #[test]
    fn pb_round_trips(msg in message(vec![b'g', b'm'])) {
        prop_assert_eq!(round_trip(&proto::PbProto, &msg)?, msg);
    }

    #[test]
    fn thrift_round_trips(msg in message(vec![b'g', b'm'])) {
        prop_assert_eq!(round_trip(&proto::ThriftProto, &msg)?, msg);
    }

    #[test]
    fn http_round_trips(msg in http_message()) {
        prop_assert_eq!(round_trip(&proto::HttpProto, &msg)?, msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for name in proto::NAMES {
            let proto = proto::by_name(name).unwrap();
            let mut input = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = proto.decode(&mut input, &Limits::with_max_message_size(4096)) {}
        }
    }

    #[test]
    fn corrupted_frames_never_panic(msg in message(vec![b'g', b'm']), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        for proto in [&proto::JsonProto as &dyn Proto, &proto::PbProto, &proto::ThriftProto, &proto::ThriftStructProto] {
            let mut frame = BytesMut::new();
            if proto.encode(&msg, &mut frame, LIMIT).is_ok() {
                let i = at.index(frame.len());
                frame[i] = byte;
                let _ = proto.decode(&mut frame, &Limits::with_max_message_size(LIMIT));
            }
        }
    }
}
