//! Listening sockets a process was started with: from a rebooting parent (Go eRPC's
//! contract) or from systemd socket activation. Listeners take them instead of binding.
//!
//! Two sources, told apart by `LISTEN_PID`:
//!
//! - **systemd** (`LISTEN_PID` set): `LISTEN_FDS=n` sockets from fd 3, optionally named by
//!   `LISTEN_FDNAMES` (`a:b:…`). If `LISTEN_PID` is not this process's pid, the variables were
//!   meant for another process (a parent that did not unset them) and are ignored.
//! - **a rebooting parent** (`LISTEN_PID` unset, `LISTEN_FDS` set): `LISTEN_FDS=n` TCP/unix
//!   listeners from fd 3, then `LISTEN_QUIC_FDS=m` UDP sockets of QUIC listeners right after
//!   them, then `LISTEN_KCP_FDS=k` UDP sockets of KCP listeners after those (Go defines that
//!   variable but never passes KCP sockets; erpc does), and `LISTEN_PARENT_ADDRS`, a JSON
//!   object network → host → the parent's actual addresses, so a listener on port 0 gets the
//!   port the parent had.
//!
//! Each socket's kind and address are read from the socket itself, so a listener matches the
//! socket bound to its address (`[::]:p` and `0.0.0.0:p` are the same). A listener with no fixed
//! address (port 0) takes the parent's address for its host, or else the first socket of its
//! kind nobody took. The variables are input like any other: a bad value is an error that says
//! which variable is wrong and what it should hold. Taken sockets are marked close-on-exec, so
//! processes started later do not inherit them by mistake.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use socket2::{SockRef, Type};

/// The first inherited descriptor (after stdin, stdout and stderr).
pub(crate) const FIRST_FD: RawFd = 3;

/// More inherited sockets than this is a mistake, not a configuration.
const MAX_FDS: usize = 1024;

/// `LISTEN_PARENT_ADDRS` longer than this is refused before parsing.
const MAX_PARENT_ADDRS_LEN: usize = 256 * 1024;

/// The variables of both contracts, removed by [`take_from_env`] once read.
pub(crate) const VARIABLES: &[&str] = &[
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "LISTEN_QUIC_FDS",
    "LISTEN_KCP_FDS",
    "LISTEN_PARENT_ADDRS",
];

/// What a listener needs from a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A TCP listener (tcp, tcp4, tcp6, ws, wss).
    Tcp,
    /// A unix stream listener.
    Unix,
    /// The UDP socket of a QUIC listener.
    Udp,
    /// The UDP socket of a KCP listener. A datagram socket does not say which protocol it
    /// served, so KCP's sockets come in a range of their own (`LISTEN_KCP_FDS`, after QUIC's).
    Kcp,
}

impl Kind {
    /// The network key of `LISTEN_PARENT_ADDRS`: what Go's `Addr().Network()` says.
    pub(crate) fn parent_key(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Unix => "unix",
            Kind::Udp => "udp",
            // Not Go's `udp`: a QUIC listener on port 0 must not take a KCP listener's port.
            Kind::Kcp => "kcp",
        }
    }
}

/// The host key of `LISTEN_PARENT_ADDRS` for an address: every unspecified address is `::`
/// (as Go records `0.0.0.0`).
pub(crate) fn parent_host(ip: IpAddr) -> String {
    if ip.is_unspecified() {
        "::".to_string()
    } else {
        ip.to_string()
    }
}

/// The parent's actual addresses: network → host → addresses, in the order it listened.
pub(crate) type ParentAddrs = HashMap<String, HashMap<String, Vec<String>>>;

/// One inherited socket.
struct Inherited {
    fd: OwnedFd,
    kind: Kind,
    at: Bound,
    /// Its `LISTEN_FDNAMES` name (systemd), for messages.
    name: Option<String>,
}

/// Where a socket is bound.
#[derive(Debug, Clone, PartialEq)]
enum Bound {
    Inet(SocketAddr),
    Path(String),
}

/// The sockets not taken yet.
#[derive(Default)]
pub(crate) struct Pool {
    sockets: Vec<Inherited>,
    parent_addrs: ParentAddrs,
}

static POOL: OnceLock<Result<Mutex<Pool>, String>> = OnceLock::new();

/// Set when systemd passed sockets: it keeps them listening while this process stops.
static FROM_SYSTEMD: AtomicBool = AtomicBool::new(false);

