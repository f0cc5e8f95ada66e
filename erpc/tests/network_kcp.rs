//! The KCP network (extensions.md §10, kcp.md): sessions over UDP with kcp-go's FEC framing,
//! every protocol and TLS over them, restarts, graceful close, hostile datagrams and loss, over
//! loopback.

mod common;
#[path = "common/own_stream.rs"]
mod own_stream;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Events, wait_until, within};
use erpc::Code;
use erpc::config::Network;
use erpc::net::kcp::KcpEndpoint;
use erpc::net::tls;
use erpc::{Peer, PeerConfig, Raw};
use own_stream::{DialStarts, add};
use tokio::net::UdpSocket;

fn kcp() -> PeerConfig {
    PeerConfig {
        network: Network::Kcp,
        ..PeerConfig::default()
    }
}

async fn server_with(builder: erpc::PeerBuilder, config: PeerConfig, addr: &str) -> (Peer, String, Events) {
    own_stream::server_with(builder, config, addr).await
}

async fn server() -> (Peer, String, Events) {
    server_with(Peer::builder(), kcp(), "127.0.0.1:0").await
}

fn client(pushes: &Events) -> Peer {
    own_stream::client(kcp(), pushes)
}

#[tokio::test]
async fn calls_errors_and_a_large_body_travel_over_kcp() {
    let (server, addr, _) = server().await;
    let client = client(&Events::default());
    let session = within("dial", client.dial(&addr)).await.unwrap();
    assert_eq!(add(&session, &[1, 2, 3]).await, 6);
    assert_eq!(server.count_sessions(), 1);

    own_stream::an_error_and_a_large_body(&session).await;
}

#[tokio::test]
async fn pushes_go_both_ways() {
    own_stream::pushes_go_both_ways(kcp()).await;
}

