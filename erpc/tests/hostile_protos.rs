//! Hostile input against jsonproto, pbproto, httproto and thriftproto (wire.md §13).

use bytes::{BufMut, BytesMut};
use erpc::proto::{HttpProto, JsonProto, Limits, PbProto, Proto, ProtoError, ThriftProto, ThriftStructProto};

const LIMIT: usize = 1 << 20;

fn decode(proto: &dyn Proto, bytes: &[u8]) -> Result<Option<erpc::Message>, ProtoError> {
    proto.decode(&mut BytesMut::from(bytes), &Limits::with_max_message_size(LIMIT))
}

fn malformed(r: Result<Option<erpc::Message>, ProtoError>) -> bool {
    match r {
        Err(ProtoError::Malformed { .. }) => true,
        // httproto refuses a bad request with the HTTP status it answers it with.
        Err(ProtoError::Refused { status: 400, error }) => matches!(*error, ProtoError::Malformed { .. }),
        _ => false,
    }
}

fn refused(r: Result<Option<erpc::Message>, ProtoError>) -> Option<u16> {
    match r {
        Err(ProtoError::Refused { status, .. }) => Some(status),
        _ => None,
    }
}

#[test]
fn json_and_pb_frames() {
    for proto in [&JsonProto as &dyn Proto, &PbProto] {
        assert!(malformed(decode(proto, &[0, 0, 0, 0])), "size 0");
        assert!(
            malformed(decode(proto, &[0, 0, 0, 2, 9, b'g'])),
            "xfer_len beyond the frame"
        );
        let mut huge = BytesMut::with_capacity(8);
        huge.put_u32(u32::MAX);
        assert!(matches!(
            proto.decode(&mut huge, &Limits::with_max_message_size(LIMIT)),
            Err(ProtoError::TooLarge { .. })
        ));
        assert!(huge.capacity() < 1024, "nothing reserved for a declared 4 GiB frame");
        assert!(
            decode(proto, &[0, 0, 0, 9, 0, 1]).unwrap().is_none(),
            "a partial frame waits"
        );
    }
    let doc = |d: &str| [&(d.len() as u32 + 1).to_be_bytes()[..], &[0], d.as_bytes()].concat();
    assert!(malformed(decode(&JsonProto, &doc("[1,2,3]"))));
    assert!(malformed(decode(&JsonProto, &doc("{\"seq\":\"unterminated"))));
    assert!(matches!(
        decode(&JsonProto, &doc("{\"mtype\":9}")),
        Err(ProtoError::UnknownMessageType { mtype: 9, .. })
    ));
    assert!(
        malformed(decode(&PbProto, &[0, 0, 0, 4, 0, 0xff, 0xff, 0xff])),
        "garbage protobuf"
    );
    assert!(matches!(
        decode(&PbProto, &[0, 0, 0, 3, 0, 0x10, 9]),
        Err(ProtoError::UnknownMessageType { mtype: 9, .. })
    ));
}

#[test]
fn http_frames() {
    assert!(malformed(decode(
        &HttpProto,
        b"POST /a HTTP/1.1\r\nno colon here\r\n\r\n"
    )));
    assert!(
        malformed(decode(&HttpProto, b"HTTP/1.1 404 Not Found\r\n\r\n")),
        "only 200 and 299"
    );
    assert!(malformed(decode(
        &HttpProto,
        b"POST /a HTTP/1.1\r\nContent-Length: x\r\n\r\n"
    )));
    assert!(
        malformed(decode(&HttpProto, b"POST\r\n\r\n")),
        "a request line needs three parts"
    );
    assert!(malformed(decode(
        &HttpProto,
        b"POST /a HTTP/1.1\r\nX-Content-Encoding: br\r\n\r\n"
    )));
    assert!(malformed(decode(
        &HttpProto,
        b"HTTP/1.1 299 Business Error\r\nContent-Length: 3\r\n\r\n{{{"
    )));
    assert_eq!(
        refused(decode(
            &HttpProto,
            b"POST /a HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"
        )),
        Some(413)
    );
    // A head that never ends is cut off at 64 KiB instead of growing without bound.
    let endless = [&b"POST /a HTTP/1.1\r\nX-A: "[..], &vec![b'a'; 70_000]].concat();
    assert_eq!(refused(decode(&HttpProto, &endless)), Some(431));
    assert!(
        decode(&HttpProto, b"POST /a HTTP/1.1\r\nX-A: 1\r\n").unwrap().is_none(),
        "an unfinished head waits"
    );
    assert!(
        decode(&HttpProto, b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
            .unwrap()
            .is_none(),
        "so does a short body"
    );
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert_eq!(
        refused(decode(&HttpProto, format!("POST /a HTTP/1.1\r\n{many}\r\n").as_bytes())),
        Some(431)
    );
}

#[test]
fn thrift_frames() {
    for proto in [&ThriftProto as &dyn Proto, &ThriftStructProto] {
        let mut huge = BytesMut::with_capacity(8);
        huge.put_u32(0x7fff_ffff);
        assert!(matches!(
            proto.decode(&mut huge, &Limits::with_max_message_size(LIMIT)),
            Err(ProtoError::TooLarge { .. })
        ));
        assert!(huge.capacity() < 1024);
        // Neither THeader nor a strict TBinary message.
        assert!(malformed(decode(proto, &[0, 0, 0, 4, 0x12, 0x34, 0, 0])));
        // Header words beyond the frame.
        assert!(malformed(decode(
            proto,
            &[0, 0, 0, 10, 0x0f, 0xff, 0, 0, 0, 0, 0, 1, 0x40, 0]
        )));
        // A Thrift EXCEPTION.
        let exception = [0, 0, 0, 12, 0x80, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1];
        assert!(malformed(decode(proto, &exception)));
        // A method name longer than the frame.
        assert!(malformed(decode(
            proto,
            &[0, 0, 0, 8, 0x80, 1, 0, 1, 0x7f, 0xff, 0xff, 0xff]
        )));
    }
    // A struct body nested a thousand levels deep is refused, not followed.
    let mut deep = vec![0x80, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    deep.extend(std::iter::repeat_n([12u8, 0, 1], 1000).flatten());
    let framed = [&(deep.len() as u32).to_be_bytes()[..], &deep].concat();
    assert!(malformed(decode(&ThriftStructProto, &framed)));
}

#[test]
fn meta_named_like_an_http_header_of_the_protocol_is_not_sent() {
    let mut msg = erpc::Message::new(erpc::MessageType::Call, 7).with_service_method("/a");
    msg.meta
        .add("x-seq", "99")
        .add("Content-Type", "text/evil")
        .add("ok", "1");
    let mut frame = BytesMut::new();
    HttpProto.encode(&msg, &mut frame, LIMIT).unwrap();
    let back = HttpProto
        .decode(&mut frame, &Limits::with_max_message_size(LIMIT))
        .unwrap()
        .unwrap();
    assert_eq!(back.seq, 7);
    assert_eq!(back.meta.iter().count(), 1);
    assert_eq!(back.meta.get_str("ok"), Some("1"));
}