/// Whether this process got its sockets from systemd.
pub(crate) fn from_systemd() -> bool {
    FROM_SYSTEMD.load(Ordering::Acquire)
}

/// Takes the sockets the environment describes, once per process; with `remove`, also removes
/// the variables.
///
/// # Safety
///
/// With `remove`: no other thread may read or write the environment at the same time.
pub(crate) unsafe fn take_from_env(remove: bool) -> Result<usize, String> {
    let pool = POOL.get_or_init(|| {
        let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        let taken = Pool::from_env(env, std::process::id()).map(Mutex::new);
        if remove {
            for name in VARIABLES {
                // SAFETY: the caller guarantees that no other thread uses the environment.
                unsafe { std::env::remove_var(name) };
            }
        }
        taken
    });
    match pool {
        Ok(pool) => Ok(lock(pool).sockets.len()),
        Err(why) => Err(why.clone()),
    }
}

fn pool() -> Result<&'static Mutex<Pool>, String> {
    // SAFETY: without `remove`, the environment is only read.
    unsafe { take_from_env(false) }?;
    match POOL.get() {
        Some(Ok(pool)) => Ok(pool),
        Some(Err(why)) => Err(why.clone()),
        None => Err("inherited sockets not initialised".into()),
    }
}

fn lock(pool: &Mutex<Pool>) -> std::sync::MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(|e| e.into_inner())
}

/// The inherited socket for a listener of `kind` on `addrs` (all the addresses its configured
/// address resolves to), if there is one.
pub(crate) fn take_inet(kind: Kind, addrs: &[SocketAddr]) -> Result<Option<OwnedFd>, String> {
    let pool = pool()?;
    let mut pool = lock(pool);
    if pool.sockets.is_empty() {
        return Ok(None);
    }
    Ok(pool.take_inet(kind, addrs))
}

/// The inherited unix listener bound to `path`, if there is one.
pub(crate) fn take_path(path: &str) -> Result<Option<OwnedFd>, String> {
    let pool = pool()?;
    let mut pool = lock(pool);
    let found = pool
        .sockets
        .iter()
        .position(|s| s.kind == Kind::Unix && s.at == Bound::Path(path.to_string()));
    Ok(found.map(|i| pool.sockets.remove(i).fd))
}

