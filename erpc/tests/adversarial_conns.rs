//! Hostile connection patterns against a serving peer, on loopback with limits shrunk to
//! fractions of a second: slowloris frames, silent and half-open connections (plain and TLS),
//! session caps, a client that stops reading its replies, a meta bomb on a live session, and
//! a burst of connections larger than the old listen backlog. Each test asserts the bound
//! (the connection is closed, within a time) and that a well-behaved client is still served.

mod common;

use std::time::{Duration, Instant};

use erpc::net::tls;
use erpc::plugin::Plugin;
use erpc::proto::{Proto, RawProto};
use erpc::{CodecId, Message, MessageType, Meta, Peer, PeerConfig, Router, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

use common::within;

fn router() -> Router {
    let mut router = Router::new();
    router
        .group("math")
        .call("add", |nums: Vec<i64>| async move { Ok(nums.iter().sum::<i64>()) });
    router
        .group("echo")
        .call("big", |n: usize| async move { Ok(vec![7u8; n]) });
    router
}

async fn serve(config: PeerConfig) -> (Peer, String) {
    let server = Peer::builder().config(config).router(router()).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    (server, addr)
}

/// A well-behaved client still gets its answer.
async fn still_serves(addr: &str) {
    let client = Peer::builder().build().unwrap();
    let session = within("a good dial", client.dial(addr)).await.unwrap();
    let sum: i64 = within("a good call", session.call("/math/add", &[1, 2, 3]).into_future())
        .await
        .unwrap();
    assert_eq!(sum, 6);
}

/// Waits for the server to close `stream` (EOF or reset), discarding what it sends; returns
/// how long that took. Fails after `limit`.
async fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut sink = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server kept the connection open for {limit:?}"));
    start.elapsed()
}

fn call_frame(meta: Meta) -> Vec<u8> {
    let mut msg = Message::new(MessageType::Call, 1);
    msg.service_method = "/math/add".into();
    msg.meta = meta;
    msg.body_codec = CodecId::JSON;
    msg.body = "[1,2]".into();
    let mut frame = bytes::BytesMut::new();
    RawProto.encode(&msg, &mut frame, 1 << 20).unwrap();
    frame.to_vec()
}

