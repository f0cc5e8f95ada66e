//! The QUIC network (extensions.md §11): one connection per session with one bidirectional
//! stream, TLS always (self-signed by default, pinned certificates, ALPN), over loopback.

mod common;
#[path = "common/own_stream.rs"]
mod own_stream;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use common::{Events, within};
use erpc::Code;
use erpc::config::Network;
use erpc::net::tls;
use erpc::{Peer, PeerConfig};
use own_stream::DialStarts;

fn quic() -> PeerConfig {
    PeerConfig {
        network: Network::Quic,
        ..PeerConfig::default()
    }
}

async fn server_with(builder: erpc::PeerBuilder, addr: &str) -> (Peer, String, Events) {
    own_stream::server_with(builder, quic(), addr).await
}

async fn server() -> (Peer, String, Events) {
    server_with(Peer::builder(), "127.0.0.1:0").await
}

fn client(pushes: &Events) -> Peer {
    own_stream::client(quic(), pushes)
}

#[tokio::test]
async fn calls_errors_and_a_large_body_travel_over_quic() {
    let (server, addr, _) = server().await;
    // No TLS client config: like Go, the dial skips verifying the self-signed certificate.
    let client = client(&Events::default());
    let session = within("dial", client.dial(&addr)).await.unwrap();
    let sum: i64 = within("call", session.call("/math/add", &[1, 2, 3]).into_future())
        .await
        .unwrap();
    assert_eq!(sum, 6);
    assert_eq!(
        server.count_sessions(),
        1,
        "the server sees the session once it has a message"
    );

    own_stream::an_error_and_a_large_body(&session).await;
}

#[tokio::test]
async fn pushes_go_both_ways() {
    own_stream::pushes_go_both_ways(quic()).await;
}

#[tokio::test]
async fn graceful_close_lets_a_running_handler_answer() {
    let (_client, session, _) = own_stream::a_running_handler_answers_a_graceful_close(quic()).await;
    within("client sees the close", session.closed()).await;
    let err = session.call::<_, i64>("/math/add", &[1]).await.unwrap_err();
    assert_eq!(err.code(), Code::CONN_CLOSED);
}

#[tokio::test]
async fn a_client_redials_when_the_server_restarts_on_the_same_port() {
    let (server, addr, _) = server().await;
    let dials = Events::default();
    let client = Peer::builder()
        .config(PeerConfig {
            redial_times: -1,
            redial_interval: Duration::from_millis(20),
            ..quic()
        })
        .plugin(DialStarts(dials.clone()))
        .build()
        .unwrap();
    let session = within("dial", client.dial(&addr)).await.unwrap();
    assert_eq!(
        within("call", session.call::<_, i64>("/math/add", &[1, 2]).into_future())
            .await
            .unwrap(),
        3
    );

    within("server close", server.close()).await;
    drop(server);
    within("the client notices and redials", dials.wait_len(2)).await;
    // close() has released the UDP port: the new server binds it at once.
    let (_server, _, _) = server_with(Peer::builder(), &addr).await;
    let sum: i64 = within("call after redial", session.call("/math/add", &[2, 3]).into_future())
        .await
        .unwrap();
    assert_eq!(sum, 5);
}

#[tokio::test]
async fn dropping_the_server_peer_ends_its_sessions() {
    let (server, addr, _) = server().await;
    let client = client(&Events::default());
    let session = within("dial", client.dial(&addr)).await.unwrap();
    assert_eq!(
        within("call", session.call::<_, i64>("/math/add", &[1]).into_future())
            .await
            .unwrap(),
        1
    );
    drop(server);
    within("the client sees the connection end", session.closed()).await;
}

