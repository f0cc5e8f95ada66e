//! A session pool: many callers share a few sessions to one server. Each call hires the least
//! busy session; the pool grows to its size as calls overlap, and drops idle sessions.
//!
//! `cargo run -p erpc-examples --example pool`

use std::time::Duration;

use erpc::{Peer, Pool, PoolConfig, Router, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router.call("work", |ms: u64| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await; // a handler that takes a while
        Ok::<_, Status>(ms)
    });
    let server = Peer::builder().router(router).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let client = Peer::builder().build()?;
    let pool = Pool::new(
        &client,
        addr,
        PoolConfig {
            max_sessions: 3,
            ..PoolConfig::default()
        },
    );
    // Ten overlapping calls, the same builder as a session's.
    let calls = (0..10).map(|_| pool.call::<_, u64>("/work", &50).start());
    for call in calls.collect::<Vec<_>>() {
        call.await?;
    }
    let stats = pool.stats();
    println!("10 calls over {} sessions ({} dialed)", stats.sessions, stats.created);

    pool.close().await;
    server.close().await;
    Ok(())
}
