//! Unix domain sockets: the address is a file path.
//!
//! `cargo run -p erpc-examples --example unix`

use std::sync::Arc;

use erpc::config::Network;
use erpc::proto::RawProto;
use erpc::{Peer, PeerConfig, Router, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("erpc-example-{}.sock", std::process::id()));
    let path = path.to_str().ok_or("temp dir is not UTF-8")?.to_string();

    let mut router = Router::new();
    router.call("hello", |name: String| async move {
        Ok::<_, Status>(format!("hello {name} over a unix socket"))
    });
    let server = Peer::builder().router(router).build()?;
    server.listen_with(Network::Unix, &path, Arc::new(RawProto)).await?;
    println!("listening on {path}");

    let config = PeerConfig {
        network: Network::Unix,
        ..PeerConfig::default()
    };
    let client = Peer::builder().config(config).build()?;
    let session = client.dial(&path).await?;
    println!("{}", session.call::<_, String>("/hello", "ann").await?);

    client.close().await;
    server.close().await; // also removes the socket file
    Ok(())
}
