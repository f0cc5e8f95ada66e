//! The unixpacket network (SOCK_SEQPACKET, Linux): every protocol end to end, one eRPC frame
//! per datagram, and hostile datagrams that must close only their own session.
#![cfg(target_os = "linux")]

mod common;
#[path = "common/net_e2e.rs"]
mod net_e2e;

use common::{WAIT, within};
use erpc::config::Network;
use erpc::proto;
use erpc::{Peer, PeerBuilder, PeerConfig};

fn socket_path(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("erpc-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_str().unwrap().to_string()
}

fn peer(proto: &str) -> PeerBuilder {
    Peer::builder()
        .config(PeerConfig {
            network: Network::Unixpacket,
            ..PeerConfig::default()
        })
        .proto(proto::by_name(proto).unwrap())
}

#[tokio::test]
async fn every_protocol_rides_unixpacket() {
    for name in ["raw", "json", "pb", "thrift", "ws-json", "ws-pb"] {
        let path = socket_path(&format!("seqpacket-{name}"));
        net_e2e::exchange(peer(name), &path, peer(name), str::to_string, true).await;
        assert!(
            !std::path::Path::new(&path).exists(),
            "the socket file is removed on close"
        );
    }
}

/// A raw seqpacket client socket.
fn raw_client(path: &str) -> socket2::Socket {
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::SEQPACKET, None).unwrap();
    socket.connect(&socket2::SockAddr::unix(path).unwrap()).unwrap();
    socket
}

/// Waits until the server ends the connection.
async fn ends(socket: socket2::Socket) {
    within(
        "the server to end the connection",
        tokio::task::spawn_blocking(move || {
            socket.set_read_timeout(Some(WAIT)).unwrap();
            let mut buf = [std::mem::MaybeUninit::new(0u8); 64];
            loop {
                match socket.recv(&mut buf) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) => panic!("no end of connection: {e}"),
                }
            }
        }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn bad_datagrams_close_only_their_own_session() {
    let path = socket_path("seqpacket-hostile");
    let server = peer("raw")
        .config(PeerConfig {
            network: Network::Unixpacket,
            max_message_size: 64 * 1024,
            ..PeerConfig::default()
        })
        .router(net_e2e::router().0)
        .build()
        .unwrap();
    server.listen_on(&path).await.unwrap();
    let client = peer("raw").build().unwrap();
    let good = within("the dial", client.dial(&path)).await.unwrap();
    for (what, datagram) in [
        ("garbage", b"\x00\x00\x00\x09 not a raw frame".to_vec()),
        (
            "a frame declaring more than the limit",
            (1u32 << 30).to_be_bytes().to_vec(),
        ),
        ("a datagram over the limit", vec![0; 100 * 1024]),
    ] {
        let socket = raw_client(&path);
        socket.send(&datagram).unwrap();
        ends(socket).await;
        let sum: i64 = within(what, good.call("/math/add", &[1, 1])).await.unwrap();
        assert_eq!(sum, 2, "after {what}");
    }
    common::wait_until(WAIT, || server.count_sessions() == 1).await;
}

#[tokio::test]
async fn tls_rides_unixpacket_as_go_does_it() {
    // TLS over a seqpacket socket sees its datagrams as one byte stream (each TLS write is a
    // datagram), as Go's tls.Conn over a unixpacket conn does.
    let path = socket_path("seqpacket-tls");
    let server = peer("raw").tls_server(erpc::net::tls::self_signed_server_config(&["localhost"]).unwrap());
    let client = peer("raw").tls_client(erpc::net::tls::dangerous_insecure_client_config());
    net_e2e::exchange(server, &path, client, str::to_string, true).await;
}
