//! The auth plugins: Go's exact frames both ways (spec extensions.md §1.1), a bearer and a
//! checker end to end, refusals as `105 Dial Failed` with the checker's cause, auth again on
//! redial, and hostile first messages (a CALL instead of the AUTH_CALL, a garbage body) that
//! never reach a handler.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use erpc::Code;
use erpc::plugin::{AuthInfo, Bearer, Checker, HookResult, Plugin};
use erpc::proto::Proto;
use erpc::session::PreSession;
use erpc::{CallCtx, CodecId, Peer, PeerConfig, Router, Status};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::within;

/// Go's AUTH_CALL carrying the plain-text token `token` (seq 1).
const GO_AUTH_CALL: &[u8] = b"\x00\x00\x00\x19\x00\x011\x04\x00\x00\x06code=0\x00\x00stoken";
/// Go's passing AUTH_REPLY with the plain-text result `pass`.
const GO_AUTH_PASS: &[u8] = b"\x00\x00\x00\x18\x00\x011\x05\x00\x00\x06code=0\x00\x00spass";
/// Go's refusing AUTH_REPLY: status 403 with a cause, no body, codec still plain.
const GO_AUTH_FAIL: &[u8] =
    b"\x00\x00\x00\x41\x00\x011\x05\x00\x003code=403&msg=auth%20fail&cause=auth%20fail%20detail\x00\x00s";

fn checker(handled: Arc<AtomicUsize>) -> Checker {
    Checker::new(move |token: String, info: AuthInfo| {
        let handled = handled.clone();
        async move {
            handled.fetch_add(1, Ordering::AcqRel);
            if token != "token" {
                return Err(Status::with_cause(403, "auth fail", "auth fail detail"));
            }
            info.storage.insert("user", "ann".to_string());
            info.set_session_id("ann");
            Ok("pass")
        }
    })
    .codec(CodecId::PLAIN)
}

fn bearer(token: &'static str, runs: Arc<AtomicUsize>) -> Bearer {
    Bearer::new(move || {
        runs.fetch_add(1, Ordering::AcqRel);
        async move { Ok::<_, Status>(token) }
    })
    .codec(CodecId::PLAIN)
}

/// A server whose `/who` answers the session id and the user the checker stored, and counts
/// the calls its handlers ran.
async fn server(handled: Arc<AtomicUsize>, calls: Arc<AtomicUsize>) -> (Peer, String) {
    let mut router = Router::new();
    router.call("who", move |ctx: CallCtx, _: ()| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::AcqRel);
            let user: Option<String> = ctx.session().storage().get("user");
            Ok::<_, Status>(format!("{} {}", ctx.session().id(), user.unwrap_or_default()))
        }
    });
    let server = Peer::builder()
        .router(router)
        .plugin(Spy)
        .plugin(checker(handled))
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    (server, addr)
}

/// A plugin added before the checker; it must still see connections only after the checker.
struct Spy;

impl Plugin for Spy {
    fn name(&self) -> &str {
        "spy"
    }
    fn post_accept<'a>(&'a self, pre: &'a mut PreSession) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            assert_eq!(
                pre.storage().get::<String>("user").as_deref(),
                Some("ann"),
                "ran before auth"
            );
            Ok(())
        })
    }
}

async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    within("the reply", stream.read_exact(&mut buf)).await.unwrap();
    buf
}

async fn expect_eof(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let _ = within("the server to close", stream.read_to_end(&mut rest)).await;
    assert!(rest.is_empty(), "more after the verdict: {rest:?}");
}

#[tokio::test]
async fn the_checker_answers_go_s_auth_call_with_go_s_bytes() {
    let (_server, addr) = server(Arc::default(), Arc::default()).await;
    let mut go = TcpStream::connect(&addr).await.unwrap();
    go.write_all(GO_AUTH_CALL).await.unwrap();
    assert_eq!(read_exactly(&mut go, GO_AUTH_PASS.len()).await, GO_AUTH_PASS);

    let mut refused = TcpStream::connect(&addr).await.unwrap();
    let wrong = [&GO_AUTH_CALL[..3], &[0x19 + 2], &GO_AUTH_CALL[4..], b"xx"].concat();
    refused.write_all(&wrong).await.unwrap();
    assert_eq!(read_exactly(&mut refused, GO_AUTH_FAIL.len()).await, GO_AUTH_FAIL);
    expect_eof(&mut refused).await;
}

#[tokio::test]
async fn the_bearer_sends_go_s_bytes_and_passes_on_go_s_verdict() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let go_checker = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut call = vec![0u8; GO_AUTH_CALL.len()];
        conn.read_exact(&mut call).await.unwrap();
        conn.write_all(GO_AUTH_PASS).await.unwrap();
        call
    });
    let verdicts = Arc::new(AtomicUsize::new(0));
    let seen = verdicts.clone();
    let client = Peer::builder()
        .plugin(bearer("token", Arc::default()).on_verdict(move |verdict: String| {
            assert_eq!(verdict, "pass");
            seen.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }))
        .build()
        .unwrap();
    let _session = client.dial(&addr).await.unwrap();
    assert_eq!(go_checker.await.unwrap(), GO_AUTH_CALL);
    assert_eq!(verdicts.load(Ordering::Acquire), 1);
}

