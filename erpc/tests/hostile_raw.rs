//! Hostile input against rawproto, status, meta and the xfer filters: every row of wire.md §13
//! that concerns these layers. Nothing panics, nothing allocates on an unchecked length, and
//! each bad frame is a clear error.

use bytes::{BufMut, Bytes, BytesMut};
use erpc::codec::{CodecError, DecodeBody};
use erpc::proto::{Limits, Proto, ProtoError, RawProto};
use erpc::xfer::XferError;
use erpc::{CodecId, Message, MessageType, Meta, Status, XferPipe};

const LIMIT: usize = 1 << 20;

fn call() -> Message {
    let mut msg = Message::new(MessageType::Call, 1)
        .with_service_method("/math/add")
        .with_body(CodecId::JSON, "[1,2,3]");
    msg.meta.add("author", "andeya");
    msg
}

fn frame(msg: &Message) -> BytesMut {
    let mut out = BytesMut::new();
    RawProto.encode(msg, &mut out, LIMIT).unwrap();
    out
}

fn decode(bytes: &[u8]) -> Result<Option<Message>, ProtoError> {
    RawProto.decode(&mut BytesMut::from(bytes), &Limits::with_max_message_size(LIMIT))
}

/// A frame with the given payload (no filters).
fn with_payload(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_u32(5 + payload.len() as u32);
    out.put_u8(0);
    out.extend_from_slice(payload);
    out
}

#[test]
fn percent_ff_in_status_and_meta_is_not_hex() {
    let status = Status::decode_query(b"code=1&msg=%\xFF\xFFx&cause=%4\xFF");
    assert_eq!(status.code(), 1);
    let meta = Meta::decode_query(b"k=%\xFF\xFF&%\xFF\xFF=v");
    assert_eq!(meta.get("k"), Some(&b"%\xFF\xFF"[..]));
    assert_eq!(meta.len(), 2);
}

#[test]
fn header_fields_past_the_end_of_the_payload_are_rejected() {
    // Each payload stops inside a field: seq, mtype, service method, status, meta, codec.
    for payload in [
        &b""[..],
        b"\x05ab",
        b"\x011",
        b"\x011\x01\x09/math",
        b"\x011\x01\x00\x00",
        b"\x011\x01\x00\x00\x06code",
        b"\x011\x01\x00\x00\x00\x00\x05ab",
        b"\x011\x01\x00\x00\x00\x00\x00",
    ] {
        match decode(&with_payload(payload)) {
            Err(ProtoError::Malformed { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{payload:?} gave {other:?}"),
        }
    }
}

#[test]
fn total_size_four_is_rejected_without_touching_the_next_frame() {
    let mut input = BytesMut::new();
    input.put_u32(4);
    input.extend_from_slice(&frame(&call()));
    let before = input.len();
    assert!(matches!(
        RawProto.decode(&mut input, &Limits::with_max_message_size(LIMIT)),
        Err(ProtoError::Malformed { .. })
    ));
    assert_eq!(input.len(), before, "no byte of the next frame was consumed");
}

#[test]
fn sizes_below_the_minimum_or_above_the_limit_are_rejected_before_allocating() {
    for size in [0u32, 1, 3, 4] {
        assert!(
            matches!(decode(&size.to_be_bytes()), Err(ProtoError::Malformed { .. })),
            "size {size}"
        );
    }
    let mut input = BytesMut::with_capacity(16);
    input.put_u32(u32::MAX);
    match RawProto.decode(&mut input, &Limits::with_max_message_size(LIMIT)) {
        Err(ProtoError::TooLarge { size, limit, .. }) => {
            assert_eq!((size, limit), (u32::MAX as usize, LIMIT))
        }
        other => panic!("{other:?}"),
    }
    assert!(input.capacity() < 1024, "nothing was reserved for the declared 4 GiB");
}

#[test]
fn a_partial_frame_reserves_nothing_for_its_declared_size() {
    // The buffer grows as bytes arrive: a frame declaring 16 MiB that sends 5 bytes costs 5.
    let mut input = BytesMut::with_capacity(64);
    input.put_u32(16 * 1024 * 1024);
    input.put_u8(0);
    let limits = Limits::with_max_message_size(32 * 1024 * 1024);
    assert!(RawProto.decode(&mut input, &limits).unwrap().is_none());
    assert!(input.capacity() <= 64, "reserved {} bytes", input.capacity());
}

#[test]
fn oversized_status_meta_or_service_method_are_refused_on_send() {
    let mut out = BytesMut::new();
    let long_status = call().with_status(Status::new(1, "x".repeat(70_000)));
    assert!(matches!(
        RawProto.encode(&long_status, &mut out, LIMIT),
        Err(ProtoError::Unsupported { .. })
    ));
    let mut long_meta = call();
    long_meta.meta.add("k", "v".repeat(70_000));
    assert!(matches!(
        RawProto.encode(&long_meta, &mut out, LIMIT),
        Err(ProtoError::Unsupported { .. })
    ));
    let long_name = call().with_service_method("/".repeat(256));
    assert!(matches!(
        RawProto.encode(&long_name, &mut out, LIMIT),
        Err(ProtoError::Unsupported { .. })
    ));
    let big_body = call().with_body(CodecId::JSON, vec![b'1'; LIMIT]);
    assert!(matches!(
        RawProto.encode(&big_body, &mut out, LIMIT),
        Err(ProtoError::TooLarge { .. })
    ));
    assert!(out.is_empty(), "a refused message leaves nothing in the buffer");
    let mut out = BytesMut::from(&b"kept"[..]);
    assert!(RawProto.encode(&long_status, &mut out, LIMIT).is_err());
    assert_eq!(&out[..], b"kept");
}

#[test]
fn bad_base36_seqs_are_rejected() {
    for seq in [&b""[..], b"-", b"zzzzzzz", b"1_0", b"\xff", b" 1"] {
        let mut payload = vec![seq.len() as u8];
        payload.extend_from_slice(seq);
        payload.extend_from_slice(b"\x01\x00\x00\x06code=0\x00\x00j");
        assert!(
            matches!(decode(&with_payload(&payload)), Err(ProtoError::Malformed { .. })),
            "{seq:?}"
        );
    }
}

#[test]
fn unknown_mtypes_are_rejected() {
    for mtype in [0u8, 6, 9, 255] {
        let payload = [b"\x011".as_slice(), &[mtype], b"\x00\x00\x06code=0\x00\x00j"].concat();
        assert!(
            matches!(decode(&with_payload(&payload)), Err(ProtoError::UnknownMessageType { mtype: m, .. }) if m == mtype),
            "mtype {mtype}"
        );
    }
}

#[test]
fn a_non_utf8_service_method_is_rejected() {
    let payload = b"\x011\x01\x02\xff\xfe\x00\x06code=0\x00\x00j";
    assert!(matches!(
        decode(&with_payload(payload)),
        Err(ProtoError::Malformed { .. })
    ));
}

#[test]
fn unknown_xfer_ids_are_rejected() {
    let mut bytes = frame(&call()).to_vec();
    bytes[4] = 1;
    bytes.insert(5, b'?');
    let len = bytes.len() as u32;
    bytes[..4].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(
        decode(&bytes),
        Err(ProtoError::Xfer(XferError::Unknown(b'?')))
    ));
    // A filter count larger than what follows.
    assert!(matches!(
        decode(&[0, 0, 0, 6, 9, b'g']),
        Err(ProtoError::Malformed { .. })
    ));
}

#[test]
fn md5_mismatch_and_short_input_fail_the_check() {
    let mut msg = call();
    msg.xfer_pipe = XferPipe::from_ids(b"m").unwrap();
    let mut bytes = frame(&msg).to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    assert!(matches!(
        decode(&bytes),
        Err(ProtoError::Xfer(XferError::Corrupt { .. }))
    ));
    let short = [0, 0, 0, 10, 1, b'm', 1, 2, 3, 4];
    assert!(matches!(
        decode(&short),
        Err(ProtoError::Xfer(XferError::Corrupt { .. }))
    ));
}

#[test]
fn corrupt_gzip_and_gzip_bombs_fail() {
    let mut frame = vec![0, 0, 0, 0, 1, b'g'];
    frame.extend_from_slice(b"\x1f\x8b\x08\x00garbage garbage");
    let len = frame.len() as u32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(
        decode(&frame),
        Err(ProtoError::Xfer(XferError::Corrupt { .. }))
    ));

    let mut bomb = call().with_body(CodecId::JSON, vec![b' '; 4 << 20]);
    bomb.xfer_pipe = XferPipe::from_ids(b"g").unwrap();
    let mut out = BytesMut::new();
    RawProto.encode(&bomb, &mut out, 8 << 20).unwrap();
    assert!(out.len() < 64 * 1024, "4 MiB of spaces compress well");
    assert!(matches!(
        RawProto.decode(&mut out, &Limits::with_max_message_size(LIMIT)),
        Err(ProtoError::Xfer(XferError::TooLarge { .. }))
    ));
}

