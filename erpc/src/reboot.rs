//! Zero-downtime restarts: [`reboot`] hands every listener of the process to a new process
//! running the same program, then closes this process's peers gracefully; and
//! [`take_listen_env`] takes the sockets a process was started with (from a rebooting parent
//! or from systemd socket activation).
//!
//! The new process is started like Go eRPC's, so the same supervisor
//! scripts work: the same executable ([`std::env::current_exe`]), arguments, working directory
//! (the one the first listener started in) and environment, plus
//!
//! - `LISTEN_FDS=n`: the TCP and unix listeners, at fd 3 … 3+n−1;
//! - `LISTEN_QUIC_FDS=m`: the UDP sockets of QUIC listeners, **right after them** (Go starts
//!   them at fd 3 as well, so with both kinds its descriptors collide; a process here gets
//!   each socket once, and tells the kinds apart by the sockets themselves);
//! - `LISTEN_PARENT_ADDRS`: JSON, network → host → actual addresses
//!   (`{"tcp":{"::":["[::]:54321"]}}`), so a listener on port 0 keeps its port;
//! - `LISTEN_PID` and `LISTEN_FDNAMES` removed (they are systemd's).
//!
//! Only the passed descriptors lose close-on-exec, and only in the new process. A peer there
//! listening on an address takes the inherited socket bound to it instead of binding, so
//! connections queued in the listen backlog are not lost: both processes hold one socket while
//! the old one stops accepting. The old process's sessions close gracefully: each first asks
//! its client to move (GOAWAY, [`crate::session::goaway`]), so a client with redial on moves to
//! the new process without a failed call.
//!
//! Unlike Go: the old process does not send SIGTERM to its parent (which, started from a shell,
//! is the shell), and if the new process cannot be started it keeps serving (Go exits with −1).
//! Unix listeners keep their socket file. QUIC sessions of the old process share the UDP
//! socket with the new one and may be reset by it: QUIC clients with redial on reconnect,
//! but calls in flight on them can fail. unixpacket listeners are not passed (neither in Go).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::error::Error;
use crate::net::inherit::FIRST_FD;
use crate::net::{handover, inherit};
use crate::peer::Peer;

/// Starts the new process with every listener of this process, then closes every peer of this
/// process gracefully (each bounded by its shutdown timeout). Returns the new process's id;
/// the caller then exits. If the new process cannot be started, nothing is closed and the
/// error says why.
pub async fn reboot() -> Result<u32, Error> {
    let pid = start_successor()?;
    close_every_peer().await;
    Ok(pid)
}

/// Starts the new process with every listener of this process, and closes nothing: the first
/// half of [`reboot`].
pub fn start_successor() -> Result<u32, Error> {
    let snapshot = handover::snapshot().map_err(|e| Error::io("collect the listeners to hand over", e))?;
    let exe = current_exe().map_err(|e| Error::io("find this program's executable", e))?;
    let mut command = Command::new(&exe);
    command.args(std::env::args_os().skip(1));
    if let Some(dir) = handover::start_dir() {
        command.current_dir(dir);
    }
    for name in inherit::VARIABLES {
        command.env_remove(name);
    }
    for (name, value) in &snapshot.vars {
        command.env(name, value);
    }
    let passed = snapshot.fds.len();
    let last = FIRST_FD + RawFd::try_from(passed).map_err(|_| Error::Invalid("too many listeners".into()))?;
    // Every descriptor to pass, above the range it goes to: the new process's dup2 into
    // 3, 4, … then never overwrites a descriptor it still has to copy.
    let high: Vec<OwnedFd> = snapshot
        .fds
        .iter()
        .map(|fd| dup_at_least(fd.as_raw_fd(), last))
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io("prepare the listeners to hand over", e))?;
    // The range itself is filled while the process starts, so that the pipe through which
    // the standard library learns of a failed exec does not land in it (dup2 would close it).
    let mut fillers = Vec::new();
    if let Some(first) = high.first() {
        loop {
            let filler =
                dup_at_least(first.as_raw_fd(), FIRST_FD).map_err(|e| Error::io("prepare the new process", e))?;
            let done = filler.as_raw_fd() >= last;
            fillers.push(filler);
            if done {
                break;
            }
        }
    }
    let sources: Vec<RawFd> = high.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: between fork and exec the closure only calls dup2, which is async-signal-safe,
    // and reads `sources`, allocated before the fork. dup2 leaves the copies without
    // close-on-exec: exactly the passed descriptors stay open across exec.
    unsafe {
        command.pre_exec(move || {
            for (i, &source) in sources.iter().enumerate() {
                if libc::dup2(source, FIRST_FD + i as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| Error::io(format!("start {}", exe.display()), e))?;
    drop(fillers);
    handover::mark_handed_over();
    let pid = child.id();
    tracing::info!(pid, listeners = passed, "rebooting: the new process has the listeners");
    Ok(pid)
}

/// Closes every live peer of the process at once, each within its shutdown timeout (and a
/// second for the last writes).
pub async fn close_every_peer() {
    let closing: Vec<_> = crate::peer::live_peers()
        .into_iter()
        .map(|peer: Peer| {
            tokio::spawn(async move {
                let limit = peer.config().shutdown_timeout + Duration::from_secs(1);
                if tokio::time::timeout(limit, peer.close()).await.is_err() {
                    tracing::warn!("closing a peer took longer than {limit:?}; stopping anyway");
                }
            })
        })
        .collect();
    for task in closing {
        let _ = task.await;
    }
}

/// Takes the listening sockets this process was started with (`LISTEN_FDS` and friends, from
/// a rebooting parent or systemd; see the module doc) and removes the variables, so that
/// processes started later do not take them for theirs. Returns how many sockets there are.
/// Listeners take them when they listen on their addresses.
///
/// Without this call the first listener reads the variables and leaves them in place.
///
/// # Errors
///
/// A variable with a bad value, or a descriptor it names that is not a listening socket: the
/// message says which and what was expected.
///
/// # Safety
///
/// It changes the environment: no other thread may read or write the environment at the same
/// time. Call it first thing in `main`, before starting a runtime or any thread.
pub unsafe fn take_listen_env() -> Result<usize, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { inherit::take_from_env(true) }.map_err(Error::Invalid)
}

/// This program's executable. After an upgrade replaced the file, Linux reports the old one as
/// `… (deleted)`: the new file at the same path is the one to start.
fn current_exe() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let text = exe.as_os_str().as_encoded_bytes();
    Ok(match text.strip_suffix(b" (deleted)") {
        // SAFETY: the bytes come from an OsString, cut at an ASCII boundary.
        Some(kept) => PathBuf::from(unsafe { OsString::from_encoded_bytes_unchecked(kept.to_vec()) }),
        None => exe,
    })
}

/// A close-on-exec duplicate of `fd` numbered `at_least` or above.
fn dup_at_least(fd: RawFd, at_least: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor, which the OwnedFd then owns.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, at_least) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}
