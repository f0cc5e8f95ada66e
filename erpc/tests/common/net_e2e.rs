//! The end-to-end exchange every network must carry: a call, pushes both ways, an error
//! status, a 1 MiB body each way, and a graceful shutdown with a call in flight.
#![allow(dead_code)]

use std::sync::Arc;

use erpc::router::{CallCtx, PushCtx};
use erpc::{PeerBuilder, Router, Status};
use tokio::sync::{Notify, mpsc};

use super::within;

/// What the server's and the client's routers report.
pub struct Probes {
    /// Pushes the router received.
    pub pushes: mpsc::UnboundedReceiver<String>,
    /// `/gate/wait` started.
    pub gate_started: mpsc::UnboundedReceiver<()>,
    /// Releases `/gate/wait`.
    pub gate: Arc<Notify>,
}

/// The router both ends use: `/math/add`, `/echo/text`, `/err/custom`, `/gate/wait`, the push
/// route `/push/note`, and `/push/back`, which pushes its argument back to the caller.
pub fn router() -> (Router, Probes) {
    let (push_tx, pushes) = mpsc::unbounded_channel();
    let (started_tx, gate_started) = mpsc::unbounded_channel();
    let gate = Arc::new(Notify::new());
    let mut router = Router::new();
    router.call_at("/math/add", |n: Vec<i64>| async move { Ok(n.iter().sum::<i64>()) });
    router.call_at("/echo/text", |text: String| async move { Ok(text) });
    router.call_at("/err/custom", |_: ()| async move {
        Err::<(), _>(Status::with_cause(10005, "custom error", "because"))
    });
    let release = gate.clone();
    router.call_at("/gate/wait", move |n: i64| {
        let (started, release) = (started_tx.clone(), release.clone());
        async move {
            let _ = started.send(());
            release.notified().await;
            Ok(n)
        }
    });
    router.call_at("/push/back", |ctx: CallCtx, text: String| async move {
        ctx.session().push("/push/note", &text).await?;
        Ok(())
    });
    router.push_at("/push/note", move |_: PushCtx, text: String| {
        let push_tx = push_tx.clone();
        async move {
            let _ = push_tx.send(text);
            Ok(())
        }
    });
    (
        router,
        Probes {
            pushes,
            gate_started,
            gate,
        },
    )
}

/// Runs the exchange: `server` is built from the builder given (with [`router`] added) and
/// listens at `listen` with `listen_on`; the client, from its builder, dials what `dial_addr`
/// makes of the bound address. `errors_carried`: whether the protocol carries error statuses.
pub async fn exchange(
    server: PeerBuilder,
    listen: &str,
    client: PeerBuilder,
    dial_addr: impl Fn(&str) -> String,
    errors_carried: bool,
) {
    let (server_router, mut server_probes) = router();
    let server = server.router(server_router).build().unwrap();
    let bound = server.listen_on(listen).await.unwrap();
    let (client_router, mut client_probes) = router();
    let client = client.router(client_router).build().unwrap();
    let session = within("the dial", client.dial(&dial_addr(&bound))).await.unwrap();

    // A call.
    let sum: i64 = within("a call", session.call("/math/add", &[1, 2, 3])).await.unwrap();
    assert_eq!(sum, 6);
    // Concurrent calls: their frames are batched, and must still leave one per message.
    let calls = (0..64i64).map(|i| {
        let session = session.clone();
        async move { session.call::<_, i64>("/math/add", &[i, 1]).await }
    });
    let sums = within("concurrent calls", futures_util::future::join_all(calls)).await;
    for (i, sum) in sums.into_iter().enumerate() {
        assert_eq!(sum.unwrap(), i as i64 + 1);
    }

    // Pushes both ways.
    within("a push", session.push("/push/note", "to the server"))
        .await
        .unwrap();
    assert_eq!(
        within("the push", server_probes.pushes.recv()).await.unwrap(),
        "to the server"
    );
    let _: () = within("a call", session.call("/push/back", "to the client"))
        .await
        .unwrap();
    assert_eq!(
        within("the push back", client_probes.pushes.recv()).await.unwrap(),
        "to the client"
    );
    let server_side = server.sessions().pop().expect("the server holds the session");
    let sum: i64 = within("a call back", server_side.call("/math/add", &[10, 20]))
        .await
        .unwrap();
    assert_eq!(sum, 30);

    // An error status.
    let err = within("a failing call", session.call::<_, ()>("/err/custom", &()))
        .await
        .unwrap_err();
    if errors_carried {
        assert_eq!(err, Status::with_cause(10005, "custom error", "because"));
    }
    let err = within("an unknown route", session.call::<_, ()>("/no/such", &()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), 404, "{err}");

    // A 1 MiB body each way.
    let big = "x".repeat(1 << 20);
    let back: String = within("a 1 MiB call", session.call("/echo/text", &big)).await.unwrap();
    assert_eq!(back.len(), big.len());
    let back: String = within("a 1 MiB call back", server_side.call("/echo/text", &big))
        .await
        .unwrap();
    assert!(back == big);

    // Graceful shutdown: a call in flight is answered, then the session closes on both ends.
    let in_flight = tokio::spawn({
        let session = session.clone();
        async move { session.call::<_, i64>("/gate/wait", &7).await }
    });
    within("the gated handler", server_probes.gate_started.recv())
        .await
        .unwrap();
    let closing = tokio::spawn({
        let server = server.clone();
        async move { server.close().await }
    });
    server_probes.gate.notify_one();
    assert_eq!(within("the call in flight", in_flight).await.unwrap().unwrap(), 7);
    within("the server's close", closing).await.unwrap();
    within("the client session to close", session.closed()).await;
    assert_eq!(server.count_sessions(), 0);
}
