//! The smallest service: one route that answers with what it gets.
//!
//! `cargo run -p erpc-examples --example echo`

use erpc::{Peer, Router, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router.call("echo", |text: String| async move { Ok::<_, Status>(text) }); // route "/echo"
    let server = Peer::builder().router(router).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let client = Peer::builder().build()?;
    let session = client.dial(&addr).await?;
    let echoed: String = session.call("/echo", "hello, erpc").await?;
    println!("echo: {echoed}");
    assert_eq!(echoed, "hello, erpc");

    client.close().await;
    server.close().await;
    Ok(())
}
