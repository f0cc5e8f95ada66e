//! The secure plugin: bodies encrypted end to end, per message, by meta. `X-Secure: true`
//! encrypts a call's body; the reply to an encrypted call comes back encrypted. Handlers and
//! callers only ever see plaintext. Go mode speaks Go eRPC's format (AES-ECB, no integrity);
//! AEAD mode (AES-256-GCM) also detects tampering and replays, between erpc peers.
//!
//! `cargo run -p erpc-examples --example secure`

use std::sync::{Arc, Mutex};

use erpc::plugin::{HookResult, Plugin, SECURE_KEY, Secure, SecureMode};
use erpc::{Message, Peer, Router, Session, Status};

/// Shows what the server's replies look like on the wire: it runs after `Secure` (plugins run
/// in order), just before the reply is queued — so before the caller can have it.
struct Wire(Arc<Mutex<Vec<String>>>);

impl Plugin for Wire {
    fn name(&self) -> &str {
        "wire"
    }
    fn pre_write_reply(&self, _: &Session, message: &mut Message) -> HookResult {
        self.0
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&message.body).into_owned());
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = b"cipherkey1234567";
    let wire = Arc::new(Mutex::new(Vec::new()));
    let mut router = Router::new();
    router.call("greet", |name: String| async move {
        Ok::<_, Status>(format!("hello, {name}"))
    });
    let server = Peer::builder()
        .router(router)
        .plugin(Secure::new(SecureMode::Go, 600, key)?)
        .plugin(Wire(wire.clone()))
        .build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let client = Peer::builder().plugin(Secure::new(SecureMode::Go, 600, key)?).build()?;
    let session = client.dial(&addr).await?;
    let greeting: String = session.call("/greet", "ann").meta(SECURE_KEY, "true").await?;
    println!("the caller reads: {greeting}");
    println!("the wire carried: {}", wire.lock().unwrap()[0]);

    client.close().await;
    server.close().await;
    Ok(())
}
