//! Zero-downtime restarts, as users run them: `erpc bench` at c=100 against `erpc serve` while
//! the server reboots twice (SIGUSR2). No call fails, the server's process changes, the port
//! stays. And systemd socket activation: `erpc serve` started with `LISTEN_PID`/`LISTEN_FDS`
//! serves on the socket it is given.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn erpc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_erpc"))
}

/// Every process a test started, killed when the test ends however it ends. A rebooted
/// server is not a child of the test, so it is known by its pid only.
#[derive(Default)]
struct Processes {
    children: Vec<Child>,
    pids: Vec<u32>,
}

impl Processes {
    fn child(&mut self, child: Child) -> &mut Child {
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for pid in &self.pids {
            // SAFETY: kill has no memory effects; a pid that is gone is ESRCH.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill has no memory effects.
    assert_eq!(
        unsafe { libc::kill(pid as libc::pid_t, signal) },
        0,
        "signal {signal} to {pid}"
    );
}

/// Polls `cond` until it yields, failing the test after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = cond() {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn temp_path(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::env::temp_dir().join(format!("erpc-{name}-{}-{nanos}", std::process::id()))
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Lines of a child's output, as they come.
fn lines(out: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The address of a `listening on ADDR (…)` line.
fn listening_addr(line: &str) -> String {
    assert!(
        line.starts_with("listening on "),
        "serve prints 'listening on ADDR', got {line:?}"
    );
    line.split_whitespace().nth(2).unwrap().to_string()
}

#[test]
fn bench_sees_no_error_while_the_server_reboots_twice() {
    let mut procs = Processes::default();
    let pid_file = temp_path("reboot.pid");
    let server = procs.child(
        erpc()
            .args(["serve", "--listen", "127.0.0.1:0", "--push-interval", "0", "--pid-file"])
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let first_pid = server.id();
    let announced = lines(server.stdout.take().unwrap());
    let next_line = |what: &str| {
        announced
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_else(|_| panic!("waited 15 s for {what} to print 'listening on'"))
    };
    let addr = listening_addr(&next_line("the server"));
    assert_eq!(read_pid(&pid_file), Some(first_pid));

    // The bench's progress bar (stderr, drawn into the pipe with `--progress always`) says how
    // many calls are done: the reboots must come while it is calling.
    let bench = procs.child(
        erpc()
            .args([
                "bench",
                "--addr",
                &addr,
                "-c",
                "100",
                "-n",
                "400000",
                "--progress",
                "always",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut bench_stdout = bench.stdout.take().unwrap();
    let stdout_reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = bench_stdout.read_to_string(&mut out);
        out
    });
    let (progress_tx, progress) = mpsc::channel::<usize>();
    let mut bench_stderr = bench.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = bench_stderr.read(&mut chunk) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&chunk[..n]);
            // "\r[###   ]  8% 8539/400000": the calls done so far.
            let text = String::from_utf8_lossy(&all);
            if let Some(done) = text
                .rsplit('\r')
                .find_map(|bar| bar.split_whitespace().last()?.split_once('/')?.0.parse().ok())
            {
                let _ = progress_tx.send(done);
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let calls_done_past = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match progress.recv_timeout(left) {
                Ok(done) if done >= n => return done,
                Ok(_) => {}
                Err(_) => panic!("the bench did not get past {n} calls within 30 s"),
            }
        }
    };

    let mut pids = vec![first_pid];
    let mut seen = calls_done_past(5_000);
    for round in 1..=2 {
        let old = *pids.last().unwrap();
        signal(old, libc::SIGUSR2);
        let line = next_line("the rebooted server");
        assert_eq!(
            listening_addr(&line),
            addr,
            "reboot {round}: the new process listens on the same port"
        );
        let new = wait_for("the new process's pid file", Duration::from_secs(15), || {
            read_pid(&pid_file).filter(|&pid| pid != old)
        });
        procs.pids.push(new);
        pids.push(new);
        wait_for("the old process to exit", Duration::from_secs(15), || {
            if old == first_pid {
                // The test's own child: reap it.
                procs.children[0]
                    .try_wait()
                    .unwrap()
                    .map(|status| assert!(status.success(), "{status}"))
            } else {
                (!alive(old)).then_some(())
            }
        });
        // Calls go on, now to the new process.
        seen = calls_done_past(seen + 5_000);
    }
    assert!(
        procs.children[1].try_wait().unwrap().is_none(),
        "the bench finished before both reboots were done: raise -n"
    );

    let status = wait_for("the bench to finish", Duration::from_secs(120), || {
        procs.children[1].try_wait().unwrap()
    });
    let out = stdout_reader.join().unwrap();
    let err = stderr_reader.join().unwrap();
    // The progress bar ends in '\r'; what follows the last one is the bench's verdict.
    let verdict = err.rsplit('\r').next().unwrap_or_default();
    assert!(
        status.success(),
        "bench failed: {status}\nstdout:\n{out}\nstderr:\n{verdict}"
    );
    assert!(!err.contains("failed"), "bench reported failures:\n{verdict}");
    assert!(out.contains("/s"), "bench printed its results:\n{out}");
    assert_eq!(pids.len(), 3);
    assert!(
        pids[0] != pids[1] && pids[1] != pids[2] && pids[0] != pids[2],
        "{pids:?}"
    );

    let last = *pids.last().unwrap();
    signal(last, libc::SIGTERM);
    wait_for("the last server to exit", Duration::from_secs(15), || {
        (!alive(last)).then_some(())
    });
    let _ = std::fs::remove_file(&pid_file);
}

#[test]
fn serve_takes_a_socket_from_systemd_socket_activation_and_reboots_with_it() {
    // The socket systemd would have bound, passed at fd 3 of the process whose pid
    // LISTEN_PID names (the shell execs erpc, so the pid stays).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let pid_file = temp_path("systemd.pid");
    let mut procs = Processes::default();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=erpc exec \"$0\" serve --listen {addr} --push-interval 0 --pid-file \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_erpc"))
        .arg(&pid_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: dup2 and fcntl are async-signal-safe. dup2 leaves fd 3 without close-on-exec;
    // when the socket already is fd 3, dup2 does nothing and fcntl clears the flag.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
            let done = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if done < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = procs.child(command.spawn().unwrap());
    let first_pid = server.id();
    let announced = lines(server.stdout.take().unwrap());
    let line = announced
        .recv_timeout(Duration::from_secs(15))
        .expect("serve prints 'listening on'");
    assert_eq!(listening_addr(&line), addr);
    // Had it bound the address itself, it could not have: the test still holds the socket,
    // listening.
    drop(listener);
    let call = || {
        let out = erpc().args(["call", &addr, "/math/add", "[1,2,3]"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6");
    };
    call();

    // The rebooted process gets the socket through the reboot contract. Had LISTEN_PID been
    // passed on, it would name the old process, the new one would ignore its sockets, fail to
    // bind the address the old one still holds, and never say it listens.
    signal(first_pid, libc::SIGUSR2);
    let line = announced
        .recv_timeout(Duration::from_secs(15))
        .expect("the rebooted serve prints 'listening on'");
    assert_eq!(listening_addr(&line), addr);
    let new = wait_for("the new process's pid file", Duration::from_secs(15), || {
        read_pid(&pid_file).filter(|&pid| pid != first_pid)
    });
    procs.pids.push(new);
    wait_for("the old process to exit", Duration::from_secs(15), || {
        procs.children[0]
            .try_wait()
            .unwrap()
            .map(|status| assert!(status.success(), "{status}"))
    });
    call();
    signal(new, libc::SIGTERM);
    wait_for("the new process to exit", Duration::from_secs(15), || {
        (!alive(new)).then_some(())
    });
    let _ = std::fs::remove_file(&pid_file);
}

#[test]
fn serve_refuses_bad_socket_activation_variables() {
    let out = erpc()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LISTEN_FDS", "lots")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LISTEN_FDS=\"lots\" is not a number"), "{err}");
}
