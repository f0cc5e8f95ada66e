//! The listening sockets of this process that a reboot hands to the new process: every live
//! listener of every peer registers here while it accepts.
//!
//! A registration holds a duplicate of the listener's descriptor (close-on-exec), dropped when
//! the listener stops, so a closed listener frees its port as before. A reboot takes a
//! [`snapshot`] and passes the sockets in the order of the contract (`net::inherit`): TCP and
//! unix listeners from fd 3 (`LISTEN_FDS`), then the UDP sockets of QUIC listeners
//! (`LISTEN_QUIC_FDS`), then those of KCP listeners (`LISTEN_KCP_FDS`; Go defines that
//! variable but never passes KCP sockets).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use super::inherit::{Kind, ParentAddrs, parent_host};

struct Entry {
    id: u64,
    kind: Kind,
    addr: String,
    fd: OwnedFd,
}

static LIVE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Set once a new process has the sockets: unix listeners then leave their socket file.
static HANDED_OVER: AtomicBool = AtomicBool::new(false);
/// The working directory when the first listener started (the new process starts there).
static START_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

fn live() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A listener's place in the hand-over; dropping it takes the listener out.
pub(crate) struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        live().retain(|e| e.id != self.0);
    }
}

/// Registers a listening socket of `kind` bound at `addr` (its actual address).
pub(crate) fn register(kind: Kind, addr: &str, socket: BorrowedFd<'_>) -> io::Result<Registration> {
    START_DIR.get_or_init(|| std::env::current_dir().ok());
    let fd = socket.try_clone_to_owned()?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    live().push(Entry {
        id,
        kind,
        addr: addr.to_string(),
        fd,
    });
    Ok(Registration(id))
}

/// Whether the sockets were handed to a new process (so a unix listener must not remove its
/// socket file when it stops).
pub(crate) fn handed_over() -> bool {
    HANDED_OVER.load(Ordering::Acquire)
}

/// Whether the listening sockets outlive this process's listeners: handed to a rebooted
/// process, or held by systemd (socket activation).
pub(crate) fn successor_listens() -> bool {
    handed_over() || super::inherit::from_systemd()
}

/// Records that a new process has the sockets.
pub(crate) fn mark_handed_over() {
    HANDED_OVER.store(true, Ordering::Release);
}

/// The working directory the process had when its first listener started.
pub(crate) fn start_dir() -> Option<PathBuf> {
    START_DIR.get().cloned().flatten()
}

/// The sockets to pass, in descriptor order, and the variables that describe them.
pub(crate) struct Snapshot {
    /// Descriptors for fd 3, 4, … in this order (duplicates owned by the snapshot).
    pub(crate) fds: Vec<OwnedFd>,
    /// `LISTEN_FDS`, `LISTEN_QUIC_FDS`, `LISTEN_KCP_FDS`, `LISTEN_PARENT_ADDRS`.
    pub(crate) vars: Vec<(&'static str, String)>,
}

/// The live listeners now: TCP and unix first, then QUIC's UDP sockets (unlike Go, whose QUIC
/// sockets also start at fd 3 and so collide with TCP ones), then KCP's.
pub(crate) fn snapshot() -> io::Result<Snapshot> {
    let live = live();
    let mut fds = Vec::with_capacity(live.len());
    let mut parent_addrs = ParentAddrs::default();
    let mut counts = [0usize; 3];
    for (slot, kinds) in [
        [Kind::Tcp, Kind::Unix].as_slice(),
        [Kind::Udp].as_slice(),
        [Kind::Kcp].as_slice(),
    ]
    .into_iter()
    .enumerate()
    {
        for entry in live.iter().filter(|e| kinds.contains(&e.kind)) {
            fds.push(entry.fd.as_fd().try_clone_to_owned()?);
            counts[slot] += 1;
            let host = match entry.addr.parse::<std::net::SocketAddr>() {
                Ok(addr) => parent_host(addr.ip()),
                Err(_) => entry.addr.clone(), // a unix path
            };
            parent_addrs
                .entry(entry.kind.parent_key().to_string())
                .or_default()
                .entry(host)
                .or_default()
                .push(entry.addr.clone());
        }
    }
    let parent_addrs = serde_json::to_string(&parent_addrs).map_err(io::Error::other)?;
    Ok(Snapshot {
        fds,
        vars: vec![
            ("LISTEN_FDS", counts[0].to_string()),
            ("LISTEN_QUIC_FDS", counts[1].to_string()),
            ("LISTEN_KCP_FDS", counts[2].to_string()),
            ("LISTEN_PARENT_ADDRS", parent_addrs),
        ],
    })
}
