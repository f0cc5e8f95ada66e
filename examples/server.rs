//! The classic server: `/math/add` (copying meta `author` into the reply) and a push of
//! `/push/status` to every client each second. Runs until Ctrl-C.
//!
//! ```sh
//! cargo run -p erpc-examples --example server            # listens on 127.0.0.1:9090
//! cargo run -p erpc-examples --example client            # in another terminal
//! ```

use std::time::Duration;

use erpc::router::CallCtx;
use erpc::{Peer, Router, Status};

async fn add(ctx: CallCtx, nums: Vec<i64>) -> Result<i64, Status> {
    if let Some(author) = ctx.meta_str("author") {
        ctx.set_reply_meta("author", author.to_string());
    }
    Ok(nums.iter().sum())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9090".into());
    let mut router = Router::new();
    router.group("math").call("add", add);
    let server = Peer::builder().router(router).build()?;
    let addr = server.listen_on(&addr).await?;
    println!("listening on {addr}; Ctrl-C to stop");

    // Push the time to every connected client once a second.
    let pusher = server.clone();
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            n += 1;
            pusher.broadcast("/push/status", &format!("tick {n}")).await;
        }
    });

    server.shutdown_on_signal().await;
    println!("bye");
    Ok(())
}
