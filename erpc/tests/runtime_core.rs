//! The runtime core under pressure: peers that stop reading, large bodies both ways, bad
//! frames, panicking hooks, closing from inside a handler, dropping a peer, redials that fail
//! late. Loopback only; every wait is bounded.

mod common;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{Events, WAIT, wait_until, within};
use erpc::Code;
use erpc::codec::{CodecError, DecodeBody};
use erpc::plugin::{HookResult, Plugin};
use erpc::proto::{Limits, Proto, RawProto};
use erpc::router::CallCtx;
use erpc::session::PreSession;
use erpc::{CodecId, Message, MessageType, Peer, PeerConfig, Raw, Router, Session, Status};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, mpsc};

const MIB: usize = 1024 * 1024;

fn add_router() -> Router {
    let mut router = Router::new();
    router
        .group("math")
        .call("add", |nums: Vec<i64>| async move { Ok(nums.iter().sum::<i64>()) });
    router
}

async fn serve(router: Router, config: PeerConfig) -> (Peer, String) {
    let server = Peer::builder().config(config).router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    (server, addr)
}

/// A listener whose connections are accepted and never read (small receive buffers, so they
/// fill fast). The accepted streams are kept open for as long as the returned task lives.
async fn deaf_listener() -> (String, tokio::task::JoinHandle<()>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// A client connection that never reads what it is sent.
async fn deaf_client(addr: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

fn small_buffers(mut config: PeerConfig) -> PeerConfig {
    config.write_buffer_size = Some(16 * 1024);
    config
}

#[tokio::test]
async fn calls_and_pushes_to_a_peer_that_stops_reading_end_by_their_deadline() {
    let (addr, _deaf) = deaf_listener().await;
    let client = Peer::builder()
        .config(small_buffers(PeerConfig::default()))
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();
    let body = Raw(Bytes::from(vec![7u8; MIB]));
    // More than the output queue and the socket buffers hold: some calls wait to be queued,
    // some wait for a reply; every one ends with 408 at its deadline.
    let calls: Vec<_> = (0..12)
        .map(|_| {
            session
                .call::<_, Raw>("/store/blob", &body)
                .timeout(Duration::from_millis(300))
                .start()
        })
        .collect();
    for call in calls {
        let err = within("a call to a peer that stopped reading", call).await.unwrap_err();
        assert_eq!(err.code(), Code::HANDLE_TIMEOUT, "{err}");
    }
    // The queue is still full: a push gives up at its own deadline, saying why.
    let err = within(
        "a push to a peer that stopped reading",
        session
            .push("/store/blob", &body)
            .timeout(Duration::from_millis(200))
            .into_future(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::WRITE_FAILED, "{err}");
    assert!(err.to_string().contains("not reading"), "{err}");
    assert_eq!(session.pending_calls(), 0);
}

#[tokio::test]
async fn a_broadcast_is_not_held_up_by_a_peer_that_stops_reading() {
    let mut config = small_buffers(PeerConfig::default());
    config.push_timeout = Some(Duration::from_millis(200));
    // Each client says hello first: once the server handled that, the session is registered.
    let (hello, mut greeted) = mpsc::unbounded_channel();
    let mut server_router = Router::new();
    server_router.push_at("/hello", move |_: ()| {
        let hello = hello.clone();
        async move {
            let _ = hello.send(());
            Ok(())
        }
    });
    let (server, addr) = serve(server_router, config).await;
    // One client reads its pushes, the other never reads anything.
    let (tx, mut received) = mpsc::unbounded_channel();
    let mut router = Router::new();
    router.push_at("/news", move |body: Raw| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(body.0.len());
            Ok(())
        }
    });
    let reader = Peer::builder().router(router).build().unwrap();
    let reading = reader.dial(&addr).await.unwrap();
    reading.push("/hello", &()).await.unwrap();
    let mut deaf = deaf_client(&addr).await;
    let mut frame = BytesMut::new();
    RawProto
        .encode(
            &Message::new(MessageType::Push, 1).with_service_method("/hello"),
            &mut frame,
            MIB,
        )
        .unwrap();
    deaf.write_all(&frame).await.unwrap();
    for _ in 0..2 {
        within("a client's hello", greeted.recv()).await.unwrap();
    }
    assert_eq!(server.count_sessions(), 2);
    let news = Raw(Bytes::from(vec![1u8; MIB]));
    let mut stuck_seen = false;
    for round in 0..10 {
        let report = within("a broadcast", server.broadcast("/news", &news)).await;
        assert!(report.reached >= 1, "round {round}: {report:?}");
        stuck_seen |= !report.failed.is_empty();
        assert_eq!(within("the reading client's push", received.recv()).await, Some(MIB));
    }
    assert!(stuck_seen, "the deaf session never filled up");
    assert!(reading.health());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_both_ways_do_not_deadlock() {
    fn echo() -> Router {
        let mut router = Router::new();
        router.call_at("/echo", |body: Raw| async move { Ok(body) });
        router
    }
    let (first_session_tx, mut first_session) = mpsc::unbounded_channel();
    let mut server_router = echo();
    server_router.call_at("/hello", move |ctx: CallCtx, _: ()| {
        let tx = first_session_tx.clone();
        async move {
            let _ = tx.send(ctx.session().clone());
            Ok(())
        }
    });
    let (_server, addr) = serve(server_router, PeerConfig::default()).await;
    let client = Peer::builder().router(echo()).build().unwrap();
    let to_server = client.dial(&addr).await.unwrap();
    to_server.call::<_, ()>("/hello", &()).await.unwrap();
    let to_client = within("the server's session", first_session.recv()).await.unwrap();
    let body = Raw(Bytes::from(vec![42u8; MIB]));
    let calls = (0..100).flat_map(|_| {
        [&to_server, &to_client].map(|session| {
            let session = session.clone();
            let body = body.clone();
            async move { session.call::<_, Raw>("/echo", &body).await }
        })
    });
    let replies = tokio::time::timeout(Duration::from_secs(60), futures_util::future::join_all(calls))
        .await
        .expect("200 MiB both ways should not take a minute: deadlocked?");
    for reply in replies {
        assert_eq!(reply.unwrap().0.len(), MIB);
    }
}

/// A call alone on its session is written straight from the caller, without the writer task;
/// a body larger than the socket takes at once leaves the rest to the writer, whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_call_larger_than_the_socket_takes_is_written_whole() {
    let mut router = Router::new();
    router.call_at("/echo", |body: Raw| async move { Ok(body) });
    let (_server, addr) = serve(router, small_buffers(PeerConfig::default())).await;
    let client = Peer::builder()
        .config(small_buffers(PeerConfig::default()))
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();
    for round in 0..2u8 {
        let body = Raw(Bytes::from(
            (0..2 * MIB).map(|i| (i % 251) as u8 ^ round).collect::<Vec<u8>>(),
        ));
        let echoed = within("the echo of a lone 2 MiB call", session.call::<_, Raw>("/echo", &body))
            .await
            .unwrap();
        assert!(
            echoed.0 == body.0,
            "round {round}: the echo differs from the call's body"
        );
        // Small calls right behind it still find their way.
        let small = Raw(Bytes::from_static(b"small"));
        let echoed = session.call::<_, Raw>("/echo", &small).await.unwrap();
        assert_eq!(echoed.0, small.0);
    }
}

#[tokio::test]
async fn a_bad_frame_behind_a_good_call_still_gets_the_call_answered() {
    let (_server, addr) = serve(add_router(), PeerConfig::default()).await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let call = Message::new(MessageType::Call, 7)
        .with_service_method("/math/add")
        .with_body(CodecId::JSON, "[1,2]");
    let mut bytes = BytesMut::new();
    RawProto.encode(&call, &mut bytes, MIB).unwrap();
    // Right behind it, in the same write: a frame cut inside its seq field.
    bytes.put_u32(5 + 3);
    bytes.put_u8(0);
    bytes.extend_from_slice(b"\x05ab");
    stream.write_all(&bytes).await.unwrap();
    let mut received = BytesMut::new();
    let reply = within("the reply to the good call", async {
        loop {
            if let Some(reply) = RawProto
                .decode(&mut received, &Limits::with_max_message_size(MIB))
                .unwrap()
            {
                return reply;
            }
            assert_ne!(
                stream.read_buf(&mut received).await.unwrap(),
                0,
                "closed before replying"
            );
        }
    })
    .await;
    assert_eq!((reply.mtype, reply.seq), (MessageType::Reply, 7));
    assert!(reply.status.is_ok(), "{}", reply.status);
    assert_eq!(&reply.body[..], b"3");
    // Then the session closes.
    within("the connection to close", async {
        while stream.read_buf(&mut received).await.unwrap() > 0 {}
    })
    .await;
}

/// Panics in the hook named by `hook` while armed.
struct Panicky {
    hook: &'static str,
    armed: Arc<AtomicBool>,
}

impl Panicky {
    fn check(&self, hook: &str) -> HookResult {
        if hook == self.hook && self.armed.load(Ordering::Acquire) {
            panic!("{hook} went wrong");
        }
        Ok(())
    }
}

impl Plugin for Panicky {
    fn name(&self) -> &str {
        "panicky"
    }
    fn pre_read_header(&self, _: &Session) -> HookResult {
        self.check("pre_read_header")
    }
    fn post_read_call_header(&self, _: &Session, _: &mut Message) -> HookResult {
        self.check("post_read_call_header")
    }
}

#[tokio::test]
async fn a_panicking_hook_answers_500_and_the_session_goes_on() {
    let armed = Arc::new(AtomicBool::new(true));
    let plugin = Panicky {
        hook: "post_read_call_header",
        armed: armed.clone(),
    };
    let server = Peer::builder().router(add_router()).plugin(plugin).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let err = session.call::<_, i64>("/math/add", &[1, 2]).await.unwrap_err();
    assert_eq!(err.code(), Code::INTERNAL_SERVER_ERROR);
    assert!(err.to_string().contains("post_read_call_header went wrong"), "{err}");
    armed.store(false, Ordering::Release);
    assert_eq!(session.call::<_, i64>("/math/add", &[1, 2]).await.unwrap(), 3);
    assert_eq!(server.count_sessions(), 1);
}

#[tokio::test]
async fn a_panicking_read_hook_closes_the_session_and_ends_its_calls_with_102() {
    let (server, addr) = serve(add_router(), PeerConfig::default()).await;
    let armed = Arc::new(AtomicBool::new(false));
    let client = Peer::builder()
        .plugin(Panicky {
            hook: "pre_read_header",
            armed: armed.clone(),
        })
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[1, 2]).await.unwrap(), 3);
    let server_side = server.sessions().pop().expect("a session that answered is registered");
    armed.store(true, Ordering::Release);
    // The reply arrives, the hook panics before it is read: the call ends with 102 at once
    // (not at a timeout), and the session leaves the client's registry.
    let err = within(
        "the call on a session whose reader hook panicked",
        session.call::<_, i64>("/math/add", &[1, 2]).no_timeout().into_future(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::CONN_CLOSED, "{err}");
    assert!(err.to_string().contains("pre_read_header went wrong"), "{err}");
    within("the session to close", session.closed()).await;
    assert_eq!(client.count_sessions(), 0);
    within("the server's session to close", server_side.closed()).await;
    assert_eq!(server.count_sessions(), 0);
}

