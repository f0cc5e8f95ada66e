//! Deadline propagation: a caller's remaining timeout travels in meta `X-Erpc-Timeout`, and the
//! server stops a handler whose caller has given up or whose connection is gone.

use std::sync::Arc;
use std::time::Duration;

use erpc::Code;
use erpc::{CallCtx, Peer, PeerConfig, Router, Status};
use tokio::sync::{Notify, mpsc};

/// Reports how a handler ended: `"finished"`, or `"dropped"` when its future was cancelled.
struct Ending {
    tx: mpsc::UnboundedSender<&'static str>,
    finished: bool,
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.tx.send(if self.finished { "finished" } else { "dropped" }).ok();
    }
}

struct Fixture {
    server: Peer,
    addr: String,
    endings: mpsc::UnboundedReceiver<&'static str>,
    timeouts: mpsc::UnboundedReceiver<Option<String>>,
    release: Arc<Notify>,
}

async fn fixture(server_config: PeerConfig) -> Fixture {
    let (ending, endings) = mpsc::unbounded_channel();
    let (timeout_seen, timeouts) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let mut router = Router::new();
    let released = release.clone();
    router.call("wait", move |ctx: CallCtx, _: ()| {
        let (ending, timeout_seen, released) = (ending.clone(), timeout_seen.clone(), released.clone());
        async move {
            timeout_seen
                .send(ctx.meta_str("X-Erpc-Timeout").map(str::to_string))
                .ok();
            let mut end = Ending {
                tx: ending,
                finished: false,
            };
            released.notified().await;
            end.finished = true;
            Ok::<_, Status>(())
        }
    });
    let server = Peer::builder().config(server_config).router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    Fixture {
        server,
        addr,
        endings,
        timeouts,
        release,
    }
}

/// A client that sends its deadlines.
fn sending_deadlines() -> Peer {
    Peer::builder()
        .config(PeerConfig {
            send_deadline: true,
            ..PeerConfig::default()
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_handler_stops_when_its_callers_deadline_passes() {
    let mut f = fixture(PeerConfig::default()).await;
    let client = sending_deadlines();
    let session = client.dial(&f.addr).await.unwrap();

    let late = session
        .call::<_, ()>("/wait", &())
        .timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::HANDLE_TIMEOUT);
    let sent: u64 = f
        .timeouts
        .recv()
        .await
        .unwrap()
        .expect("the deadline travels")
        .parse()
        .unwrap();
    assert!((1..=300).contains(&sent), "{sent} ms");
    assert_eq!(
        f.endings.recv().await,
        Some("dropped"),
        "the server stopped the handler"
    );
    client.close().await;
    f.server.close().await;
}

#[tokio::test]
async fn without_deadlines_handlers_run_to_their_end_as_in_go() {
    // The client sends no deadline (the default).
    let mut f = fixture(PeerConfig::default()).await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&f.addr).await.unwrap();
    let late = session
        .call::<_, ()>("/wait", &())
        .timeout(Duration::from_millis(50))
        .await;
    assert_eq!(late.unwrap_err().code(), Code::HANDLE_TIMEOUT);
    assert_eq!(f.timeouts.recv().await, Some(None), "no deadline was sent");
    f.release.notify_one();
    assert_eq!(f.endings.recv().await, Some("finished"));
    client.close().await;
    f.server.close().await;

    // The server ignores the deadline it gets.
    let mut f = fixture(PeerConfig {
        cancel_handlers: false,
        ..PeerConfig::default()
    })
    .await;
    let client = sending_deadlines();
    let session = client.dial(&f.addr).await.unwrap();
    let late = session
        .call::<_, ()>("/wait", &())
        .timeout(Duration::from_millis(50))
        .await;
    assert_eq!(late.unwrap_err().code(), Code::HANDLE_TIMEOUT);
    assert!(f.timeouts.recv().await.unwrap().is_some());
    f.release.notify_one();
    assert_eq!(f.endings.recv().await, Some("finished"));
    client.close().await;
    f.server.close().await;
}

#[tokio::test]
async fn a_handler_stops_when_its_callers_connection_is_gone() {
    let mut f = fixture(PeerConfig::default()).await;
    let client = Peer::builder()
        .config(PeerConfig {
            send_deadline: false,
            shutdown_timeout: Duration::from_millis(50),
            ..PeerConfig::default()
        })
        .build()
        .unwrap();
    let session = client.dial(&f.addr).await.unwrap();
    let call = session.call::<_, ()>("/wait", &()).no_timeout().start();
    f.timeouts.recv().await.unwrap();
    // The client goes away with the call unanswered.
    client.close().await;
    assert_eq!(call.await.unwrap_err().code(), Code::CONN_CLOSED);
    assert_eq!(
        f.endings.recv().await,
        Some("dropped"),
        "the orphaned handler was stopped"
    );
    f.server.close().await;
}
