//! Raw bytes bodies: `erpc::Raw` is sent verbatim whatever the codec says, as Go sends
//! `[]byte` bodies.
//!
//! `cargo run -p erpc-examples --example bytes`

use erpc::{CodecId, Peer, Raw, Router, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    // The handler sees the undecoded bytes and answers bytes.
    router.call("reverse", |body: Raw| async move {
        let mut bytes = body.0.to_vec();
        bytes.reverse();
        Ok::<_, Status>(Raw(bytes.into()))
    });
    let server = Peer::builder().router(router).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;
    let client = Peer::builder().build()?;
    let session = client.dial(&addr).await?;

    let reply = session
        .call::<_, Raw>("/reverse", &Raw::from(&b"\x00\x01\x02binary"[..]))
        .reply()
        .await?;
    println!("reversed: {:?} (codec on the wire: {})", reply.body.0, reply.codec);
    // The codec byte is still sent; here the caller labels its bytes as plain text.
    let text: Raw = session
        .call("/reverse", &Raw::from("stressed"))
        .codec(CodecId::PLAIN)
        .await?;
    println!("\"stressed\" reversed: {}", String::from_utf8_lossy(&text.0));

    client.close().await;
    server.close().await;
    Ok(())
}