#[tokio::test]
async fn close_from_inside_a_handler_answers_and_returns_at_once() {
    let mut router = Router::new();
    router.call_at("/bye", |ctx: CallCtx, _: ()| async move {
        ctx.session().close().await;
        Ok("bye".to_string())
    });
    let config = PeerConfig {
        // Waiting for itself would take this long.
        shutdown_timeout: Duration::from_secs(60),
        ..PeerConfig::default()
    };
    let (server, addr) = serve(router, config).await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let bye: String = within(
        "the reply of a handler that closed its session",
        session.call("/bye", &()).into_future(),
    )
    .await
    .unwrap();
    assert_eq!(bye, "bye");
    within("the client to see the session close", session.closed()).await;
    // The server's session left the registry when its close began, before it answered.
    assert_eq!(server.count_sessions(), 0);
}

#[tokio::test]
async fn dropping_the_peer_closes_its_sessions_and_stops_listening() {
    let (server, addr) = serve(add_router(), PeerConfig::default()).await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[1, 2]).await.unwrap(), 3);
    let server_side = server.sessions().pop().expect("a session that answered is registered");
    // The client peer goes: its session closes even though we still hold it.
    drop(client);
    within("the dropped peer's session to close", session.closed()).await;
    let err = session.call::<_, i64>("/math/add", &[1, 2]).await.unwrap_err();
    assert_eq!(err.code(), Code::CONN_CLOSED);
    // Its connection went with it: the server sees it close.
    within("the server's session to close", server_side.closed()).await;
    assert_eq!(server.count_sessions(), 0);
    // The server peer goes: an idle session of another client closes, and nobody accepts.
    let other = Peer::builder().build().unwrap();
    let idle = other.dial(&addr).await.unwrap();
    drop(server);
    within("the server's sessions to close", idle.closed()).await;
    // No event says when the accept loop has let go of the socket: look until it has.
    wait_until(WAIT, || std::net::TcpStream::connect(&addr).is_err()).await;
}

