//! The secure plugin end to end: bodies encrypted on the wire in both directions as the meta
//! switches say, the handler and the caller seeing plaintext, and a peer with another key
//! getting the plugin's decrypt status instead of a body.

use std::sync::{Arc, Mutex};

use erpc::plugin::{HookResult, Plugin, Secure, SecureMode};
use erpc::{Message, Peer, Router, Session, Status};

const KEY: &[u8] = b"cipherkey1234567";

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Args {
    #[serde(rename = "A")]
    a: i64,
    #[serde(rename = "B")]
    b: i64,
}

/// Keeps the bodies of the replies the server wrote, as they went out.
#[derive(Clone, Default)]
struct Wire(Arc<Mutex<Vec<String>>>);

impl Plugin for Wire {
    fn name(&self) -> &str {
        "wire"
    }
    fn post_write_reply(&self, _: &Session, message: &Message) -> HookResult {
        self.0
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&message.body).into_owned());
        Ok(())
    }
}

async fn server(mode: SecureMode, key: &[u8], wire: Wire, seen: Arc<Mutex<Vec<String>>>) -> (Peer, String) {
    let mut router = Router::new();
    router.call_at("/math/divide", move |args: Args| {
        seen.lock().unwrap().push(format!("{args:?}"));
        async move { Ok::<_, Status>(args.a / args.b) }
    });
    let server = Peer::builder()
        .router(router)
        .plugin(Secure::new(mode, 600, key).unwrap())
        .plugin(wire)
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    (server, addr)
}

#[tokio::test]
async fn secure_calls_are_encrypted_on_the_wire_and_plain_to_handlers() {
    for mode in [SecureMode::Go, SecureMode::Aead] {
        let key: &[u8] = if mode == SecureMode::Go { KEY } else { &[9u8; 32] };
        let (wire, seen) = (Wire::default(), Arc::new(Mutex::new(Vec::new())));
        let (_server, addr) = server(mode, key, wire.clone(), seen.clone()).await;
        let client = Peer::builder()
            .plugin(Secure::new(mode, 600, key).unwrap())
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();

        // Encrypted request: the reply is encrypted too.
        let q: i64 = session
            .call("/math/divide", &Args { a: 10, b: 2 })
            .meta("X-Secure", "true")
            .await
            .unwrap();
        assert_eq!(q, 5, "{mode:?}");
        // Encrypted request that asks for a plain reply.
        let q: i64 = session
            .call("/math/divide", &Args { a: 9, b: 3 })
            .meta("X-Secure", "true")
            .meta("X-Accept-Secure", "false")
            .await
            .unwrap();
        assert_eq!(q, 3);
        // Plain request that asks for an encrypted reply.
        let q: i64 = session
            .call("/math/divide", &Args { a: 8, b: 4 })
            .meta("X-Accept-Secure", "true")
            .await
            .unwrap();
        assert_eq!(q, 2);

        assert_eq!(
            *seen.lock().unwrap(),
            ["Args { a: 10, b: 2 }", "Args { a: 9, b: 3 }", "Args { a: 8, b: 4 }"],
            "{mode:?}: handlers see plaintext"
        );
        let replies = wire.0.lock().unwrap().clone();
        assert!(replies[0].contains("\"ciphertext\""), "{mode:?}: {replies:?}");
        assert_eq!(replies[1], "3", "{mode:?}");
        assert!(replies[2].contains("\"ciphertext\""), "{mode:?}: {replies:?}");
    }
}

#[tokio::test]
async fn a_peer_with_another_key_gets_the_decrypt_status() {
    let (_server, addr) = server(SecureMode::Go, KEY, Wire::default(), Arc::default()).await;
    let client = Peer::builder()
        .plugin(Secure::new(SecureMode::Go, 600, b"another-key-1234").unwrap())
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();
    let err = session
        .call::<_, i64>("/math/divide", &Args { a: 1, b: 1 })
        .meta("X-Secure", "true")
        .await
        .unwrap_err();
    assert_eq!((err.code().get(), err.msg()), (600, "decrypt ciphertext error"));
    assert!(
        err.cause().unwrap().contains("inconsistent encryption version"),
        "{err}"
    );
}