#[tokio::test]
async fn graceful_close_lets_a_running_handler_answer_and_frees_the_port() {
    let (_client, session, addr) = own_stream::a_running_handler_answers_a_graceful_close(kcp()).await;
    // close() has let go of the UDP port.
    drop(UdpSocket::bind(&addr).await.expect("the port is free after close"));

    // KCP says nothing when a session ends: the client learns it when its next datagram is
    // refused (its socket is connected, so the ICMP "port unreachable" reaches it).
    let err = within(
        "call to a closed server",
        session.call::<_, i64>("/math/add", &[1]).into_future(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::CONN_CLOSED, "{err}");
}

#[tokio::test]
async fn a_client_redials_when_the_server_restarts_on_the_same_port() {
    let (server, addr, _) = server().await;
    let dials = Events::default();
    let client = Peer::builder()
        .config(PeerConfig {
            redial_times: -1,
            redial_interval: Duration::from_millis(20),
            ..kcp()
        })
        .plugin(DialStarts(dials.clone()))
        .build()
        .unwrap();
    let session = within("dial", client.dial(&addr)).await.unwrap();
    let first_id = session.id().to_string();
    assert_eq!(add(&session, &[1, 2]).await, 3);

    within("server close", server.close()).await;
    drop(server);
    let err = within(
        "call while the server is down",
        session.call::<_, i64>("/math/add", &[1]).into_future(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::CONN_CLOSED, "{err}");
    within("the client redials", dials.wait_len(2)).await;

    let (_server, _, _) = server_with(Peer::builder(), kcp(), &addr).await;
    assert_eq!(add(&session, &[2, 3]).await, 5);
    // A default id is the local address, which a redial's new socket changes (as Go).
    assert_ne!(session.id().to_string(), first_id);
}

#[tokio::test]
async fn each_dialed_session_has_an_address_of_its_own() {
    own_stream::each_dialed_session_has_an_address_of_its_own(kcp()).await;
}

#[tokio::test]
async fn every_protocol_runs_over_kcp() {
    own_stream::every_protocol_runs(kcp()).await;
}

#[tokio::test]
async fn tls_runs_inside_the_kcp_stream_and_udp4_keeps_to_ipv4() {
    let (cert, key) = tls::self_signed_cert_pem(&["localhost"]).unwrap();
    let dir = std::env::temp_dir().join(format!("erpc-kcp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let server_tls = tls::server_config_from_pem_files(&cert_path, &key_path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let udp4 = PeerConfig {
        network: Network::Udp4,
        ..PeerConfig::default()
    };
    let (_server, addr, _) = server_with(Peer::builder().tls_server(server_tls), udp4.clone(), ":0").await;
    assert!(addr.starts_with("0.0.0.0:"), "{addr}");
    let port = addr.rsplit_once(':').unwrap().1;

    let pinned = tls::client_config_with_roots_pem(cert.as_bytes()).unwrap();
    let client = Peer::builder().config(udp4.clone()).tls_client(pinned).build().unwrap();
    let session = within("dial", client.dial(&format!("localhost:{port}"))).await.unwrap();
    assert_eq!(add(&session, &[4, 5]).await, 9);

    // Without TLS the server refuses the stream (the TLS handshake fails), as Go's would.
    let plain = Peer::builder()
        .config(PeerConfig {
            call_timeout: Duration::from_millis(500),
            ..udp4
        })
        .build()
        .unwrap();
    let session = within("dial", plain.dial(&format!("127.0.0.1:{port}"))).await.unwrap();
    assert!(session.call::<_, i64>("/math/add", &[1]).await.is_err());
}

/// A data datagram of conversation `conv`: FEC header, then `kcp` as the KCP bytes.
fn fec_data(seqid: u32, kcp: &[u8]) -> Vec<u8> {
    let mut d = seqid.to_le_bytes().to_vec();
    d.extend_from_slice(&0xf1u16.to_le_bytes());
    d.extend_from_slice(&((kcp.len() + 2) as u16).to_le_bytes());
    d.extend_from_slice(kcp);
    d
}

/// A KCP segment header: conv, cmd, frg, wnd, ts, sn, una, len.
fn segment(conv: u32, cmd: u8, sn: u32, len: u32) -> Vec<u8> {
    let mut s = conv.to_le_bytes().to_vec();
    s.extend_from_slice(&[cmd, 0, 32, 0]);
    s.extend_from_slice(&0u32.to_le_bytes());
    s.extend_from_slice(&sn.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    s.extend_from_slice(&len.to_le_bytes());
    s
}

#[tokio::test]
async fn hostile_datagrams_open_nothing_they_should_not_and_break_nothing() {
    let (server, addr, _) = server().await;
    let junk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Nothing here carries a conversation: too short, truncated FEC headers, parity first.
    let mut no_conv: Vec<Vec<u8>> = (0..24).map(|len| vec![0xf1; len]).collect();
    no_conv.push(vec![0, 0, 0, 0, 0xf1, 0]);
    no_conv.push(vec![0, 0, 0, 0, 0xf1, 0, 0xff, 0xff]);
    no_conv.push(fec_data(0, &[1, 2, 3])[..11].to_vec());
    for seqid in 10..13u32 {
        let mut parity = seqid.to_le_bytes().to_vec();
        parity.extend_from_slice(&[0xf2, 0]);
        parity.extend_from_slice(&[0xab; 1394]);
        no_conv.push(parity);
    }
    for d in &no_conv {
        junk.send_to(d, &addr).await.unwrap();
    }
    // Datagrams are handled in order: once the marker's session is there, none of the above
    // opened one.
    let marker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    marker
        .send_to(&fec_data(0, &segment(9, 82, 0, 0)), &addr)
        .await
        .unwrap();
    wait_until(common::WAIT, || server.count_sessions() == 1).await;

    // Conversations with lies in them: huge declared lengths, unknown commands, a PUSH longer
    // than its datagram, oversized datagrams, random bytes.
    let liars = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut lies = vec![
        fec_data(0, &segment(7, 81, 0, u32::MAX)),
        fec_data(1, &[segment(7, 81, 0, 1000), vec![1; 10]].concat()),
        fec_data(2, &segment(7, 99, 0, 0)),
        fec_data(3, &segment(7, 81, u32::MAX, 0)),
        fec_data(4, &segment(7, 82, 0x8000_0000, 0)),
        segment(7, 81, 0x7fff_ffff, 4),
        vec![0x5a; 3000],
    ];
    lies.extend((0..50u32).map(|i| (0..(24 + i * 29) as usize).map(|j| (j as u32 * 31 + i) as u8).collect()));
    for d in &lies {
        liars.send_to(d, &addr).await.unwrap();
    }

    let client = client(&Events::default());
    let session = within("dial", client.dial(&addr)).await.unwrap();
    assert_eq!(add(&session, &[2, 2]).await, 4);
}

#[tokio::test]
async fn a_flood_of_fake_conversations_does_not_stop_a_real_client() {
    let (_server, addr, _) = server().await;
    // One address churning through conversations (each with sn 0 replaces the last), and many
    // addresses each opening one.
    let churn = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for conv in 0..500u32 {
        churn
            .send_to(&fec_data(conv, &segment(conv, 82, 0, 0)), &addr)
            .await
            .unwrap();
    }
    let mut fakes = Vec::new();
    for conv in 0..300u32 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket
            .send_to(&fec_data(0, &segment(conv, 81, 0, 0)), &addr)
            .await
            .unwrap();
        fakes.push(socket);
    }
    let client = client(&Events::default());
    let session = within("dial", client.dial(&addr)).await.unwrap();
    assert_eq!(add(&session, &[3, 4]).await, 7);
}

#[tokio::test]
async fn an_accepted_session_whose_client_vanished_ends_by_the_idle_timeout() {
    let config = PeerConfig {
        idle_timeout: Duration::from_millis(300),
        ..kcp()
    };
    let (server, addr, _) = server_with(Peer::builder(), config, "127.0.0.1:0").await;
    let ghost = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ghost
        .send_to(&fec_data(0, &segment(42, 82, 0, 0)), &addr)
        .await
        .unwrap();
    wait_until(common::WAIT, || server.count_sessions() == 1).await;
    wait_until(common::WAIT, || server.count_sessions() == 0).await;
}

/// A KCP conversation driven by hand from a plain UDP socket: a Go-style peer.
#[tokio::test]
async fn a_hand_driven_kcp_endpoint_talks_to_the_listener() {
    let (_server, addr, _) = server().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(&addr).await.unwrap();
    let start = tokio::time::Instant::now();
    let now = || start.elapsed().as_millis() as u32;
    let mut endpoint = KcpEndpoint::new(0xdead_beef, now());
    // The worked example's CALL (kcp.md §6), `/math/add` with `[1,2,3]`.
    let call = ::hex::decode(
        "0000003100013101092f6d6174682f61646400066\
         36f64653d30000d617574686f723d616e64657961\
         6a5b312c322c335d"
            .replace(char::is_whitespace, ""),
    )
    .unwrap();
    assert_eq!(endpoint.send(&call, now()), 49);
    let mut reply = bytes::BytesMut::new();
    let mut buf = vec![0u8; 1500];
    within("the reply", async {
        loop {
            for d in endpoint.take_datagrams() {
                socket.send(&d).await.unwrap();
            }
            if reply.len() >= 21 {
                break;
            }
            let wait = Duration::from_millis(u64::from(endpoint.tick(now()).max(1)));
            if let Ok(Ok(n)) = tokio::time::timeout(wait, socket.recv(&mut buf)).await {
                endpoint.input(&buf[..n], now());
                endpoint.recv(&mut reply, 4096);
            }
        }
    })
    .await;
    // REPLY seq 1, codec json, body `6`.
    assert_eq!(&reply[..4], [0, 0, 0, 21]);
    assert_eq!(&reply[reply.len() - 2..], b"j6");
}

/// Forwards datagrams between a client and a server, dropping every `nth` in each direction.
async fn lossy_shim(server: SocketAddr, nth: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    back.connect(server).await.unwrap();
    let front_addr = front.local_addr().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    {
        let (front, back, dropped, client) = (front.clone(), back.clone(), dropped.clone(), client.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut count = 0;
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                *client.lock().unwrap() = Some(from);
                count += 1;
                if count % nth == 0 {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let _ = back.send(&buf[..n]).await;
            }
        });
    }
    {
        let dropped = dropped.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut count = 0;
            while let Ok(n) = back.recv(&mut buf).await {
                count += 1;
                if count % nth == 0 {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let to = *client.lock().unwrap();
                if let Some(to) = to {
                    let _ = front.send_to(&buf[..n], to).await;
                }
            }
        });
    }
    (front_addr, dropped)
}

#[tokio::test]
async fn calls_get_through_when_every_seventh_datagram_is_lost() {
    let (_server, addr, _) = server().await;
    let (shim, dropped) = lossy_shim(addr.parse().unwrap(), 7).await;
    let client = client(&Events::default());
    let session = within("dial", client.dial(&shim.to_string())).await.unwrap();
    let body: Vec<u8> = (0..100_000).map(|i| (i % 253) as u8).collect();
    let lossy = async {
        for i in 0..20 {
            assert_eq!(session.call::<_, i64>("/math/add", &[i, 1]).await.unwrap(), i + 1);
        }
        let back: Raw = session.call("/echo/raw", &Raw(body.clone().into())).await.unwrap();
        assert!(back.0 == body, "the body comes back unchanged");
    };
    // 1–5 s here: FEC rebuilds most losses, fast resend most others; a loss at the end of a
    // message waits for its timeout, which doubles when the resend is lost too.
    tokio::time::timeout(Duration::from_secs(20), lossy)
        .await
        .expect("calls over a lossy path finish within 20 s");
    assert!(dropped.load(Ordering::Relaxed) > 10, "the shim did drop datagrams");
}