/// Holds redials in PostDial until released, then refuses them; counts disconnects.
#[derive(Clone, Default)]
struct HeldRedial {
    entered: Events,
    release: Arc<Notify>,
    disconnects: Arc<AtomicUsize>,
    disconnected: Events,
}

impl Plugin for HeldRedial {
    fn name(&self) -> &str {
        "held-redial"
    }
    fn post_dial<'a>(&'a self, _: &'a mut PreSession, is_redial: bool) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            if !is_redial {
                return Ok(());
            }
            let released = self.release.notified();
            self.entered.note("redial");
            released.await;
            Err(Status::new(Code::UNAUTHORIZED, "refused"))
        })
    }
    fn post_disconnect(&self, _: &Session) -> HookResult {
        self.disconnects.fetch_add(1, Ordering::AcqRel);
        self.disconnected.note("disconnect");
        Ok(())
    }
}

#[tokio::test]
async fn a_redial_failing_after_close_does_not_disconnect_twice() {
    let (server, addr) = serve(add_router(), PeerConfig::default()).await;
    let plugin = HeldRedial::default();
    let config = PeerConfig {
        redial_times: 1,
        redial_interval: Duration::from_millis(1),
        ..PeerConfig::default()
    };
    let client = Peer::builder().config(config).plugin(plugin.clone()).build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[1, 2]).await.unwrap(), 3);
    assert_eq!(server.count_sessions(), 1, "a session that answered is registered");
    // The server drops the connection; the client redials and is held in PostDial.
    for server_side in server.sessions() {
        server_side.close().await;
    }
    plugin.entered.wait_len(1).await;
    // Closed while redialing: one disconnect.
    within("the close", session.close()).await;
    assert_eq!(plugin.disconnected.wait_len(1).await.len(), 1);
    // The redial now fails: the session stays closed, and is not disconnected again.
    plugin.release.notify_waiters();
    let second = tokio::time::timeout(Duration::from_millis(300), plugin.disconnected.wait_len(2)).await;
    assert!(second.is_err(), "post_disconnect ran twice");
    assert_eq!(plugin.disconnects.load(Ordering::Acquire), 1);
    assert!(session.is_closed());
}

