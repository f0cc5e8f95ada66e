//! The overloader plugin end to end: its session cap (refused connections do not raise it),
//! its total and per-route token buckets with Go's statuses, dropped pushes, and limits
//! changed while the peer runs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use erpc::Code;
use erpc::plugin::{HookResult, Overloader, OverloaderConfig, Plugin};
use erpc::{Peer, Router, Session};
use tokio::sync::mpsc;

use common::within;

/// Tells when the server's sessions close (after the overloader's own hook).
struct Disconnects(mpsc::UnboundedSender<()>);

impl Plugin for Disconnects {
    fn name(&self) -> &str {
        "disconnects"
    }
    fn post_disconnect(&self, _: &Session) -> HookResult {
        let _ = self.0.send(());
        Ok(())
    }
}

async fn serve(overloader: &Overloader, pushes: Arc<AtomicUsize>) -> (Peer, String, mpsc::UnboundedReceiver<()>) {
    let mut router = Router::new();
    router
        .group("math")
        .call("add", |nums: Vec<i64>| async move { Ok(nums.iter().sum::<i64>()) });
    router.group("note").push("seen", move |_: String| {
        let pushes = pushes.clone();
        async move {
            pushes.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let server = Peer::builder()
        .router(router)
        .plugin(overloader.clone())
        .plugin(Disconnects(tx))
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    (server, addr, rx)
}

fn config(max_sessions: usize, max_total_qps: u32) -> OverloaderConfig {
    OverloaderConfig {
        max_sessions,
        max_total_qps,
        qps_interval: Duration::from_secs(1),
        ..OverloaderConfig::default()
    }
}

#[tokio::test]
async fn sessions_over_the_cap_are_closed_and_do_not_raise_it() {
    let overloader = Overloader::new(config(1, 0)).unwrap();
    let (_server, addr, mut disconnects) = serve(&overloader, Arc::default()).await;
    let client = Peer::builder().build().unwrap();
    let first = client.dial(&addr).await.unwrap();
    let sum: i64 = first.call("/math/add", &[1, 2]).await.unwrap();
    assert_eq!(sum, 3);
    for _ in 0..3 {
        // The server closes the connection after accepting it: the call sees it close.
        let refused = client.dial(&addr).await.unwrap();
        let err = within(
            "the refused call",
            refused.call::<_, i64>("/math/add", &[1]).into_future(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::CONN_CLOSED, "{err}");
    }
    assert_eq!(overloader.sessions(), 1, "refused connections took no slot");
    first.close().await;
    within("the server to see the close", disconnects.recv()).await;
    assert_eq!(overloader.sessions(), 0);
    let again = client.dial(&addr).await.unwrap();
    let sum: i64 = again.call("/math/add", &[2, 2]).await.unwrap();
    assert_eq!(sum, 4);
}

#[tokio::test]
async fn calls_over_the_total_rate_get_go_s_status_until_the_limit_is_raised() {
    let overloader = Overloader::new(config(0, 3)).unwrap();
    let (_server, addr, _) = serve(&overloader, Arc::default()).await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let mut results = Vec::new();
    for _ in 0..10 {
        results.push(session.call::<_, i64>("/math/add", &[1]).await);
    }
    // The bucket starts full (3 tokens) and gains 3 a second: the first three pass, and all
    // ten cannot in the few milliseconds this takes.
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    let refused = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("some calls were refused");
    assert_eq!(refused.code(), 500);
    assert_eq!(refused.msg(), "qps overload, total_limit=3");
    // Go's bytes for this status.
    assert_eq!(
        String::from_utf8(refused.encode_query()).unwrap(),
        "code=500&msg=qps%20overload%2C%20total_limit%3D3"
    );
    let mut raised = overloader.config();
    raised.max_total_qps = 1000;
    overloader.update(raised).unwrap();
    for _ in 0..20 {
        let sum: i64 = session.call("/math/add", &[1]).await.unwrap();
        assert_eq!(sum, 1);
    }
}

#[tokio::test]
async fn pushes_over_a_route_rate_are_dropped_and_other_routes_go_on() {
    let pushes = Arc::new(AtomicUsize::new(0));
    let mut limits = config(0, 0);
    limits.max_route_qps = [("/note/seen".to_string(), 2), ("/math/add".to_string(), 0)].into();
    let overloader = Overloader::new(limits).unwrap();
    let (_server, addr, _) = serve(&overloader, pushes.clone()).await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    for _ in 0..5 {
        session.push("/note/seen", &"x").await.unwrap();
    }
    // A session's messages are taken in order: once this call is answered, the pushes before
    // it were handled or dropped. `/math/add` has a limit of 0: no limit.
    for _ in 0..10 {
        let sum: i64 = session.call("/math/add", &[5]).await.unwrap();
        assert_eq!(sum, 5);
    }
    assert_eq!(
        pushes.load(Ordering::Acquire),
        2,
        "pushes beyond the route's 2 were dropped"
    );
}
