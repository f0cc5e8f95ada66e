//! Session age: an absolute lifetime for every session (not an idle timeout). After it, the
//! connection is closed and calls end with `102 Connection Closed`.
//!
//! `cargo run -p erpc-examples --example session_age`

use std::time::Duration;

use erpc::{Peer, PeerConfig, Router, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = PeerConfig {
        default_session_age: Duration::from_millis(500),
        ..PeerConfig::default()
    };
    let mut router = Router::new();
    router.call("ping", |_: ()| async move { Ok::<_, Status>("pong".to_string()) });
    let server = Peer::builder().config(config).router(router).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let client = Peer::builder().build()?;
    let session = client.dial(&addr).await?;
    println!("t=0ms   /ping -> {}", session.call::<_, String>("/ping", &()).await?);
    tokio::time::sleep(Duration::from_millis(800)).await;
    match session.call::<_, String>("/ping", &()).await {
        Ok(pong) => println!("t=800ms /ping -> {pong}"),
        Err(status) => println!("t=800ms /ping -> {status} (the session's age ran out)"),
    }
    println!("session healthy: {}", session.health());

    client.close().await;
    server.close().await;
    Ok(())
}
