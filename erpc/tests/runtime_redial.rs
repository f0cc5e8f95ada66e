//! Client sessions that lose their connection redial (behaviour.md §4.6), including Go's
//! redial bugs #53 (auth after redial), #56 (unlimited redial never reconnecting) and #86
//! (a PostDial error stopping redial).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Events;
use erpc::Code;
use erpc::message::{Message, MessageType};
use erpc::plugin::{HookResult, Plugin};
use erpc::session::PreSession;
use erpc::{CodecId, Peer, PeerConfig, Router, Status};
use futures_util::future::BoxFuture;

fn math() -> Router {
    let mut router = Router::new();
    router.call_at(
        "/math/add",
        |nums: Vec<i64>| async move { Ok(nums.iter().sum::<i64>()) },
    );
    router
}

async fn serve_on(addr: &str, plugin: Option<AuthChecker>) -> Peer {
    let mut builder = Peer::builder().router(math());
    if let Some(p) = plugin {
        builder = builder.plugin(p);
    }
    let peer = builder.build().unwrap();
    // A closed server has released its port by the time its close() returns.
    if let Err(e) = peer.listen_on(addr).await {
        panic!("could not listen on {addr}: {e}");
    }
    peer
}

fn redialing(times: i32) -> PeerConfig {
    PeerConfig {
        redial_times: times,
        redial_interval: Duration::from_millis(30),
        ..PeerConfig::default()
    }
}

async fn free_addr() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().to_string()
}

/// Notes every PreDial: the first for the dial, then one when each redial starts, that is once
/// the client session has noticed it lost its connection.
#[derive(Clone, Default)]
struct DialStarts(Events);

impl DialStarts {
    /// Waits until the client has noticed the loss of its connection and starts redialing.
    async fn redial_started(&self) {
        self.0.wait_len(2).await;
    }
}

impl Plugin for DialStarts {
    fn name(&self) -> &str {
        "dial-starts"
    }
    fn pre_dial(&self, _: &str, remote_addr: &str) -> HookResult {
        self.0.note(remote_addr);
        Ok(())
    }
}

/// Counts PostDial runs and fails the first `fail_first` of them.
#[derive(Clone, Default)]
struct DialCounter {
    runs: Arc<AtomicUsize>,
    redials: Arc<AtomicUsize>,
    fail_first: usize,
}

impl Plugin for DialCounter {
    fn name(&self) -> &str {
        "dial-counter"
    }
    fn post_dial<'a>(&'a self, _: &'a mut PreSession, is_redial: bool) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            let run = self.runs.fetch_add(1, Ordering::SeqCst);
            if is_redial {
                self.redials.fetch_add(1, Ordering::SeqCst);
            }
            if run < self.fail_first {
                return Err(Status::new(1, "not yet"));
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn unlimited_redial_reconnects_after_the_server_comes_back() {
    let addr = free_addr().await;
    let server = serve_on(&addr, None).await;
    let counter = DialCounter::default();
    let dials = DialStarts::default();
    let client = Peer::builder()
        .config(redialing(-1))
        .plugin(counter.clone())
        .plugin(dials.clone())
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[1, 2]).await.unwrap(), 3);

    server.close().await;
    dials.redial_started().await;
    assert!(session.health(), "a redialing client session reports healthy");
    let _server = serve_on(&addr, None).await;

    // The next call waits out the redial and succeeds (#56).
    let sum: i64 = session
        .call("/math/add", &[2, 3])
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(sum, 5);
    assert!(
        counter.redials.load(Ordering::SeqCst) >= 1,
        "PostDial runs again on redial"
    );
    assert_eq!(client.count_sessions(), 1);
}

#[tokio::test]
async fn a_failing_post_dial_does_not_stop_redial() {
    let addr = free_addr().await;
    let server = serve_on(&addr, None).await;
    let counter = FailSome::default();
    let dials = DialStarts::default();
    let client = Peer::builder()
        .config(redialing(100))
        .plugin(counter.clone())
        .plugin(dials.clone())
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();
    server.close().await;
    // Wait for the client to notice the loss: a call written into the dying connection would
    // fail with 102, as in Go (only calls made after the loss is noticed wait for the redial).
    dials.redial_started().await;
    let _server = serve_on(&addr, None).await;
    let sum: i64 = session
        .call("/math/add", &[4, 4])
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(sum, 8);
    assert!(
        counter.runs.load(Ordering::SeqCst) >= 4,
        "two refused redial attempts, then one that passed (#86)"
    );
}

/// Lets the first PostDial pass, refuses the next two, then lets everything pass.
#[derive(Clone, Default)]
struct FailSome {
    runs: Arc<AtomicUsize>,
}

