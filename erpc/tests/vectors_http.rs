//! httproto against the frames Go eRPC wrote.

mod common;

use bytes::BytesMut;
use erpc::proto::{DEFAULT_MAX_MESSAGE_SIZE, HttpProto, Limits, Proto, ProtoError};
use erpc::{Message, Meta};

/// Meta as HTTP can carry it: keys compared without case, keys that are not HTTP tokens
/// (which no HTTP implementation can send) left out.
fn http_meta(meta: &Meta) -> Vec<(String, String)> {
    meta.iter()
        .filter(|(k, _)| {
            !k.is_empty()
                && k.iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
        })
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).to_ascii_lowercase(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn same(a: &Message, b: &Message) -> bool {
    (
        a.seq,
        a.mtype,
        &a.service_method,
        &a.status,
        a.body_codec,
        &a.body,
        &a.xfer_pipe,
    ) == (
        b.seq,
        b.mtype,
        &b.service_method,
        &b.status,
        b.body_codec,
        &b.body,
        &b.xfer_pipe,
    ) && http_meta(&a.meta) == http_meta(&b.meta)
}

#[test]
fn httproto_vectors() {
    let vectors = common::vectors("http");
    assert_eq!(vectors.len(), 15);
    for v in &vectors {
        let mut ours = BytesMut::new();
        let encoded = HttpProto.encode(&v.message, &mut ours, DEFAULT_MAX_MESSAGE_SIZE);
        if let Some(go_error) = &v.pack_error {
            match encoded {
                Err(ProtoError::Unsupported { reason, .. }) => {
                    let go_words = go_error.split(':').next().unwrap();
                    assert!(reason.contains(go_words), "{}: {reason} vs Go's {go_error}", v.case);
                }
                other => panic!("{}: Go refused ({go_error}) but we gave {other:?}", v.case),
            }
            assert!(ours.is_empty());
            continue;
        }
        encoded.unwrap();
        let mut input = BytesMut::from(&v.wire[..]);
        let decoded = HttpProto
            .decode(&mut input, &Limits::default())
            .unwrap()
            .expect("a whole frame");
        assert!(input.is_empty());
        assert!(
            same(&decoded, &v.message),
            "decoding {}:\n{decoded:?}\n{:?}",
            v.case,
            v.message
        );
        if v.message.xfer_pipe.is_empty() {
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&v.wire),
                "encoding {}",
                v.case
            );
        } else {
            let head = |b: &[u8]| {
                let text = String::from_utf8_lossy(b).into_owned();
                let head = text.split("\r\n\r\n").next().unwrap().to_string();
                head.lines()
                    .filter(|l| !l.starts_with("Content-Length"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            assert_eq!(head(&ours), head(&v.wire), "head of {}", v.case);
            let back = HttpProto.decode(&mut ours, &Limits::default()).unwrap().unwrap();
            assert!(same(&back, &v.message), "{}", v.case);
        }
    }
}

#[test]
fn the_repeated_meta_keys_go_loses_are_kept() {
    let v = common::vectors("http")
        .into_iter()
        .find(|v| v.case == "call_large_seq_multimeta")
        .unwrap();
    let decoded = HttpProto
        .decode(&mut BytesMut::from(&v.wire[..]), &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(decoded.meta.get_all(b"A").collect::<Vec<_>>(), [&b"1"[..], b"2"]);
}
