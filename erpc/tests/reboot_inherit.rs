//! A reboot hands a TCP, a unix, a QUIC and a KCP listener to a new process (this test binary,
//! started again by `erpc::reboot::start_successor`), which takes them by address: the ones on
//! port 0 keep their port, the TCP/unix, QUIC and KCP descriptors do not collide, and once the
//! old process has closed, clients reach the new one on the same addresses.
//!
//! One test in this file: the new process runs the same command line, so it runs this test
//! again, and finds itself in the child's role by the `LISTEN_FDS` it was given.
#![cfg(unix)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use erpc::config::Network;
use erpc::{Peer, PeerConfig, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

/// What the new process saw, sent back to the test.
#[derive(Serialize, Deserialize, Debug)]
struct Inherited {
    pid: u32,
    listen_fds: String,
    listen_quic_fds: String,
    listen_kcp_fds: String,
    /// `SO_TYPE` of fd 3, 4, 5, 6.
    socket_types: Vec<i32>,
    /// What its listeners bound: tcp, unix, quic, kcp.
    bound: Vec<String>,
}

/// The unix socket path of the test process `pid` (the new process derives it from its
/// parent's pid).
fn unix_path(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("erpc-reboot-inherit-{pid}.sock"))
}

fn socket_type(fd: i32) -> i32 {
    let mut kind: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `kind`.
    let done = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&raw mut kind).cast(),
            &raw mut len,
        )
    };
    if done == 0 { kind } else { -1 }
}

/// The peer both processes run: `/pid` says which process answers.
/// `seen` is the new process's report, once all its listeners are up.
fn peer(quit: Option<Arc<Notify>>, seen: Option<watch::Sender<Option<String>>>) -> Peer {
    let mut router = Router::new();
    router.call_at("/pid", |_: u8| async move { Ok(std::process::id()) });
    router.call_at("/inherited", move |_: u8| {
        let seen = seen.clone();
        async move {
            let mut seen = seen.expect("only the new process answers this").subscribe();
            // A call can come in on the first listener before the last one is up.
            let report = seen.wait_for(Option::is_some).await.unwrap().clone().unwrap();
            Ok(report)
        }
    });
    router.call_at("/quit", move |_: u8| {
        let quit = quit.clone();
        async move {
            if let Some(quit) = quit {
                quit.notify_one();
            }
            Ok(())
        }
    });
    Peer::builder()
        .config(PeerConfig {
            shutdown_timeout: Duration::from_secs(2),
            ..PeerConfig::default()
        })
        .router(router)
        .build()
        .unwrap()
}

async fn listen_all(peer: &Peer, unix: &str) -> Vec<String> {
    let raw: Arc<dyn erpc::proto::Proto> = Arc::new(erpc::proto::RawProto);
    vec![
        peer.listen_with(Network::Tcp, "127.0.0.1:0", raw.clone())
            .await
            .unwrap(),
        peer.listen_with(Network::Unix, unix, raw.clone()).await.unwrap(),
        peer.listen_with(Network::Quic, "127.0.0.1:0", raw.clone())
            .await
            .unwrap(),
        peer.listen_with(Network::Kcp, "127.0.0.1:0", raw).await.unwrap(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_unix_quic_and_kcp_listeners_pass_to_a_rebooted_process() {
    if std::env::var_os("LISTEN_FDS").is_some() {
        return new_process().await;
    }
    let unix = unix_path(std::process::id());
    let _ = std::fs::remove_file(&unix);
    let unix = unix.display().to_string();
    let old = peer(None, None);
    let bound = listen_all(&old, &unix).await;

    let child = erpc::reboot::start_successor().expect("the new process starts");
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGKILL) };
        }
    }
    let _kill = Kill(child);
    assert_ne!(child, std::process::id());
    // The old process stops: from now on only the new one can answer on these addresses.
    erpc::reboot::close_every_peer().await;
    assert!(
        std::path::Path::new(&unix).exists(),
        "the unix listener kept its socket file for the new process"
    );

    let mut seen = None;
    let networks = [Network::Tcp, Network::Unix, Network::Quic, Network::Kcp];
    for (network, addr) in networks.into_iter().zip(&bound) {
        let client = Peer::builder()
            .config(PeerConfig {
                network,
                redial_times: 50,
                redial_interval: Duration::from_millis(100),
                ..PeerConfig::default()
            })
            .build()
            .unwrap();
        let session = tokio::time::timeout(Duration::from_secs(15), client.dial(addr))
            .await
            .unwrap_or_else(|_| panic!("dialing {network:?} {addr} took too long"))
            .unwrap_or_else(|s| panic!("{network:?} {addr}: {s}"));
        let pid: u32 = session.call("/pid", &0u8).await.unwrap();
        assert_eq!(pid, child, "{network:?} {addr} is served by the new process");
        if seen.is_none() {
            let json: String = session.call("/inherited", &0u8).await.unwrap();
            seen = Some(serde_json::from_str::<Inherited>(&json).unwrap());
        }
        if network == Network::Kcp {
            let () = session.call("/quit", &0u8).await.unwrap();
        }
    }
    let seen = seen.unwrap();
    assert_eq!(seen.pid, child);
    assert_eq!(
        (
            seen.listen_fds.as_str(),
            seen.listen_quic_fds.as_str(),
            seen.listen_kcp_fds.as_str()
        ),
        ("2", "1", "1")
    );
    // TCP and unix from fd 3, QUIC's UDP socket after them, KCP's last: no descriptor carries
    // two.
    assert_eq!(
        seen.socket_types,
        vec![libc::SOCK_STREAM, libc::SOCK_STREAM, libc::SOCK_DGRAM, libc::SOCK_DGRAM]
    );
    // Port 0 kept the port the old process had.
    assert_eq!(seen.bound, bound);
    let _ = std::fs::remove_file(&unix);
}

/// The new process: listens on the same configured addresses, answers until told to quit
/// (or 30 s pass), then exits.
async fn new_process() {
    let mut seen = Inherited {
        pid: std::process::id(),
        listen_fds: std::env::var("LISTEN_FDS").unwrap_or_default(),
        listen_quic_fds: std::env::var("LISTEN_QUIC_FDS").unwrap_or_default(),
        listen_kcp_fds: std::env::var("LISTEN_KCP_FDS").unwrap_or_default(),
        socket_types: (3..7).map(socket_type).collect(),
        bound: Vec::new(),
    };
    let report = watch::Sender::new(None);
    let quit = Arc::new(Notify::new());
    let peer = peer(Some(quit.clone()), Some(report.clone()));
    let unix = unix_path(std::os::unix::process::parent_id()).display().to_string();
    seen.bound = listen_all(&peer, &unix).await;
    report.send_replace(Some(serde_json::to_string(&seen).unwrap()));
    let _ = tokio::time::timeout(Duration::from_secs(30), quit.notified()).await;
    peer.close().await;
    std::process::exit(0);
}
