//! The peer's TLS certificate chain on the session: mutual TLS over every transport that
//! carries TLS (tcp, wss, QUIC, KCP), and none without TLS.

use std::sync::Arc;
use std::time::Duration;

use erpc::config::Network;
use erpc::proto::RawProto;
use erpc::{CallCtx, Peer, PeerConfig, Router, Status};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A CA, a server certificate for `localhost`/`127.0.0.1` and a client certificate whose
/// subject is `CN=alice`, all issued by the CA; configs that require and present them.
struct Pki {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    server_cert: CertificateDer<'static>,
    client_cert: CertificateDer<'static>,
}

fn pki() -> Pki {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "test ca");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let issue = |names: &[&str], cn: &str| {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert.der().clone(), PrivateKeyDer::Pkcs8(key.serialize_der().into()))
    };
    let (server_cert, server_key) = issue(&["localhost", "127.0.0.1"], "server");
    let (client_cert, client_key) = issue(&["client.test"], "alice");

    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let roots = Arc::new(roots);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .unwrap();
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_cert.clone()], server_key)
        .unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![client_cert.clone()], client_key)
        .unwrap();
    Pki {
        server: Arc::new(server),
        client: Arc::new(client),
        server_cert,
        client_cert,
    }
}

/// `/who`: the caller's certificate as the handler sees it, `CN=alice` found in its subject
/// and its DER in hex; `none` without one.
fn router() -> Router {
    let mut router = Router::new();
    router.call_at("/who", |ctx: CallCtx, _: ()| async move {
        let Some(chain) = ctx.peer_certificates() else {
            return Ok::<_, Status>("none".to_string());
        };
        assert!(
            ctx.session()
                .peer_certificates()
                .is_some_and(|c| Arc::ptr_eq(&c, &chain))
        );
        let leaf: &[u8] = chain[0].as_ref();
        let cn = if leaf.windows(5).any(|w| w == b"alice") {
            "alice"
        } else {
            "?"
        };
        Ok(format!("{cn} {}", hex::encode(leaf)))
    });
    router
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 20s"))
}

async fn mutual_tls_over(network: Network) {
    let pki = pki();
    let config = PeerConfig {
        network,
        ..PeerConfig::default()
    };
    let server = Peer::builder()
        .config(config.clone())
        .router(router())
        .tls_server(pki.server.clone())
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder()
        .config(config)
        .tls_client(pki.client.clone())
        .build()
        .unwrap();
    let session = within("dial", client.dial(&addr)).await.unwrap();

    let seen: String = within("call", session.call("/who", &()).into_future()).await.unwrap();
    assert_eq!(
        seen,
        format!("alice {}", hex::encode(pki.client_cert.as_ref())),
        "{network:?}"
    );
    // And the client sees the server's chain.
    let chain = session.peer_certificates().expect("the server's chain");
    assert_eq!(chain[0], pki.server_cert, "{network:?}");
    client.close().await;
    server.close().await;
}

#[tokio::test]
async fn a_handler_reads_the_client_certificate_over_tls_on_tcp() {
    mutual_tls_over(Network::Tcp).await;
}

#[tokio::test]
async fn a_handler_reads_the_client_certificate_over_wss() {
    mutual_tls_over(Network::Wss).await;
}

#[tokio::test]
async fn a_handler_reads_the_client_certificate_over_quic() {
    mutual_tls_over(Network::Quic).await;
}

#[tokio::test]
async fn a_handler_reads_the_client_certificate_over_tls_on_kcp() {
    mutual_tls_over(Network::Kcp).await;
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_by_a_server_that_requires_one() {
    let pki = pki();
    let server = Peer::builder()
        .router(router())
        .tls_server(pki.server.clone())
        .build()
        .unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    // Any server certificate is accepted; the client has none of its own to show.
    let client = Peer::builder()
        .tls_client(erpc::net::tls::dangerous_insecure_client_config())
        .build()
        .unwrap();
    // TLS 1.3 reports the missing certificate after the client's handshake: either the dial
    // or the first call fails.
    let failed = match within("dial", client.dial(&addr)).await {
        Err(_) => true,
        Ok(session) => within("call", session.call::<_, String>("/who", &()).into_future())
            .await
            .is_err(),
    };
    assert!(failed, "a client without a certificate got through");
    server.close().await;
}

#[tokio::test]
async fn a_session_without_tls_has_no_peer_certificates() {
    let server = Peer::builder().router(router()).build().unwrap();
    let addr = server
        .listen_with(Network::Tcp, "127.0.0.1:0", Arc::new(RawProto))
        .await
        .unwrap();
    let client = Peer::builder().build().unwrap();
    let session = within("dial", client.dial(&addr)).await.unwrap();
    assert!(session.peer_certificates().is_none());
    let seen: String = within("call", session.call("/who", &()).into_future()).await.unwrap();
    assert_eq!(seen, "none");
    client.close().await;
    server.close().await;
}
