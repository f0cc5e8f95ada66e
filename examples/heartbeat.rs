//! Heartbeats: the client pings quiet sessions every 3 seconds (Go's minimum) and closes one
//! whose server stops answering; the server answers pings and closes sessions silent for two
//! rates. Go eRPC's frames, so either end can be a Go peer.
//!
//! `cargo run -p erpc-examples --example heartbeat` (takes 3 seconds)

use std::time::{Duration, Instant};

use erpc::heartbeat::{Ping, Pong, ROUTE};
use erpc::plugin::{HookResult, Plugin};
use erpc::{Message, Peer, Session};
use tokio::sync::mpsc;

/// Tells when a heartbeat arrives.
struct Seen(mpsc::UnboundedSender<()>);

impl Plugin for Seen {
    fn name(&self) -> &str {
        "seen"
    }
    fn post_read_call_header(&self, _: &Session, message: &mut Message) -> HookResult {
        if message.service_method == ROUTE {
            let _ = self.0.send(());
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (seen, mut heartbeats) = mpsc::unbounded_channel();
    let server = Peer::builder().with(Pong::new()).plugin(Seen(seen)).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let client = Peer::builder()
        .plugin(Ping::new(Duration::from_secs(3), true))
        .build()?;
    let started = Instant::now();
    let session = client.dial(&addr).await?;
    heartbeats.recv().await;
    println!("a heartbeat after {} s of quiet", started.elapsed().as_secs());
    println!("the session is healthy: {}", session.health());

    client.close().await;
    server.close().await;
    Ok(())
}
