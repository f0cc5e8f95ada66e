//! The overloader plugin: a cap on sessions and on calls per second, changed while the peer
//! runs. Calls over the rate are answered `500 qps overload`, as Go eRPC answers them.
//!
//! `cargo run -p erpc-examples --example overloader`

use std::time::Duration;

use erpc::plugin::{Overloader, OverloaderConfig};
use erpc::{Peer, Router, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let overloader = Overloader::new(OverloaderConfig {
        max_sessions: 100,
        max_total_qps: 5,
        qps_interval: Duration::from_secs(1),
        ..OverloaderConfig::default()
    })?;
    let mut router = Router::new();
    router.call("ping", |_: ()| async move { Ok::<_, Status>("pong") });
    // Keep a clone: it is a handle on the same limits.
    let server = Peer::builder().router(router).plugin(overloader.clone()).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let client = Peer::builder().build()?;
    let session = client.dial(&addr).await?;
    let (mut answered, mut refused) = (0, None);
    for _ in 0..8 {
        match session.call::<_, String>("/ping", &()).await {
            Ok(_) => answered += 1,
            Err(status) => refused = Some(status),
        }
    }
    println!("{answered} of 8 calls answered at 5 per second");
    if let Some(status) = refused {
        println!("the others: {status}");
    }

    let mut limits = overloader.config();
    limits.max_total_qps = 1000;
    overloader.update(limits)?;
    let pong: String = session.call("/ping", &()).await?;
    println!("after raising the limit: {pong}");

    client.close().await;
    server.close().await;
    Ok(())
}
