//! Calls started now and awaited later: `.start()` sends at once and returns a handle.
//!
//! `cargo run -p erpc-examples --example async`

use std::time::{Duration, Instant};

use erpc::{Peer, Router, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router.call("slow_square", |n: u64| async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok::<_, Status>(n * n)
    });
    let server = Peer::builder().router(router).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;
    let client = Peer::builder().build()?;
    let session = client.dial(&addr).await?;

    let started = Instant::now();
    // Ten calls in flight at once on one session; each handler sleeps 200 ms.
    let pending: Vec<_> = (1..=10u64)
        .map(|n| session.call::<_, u64>("/slow/square", &n).start())
        .collect();
    println!("10 calls sent after {:?}", started.elapsed());
    let mut squares = Vec::new();
    for call in pending {
        squares.push(call.await?.body);
    }
    println!(
        "squares {squares:?} after {:?} (concurrently, not 10 × 200 ms)",
        started.elapsed()
    );

    client.close().await;
    server.close().await;
    Ok(())
}
