//! A typed service: one trait gives the server its routes and the client its methods, and the
//! compiler checks both against it.
//!
//! `cargo run -p erpc-examples --example typed`

use erpc::{Peer, Router, Status};

/// The service definition. Routes follow Go's naming: `/math/add` (or `Math.Add` with the
/// RPC name mapper), so a Go eRPC client calls the same service by name.
#[erpc::service]
pub trait Math {
    /// Adds the numbers.
    async fn add(&self, nums: Vec<i64>) -> Result<i64, Status>;
}

/// The server's implementation: plain async methods.
struct Calculator;

impl Math for Calculator {
    async fn add(&self, nums: Vec<i64>) -> Result<i64, Status> {
        Ok(nums.iter().sum())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router.service(MathServer::new(Calculator));
    let server = Peer::builder().router(router).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let client = Peer::builder().build()?;
    let math = MathClient::new(client.dial(&addr).await?);
    let sum = math.add(vec![1, 2, 3]).await?; // an i64, checked at compile time
    println!("{sum}");

    client.close().await;
    server.close().await;
    Ok(())
}
