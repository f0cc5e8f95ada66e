//! Tower middleware around routes: a timeout for every route, and a concurrency limit with
//! load shedding for one group.
//!
//! `cargo run -p erpc-examples --example layers`

use std::time::Duration;

use erpc::{Peer, Router, Status};
use tower::ServiceBuilder;

async fn add(nums: Vec<i64>) -> Result<i64, Status> {
    Ok(nums.iter().sum())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (napping, mut started) = tokio::sync::mpsc::unbounded_channel();
    let mut router = Router::new();
    router.call("add", add);
    {
        // One nap at a time; a second one is refused at once instead of queueing.
        let mut single = router.group("single");
        single.layer(ServiceBuilder::new().load_shed().concurrency_limit(1));
        single.call("nap", move |millis: u64| {
            let napping = napping.clone();
            async move {
                napping.send(()).ok();
                tokio::time::sleep(Duration::from_millis(millis)).await;
                Ok::<_, Status>(millis)
            }
        });
    }
    // Every route registered so far gives up after 200 ms.
    router.layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(200)));
    let server = Peer::builder().router(router).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let client = Peer::builder().build()?;
    let session = client.dial(&addr).await?;
    let sum: i64 = session.call("/add", &[1, 2, 3]).await?;
    println!("add: {sum}");

    let long = session.call::<_, u64>("/single/nap", &5_000).start();
    started.recv().await;
    let second = session.call::<_, u64>("/single/nap", &10).await;
    println!("a second nap while one runs: {}", second.unwrap_err());
    println!("a nap of 5 s: {}", long.await.unwrap_err());

    client.close().await;
    server.close().await;
    Ok(())
}