#[tokio::test]
async fn a_pinned_certificate_is_accepted_and_an_untrusted_one_refused() {
    let (cert, key) = tls::self_signed_cert_pem(&["localhost"]).unwrap();
    let dir = std::env::temp_dir().join(format!("erpc-quic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let server_tls = tls::server_config_from_pem_files(&cert_path, &key_path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let (_server, addr, _) = server_with(Peer::builder().tls_server(server_tls), "127.0.0.1:0").await;
    let port = addr.rsplit_once(':').unwrap().1;

    let pinned = tls::client_config_with_roots_pem(cert.as_bytes()).unwrap();
    let client = Peer::builder().config(quic()).tls_client(pinned).build().unwrap();
    let session = within("dial", client.dial(&format!("localhost:{port}"))).await.unwrap();
    assert_eq!(
        within("call", session.call::<_, i64>("/math/add", &[4, 5]).into_future())
            .await
            .unwrap(),
        9
    );

    let (other, _) = tls::self_signed_cert_pem(&["localhost"]).unwrap();
    let strict = tls::client_config_with_roots_pem(other.as_bytes()).unwrap();
    let client = Peer::builder().config(quic()).tls_client(strict).build().unwrap();
    let err = within("refused dial", client.dial(&format!("localhost:{port}")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DIAL_FAILED);
    let cause = err.status().unwrap().cause().unwrap();
    assert!(
        cause.contains("QUIC handshake") && cause.contains("certificate"),
        "{cause}"
    );
}

#[tokio::test]
async fn a_client_without_a_common_alpn_protocol_is_refused() {
    let (_server, addr, _) = server().await;
    let mut other = (*tls::dangerous_insecure_client_config()).clone();
    other.alpn_protocols = vec![b"erpc-test".to_vec()];
    let client = Peer::builder()
        .config(quic())
        .tls_client(Arc::new(other))
        .build()
        .unwrap();
    let err = within("refused dial", client.dial(&addr)).await.unwrap_err();
    assert_eq!(err.code(), Code::DIAL_FAILED);
    let cause = err.status().unwrap().cause().unwrap();
    assert!(cause.contains("ALPN"), "{cause}");

    // Naming one of the server's protocols is enough.
    let mut h2 = (*tls::dangerous_insecure_client_config()).clone();
    h2.alpn_protocols = vec![b"h2".to_vec()];
    let client = Peer::builder().config(quic()).tls_client(Arc::new(h2)).build().unwrap();
    let session = within("dial", client.dial(&addr)).await.unwrap();
    assert_eq!(
        within("call", session.call::<_, i64>("/math/add", &[1, 1]).into_future())
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn garbage_datagrams_do_not_disturb_the_listener() {
    let (_server, addr, _) = server().await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for len in [0usize, 1, 20, 1200, 1500] {
        let junk: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        socket.send_to(&junk, &addr).await.unwrap();
    }
    let client = client(&Events::default());
    let session = within("dial", client.dial(&addr)).await.unwrap();
    assert_eq!(
        within("call", session.call::<_, i64>("/math/add", &[2, 2]).into_future())
            .await
            .unwrap(),
        4
    );
}

#[tokio::test]
async fn each_dialed_session_has_an_address_of_its_own() {
    own_stream::each_dialed_session_has_an_address_of_its_own(quic()).await;
}

#[tokio::test]
async fn every_protocol_runs_over_quic() {
    own_stream::every_protocol_runs(quic()).await;
}

#[tokio::test]
async fn a_connection_that_never_opens_its_stream_blocks_no_one_and_is_dropped_when_idle() {
    let pushes = Events::default();
    let server = Peer::builder()
        .config(PeerConfig {
            idle_timeout: Duration::from_millis(300),
            ..quic()
        })
        .router(own_stream::router(pushes))
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();

    // A bare QUIC client: it completes the handshake and then says nothing.
    let mut tls = (*tls::dangerous_insecure_client_config()).clone();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let silent = within(
        "silent handshake",
        endpoint
            .connect_with(
                quinn::ClientConfig::new(Arc::new(crypto)),
                addr.parse().unwrap(),
                "localhost",
            )
            .unwrap(),
    )
    .await
    .unwrap();

    // Others are served meanwhile (Go's sequential accept would wait for the silent one).
    let client = client(&Events::default());
    let session = within("dial", client.dial(&addr)).await.unwrap();
    assert_eq!(
        within("call", session.call::<_, i64>("/math/add", &[3]).into_future())
            .await
            .unwrap(),
        3
    );

    // The listener gives up on the silent connection after idle_timeout.
    let closed = within("the silent connection is closed", silent.closed()).await;
    assert!(
        matches!(closed, quinn::ConnectionError::ApplicationClosed(_)),
        "{closed}"
    );
}
