//! Calls, pushes and their failure modes over real loopback sockets.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::within;
use erpc::Code;
use erpc::router::{CallCtx, PushCtx};
use erpc::{CodecId, Peer, PeerConfig, Raw, Router, Status};
use tokio::sync::{Notify, mpsc};

async fn add(ctx: CallCtx, nums: Vec<i64>) -> Result<i64, Status> {
    if let Some(author) = ctx.meta_str("author") {
        ctx.set_reply_meta("author", author.to_string());
    }
    Ok(nums.iter().sum())
}

fn router(pushes: mpsc::UnboundedSender<String>) -> Router {
    let mut router = Router::new();
    router.group("math").call("add", add);
    router.call_at("/echo/parrot", |text: String| async move { Ok(text) });
    router.call_at("/err/custom", |_: ()| async move {
        Err::<(), _>(Status::with_cause(10005, "custom error", "because"))
    });
    router.call_at("/panic", |_: ()| async move {
        if true {
            panic!("boom");
        }
        Ok(())
    });
    router.push_at("/push/status", move |_: PushCtx, text: String| {
        let pushes = pushes.clone();
        async move {
            let _ = pushes.send(text);
            Ok(())
        }
    });
    router
}

/// The test's hold on the server's `/gated` handler: each call says when it starts, then
/// answers with its argument once released (never, unless the test releases it).
struct Gate {
    started: mpsc::UnboundedReceiver<u64>,
    release: Arc<Notify>,
}

impl Gate {
    /// Waits until a `/gated` handler runs; returns its argument.
    async fn started(&mut self) -> u64 {
        within("a /gated handler to start", self.started.recv())
            .await
            .expect("the router holds the sender")
    }
}

async fn server() -> (Peer, String, mpsc::UnboundedReceiver<String>, Gate) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (started, started_rx) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let mut router = router(tx);
    let gate = release.clone();
    router.call_at("/gated", move |n: u64| {
        let (started, release) = (started.clone(), gate.clone());
        async move {
            let _ = started.send(n);
            release.notified().await;
            Ok(n)
        }
    });
    let peer = Peer::builder().router(router).build().unwrap();
    let addr = peer.listen_on("127.0.0.1:0").await.unwrap();
    let gate = Gate {
        started: started_rx,
        release,
    };
    (peer, addr, rx, gate)
}

#[tokio::test]
async fn call_returns_the_sum_and_echoes_meta() {
    let (_server, addr, _, _gate) = server().await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let sum: i64 = session.call("/math/add", &[1, 2, 3, 4, 5]).await.unwrap();
    assert_eq!(sum, 15);
    let reply = session
        .call::<_, i64>("/math/add", &[1, 2])
        .meta("author", "andeya")
        .reply()
        .await
        .unwrap();
    assert_eq!(reply.body, 3);
    assert_eq!(reply.meta.get_str("author"), Some("andeya"));
    assert_eq!(reply.codec, CodecId::JSON);
    let text: String = session.call("/echo/parrot", "hi").codec(CodecId::PLAIN).await.unwrap();
    assert_eq!(text, "hi");
}

#[tokio::test]
async fn errors_come_back_as_statuses() {
    let (_server, addr, _, _gate) = server().await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let err = session.call::<_, ()>("/err/custom", &()).await.unwrap_err();
    assert_eq!(err, Status::with_cause(10005, "custom error", "because"));
    let err = session.call::<_, ()>("/nope", &()).await.unwrap_err();
    assert_eq!(err, Status::not_found());
    let err = session.call::<_, i64>("/math/add", "not a list").await.unwrap_err();
    assert_eq!(err.code(), Code::BAD_MESSAGE);
    let err = session.call::<_, ()>("/panic", &()).await.unwrap_err();
    assert_eq!(err, Status::from_code(Code::INTERNAL_SERVER_ERROR, "boom"));
    // The session survives all of that.
    let sum: i64 = session.call("/math/add", &[2, 2]).await.unwrap();
    assert_eq!(sum, 4);
}

#[tokio::test]
async fn pushes_arrive_and_servers_push_back() {
    let (server, addr, mut pushes, _gate) = server().await;
    let (tx, mut client_pushes) = mpsc::unbounded_channel();
    let client = Peer::builder().router(router(tx)).build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    session.push("/push/status", "from client").await.unwrap();
    assert_eq!(pushes.recv().await.unwrap(), "from client");
    // The server finds the session and pushes and calls the other way.
    assert_eq!(server.count_sessions(), 1);
    let broadcast = server.broadcast("/push/status", "to everyone").await;
    assert_eq!((broadcast.reached, broadcast.failed.len()), (1, 0));
    assert_eq!(client_pushes.recv().await.unwrap(), "to everyone");
    let server_side = server.sessions().pop().unwrap();
    let sum: i64 = server_side.call("/math/add", &[10, 20]).await.unwrap();
    assert_eq!(sum, 30);
}