#[tokio::test]
async fn bearer_and_checker_end_to_end_and_refusals_are_105_with_the_cause() {
    let handled = Arc::new(AtomicUsize::new(0));
    let (_server, addr) = server(handled.clone(), Arc::default()).await;
    let client = Peer::builder().plugin(bearer("token", Arc::default())).build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let who: String = session.call("/who", &()).await.unwrap();
    assert_eq!(who, "ann ann", "the checker named the session and stored the user");

    let stranger = Peer::builder().plugin(bearer("guess", Arc::default())).build().unwrap();
    let refused = stranger.dial(&addr).await.unwrap_err().into_status();
    assert_eq!(refused.code(), Code::DIAL_FAILED);
    assert_eq!(refused.cause(), Some("auth fail detail"), "{refused}");
}

#[tokio::test]
async fn a_client_that_skips_auth_reaches_no_handler() {
    let (handled, calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (_server, addr) = server(handled.clone(), calls.clone()).await;
    // A CALL to /who where the AUTH_CALL should be, and a second one right behind it.
    let mut call = erpc::Message::new(erpc::MessageType::Call, 1);
    call.service_method = "/who".into();
    let mut frames = bytes::BytesMut::new();
    erpc::proto::RawProto.encode(&call, &mut frames, 1 << 20).unwrap();
    erpc::proto::RawProto.encode(&call, &mut frames, 1 << 20).unwrap();
    let mut sneak = TcpStream::connect(&addr).await.unwrap();
    sneak.write_all(&frames).await.unwrap();
    let mut reply = Vec::new();
    let _ = within("the server to close", sneak.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("code=401"), "an AUTH_REPLY with 401: {reply:?}");
    assert!(
        reply.contains("expect%3A%20AUTH_CALL%2C%20but%20received%3A%20CALL"),
        "{reply:?}"
    );
    assert_eq!(calls.load(Ordering::Acquire), 0, "a handler ran before auth");
    assert_eq!(handled.load(Ordering::Acquire), 0, "the checker's function saw a CALL");

    // A garbage body: refused (400), no handler.
    let mut garbage = TcpStream::connect(&addr).await.unwrap();
    let bad = [&GO_AUTH_CALL[..GO_AUTH_CALL.len() - 5], &[0xff, 0xfe, 0xfd, 0xfc, 0xfb]].concat();
    garbage.write_all(&bad).await.unwrap();
    let mut reply = Vec::new();
    let _ = within("the server to close", garbage.read_to_end(&mut reply)).await;
    assert!(String::from_utf8_lossy(&reply).contains("code=400"), "{reply:?}");
    assert_eq!(calls.load(Ordering::Acquire), 0);
}

#[tokio::test]
async fn auth_runs_again_on_every_redial() {
    let handled = Arc::new(AtomicUsize::new(0));
    let (server, addr) = server(handled.clone(), Arc::default()).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let client = Peer::builder()
        .config(PeerConfig {
            redial_times: 20,
            ..PeerConfig::default()
        })
        .plugin(bearer("token", runs.clone()))
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();
    let _: String = session.call("/who", &()).await.unwrap();
    // The server drops the session; the client redials and authenticates again.
    server.session("ann").expect("the authenticated session").close().await;
    let who: String = within("a call after the redial", async {
        loop {
            match session.call::<_, String>("/who", &()).await {
                Ok(who) => return who,
                Err(_) => tokio::task::yield_now().await,
            }
        }
    })
    .await;
    assert_eq!(who, "ann ann");
    assert!(runs.load(Ordering::Acquire) >= 2, "the bearer ran on the redial");
    assert!(handled.load(Ordering::Acquire) >= 2);
}

#[tokio::test]
async fn a_huge_token_is_refused_before_it_is_read() {
    let handled = Arc::new(AtomicUsize::new(0));
    let server = Peer::builder()
        .config(PeerConfig {
            max_message_size: 1 << 20,
            ..PeerConfig::default()
        })
        .plugin(checker(handled.clone()))
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let token = "t".repeat(10 << 20);
    let client = Peer::builder()
        .plugin(Bearer::new(move || {
            let token = token.clone();
            async move { Ok::<_, Status>(token) }
        }))
        .build()
        .unwrap();
    let refused = within("the refused dial", client.dial(&addr)).await.unwrap_err();
    assert_eq!(refused.code(), Code::DIAL_FAILED, "{refused}");
    assert_eq!(
        handled.load(Ordering::Acquire),
        0,
        "the checker never saw the 10 MB token"
    );
}