impl Pool {
    /// Reads the variables (through `env`) and takes the sockets they name.
    fn from_env(env: impl Fn(&str) -> Option<String>, pid: u32) -> Result<Pool, String> {
        let systemd = match env("LISTEN_PID") {
            None => false,
            Some(value) => {
                let owner: u32 = value.trim().parse().map_err(|_| {
                    format!("LISTEN_PID={value:?} is not a process id (socket activation sets it to the pid of the process it starts)")
                })?;
                if owner != pid {
                    tracing::debug!(
                        listen_pid = owner,
                        pid,
                        "LISTEN_PID names another process: its sockets are not ours"
                    );
                    return Ok(Pool::default());
                }
                true
            }
        };
        let Some(stream_fds) = count(&env, "LISTEN_FDS")? else {
            return Ok(Pool::default());
        };
        let (quic_fds, kcp_fds, parent_addrs) = if systemd {
            (0, 0, ParentAddrs::default())
        } else {
            (
                count(&env, "LISTEN_QUIC_FDS")?.unwrap_or(0),
                count(&env, "LISTEN_KCP_FDS")?.unwrap_or(0),
                parent_addrs(&env)?,
            )
        };
        let total = stream_fds.saturating_add(quic_fds).saturating_add(kcp_fds);
        if total > MAX_FDS {
            return Err(format!(
                "LISTEN_FDS, LISTEN_QUIC_FDS and LISTEN_KCP_FDS name {total} sockets; more than {MAX_FDS} is not supported"
            ));
        }
        let names: Vec<String> = match env("LISTEN_FDNAMES") {
            Some(names) if systemd => names.split(':').map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let mut sockets = Vec::with_capacity(total);
        for i in 0..total {
            let fd = FIRST_FD + i as RawFd;
            let name = names.get(i).filter(|n| !n.is_empty()).cloned();
            let (var, datagrams) = if i < stream_fds {
                // systemd's datagram sockets serve QUIC, the UDP protocol TLS-configured
                // deployments put behind socket activation.
                ("LISTEN_FDS", Kind::Udp)
            } else if i < stream_fds + quic_fds {
                ("LISTEN_QUIC_FDS", Kind::Udp)
            } else {
                ("LISTEN_KCP_FDS", Kind::Kcp)
            };
            sockets.push(adopt(fd, name, datagrams).map_err(|why| {
                format!("inherited fd {fd} ({var}): {why}; the process that started this one must pass listening sockets from fd {FIRST_FD}")
            })?);
        }
        let datagram_sockets = sockets
            .iter()
            .filter(|s| matches!(s.kind, Kind::Udp | Kind::Kcp))
            .count();
        if !systemd && datagram_sockets != quic_fds + kcp_fds {
            tracing::warn!(
                expected = quic_fds + kcp_fds,
                found = datagram_sockets,
                "LISTEN_QUIC_FDS and LISTEN_KCP_FDS do not match the UDP sockets inherited; each socket is used by its kind"
            );
        }
        tracing::info!(
            sockets = sockets.len(),
            source = if systemd { "systemd" } else { "parent" },
            "inherited listening sockets"
        );
        Ok(Pool { sockets, parent_addrs })
    }

    fn take_inet(&mut self, kind: Kind, addrs: &[SocketAddr]) -> Option<OwnedFd> {
        let fixed: Vec<SocketAddr> = addrs.iter().copied().filter(|a| a.port() != 0).collect();
        let wanted = if !fixed.is_empty() {
            fixed
        } else {
            // Port 0: the address the parent had for this host, so the port stays.
            let parent = addrs.iter().find_map(|a| {
                self.parent_addrs
                    .get_mut(kind.parent_key())?
                    .get_mut(&parent_host(a.ip()))
                    .filter(|list| !list.is_empty())
                    .map(|list| list.remove(0))
            });
            match parent.and_then(|a| a.parse::<SocketAddr>().ok()) {
                Some(addr) => vec![addr],
                // No address to match: the first socket of the kind, taken as given.
                None => {
                    let i = self.sockets.iter().position(|s| s.kind == kind)?;
                    let socket = self.sockets.remove(i);
                    tracing::debug!(at = ?socket.at, name = ?socket.name, "listening on an inherited socket as given");
                    return Some(socket.fd);
                }
            }
        };
        let i = self.sockets.iter().position(|s| {
            s.kind == kind && matches!(s.at, Bound::Inet(at) if wanted.iter().any(|w| same_addr(at, *w)))
        })?;
        Some(self.sockets.remove(i).fd)
    }
}

/// Same port, and the same IP or both unspecified (`[::]:p` listens where `0.0.0.0:p` does).
fn same_addr(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || (a.ip().is_unspecified() && b.ip().is_unspecified()))
}

/// A count variable: unset is `None`, anything but a number is an error.
fn count(env: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<usize>, String> {
    match env(name) {
        None => Ok(None),
        Some(value) => value
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| format!("{name}={value:?} is not a number of file descriptors")),
    }
}

fn parent_addrs(env: &impl Fn(&str) -> Option<String>) -> Result<ParentAddrs, String> {
    let Some(json) = env("LISTEN_PARENT_ADDRS") else {
        return Ok(ParentAddrs::default());
    };
    if json.len() > MAX_PARENT_ADDRS_LEN {
        return Err(format!(
            "LISTEN_PARENT_ADDRS is {} bytes long; at most {MAX_PARENT_ADDRS_LEN} are accepted",
            json.len()
        ));
    }
    serde_json::from_str(&json).map_err(|e| {
        format!(
            "LISTEN_PARENT_ADDRS is not a JSON object network → host → addresses (like {{\"tcp\":{{\"::\":[\"[::]:9090\"]}}}}): {e}"
        )
    })
}