/// Notes every PostWriteCall.
#[derive(Clone, Default)]
struct WriteWatch {
    written: Events,
}

impl Plugin for WriteWatch {
    fn name(&self) -> &str {
        "write-watch"
    }
    fn post_write_call(&self, _: &Session, msg: &Message) -> HookResult {
        self.written.note(msg.service_method.clone());
        Ok(())
    }
}

#[tokio::test]
async fn post_write_call_runs_only_once_the_call_is_written() {
    let watch = WriteWatch::default();
    let client = Peer::builder()
        .config(small_buffers(PeerConfig::default()))
        .plugin(watch.clone())
        .build()
        .unwrap();
    // Written: the hook runs.
    let (_server, addr) = serve(add_router(), PeerConfig::default()).await;
    let session = client.dial(&addr).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[1, 2]).await.unwrap(), 3);
    assert_eq!(watch.written.wait_len(1).await, ["/math/add"]);
    // Queued but never written (the peer does not read, the body is larger than every
    // buffer on the way): the call times out and the hook never runs.
    let (deaf_addr, _deaf) = deaf_listener().await;
    let stuck = client.dial(&deaf_addr).await.unwrap();
    let err = stuck
        .call::<_, Raw>("/store/blob", &Raw(Bytes::from(vec![0u8; 12 * MIB])))
        .timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::HANDLE_TIMEOUT);
    assert_eq!(watch.written.snapshot(), ["/math/add"]);
}

/// Refuses every reply with a bare 408, as a hook may.
struct RefuseReplies;

