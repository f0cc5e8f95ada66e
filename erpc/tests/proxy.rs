//! The proxy: unknown routes forwarded with meta in order, `X-Real-IP`, codec byte and
//! transfer filters kept; upstream answers, meta and statuses coming back (connection failures
//! as 502); a slow upstream call blocking no other; pushes; a loop cut at 508.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use erpc::proxy::{Proxy, Upstream};
use erpc::{CallCtx, CodecId, Peer, PushCtx, Raw, Router, Session, Status};
use tokio::sync::Semaphore;

use common::{wait_until, within};

struct Upstreams {
    _peer: Peer,
    addr: String,
    gate: Arc<Semaphore>,
    pushes: Arc<AtomicUsize>,
}

async fn upstream() -> Upstreams {
    let gate = Arc::new(Semaphore::new(0));
    let pushes = Arc::new(AtomicUsize::new(0));
    let mut router = Router::new();
    router.call_at("/math/add", |nums: Vec<i64>| async move {
        Ok::<_, Status>(nums.iter().sum::<i64>())
    });
    router.call_at("/inspect", |ctx: CallCtx, body: Raw| async move {
        let meta: Vec<String> = ctx
            .meta()
            .iter()
            .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
            .collect();
        ctx.set_reply_meta("from", "upstream");
        Ok::<_, Status>(format!(
            "codec={} xfer={:?} body={} meta={}",
            ctx.body_codec().0 as char,
            ctx.message().xfer_pipe.ids(),
            String::from_utf8_lossy(&body.0),
            meta.join("&")
        ))
    });
    router.call_at("/forbidden", |_: ()| async move {
        Err::<(), _>(Status::new(403, "Forbidden"))
    });
    let g = gate.clone();
    router.call_at("/slow", move |_: ()| {
        let gate = g.clone();
        async move {
            let _permit = gate.acquire().await;
            Ok::<_, Status>("slow")
        }
    });
    let p = pushes.clone();
    router.push_at("/note", move |_: PushCtx, _: String| {
        let pushes = p.clone();
        async move {
            pushes.fetch_add(1, Ordering::AcqRel);
            Ok::<_, Status>(())
        }
    });
    let peer = Peer::builder().router(router).build().unwrap();
    let addr = peer.listen_on("127.0.0.1:0").await.unwrap();
    Upstreams {
        _peer: peer,
        addr,
        gate,
        pushes,
    }
}

/// A gateway forwarding to `upstream`, with a client session to it. The peers are returned
/// to keep them alive (dropping a peer closes its sessions).
async fn gateway(upstream: &str) -> ([Peer; 3], Session, Session) {
    let dialer = Peer::builder().build().unwrap();
    let to_upstream = dialer.dial(upstream).await.unwrap();
    let gateway = Peer::builder()
        .with(Proxy::to_session(to_upstream.clone()))
        .build()
        .unwrap();
    let addr = gateway.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    ([dialer, gateway, client], session, to_upstream)
}

#[tokio::test]
async fn forwarded_calls_keep_meta_codec_and_filters_and_bring_back_the_answer() {
    let up = upstream().await;
    let (_peers, session, _) = gateway(&up.addr).await;
    let sum: i64 = session.call("/math/add", &[1, 2, 3]).await.unwrap();
    assert_eq!(sum, 6);

    let reply = session
        .call::<_, String>("/inspect", &Raw("hello".into()))
        .codec(CodecId::PLAIN)
        .meta("a", "1")
        .meta("b", "2")
        .meta("a", "3")
        .xfer(b'g')
        .reply()
        .await
        .unwrap();
    let local = session.local_addr();
    assert_eq!(
        reply.body,
        format!("codec=s xfer=[103] body=hello meta=a=1&b=2&a=3&X-Real-IP={local}&X-Erpc-Proxy-Hops=1")
    );
    assert_eq!(reply.meta.get_str("from"), Some("upstream"), "reply meta copied");

    let err = session.call::<_, ()>("/forbidden", &()).await.unwrap_err();
    assert_eq!(err.code().get(), 403, "other statuses pass through: {err}");
}

#[tokio::test]
async fn a_slow_upstream_call_blocks_no_other_and_pushes_go_through() {
    let up = upstream().await;
    let (_peers, session, _) = gateway(&up.addr).await;
    let slow = session.call::<_, String>("/slow", &()).start();
    for i in 0..10 {
        let sum: i64 = within(
            "a call past the slow one",
            session.call("/math/add", &[i, 1]).into_future(),
        )
        .await
        .unwrap();
        assert_eq!(sum, i + 1);
    }
    session.push("/note", &"hi").await.unwrap();
    wait_until(common::WAIT, || up.pushes.load(Ordering::Acquire) == 1).await;
    up.gate.add_permits(1);
    assert_eq!(slow.await.unwrap().body, "slow");
}

#[tokio::test]
async fn a_lost_upstream_is_a_bad_gateway_with_the_cause() {
    let up = upstream().await;
    let (_peers, session, to_upstream) = gateway(&up.addr).await;
    to_upstream.close().await;
    let err = session.call::<_, i64>("/math/add", &[1]).await.unwrap_err();
    assert_eq!((err.code().get(), err.msg()), (502, "Bad Gateway"), "{err}");
    assert!(
        err.cause().unwrap().contains("102"),
        "the upstream failure is the cause: {err}"
    );
}

#[tokio::test]
async fn a_proxy_forwarding_to_itself_is_cut_at_508() {
    let (tx, rx) = std::sync::mpsc::channel::<Session>();
    let rx = std::sync::Mutex::new(rx);
    let slot: Arc<std::sync::OnceLock<Session>> = Arc::default();
    let s = slot.clone();
    let proxy = Proxy::new(move |_| {
        if let Ok(session) = rx.lock().unwrap().try_recv() {
            let _ = s.set(session);
        }
        s.get().cloned().map(Upstream::Session)
    });
    let looping = Peer::builder().with(proxy).build().unwrap();
    let addr = looping.listen_on("127.0.0.1:0").await.unwrap();
    // Its upstream is itself, through another peer's session (a session to oneself would share
    // its id with its accepted twin, and one would close the other).
    let dialer = Peer::builder().build().unwrap();
    tx.send(dialer.dial(&addr).await.unwrap()).unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let err = within(
        "the loop to be cut",
        session.call::<_, i64>("/anything", &[1]).into_future(),
    )
    .await
    .unwrap_err();
    assert_eq!((err.code().get(), err.msg()), (508, "Loop Detected"), "{err}");
}