/// Takes ownership of inherited `fd`, after checking it is an open socket of a kind listeners
/// use; marks it close-on-exec. A datagram socket is of kind `datagrams` (the range it came
/// in says which protocol it served).
fn adopt(fd: RawFd, name: Option<String>, datagrams: Kind) -> Result<Inherited, String> {
    // SAFETY: F_GETFD only asks whether the descriptor is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!("not open: {}", io::Error::last_os_error()));
    }
    // SAFETY: the descriptor is open and was passed to this process for it to own; nothing
    // else in the process uses inherited descriptors.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let socket = SockRef::from(&fd);
    let kind_of = socket.r#type().map_err(|e| format!("not a socket ({e})"))?;
    let local = socket.local_addr().map_err(|e| format!("no local address ({e})"))?;
    let at = match (local.as_socket(), local.as_pathname()) {
        (Some(addr), _) => Bound::Inet(addr),
        (None, Some(path)) => Bound::Path(path.display().to_string()),
        (None, None) => return Err("neither an IP socket nor a unix socket bound to a path".into()),
    };
    let kind = match (kind_of, &at) {
        (Type::STREAM, Bound::Inet(_)) => Kind::Tcp,
        (Type::STREAM, Bound::Path(_)) => Kind::Unix,
        (Type::DGRAM, Bound::Inet(_)) => datagrams,
        _ => return Err(format!("a {kind_of:?} socket at {at:?}, which no listener uses")),
    };
    socket
        .set_cloexec(true)
        .map_err(|e| format!("cannot mark it close-on-exec: {e}"))?;
    Ok(Inherited { fd, kind, at, name })
}

/// Takes an inherited descriptor as a listener of the standard library.
pub(crate) fn into_std<T: From<OwnedFd>>(fd: OwnedFd) -> io::Result<T> {
    SockRef::from(&fd).set_nonblocking(true)?;
    Ok(T::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn another_process_s_variables_are_ignored() {
        let pool = Pool::from_env(env(&[("LISTEN_PID", "1"), ("LISTEN_FDS", "3")]), 2).unwrap();
        assert!(pool.sockets.is_empty());
    }

    #[test]
    fn bad_values_say_which_variable_is_wrong() {
        let err = |vars: &[(&str, &str)]| Pool::from_env(env(vars), 7).err().unwrap();
        assert!(err(&[("LISTEN_PID", "x")]).starts_with("LISTEN_PID=\"x\""));
        assert!(err(&[("LISTEN_FDS", "-1")]).starts_with("LISTEN_FDS=\"-1\""));
        assert!(err(&[("LISTEN_FDS", "0"), ("LISTEN_QUIC_FDS", "two")]).starts_with("LISTEN_QUIC_FDS="));
        assert!(err(&[("LISTEN_FDS", "0"), ("LISTEN_KCP_FDS", "-2")]).starts_with("LISTEN_KCP_FDS="));
        assert!(err(&[("LISTEN_FDS", "1"), ("LISTEN_KCP_FDS", "2000")]).contains("more than 1024"));
        assert!(err(&[("LISTEN_FDS", "0"), ("LISTEN_PARENT_ADDRS", "[1]")]).starts_with("LISTEN_PARENT_ADDRS is not"));
        assert!(err(&[("LISTEN_FDS", "100000")]).contains("more than 1024"));
    }

    #[test]
    fn a_descriptor_that_is_not_open_is_an_error() {
        // Far above anything a test process has open.
        let why = adopt(900_000, None, Kind::Udp).err().unwrap();
        assert!(why.starts_with("not open"), "{why}");
    }

    #[test]
    fn port_zero_takes_the_parent_s_address_for_its_host() {
        let mut pool = Pool::default();
        pool.parent_addrs
            .entry("tcp".into())
            .or_default()
            .insert("::".into(), vec!["[::]:4242".into()]);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        pool.sockets.push(Inherited {
            fd: OwnedFd::from(listener),
            kind: Kind::Tcp,
            at: Bound::Inet(SocketAddr::from(([0, 0, 0, 0], 4242))),
            name: None,
        });
        // `0.0.0.0:0` is host `::` in the parent's record; `[::]:4242` matches `0.0.0.0:4242`.
        assert!(pool.take_inet(Kind::Tcp, &["0.0.0.0:0".parse().unwrap()]).is_some());
        assert!(pool.sockets.is_empty());
        assert!(pool.take_inet(Kind::Tcp, &["0.0.0.0:0".parse().unwrap()]).is_none());
    }

    #[test]
    fn unspecified_addresses_of_both_families_are_the_same() {
        assert!(same_addr("[::]:80".parse().unwrap(), "0.0.0.0:80".parse().unwrap()));
        assert!(!same_addr("[::]:80".parse().unwrap(), "0.0.0.0:81".parse().unwrap()));
        assert!(!same_addr(
            "127.0.0.1:80".parse().unwrap(),
            "0.0.0.0:80".parse().unwrap()
        ));
    }
}