#[tokio::test]
async fn a_broadcast_encodes_its_body_once_for_every_session() {
    /// Counts its encodings.
    struct Counted(AtomicUsize);
    impl erpc::EncodeBody for Counted {
        fn encode_body(&self, codec: CodecId) -> Result<bytes::Bytes, erpc::codec::CodecError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            "to all three".encode_body(codec)
        }
    }
    let (server, addr, _, _gate) = server().await;
    let (tx, mut received) = mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let client = Peer::builder().router(router(tx.clone())).build().unwrap();
        let session = client.dial(&addr).await.unwrap();
        // Answered, so the server holds the session (registered before it reads a byte).
        let sum: i64 = session.call("/math/add", &[1, 1]).await.unwrap();
        assert_eq!(sum, 2);
        clients.push((client, session));
    }
    assert_eq!(server.count_sessions(), 3);
    let body = Counted(AtomicUsize::new(0));
    let report = server.broadcast("/push/status", &body).await;
    assert_eq!((report.reached, report.failed.len()), (3, 0));
    assert_eq!(body.0.load(Ordering::Relaxed), 1, "encoded once, not once per session");
    for _ in 0..3 {
        assert_eq!(received.recv().await.unwrap(), "to all three");
    }
}

#[tokio::test]
async fn a_call_times_out_with_408() {
    let (_server, addr, _, mut gate) = server().await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    // The handler is never released: only the call's own timeout can end the call.
    let err = session
        .call::<_, u64>("/gated", &1u64)
        .timeout(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::HANDLE_TIMEOUT);
    assert_eq!(session.pending_calls(), 0);
    assert_eq!(gate.started().await, 1, "the call reached its handler");
}

#[tokio::test]
async fn a_call_times_out_at_its_own_deadline_behind_a_later_one() {
    let (_server, addr, _, mut gate) = server().await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    // The reader sweeping this session's deadlines is set for the first call's hour; the
    // second call's earlier deadline must make it set its alarm again.
    let patient = session
        .call::<_, u64>("/gated", &1u64)
        .timeout(Duration::from_secs(3600))
        .start();
    assert_eq!(gate.started().await, 1);
    let hasty = session
        .call::<_, u64>("/gated", &2u64)
        .timeout(Duration::from_millis(50));
    let err = tokio::time::timeout(Duration::from_secs(10), hasty)
        .await
        .expect("the second call outlived its deadline by seconds")
        .unwrap_err();
    assert_eq!(err.code(), Code::HANDLE_TIMEOUT);
    assert!(!patient.is_finished(), "the first call keeps waiting");
    assert_eq!(session.pending_calls(), 1);
}

#[tokio::test]
async fn a_call_given_up_on_leaves_nothing_pending() {
    let (_server, addr, _, mut gate) = server().await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    // Dropped while waiting (its handler is running and never answers): its entry goes with it.
    let call = session.call::<_, u64>("/gated", &1u64).no_timeout().into_future();
    tokio::select! {
        reply = call => panic!("a call whose handler never answers ended: {reply:?}"),
        n = gate.started() => assert_eq!(n, 1),
    }
    assert_eq!(session.pending_calls(), 0);
    // Aborted in the background, once its handler runs.
    let started = session.call::<_, u64>("/gated", &2u64).no_timeout().start();
    assert_eq!(gate.started().await, 2);
    assert_eq!(session.pending_calls(), 1);
    started.abort();
    assert_eq!(started.await.unwrap_err().code(), Code::CANCELED);
    assert_eq!(session.pending_calls(), 0);
    // Answered: nothing to clean up either, and the session still works.
    let sum: i64 = session.call("/math/add", &[1, 2]).await.unwrap();
    assert_eq!(sum, 3);
    assert_eq!(session.pending_calls(), 0);
}

#[tokio::test]
async fn many_concurrent_calls_all_complete() {
    let (_server, addr, _, _gate) = server().await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..200i64 {
        let session = session.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let sum: i64 = session.call("/math/add", &[i, 1]).await.unwrap();
            assert_eq!(sum, i + 1);
            done.fetch_add(1, Ordering::Relaxed);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), 200);
}

#[tokio::test]
async fn losing_the_connection_fails_pending_calls_with_102() {
    // A "server" that reads the call and then hangs up without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 64];
        let _ = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await;
    });
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let err = session.call::<_, i64>("/math/add", &[1]).await.unwrap_err();
    assert_eq!(err.code(), Code::CONN_CLOSED);
    session.closed().await;
    assert!(!session.health());
    let err = session.call::<_, i64>("/math/add", &[1]).await.unwrap_err();
    assert_eq!(err.code(), Code::CONN_CLOSED);
    assert_eq!(client.count_sessions(), 0);
}

