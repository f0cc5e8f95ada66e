//! A gateway: a peer with no routes of its own forwards every call to an upstream server, and
//! the answer comes back as if it were local.
//!
//! `cargo run -p erpc-examples --example proxy`

use erpc::proxy::Proxy;
use erpc::{CallCtx, Peer, Router, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router
        .group("math")
        .call("add", |ctx: CallCtx, nums: Vec<i64>| async move {
            let caller = ctx.real_ip();
            println!(
                "upstream: adding for {}",
                if caller.is_empty() { "?" } else { "a client" }
            );
            Ok::<_, Status>(nums.iter().sum::<i64>())
        });
    let upstream = Peer::builder().router(router).build()?;
    let upstream_addr = upstream.listen_on("127.0.0.1:0").await?;

    let dialer = Peer::builder().build()?;
    let to_upstream = dialer.dial(&upstream_addr).await?;
    let gateway = Peer::builder().with(Proxy::to_session(to_upstream)).build()?;
    let gateway_addr = gateway.listen_on("127.0.0.1:0").await?;

    let client = Peer::builder().build()?;
    let session = client.dial(&gateway_addr).await?;
    let sum: i64 = session.call("/math/add", &[1, 2, 3]).await?;
    println!("{sum} via the gateway");

    client.close().await;
    gateway.close().await;
    upstream.close().await;
    Ok(())
}
