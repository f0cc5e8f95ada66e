//! The classic client: calls `/math/add` on the `server` example and prints one push.
//!
//! ```sh
//! cargo run -p erpc-examples --example client [ADDR]     # default 127.0.0.1:9090
//! ```

use std::time::Duration;

use erpc::router::PushCtx;
use erpc::{Peer, Router, Status};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9090".into());

    // The client has routes too: the server pushes to it.
    let (tx, mut pushes) = mpsc::unbounded_channel();
    let mut router = Router::new();
    router.push_at("/push/status", move |_: PushCtx, text: String| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(text);
            Ok::<_, Status>(())
        }
    });
    let client = Peer::builder().router(router).build()?;
    let session = match client.dial(&addr).await {
        Ok(session) => session,
        Err(status) => {
            eprintln!("cannot reach {addr} ({status}); start the server example first");
            std::process::exit(1);
        }
    };

    let reply = session
        .call::<_, i64>("/math/add", &[1, 2, 3, 4, 5])
        .meta("author", "andeya")
        .reply()
        .await?;
    println!(
        "1+2+3+4+5 = {} (reply meta author={:?})",
        reply.body,
        reply.meta.get_str("author")
    );

    match tokio::time::timeout(Duration::from_secs(3), pushes.recv()).await {
        Ok(Some(text)) => println!("push /push/status: {text}"),
        _ => println!("no push within 3 s"),
    }
    client.close().await;
    Ok(())
}