#[tokio::test]
async fn graceful_close_lets_running_handlers_answer() {
    let (server, addr, _, mut gate) = server().await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let pending = session.call::<_, u64>("/gated", &300u64).start();
    assert_eq!(gate.started().await, 300);
    let server_side = server.sessions().pop().unwrap();
    // The handler is released only once the close is under way.
    let released = async {
        within("the server session to start closing", server_side.closed()).await;
        assert!(!pending.is_finished(), "the handler has not answered yet");
        gate.release.notify_one();
    };
    within("the server to close", async { tokio::join!(server.close(), released) }).await;
    assert_eq!(pending.await.unwrap().body, 300);
    let _ = (PeerConfig::default(), Raw::default());
}

#[tokio::test]
async fn unix_sockets_carry_calls_and_the_file_is_removed_on_close() {
    use erpc::config::Network;
    use erpc::proto::RawProto;
    let path = std::env::temp_dir().join(format!("erpc-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let path = path.to_str().unwrap().to_string();
    let (tx, _rx) = mpsc::unbounded_channel();
    let server = Peer::builder().router(router(tx)).build().unwrap();
    let bound = server
        .listen_with(Network::Unix, &path, Arc::new(RawProto))
        .await
        .unwrap();
    assert_eq!(bound, path);
    let config = PeerConfig {
        network: Network::Unix,
        ..PeerConfig::default()
    };
    let client = Peer::builder().config(config).build().unwrap();
    let session = client.dial(&path).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[20, 22]).await.unwrap(), 42);
    // Unnamed clients get names of their own: a second one does not take the first one's
    // session id (and close it).
    let second = client.dial(&path).await.unwrap();
    assert_eq!(second.call::<_, i64>("/math/add", &[1, 1]).await.unwrap(), 2);
    assert_eq!(session.call::<_, i64>("/math/add", &[2, 2]).await.unwrap(), 4);
    assert_eq!(server.count_sessions(), 2);
    server.close().await;
    assert!(!std::path::Path::new(&path).exists());
}

#[tokio::test]
async fn a_bad_frame_closes_only_its_own_session() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server, addr, _, _gate) = server().await;
    let client = Peer::builder().build().unwrap();
    let good = client.dial(&addr).await.unwrap();
    for garbage in [
        &[0u8, 0, 0, 4][..],
        &[0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 9, 0, 1, b'1', 9, 0],
    ] {
        let mut bad = tokio::net::TcpStream::connect(&addr).await.unwrap();
        bad.write_all(garbage).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), bad.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(
            n, 0,
            "the server closes a connection that sent {garbage:?}, without answering"
        );
    }
    // A CALL whose body has no codec (codec 0) also closes the connection, as Go does.
    let mut bad = tokio::net::TcpStream::connect(&addr).await.unwrap();
    bad.write_all(b"\x00\x00\x00\x1a\x00\x011\x01\x09/math/add\x00\x00\x00\x00\x00[1]")
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), bad.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0),
        0
    );
    // Everyone else is still served.
    assert_eq!(good.call::<_, i64>("/math/add", &[1, 1]).await.unwrap(), 2);
    assert_eq!(server.count_sessions(), 1);
}

#[tokio::test]
async fn tcp4_and_tcp6_restrict_the_address_family() {
    use erpc::config::Network;
    use erpc::proto::RawProto;
    let (tx, _rx) = mpsc::unbounded_channel();
    let server = Peer::builder().router(router(tx)).build().unwrap();
    let addr4 = server
        .listen_with(Network::Tcp4, "localhost:0", Arc::new(RawProto))
        .await
        .unwrap();
    assert!(addr4.starts_with("127.0.0.1:"), "{addr4}");
    let client = Peer::builder()
        .config(PeerConfig {
            network: Network::Tcp4,
            ..PeerConfig::default()
        })
        .build()
        .unwrap();
    let session = client.dial(&addr4).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[1, 1]).await.unwrap(), 2);
    // tcp6 refuses an IPv4 address outright, whatever the machine supports.
    let client6 = Peer::builder()
        .config(PeerConfig {
            network: Network::Tcp6,
            ..PeerConfig::default()
        })
        .build()
        .unwrap();
    assert_eq!(client6.dial(&addr4).await.unwrap_err().code(), Code::DIAL_FAILED);
    // Where the machine has IPv6 loopback, tcp6 works over it.
    if let Ok(addr6) = server.listen_with(Network::Tcp6, "[::1]:0", Arc::new(RawProto)).await {
        let session = client6.dial(&addr6).await.unwrap();
        assert_eq!(session.call::<_, i64>("/math/add", &[2, 2]).await.unwrap(), 4);
    }
}
