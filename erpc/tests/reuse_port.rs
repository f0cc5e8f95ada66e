//! `reuse_port`: several peers listen on one TCP port and the kernel spreads the connections
//! over them (erpc's counterpart of Go's evio mixer).
#![cfg(unix)]

use erpc::{Peer, PeerConfig, Router, Status};

fn server(name: &'static str, reuse_port: bool) -> Peer {
    let mut router = Router::new();
    router.call_at("/who", move |_: ()| async move { Ok::<_, Status>(name) });
    Peer::builder()
        .config(PeerConfig {
            reuse_port,
            ..PeerConfig::default()
        })
        .router(router)
        .build()
        .unwrap()
}

#[tokio::test]
async fn peers_with_reuse_port_share_a_port_and_its_connections() {
    let first = server("first", true);
    let addr = first.listen_on("127.0.0.1:0").await.unwrap();
    let plain = server("plain", false);
    assert!(
        plain.listen_on(&addr).await.is_err(),
        "without reuse_port the port is taken"
    );
    let second = server("second", true);
    assert_eq!(second.listen_on(&addr).await.unwrap(), addr);

    let client = Peer::builder().build().unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..64 {
        let session = client.dial(&addr).await.unwrap();
        seen.insert(session.call::<_, String>("/who", &()).await.unwrap());
        session.close().await;
    }
    // 64 connections all hashed to one listener: a chance of 2^-63.
    assert_eq!(seen.len(), 2, "connections reached only {seen:?}");
}