impl Plugin for FailSome {
    fn name(&self) -> &str {
        "fail-some"
    }
    fn post_dial<'a>(&'a self, _: &'a mut PreSession, _: bool) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            match self.runs.fetch_add(1, Ordering::SeqCst) {
                1 | 2 => Err(Status::new(1, "refused on purpose")),
                _ => Ok(()),
            }
        })
    }
}

/// A tiny auth handshake: the client sends an AUTH_CALL with a token in PostDial, the server
/// checks it in PostAccept and answers AUTH_REPLY.
#[derive(Clone)]
struct AuthBearer;

impl Plugin for AuthBearer {
    fn name(&self) -> &str {
        "auth-bearer"
    }
    fn post_dial<'a>(&'a self, pre: &'a mut PreSession, _: bool) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            let msg = Message::new(MessageType::AuthCall, pre.next_seq()).with_body(CodecId::PLAIN, "token");
            pre.send(&msg).await?;
            let reply = pre.receive().await?;
            if reply.mtype != MessageType::AuthReply {
                return Err(Status::new(Code::UNAUTHORIZED, "Unauthorized"));
            }
            if !reply.status.is_ok() {
                return Err(reply.status);
            }
            Ok(())
        })
    }
}

#[derive(Clone, Default)]
struct AuthChecker {
    checked: Arc<AtomicUsize>,
}

impl Plugin for AuthChecker {
    fn name(&self) -> &str {
        "auth-checker"
    }
    fn post_accept<'a>(&'a self, pre: &'a mut PreSession) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            let call = pre.receive().await?;
            let verdict = if call.mtype == MessageType::AuthCall && call.body == "token" {
                Status::OK
            } else {
                Status::with_cause(403, "auth fail", "auth fail detail")
            };
            let reply = Message::new(MessageType::AuthReply, pre.next_seq())
                .with_body(CodecId::PLAIN, "pass")
                .with_status(verdict.clone());
            pre.send(&reply).await?;
            self.checked.fetch_add(1, Ordering::SeqCst);
            if verdict.is_ok() { Ok(()) } else { Err(verdict) }
        })
    }
}

#[tokio::test]
async fn auth_runs_again_after_redial() {
    let addr = free_addr().await;
    let checker = AuthChecker::default();
    let server = serve_on(&addr, Some(checker.clone())).await;
    let dials = DialStarts::default();
    let client = Peer::builder()
        .config(redialing(-1))
        .plugin(AuthBearer)
        .plugin(dials.clone())
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[1]).await.unwrap(), 1);
    server.close().await;
    dials.redial_started().await;
    let _server = serve_on(&addr, Some(checker.clone())).await;
    let sum: i64 = session
        .call("/math/add", &[1, 1])
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(sum, 2);
    assert_eq!(
        checker.checked.load(Ordering::SeqCst),
        2,
        "the handshake ran on the redial too (#53)"
    );
}

#[tokio::test]
async fn a_refused_handshake_fails_the_dial_with_105() {
    #[derive(Clone)]
    struct WrongBearer;
    impl Plugin for WrongBearer {
        fn name(&self) -> &str {
            "wrong-bearer"
        }
        fn post_dial<'a>(&'a self, pre: &'a mut PreSession, _: bool) -> BoxFuture<'a, HookResult> {
            Box::pin(async move {
                let msg = Message::new(MessageType::AuthCall, pre.next_seq()).with_body(CodecId::PLAIN, "bad");
                pre.send(&msg).await?;
                let reply = pre.receive().await?;
                if reply.status.is_ok() {
                    Ok(())
                } else {
                    Err(reply.status)
                }
            })
        }
    }
    let addr = free_addr().await;
    let _server = serve_on(&addr, Some(AuthChecker::default())).await;
    let client = Peer::builder().plugin(WrongBearer).build().unwrap();
    let err = client.dial(&addr).await.unwrap_err().into_status();
    assert_eq!(err, Status::from_code(Code::DIAL_FAILED, "auth fail detail"));
}

#[tokio::test]
async fn without_redial_a_lost_connection_closes_the_session() {
    let addr = free_addr().await;
    let server = serve_on(&addr, None).await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    server.close().await;
    tokio::time::timeout(Duration::from_secs(5), session.closed())
        .await
        .unwrap();
    assert!(!session.health());
    let err = session.call::<_, i64>("/math/add", &[1]).await.unwrap_err();
    assert_eq!(err.code(), Code::CONN_CLOSED);
}

#[tokio::test]
async fn dial_attempts_follow_redial_times() {
    let addr = free_addr().await; // nothing listens
    let client = Peer::builder().config(redialing(2)).build().unwrap();
    let started = std::time::Instant::now();
    let err = client.dial(&addr).await.unwrap_err().into_status();
    assert_eq!(err.code(), Code::DIAL_FAILED);
    assert!(err.cause().is_some_and(|c| !c.is_empty()), "the cause says why: {err}");
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "two extra attempts, 30 ms apart"
    );
}