#[test]
fn every_cut_point_of_a_valid_frame_asks_for_more_then_decodes() {
    let mut msg = call();
    msg.xfer_pipe = XferPipe::from_ids(b"gm").unwrap();
    let whole = frame(&msg);
    for cut in 0..whole.len() {
        assert!(decode(&whole[..cut]).unwrap().is_none(), "cut at {cut}");
    }
    let mut input = BytesMut::new();
    for (i, byte) in whole.iter().enumerate() {
        input.put_u8(*byte);
        let got = RawProto
            .decode(&mut input, &Limits::with_max_message_size(LIMIT))
            .unwrap();
        assert_eq!(got.is_some(), i == whole.len() - 1);
        if let Some(got) = got {
            assert_eq!(got, msg);
        }
    }
}

#[test]
fn frames_back_to_back_decode_in_order() {
    let mut input = BytesMut::new();
    for seq in 1..=3 {
        let mut msg = call();
        msg.seq = seq;
        RawProto.encode(&msg, &mut input, LIMIT).unwrap();
    }
    for seq in 1..=3 {
        assert_eq!(
            RawProto
                .decode(&mut input, &Limits::with_max_message_size(LIMIT))
                .unwrap()
                .unwrap()
                .seq,
            seq
        );
    }
    assert!(
        RawProto
            .decode(&mut input, &Limits::with_max_message_size(LIMIT))
            .unwrap()
            .is_none()
    );
}

#[test]
fn unknown_codecs_travel_and_fail_only_when_the_body_is_decoded() {
    let msg = call().with_body(CodecId(90), "x");
    let got = decode(&frame(&msg)).unwrap().unwrap();
    assert_eq!(got.body_codec, CodecId(90));
    let err = Vec::<i64>::decode_body(got.body_codec, got.body).unwrap_err();
    assert!(matches!(err, CodecError::Unsupported(90)));
    assert_eq!(err.to_string(), "unsupported codec id: 90");
    // An empty body is never decoded, whatever its codec.
    assert_eq!(Option::<i64>::decode_body(CodecId(90), Bytes::new()).unwrap(), None);
}