impl Plugin for RefuseReplies {
    fn name(&self) -> &str {
        "refuse-replies"
    }
    fn post_read_reply_header(&self, _: &Session, _: &mut Message) -> HookResult {
        Err(Status::new(Code::HANDLE_TIMEOUT, "refused by a hook"))
    }
}

#[tokio::test]
async fn a_408_from_a_hook_is_not_mistaken_for_the_call_timeout() {
    let (_server, addr) = serve(add_router(), PeerConfig::default()).await;
    let client = Peer::builder().plugin(RefuseReplies).build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let err = session.call::<_, i64>("/math/add", &[1, 2]).await.unwrap_err();
    assert_eq!(
        (err.code(), err.msg(), err.cause()),
        (Code::HANDLE_TIMEOUT, "refused by a hook", None)
    );
}

/// A reply type whose decoding panics.
#[derive(Debug)]
struct Explosive;

impl DecodeBody for Explosive {
    fn decode_body(_: CodecId, _: Bytes) -> Result<Self, CodecError> {
        panic!("the reply type exploded");
    }
}

#[tokio::test]
async fn a_started_call_that_panics_ends_with_500() {
    let (_server, addr) = serve(add_router(), PeerConfig::default()).await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let err = session
        .call::<_, Explosive>("/math/add", &[1, 2])
        .start()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::INTERNAL_SERVER_ERROR, "{err}");
    // The session is unharmed.
    assert_eq!(session.call::<_, i64>("/math/add", &[1, 2]).await.unwrap(), 3);
}

/// Notes every PostWriteReply.
#[derive(Clone, Default)]
struct ReplyWatch {
    written: Events,
}

impl Plugin for ReplyWatch {
    fn name(&self) -> &str {
        "reply-watch"
    }
    fn post_write_reply(&self, _: &Session, msg: &Message) -> HookResult {
        self.written.note(format!("seq {}", msg.seq));
        Ok(())
    }
}

#[tokio::test]
async fn post_write_reply_runs_only_once_the_reply_is_written() {
    let watch = ReplyWatch::default();
    let handled = Events::default();
    let mut router = Router::new();
    let noted = handled.clone();
    router.call_at("/blob", move |size: usize| {
        let noted = noted.clone();
        async move {
            noted.note(format!("{size}"));
            Ok(Raw(Bytes::from(vec![0u8; size])))
        }
    });
    let server = Peer::builder()
        .config(small_buffers(PeerConfig::default()))
        .router(router)
        .plugin(watch.clone())
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    // Written: the hook runs.
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let reply: Raw = session.call("/blob", &10usize).await.unwrap();
    assert_eq!(reply.0.len(), 10);
    assert_eq!(watch.written.wait_len(1).await.len(), 1);
    // A client that calls and never reads: a reply larger than every buffer on the way is
    // queued but never written, and the hook does not run for it.
    let mut deaf = deaf_client(&addr).await;
    let call = Message::new(MessageType::Call, 1)
        .with_service_method("/blob")
        .with_body(CodecId::JSON, (12 * MIB).to_string());
    let mut frame = BytesMut::new();
    RawProto.encode(&call, &mut frame, MIB).unwrap();
    deaf.write_all(&frame).await.unwrap();
    handled.wait_len(2).await;
    let second = tokio::time::timeout(Duration::from_millis(300), watch.written.wait_len(2)).await;
    assert!(second.is_err(), "post_write_reply ran for a reply still queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_registered_before_its_first_call_is_handled() {
    let sessions = Arc::new(std::sync::OnceLock::<erpc::session::Sessions>::new());
    let mut router = Router::new();
    let known = sessions.clone();
    router.call_at("/am-i-known", move |ctx: CallCtx, _: ()| {
        let known = known.clone();
        async move {
            let sessions = known.get().expect("set before listening");
            Ok(sessions.get(&ctx.session().id()).is_some())
        }
    });
    let server = Peer::builder().router(router).build().unwrap();
    sessions.set(server.sessions_handle()).unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    for _ in 0..20 {
        let client = Peer::builder().build().unwrap();
        let session = client.dial(&addr).await.unwrap();
        let known: bool = session.call("/am-i-known", &()).await.unwrap();
        assert!(
            known,
            "the first call's handler did not find its session among the peer's"
        );
    }
}
