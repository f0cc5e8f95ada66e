//! Every protocol end to end over loopback, through the same peer API: a call with each codec
//! the protocol can carry, a push, an error status, the gzip filter.

use std::sync::Arc;
use std::time::Duration;

use erpc::Code;
use erpc::codec::Protobuf;
use erpc::proto::{self, Proto};
use erpc::router::PushCtx;
use erpc::{CodecId, Peer, Router, Session, Status};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Ping {
    #[prost(string, tag = "1")]
    text: String,
}

fn router(pushes: mpsc::UnboundedSender<String>) -> Router {
    let mut router = Router::new();
    router.call_at("/point", |p: Point| async move { Ok(Point { x: p.x + 1, ..p }) });
    router.call_at("/echo", |s: String| async move { Ok(s) });
    router.call_at("/ping", |p: Protobuf<Ping>| async move {
        Ok(Protobuf(Ping {
            text: format!("{} pong", p.0.text),
        }))
    });
    router.call_at("/err", |_: erpc::Raw| async move {
        Err::<(), _>(Status::with_cause(10005, "custom error", "because"))
    });
    router.push_at("/note", move |_: PushCtx, text: String| {
        let pushes = pushes.clone();
        async move {
            let _ = pushes.send(text);
            Ok(())
        }
    });
    router
}

async fn connect(proto: Arc<dyn Proto>) -> (Peer, Session, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = Peer::builder().router(router(tx)).proto(proto.clone()).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().proto(proto).build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    std::mem::forget(client);
    (server, session, rx)
}

fn point() -> Point {
    Point {
        x: 1,
        y: 2,
        name: "p <&> \\ \"q\"".into(),
    }
}

async fn check_codecs(name: &str, session: &Session, codecs: &[CodecId]) {
    for &codec in codecs {
        let got: Point = session
            .call("/point", &point())
            .codec(codec)
            .await
            .unwrap_or_else(|e| panic!("{name} {codec:?}: {e}"));
        assert_eq!(got, Point { x: 2, ..point() }, "{name} with {codec:?}");
    }
}

#[tokio::test]
async fn every_protocol_carries_every_codec_it_can() {
    for name in ["raw", "json", "pb", "http", "thrift"] {
        let (_server, session, mut pushes) = connect(proto::by_name(name).unwrap()).await;
        check_codecs(
            name,
            &session,
            &[CodecId::JSON, CodecId::FORM, CodecId::XML, CodecId::THRIFT],
        )
        .await;
        let echoed: String = session.call("/echo", "plain text").codec(CodecId::PLAIN).await.unwrap();
        assert_eq!(echoed, "plain text", "{name}");
        let Protobuf(pong): Protobuf<Ping> = session
            .call("/ping", &Protobuf(Ping { text: "ping".into() }))
            .codec(CodecId::PROTOBUF)
            .await
            .unwrap();
        assert_eq!(pong.text, "ping pong", "{name}");

        let err = session.call::<_, ()>("/err", &()).await.unwrap_err();
        assert_eq!(err, Status::with_cause(10005, "custom error", "because"), "{name}");
        let err = session.call::<_, ()>("/nope", &()).await.unwrap_err();
        assert_eq!(err.code(), Code::NOT_FOUND, "{name}");

        let big = Point {
            name: "z".repeat(10_000),
            ..point()
        };
        let got: Point = session.call("/point", &big).xfer(b'g').await.unwrap();
        assert_eq!(got.name.len(), 10_000, "{name} with gzip");

        if name == "http" {
            let err = session.push("/note", "hi").await.unwrap_err();
            assert_eq!(err.code(), Code::WRITE_FAILED, "httproto cannot carry a PUSH");
        } else {
            session.push("/note", "hi").await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), pushes.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got, "hi", "{name}");
        }
        // The session is still fine after all that.
        assert_eq!(
            session.call::<_, String>("/echo", "again").await.unwrap(),
            "again",
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_thrift_struct_protocol_carries_thrift_structs() {
    let (_server, session, mut pushes) = connect(proto::by_name("thrift-struct").unwrap()).await;
    check_codecs("thrift-struct", &session, &[CodecId::THRIFT]).await;
    let err = session
        .call::<_, Point>("/err", &point())
        .codec(CodecId::THRIFT)
        .await
        .unwrap_err();
    assert_eq!(err.code(), 10005, "error replies travel (Go cannot send them)");
    let refused = session
        .call::<_, Point>("/point", &point())
        .codec(CodecId::JSON)
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::WRITE_FAILED,
        "only the thrift codec fits: {refused}"
    );
    // A body that is not a struct travels as field 1 of one.
    let echoed: String = session
        .call("/echo", "plain words")
        .codec(CodecId::THRIFT)
        .await
        .unwrap();
    assert_eq!(echoed, "plain words");
    session.push("/note", "a note").codec(CodecId::THRIFT).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), pushes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "a note");
}

#[tokio::test]
async fn a_plain_http_client_can_call() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut r = router(tx);
    r.group("math")
        .call("add", |n: Vec<i64>| async move { Ok(n.iter().sum::<i64>()) });
    let server = Peer::builder()
        .router(r)
        .proto(proto::by_name("http").unwrap())
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // What `curl -X POST http://ADDR/math/add -H 'Content-Type: application/json' -d '[1,2,3]'` sends
    // (lower-case header names on purpose: HTTP names are case-insensitive).
    let request = format!(
        "POST /math/add HTTP/1.1\r\nhost: {addr}\r\nuser-agent: curl/8.0\r\naccept: */*\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n[1,2,3]"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let response = read_response(&mut conn).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\n6"), "{response}");
    // The connection stays open for the next request: an error this time.
    conn.write_all(b"GET /math/nope HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut conn).await;
    assert!(response.starts_with("HTTP/1.1 299 Business Error\r\n"), "{response}");
    assert!(
        response.ends_with(r#"{"code":404,"msg":"Not Found","cause":""}"#),
        "{response}"
    );

    async fn read_response(conn: &mut tokio::net::TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    return text;
                }
            }
        }
    }
}
