//! Both ends serve: the client calls the server, whose handler calls the client back on the
//! same session before answering.
//!
//! `cargo run -p erpc-examples --example twoway`

use erpc::router::CallCtx;
use erpc::{Peer, Router, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Server: to answer /order, ask the client for its address.
    let mut server_routes = Router::new();
    server_routes.call("order", |ctx: CallCtx, item: String| async move {
        let address: String = ctx.session().call("/client/address", &()).await?;
        Ok::<_, Status>(format!("{item} will be shipped to {address}"))
    });
    let server = Peer::builder().router(server_routes).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    // Client: answers the server's question.
    let mut client_routes = Router::new();
    client_routes.group("client").call("address", |_: ()| async move {
        Ok::<_, Status>("221B Baker Street".to_string())
    });
    let client = Peer::builder().router(client_routes).build()?;
    let session = client.dial(&addr).await?;

    let confirmation: String = session.call("/order", "a violin").await?;
    println!("{confirmation}");

    // The server can also reach every client on its own initiative.
    for s in server.sessions() {
        let address: String = s.call("/client/address", &()).await?;
        println!("server asked {} -> {address}", s.id());
    }

    client.close().await;
    server.close().await;
    Ok(())
}
