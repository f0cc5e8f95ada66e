//! Graceful shutdown under load: every call the server handled gets its reply to the caller,
//! and every other call ends with a status; nothing hangs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::within;
use erpc::Code;
use erpc::{CallCtx, Peer, Router};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_under_load_loses_no_reply() {
    let handled = Arc::new(AtomicUsize::new(0));
    let mut router = Router::new();
    let counter = handled.clone();
    router.call_at("/work", move |ctx: CallCtx, n: u64| {
        let counter = counter.clone();
        async move {
            // Odd calls are still running when the close comes: they answer only once their
            // session has started closing.
            if n % 2 == 1 {
                ctx.session().closed().await;
            }
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(n)
        }
    });
    let server = Peer::builder().router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();

    let answered = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    // Each worker says when its first call is answered: then the load is up.
    let (running, mut up) = mpsc::unbounded_channel();
    let mut workers = Vec::new();
    let mut clients = Vec::new();
    for w in 0..8u64 {
        let client = Peer::builder().build().unwrap();
        let session = client.dial(&addr).await.unwrap();
        for i in 0..8u64 {
            let (session, answered, refused) = (session.clone(), answered.clone(), refused.clone());
            let running = running.clone();
            workers.push(tokio::spawn(async move {
                for n in 0.. {
                    // The first call answers at once (the load is up); later ones may wait.
                    let ms = if n == 0 { 0 } else { w * 8 + i + n };
                    match session
                        .call::<_, u64>("/work", &ms)
                        .timeout(Duration::from_secs(10))
                        .await
                    {
                        Ok(got) => {
                            assert_eq!(got, ms);
                            answered.fetch_add(1, Ordering::SeqCst);
                            if n == 0 {
                                let _ = running.send(());
                            }
                        }
                        Err(status) => {
                            assert_eq!(status.code(), Code::CONN_CLOSED, "a call ended with {status}");
                            refused.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            }));
        }
        clients.push(client);
    }
    within("every worker to get a first answer", async {
        for _ in 0..64 {
            up.recv().await.expect("the workers hold senders");
        }
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), server.close())
        .await
        .expect("close finishes");
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .expect("no call hangs")
            .unwrap();
    }
    let (handled, answered) = (handled.load(Ordering::SeqCst), answered.load(Ordering::SeqCst));
    assert!(answered > 64, "the load was real: {answered} calls answered");
    assert_eq!(handled, answered, "every call the server handled was answered");
    assert_eq!(
        refused.load(Ordering::SeqCst),
        64,
        "each worker's next call saw the closed connection"
    );
}
