//! `erpc bench --idle N`: what an idle session costs the server, in resident memory.
//!
//! The server runs as a child process (`erpc serve`, or any command given after `--`). Once it
//! is up and its RSS has settled, this process opens N plain TCP connections to it that never
//! send a byte — to an erpc server each is a full session (it starts one on accept; rawproto
//! has no handshake), to a raw-socket server a connection task — and keeps them open. When the
//! server holds N more file descriptors (it has accepted them all) and its RSS has settled
//! again, the growth divided by N is the cost of one idle session. Linux only (`/proc`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::{BenchArgs, ServerChild};

/// How long the server may take to accept all the connections.
const ACCEPT_LIMIT: Duration = Duration::from_secs(60);

/// The `--idle --json` line.
#[derive(Debug, Serialize)]
struct IdleReport {
    framework: String,
    idle_sessions: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    kib_per_session: f64,
}

/// Runs the idle-session measurement.
pub(crate) fn run(args: &BenchArgs, sessions: usize) -> Result<(), String> {
    if args.addr.is_some() {
        return Err(
            "--idle measures a server child it starts itself: drop --addr (a server command may follow --)".into(),
        );
    }
    if sessions == 0 {
        return Err("--idle needs at least one session".into());
    }
    // This process holds one descriptor per connection, and so does the server, which
    // inherits the limit.
    raise_nofile(sessions as u64 + 256)?;
    let (mut server, what) = if args.server_cmd.is_empty() {
        let server = ServerChild::start(&args.proto, &args.peer, None)?;
        (server, format!("erpc serve --proto {}", args.proto))
    } else {
        start_command(&args.server_cmd)?
    };
    let pid = server.child.id();
    let addr: SocketAddr = server
        .addr
        .parse()
        .map_err(|e| format!("the server address {:?} is not a socket address: {e}", server.addr))?;
    let rss_before = settled_rss(pid)?;
    let fds_before = fd_count(pid)?;

    let mut conns = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let conn = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .map_err(|e| format!("connection {} of {sessions} to {addr} failed: {e}", i + 1))?;
        conns.push(conn);
    }
    let deadline = Instant::now() + ACCEPT_LIMIT;
    loop {
        let accepted = fd_count(pid)?.saturating_sub(fds_before);
        if accepted >= sessions {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the server accepted only {accepted} of {sessions} connections within {ACCEPT_LIMIT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss_after = settled_rss(pid)?;
    drop(conns);
    server.stop();

    let growth = rss_after as i64 - rss_before as i64;
    let report = IdleReport {
        framework: args.name.clone(),
        idle_sessions: sessions,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        kib_per_session: (growth as f64 / sessions as f64 * 100.0).round() / 100.0,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!("erpc bench --idle: {sessions} idle TCP sessions to {what} at {addr} (pid {pid})");
        println!(
            "server RSS {rss_before} KiB before, {rss_after} KiB after: {growth:+} KiB in total, {:.2} KiB per session",
            report.kib_per_session
        );
    }
    Ok(())
}

/// Starts `cmd` (its `{addr}` replaced by a free loopback address) and waits until it accepts
/// connections.
fn start_command(cmd: &[String]) -> Result<(ServerChild, String), String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))?
        .port();
    let addr = format!("127.0.0.1:{port}");
    if !cmd.iter().any(|a| a.contains("{addr}")) {
        return Err("the server command must contain {addr} (where it listens)".into());
    }
    let argv: Vec<String> = cmd.iter().map(|a| a.replace("{addr}", &addr)).collect();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", argv[0]))?;
    let mut server = ServerChild {
        child,
        addr: addr.clone(),
    };
    let sockaddr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("the server exited early: {status}"));
        }
        if TcpStream::connect_timeout(&sockaddr, Duration::from_millis(200)).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            server.stop();
            return Err(format!("the server did not come up on {addr}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((server, argv.join(" ")))
}

/// VmRSS of a process in KiB, once it has stopped changing (three equal readings 100 ms
/// apart, or the last reading after 5 s).
fn settled_rss(pid: u32) -> Result<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = vm_rss_kib(pid)?;
    let mut same = 0;
    while same < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = vm_rss_kib(pid)?;
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    Ok(last)
}

fn vm_rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn fd_count(pid: u32) -> Result<usize, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .map_err(|e| format!("cannot list /proc/{pid}/fd: {e}"))
}

/// Raises this process's soft RLIMIT_NOFILE to at least `want` (children inherit it).
#[cfg(unix)]
pub(crate) fn raise_nofile(want: u64) -> Result<(), String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!(
            "cannot read the open-files limit: {}",
            std::io::Error::last_os_error()
        ));
    }
    let want = want as libc::rlim_t;
    if limit.rlim_cur >= want {
        return Ok(());
    }
    if limit.rlim_max < want {
        return Err(format!(
            "{want} open files are needed but the hard limit is {} (raise it: ulimit -Hn)",
            limit.rlim_max
        ));
    }
    limit.rlim_cur = want;
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(format!(
            "cannot raise the open-files limit to {want}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn raise_nofile(_want: u64) -> Result<(), String> {
    Ok(())
}
