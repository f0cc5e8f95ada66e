//! Heartbeats: Go's exact frames both ways (extensions.md §3.1), Go's rate rules, and dead
//! peers detected within two rates and one check on either side — on paused time, over
//! in-memory connections, so seconds of heartbeat pass in no time and exactly.

use std::time::Duration;

use bytes::BytesMut;
use erpc::heartbeat::{Ping, Pong};
use erpc::net::Conn;
use erpc::proto::{Limits, Proto, RawProto};
use erpc::{Message, MessageType, Peer, Router, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

/// Go's heartbeat CALL from a pinger with a 3 s rate (seq 1, JSON codec, empty body).
const GO_PING: &[u8] = b"\x00\x00\x00\x23\x00\x011\x01\x0a/heartbeat\x00\x06code=0\x00\x05hb_=3\x6a";
/// Go's answer: a REPLY with the JSON body `null`.
const GO_PONG: &[u8] = b"\x00\x00\x00\x18\x00\x011\x02\x00\x00\x06code=0\x00\x00\x6anull";

fn raw() -> std::sync::Arc<dyn Proto> {
    std::sync::Arc::new(RawProto)
}

/// Reads one rawproto frame off `io`.
async fn read_frame(io: &mut DuplexStream, buf: &mut BytesMut) -> (Vec<u8>, Message) {
    loop {
        let mut probe = buf.clone();
        if let Some(msg) = RawProto.decode(&mut probe, &Limits::default()).unwrap() {
            let len = buf.len() - probe.len();
            let frame = buf.split_to(len).to_vec();
            return (frame, msg);
        }
        let mut chunk = [0u8; 4096];
        let n = io.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the peer closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn pong_server() -> Peer {
    let mut router = Router::new();
    router.call_at("/echo", |s: String| async move { Ok::<_, Status>(s) });
    Peer::builder().router(router).with(Pong::new()).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_pong_answers_go_s_ping_with_go_s_bytes_and_go_s_rate_rules() {
    let server = pong_server().await;
    let (mut go, ours) = tokio::io::duplex(64 * 1024);
    server.serve_conn(Conn::new(ours, "server", "go"), raw()).await.unwrap();
    go.write_all(GO_PING).await.unwrap();
    let mut buf = BytesMut::new();
    let (frame, _) = read_frame(&mut go, &mut buf).await;
    assert_eq!(frame, GO_PONG);

    // A first heartbeat with a rate that is not a whole number of seconds is refused.
    for bad in ["abc", "-1", "2.5"] {
        let (mut go, ours) = tokio::io::duplex(64 * 1024);
        server.serve_conn(Conn::new(ours, "server", "go"), raw()).await.unwrap();
        let mut ping = Message::new(MessageType::Call, 1);
        ping.service_method = "/heartbeat".into();
        ping.meta.add("hb_", bad.to_string());
        let mut frame = BytesMut::new();
        RawProto.encode(&ping, &mut frame, 1 << 20).unwrap();
        go.write_all(&frame).await.unwrap();
        let mut buf = BytesMut::new();
        let (_, reply) = read_frame(&mut go, &mut buf).await;
        assert_eq!(reply.status.code(), 400, "{bad}: {}", reply.status);
        assert_eq!(reply.status.msg(), "invalid heartbeat rate");
        assert_eq!(reply.status.cause(), Some(bad));
    }
}

#[tokio::test(start_paused = true)]
async fn a_ping_sends_go_s_bytes_only_on_quiet_sessions() {
    let client = Peer::builder()
        .plugin(Ping::new(Duration::from_secs(1), true))
        .build()
        .unwrap();
    let (mut go, ours) = tokio::io::duplex(64 * 1024);
    let start = Instant::now();
    let session = client
        .connect_conn(Conn::new(ours, "client", "go"), raw())
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    // The rate is raised to Go's 3 s minimum: the first heartbeat comes after 3 s of quiet.
    let (frame, ping) = read_frame(&mut go, &mut buf).await;
    assert_eq!(frame, GO_PING);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    // Answer it; then keep the session busy with pushes more often than the rate: no more
    // heartbeats, only the pushes.
    let mut pong = Message::new(MessageType::Reply, ping.seq);
    pong.body_codec = erpc::CodecId::JSON;
    pong.body = "null".into();
    let mut reply = BytesMut::new();
    RawProto.encode(&pong, &mut reply, 1 << 20).unwrap();
    go.write_all(&reply).await.unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        session.push("/note", &"busy").await.unwrap();
        let (_, msg) = read_frame(&mut go, &mut buf).await;
        assert_eq!(msg.service_method, "/note", "a heartbeat on a busy session");
    }
    assert!(session.health());
}

#[tokio::test(start_paused = true)]
async fn a_pinger_closes_a_session_whose_peer_stops_answering() {
    let client = Peer::builder()
        .plugin(Ping::new(Duration::from_secs(3), true))
        .build()
        .unwrap();
    let (mut silent, ours) = tokio::io::duplex(64 * 1024);
    let session = client
        .connect_conn(Conn::new(ours, "client", "silent"), raw())
        .await
        .unwrap();
    let start = Instant::now();
    // The peer reads everything and answers nothing.
    tokio::spawn(async move {
        let mut sink = [0u8; 4096];
        while let Ok(n) = silent.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    });
    session.closed().await;
    let took = start.elapsed();
    // A heartbeat after one quiet rate, failing after one more: within 2 × rate + one interval.
    assert!(
        took >= Duration::from_secs(6) && took <= Duration::from_secs(9),
        "closed after {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_ponger_closes_a_session_whose_pinger_goes_silent() {
    let server = pong_server().await;
    let (mut go, ours) = tokio::io::duplex(64 * 1024);
    let session = server.serve_conn(Conn::new(ours, "server", "go"), raw()).await.unwrap();
    go.write_all(GO_PING).await.unwrap();
    let mut buf = BytesMut::new();
    read_frame(&mut go, &mut buf).await;
    let last_sign_of_life = Instant::now();
    // Then nothing more: the session is alive for two rates (6 s), and closed by the check
    // that follows (every 3 s).
    session.closed().await;
    let took = last_sign_of_life.elapsed();
    assert!(
        took > Duration::from_secs(6) && took <= Duration::from_secs(9),
        "closed after {took:?}"
    );
    // Other traffic counts as life: a session that calls every 4 s is never closed.
    let (mut busy, ours) = tokio::io::duplex(64 * 1024);
    let session = server
        .serve_conn(Conn::new(ours, "server", "busy"), raw())
        .await
        .unwrap();
    busy.write_all(GO_PING).await.unwrap();
    let mut buf = BytesMut::new();
    read_frame(&mut busy, &mut buf).await;
    for seq in 2..8 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let mut call = Message::new(MessageType::Call, seq);
        call.service_method = "/echo".into();
        call.body_codec = erpc::CodecId::JSON;
        call.body = "\"hi\"".into();
        let mut frame = BytesMut::new();
        RawProto.encode(&call, &mut frame, 1 << 20).unwrap();
        busy.write_all(&frame).await.unwrap();
        let (_, reply) = read_frame(&mut busy, &mut buf).await;
        assert!(reply.status.is_ok(), "{}", reply.status);
    }
    assert!(session.health(), "a session with traffic was closed");
}
