//! TLS over tcp and unix sockets (rustls with the ring provider).

use std::sync::Arc;

use erpc::Code;
use erpc::config::Network;
use erpc::net::tls;
use erpc::proto::RawProto;
use erpc::{Peer, PeerConfig, Router};

fn router() -> Router {
    let mut router = Router::new();
    router.call_at("/math/add", |n: Vec<i64>| async move { Ok(n.iter().sum::<i64>()) });
    router
}

#[tokio::test]
async fn calls_travel_over_tls_on_tcp() {
    let server = Peer::builder()
        .router(router())
        .tls_server(tls::self_signed_server_config(&["localhost"]).unwrap())
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let port = addr.rsplit_once(':').unwrap().1;
    let client = Peer::builder()
        .tls_client(tls::dangerous_insecure_client_config())
        .build()
        .unwrap();
    let session = client.dial(&format!("localhost:{port}")).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[1, 2, 3]).await.unwrap(), 6);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_cannot_dial() {
    let server = Peer::builder()
        .router(router())
        .tls_server(tls::self_signed_server_config(&["localhost"]).unwrap())
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let port = addr.rsplit_once(':').unwrap().1;
    let (other_cert, _) = tls::self_signed_cert_pem(&["localhost"]).unwrap();
    let strict = tls::client_config_with_roots_pem(other_cert.as_bytes()).unwrap();
    let client = Peer::builder().tls_client(strict).build().unwrap();
    let err = client.dial(&format!("localhost:{port}")).await.unwrap_err();
    assert_eq!(err.code(), Code::DIAL_FAILED);
    assert!(err.status().and_then(|s| s.cause()).unwrap().contains("TLS"), "{err}");
}

#[tokio::test]
async fn calls_travel_over_tls_on_unix_sockets() {
    let path = std::env::temp_dir().join(format!("erpc-tls-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let path = path.to_str().unwrap().to_string();
    let server = Peer::builder()
        .router(router())
        .tls_server(tls::self_signed_server_config(&["localhost"]).unwrap())
        .build()
        .unwrap();
    server
        .listen_with(Network::Unix, &path, Arc::new(RawProto))
        .await
        .unwrap();
    let config = PeerConfig {
        network: Network::Unix,
        ..PeerConfig::default()
    };
    let client = Peer::builder()
        .config(config)
        .tls_client(tls::dangerous_insecure_client_config())
        .build()
        .unwrap();
    let session = client.dial(&path).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[4, 5]).await.unwrap(), 9);
    server.close().await;
}
