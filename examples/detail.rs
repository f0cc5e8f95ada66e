//! Per-message logs: with `print_detail` and `count_time` every message is logged with its
//! meta, body and cost; calls slower than `slow_comet_duration` are warnings.
//!
//! `cargo run -p erpc-examples --example detail`

use std::time::Duration;

use erpc::{Peer, PeerConfig, Router, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Per-message lines are on target `erpc::msg`: DEBUG normally, WARN when slow.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .init();

    let config = PeerConfig {
        print_detail: true,
        count_time: true,
        slow_comet_duration: Duration::from_millis(50),
        ..PeerConfig::default()
    };
    let mut router = Router::new();
    router.call("fast", |n: i64| async move { Ok::<_, Status>(n + 1) });
    router.call("slow", |n: i64| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, Status>(n + 1)
    });
    let server = Peer::builder().config(config.clone()).router(router).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;
    let client = Peer::builder().config(config).build()?;
    let session = client.dial(&addr).await?;

    session.call::<_, i64>("/fast", &1).meta("author", "andeya").await?;
    session.call::<_, i64>("/slow", &2).await?;

    client.close().await;
    server.close().await;
    Ok(())
}