#[tokio::test]
async fn a_frame_that_does_not_complete_in_time_closes_its_session() {
    let (_server, addr) = serve(PeerConfig {
        frame_timeout: Duration::from_millis(300),
        ..PeerConfig::default()
    })
    .await;
    // A frame begun and abandoned: 2 bytes of a length prefix.
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled.write_all(&[0, 0]).await.unwrap();
    // Slowloris: a frame declaring 1 MiB, dribbled a byte at a time, never finishing in time
    // although bytes keep coming (an idle timeout would not catch it).
    let mut dribbling = TcpStream::connect(&addr).await.unwrap();
    dribbling.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
    let dribble = tokio::spawn(async move {
        for _ in 0..200 {
            if dribbling.write_all(&[0]).await.is_err() {
                return true; // the server closed it
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    });
    let took = closed_by_server(&mut stalled, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(250),
        "closed after {took:?}, before the frame timeout"
    );
    assert!(
        within("the dribbler to be cut off", dribble).await.unwrap(),
        "the dribbler was served for 4 s"
    );
    still_serves(&addr).await;
}

#[tokio::test]
async fn idle_sessions_are_closed_and_busy_ones_are_not() {
    let (server, addr) = serve(PeerConfig {
        idle_timeout: Duration::from_millis(400),
        ..PeerConfig::default()
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(TcpStream::connect(&addr).await.unwrap());
    }
    // A session that keeps calling, more often than the idle timeout, stays: it calls for
    // 2.5 idle timeouts, while the silent ones are closed.
    let client = Peer::builder().build().unwrap();
    let busy = client.dial(&addr).await.unwrap();
    let calling = tokio::spawn(async move {
        for _ in 0..10 {
            let sum: i64 = busy.call("/math/add", &[1, 1]).await.unwrap();
            assert_eq!(sum, 2);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        busy
    });
    for mut stream in silent {
        closed_by_server(&mut stream, Duration::from_secs(5)).await;
    }
    let busy = calling.await.unwrap();
    assert!(busy.health(), "a session that calls is not idle");
    assert_eq!(server.sessions().len(), 1, "only the busy session is left");
}

#[tokio::test]
async fn silent_and_half_open_tls_connections_are_closed() {
    let server = Peer::builder()
        .config(PeerConfig {
            idle_timeout: Duration::from_millis(400),
            handshake_timeout: Duration::from_millis(300),
            ..PeerConfig::default()
        })
        .router(router())
        .tls_server(tls::self_signed_server_config(&["localhost"]).unwrap())
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    // Half-open: TCP connected, the TLS handshake never started.
    let mut half_open = TcpStream::connect(&addr).await.unwrap();
    // Handshake finished, then silence.
    let client = Peer::builder()
        .tls_client(tls::dangerous_insecure_client_config())
        .build()
        .unwrap();
    let silent = client.dial(&addr).await.unwrap();
    let took = closed_by_server(&mut half_open, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    within("the silent TLS session to be closed", silent.closed()).await;
    // A TLS client that calls is served.
    let session = client.dial(&addr).await.unwrap();
    let sum: i64 = session.call("/math/add", &[2, 3]).await.unwrap();
    assert_eq!(sum, 5);
}

#[tokio::test]
async fn a_dialer_is_not_held_by_a_server_that_never_finishes_the_tls_handshake() {
    // A plain TCP listener that accepts and says nothing: the client's TLS handshake waits.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = Peer::builder()
        .config(PeerConfig {
            handshake_timeout: Duration::from_millis(300),
            ..PeerConfig::default()
        })
        .tls_client(tls::dangerous_insecure_client_config())
        .build()
        .unwrap();
    let err = within("the dial to fail", client.dial(&addr)).await.unwrap_err();
    assert!(err.to_string().contains("handshake_timeout"), "{err}");
}

#[tokio::test]
async fn session_caps_close_connections_over_them_and_free_slots_on_close() {
    let (_server, addr) = serve(PeerConfig {
        max_sessions_per_ip: 2,
        max_sessions: 3,
        ..PeerConfig::default()
    })
    .await;
    let client = Peer::builder().build().unwrap();
    let first = client.dial(&addr).await.unwrap();
    let second = client.dial(&addr).await.unwrap();
    let sum: i64 = second.call("/math/add", &[1, 2]).await.unwrap();
    assert_eq!(sum, 3);
    // A third from the same address is closed at once, before anything is read.
    let mut third = TcpStream::connect(&addr).await.unwrap();
    closed_by_server(&mut third, Duration::from_secs(5)).await;
    // 127.0.0.2 is another address (still loopback): it has its own per-IP count, until the
    // peer's total cap.
    let other_ip = TcpSocket::new_v4().unwrap();
    other_ip.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other_ip = other_ip.connect(addr.parse().unwrap()).await.unwrap();
    other_ip.write_all(&call_frame(Meta::new())).await.unwrap();
    let mut reply = [0u8; 64];
    assert!(
        other_ip.read(&mut reply).await.unwrap() > 0,
        "the other address is served"
    );
    let over_total = TcpSocket::new_v4().unwrap();
    over_total.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut over_total = over_total.connect(addr.parse().unwrap()).await.unwrap();
    closed_by_server(&mut over_total, Duration::from_secs(5)).await;
    // A closed session frees its slot.
    first.close().await;
    let again = within("a slot to be freed", async {
        loop {
            let session = client.dial(&addr).await.unwrap();
            match session.call::<_, i64>("/math/add", &[4, 4]).await {
                Ok(sum) => return sum,
                // The server may not have seen the close yet: the dial was refused.
                Err(_) => tokio::task::yield_now().await,
            }
        }
    })
    .await;
    assert_eq!(again, 8);
}

/// Tells when sessions close.
struct Disconnects(mpsc::UnboundedSender<String>);

impl Plugin for Disconnects {
    fn name(&self) -> &str {
        "disconnects"
    }
    fn post_disconnect(&self, session: &Session) -> erpc::plugin::HookResult {
        let _ = self.0.send(session.remote_addr().to_string());
        Ok(())
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_its_replies_is_dropped() {
    let (tx, mut disconnects) = mpsc::unbounded_channel();
    let server = Peer::builder()
        .config(PeerConfig {
            frame_timeout: Duration::from_millis(500),
            write_buffer_size: Some(16 * 1024),
            ..PeerConfig::default()
        })
        .router(router())
        .plugin(Disconnects(tx))
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    // Calls for 256 KiB replies, written and never read: the server's output backs up.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut deaf = socket.connect(addr.parse().unwrap()).await.unwrap();
    let mut msg = Message::new(MessageType::Call, 0);
    msg.service_method = "/echo/big".into();
    msg.body_codec = CodecId::JSON;
    msg.body = "262144".into();
    let mut frames = bytes::BytesMut::new();
    for seq in 1..=64 {
        msg.seq = seq;
        RawProto.encode(&msg, &mut frames, 1 << 20).unwrap();
    }
    deaf.write_all(&frames).await.unwrap();
    let gone = within("the deaf client to be dropped", disconnects.recv())
        .await
        .unwrap();
    assert_eq!(gone, deaf.local_addr().unwrap().to_string());
    still_serves(&addr).await;
}

#[tokio::test]
async fn a_meta_bomb_closes_only_its_own_session() {
    let (server, addr) = serve(PeerConfig::default()).await;
    let client = Peer::builder().build().unwrap();
    let good = client.dial(&addr).await.unwrap();
    let mut bomb = Meta::new();
    for i in 0..2000 {
        bomb.add(format!("k{i}"), "v");
    }
    let mut attacker = TcpStream::connect(&addr).await.unwrap();
    attacker.write_all(&call_frame(bomb)).await.unwrap();
    closed_by_server(&mut attacker, Duration::from_secs(5)).await;
    let sum: i64 = good.call("/math/add", &[20, 22]).await.unwrap();
    assert_eq!(sum, 42);
    assert_eq!(server.sessions().len(), 1);
}

/// Raises this process's open-file limit to at least `want` (up to the hard limit).
fn raise_fd_limit(want: u64) -> bool {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return false;
        }
        if limit.rlim_cur >= want {
            return true;
        }
        limit.rlim_cur = want.min(limit.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur >= want
    }
}

#[test]
fn a_burst_of_connections_larger_than_the_old_backlog_is_all_queued() {
    const BURST: usize = 2000; // over tokio's fixed backlog of 1024 and std's 128
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    if somaxconn < BURST {
        eprintln!("skipped: net.core.somaxconn is {somaxconn}, below the burst of {BURST}");
        return;
    }
    if !raise_fd_limit(3 * BURST as u64 + 256) {
        eprintln!("skipped: cannot raise the open-file limit to {}", 3 * BURST + 256);
        return;
    }
    // The server runs on a runtime of its own, which the test stops from accepting while the
    // burst arrives: every connection must then wait in the listen queue.
    let server_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (server, addr) = server_rt.block_on(serve(PeerConfig::default()));
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let connected = client_rt.block_on(async {
        let connects = (0..BURST).map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(&addr))
                    .await
                    .ok()
                    .and_then(Result::ok)
            })
        });
        let mut streams = Vec::new();
        for connect in connects.collect::<Vec<_>>() {
            if let Some(stream) = connect.await.unwrap() {
                streams.push(stream);
            }
        }
        streams
    });
    assert_eq!(
        connected.len(),
        BURST,
        "connections were dropped by a full listen queue"
    );
    // Now the server accepts them all, and serves the last one.
    let mut last = connected.into_iter().last().unwrap();
    server_rt.block_on(async {
        last.write_all(&call_frame(Meta::new())).await.unwrap();
        let mut reply = [0u8; 64];
        let n = within("the last of the burst to be answered", last.read(&mut reply))
            .await
            .unwrap();
        assert!(n > 0);
        drop(server);
    });
}
