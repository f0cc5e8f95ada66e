//! The `erpc` command, run as users run it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn erpc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_erpc"))
}

/// Runs `erpc ARGS`, failing the test if it takes more than a minute.
fn run(args: &[&str]) -> Output {
    let child = erpc()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("erpc {args:?} did not finish within a minute");
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `erpc serve` in the background, killed when dropped.
struct Server {
    /// Taken by a test that waits for the server to exit by itself.
    child: Option<Child>,
    addr: String,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = erpc()
            .args(["serve", "--listen", "127.0.0.1:0", "--push-interval", "200ms"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split_whitespace()
            .nth(2)
            .expect("serve prints 'listening on ADDR'")
            .to_string();
        Server {
            child: Some(child),
            addr,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn demo_shows_calls_an_error_and_a_push() {
    let out = run(&["demo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("/math/add [1,2,3,4,5] -> 15 (reply meta author=andeya)"),
        "{text}"
    );
    assert!(text.contains("code=10005"), "{text}");
    assert!(text.contains("field1=\"OK\" field2=100"), "{text}");
    assert!(text.contains("PUSH received /push/status"), "{text}");
}

#[test]
fn call_prints_the_reply_and_errors_exit_nonzero() {
    let server = Server::start(&[]);
    let out = run(&["call", &server.addr, "/math/add", "[1,2,3]"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "6");

    let out = run(&[
        "call",
        "--meta",
        "author=x",
        "--show-meta",
        &server.addr,
        "/math/add",
        "[1,2,3]",
    ]);
    assert_eq!(stdout(&out).trim(), "6");
    assert!(stderr(&out).contains("author: x"), "{}", stderr(&out));

    let out = run(&["call", "--codec", "plain", &server.addr, "/echo/parrot", "hello"]);
    assert_eq!(stdout(&out).trim(), "hello");

    let out = run(&["call", &server.addr, "/err/custom"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("code=10005 msg=\"custom error\" cause=\"because\""),
        "{}",
        stderr(&out)
    );

    let out = run(&["call", &server.addr, "/no/such/route"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("code=404"), "{}", stderr(&out));

    let out = run(&["call", &server.addr, "/math/add", "[1,2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));

    let out = run(&["push", &server.addr, "/push/status", "\"hi\""]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn connection_problems_are_one_clear_line() {
    let out = run(&["call", "127.0.0.1:1", "/math/add", "[1]"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: cannot connect to 127.0.0.1:1"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let out = run(&["call", "not-an-address", "/math/add", "[1]"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not-an-address"), "{}", stderr(&out));

    let out = run(&["call", "--proto", "nope", "127.0.0.1:1", "/x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown protocol"), "{}", stderr(&out));
}

#[test]
fn watch_prints_pushes() {
    let server = Server::start(&[]);
    let out = run(&["watch", &server.addr, "--count", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines.iter().all(|l| l.starts_with("/push/status server time ")),
        "{text}"
    );

    let out = run(&["watch", &server.addr, "--for", "100ms", "--count", "1000"]);
    assert!(out.status.success());
}

#[test]
fn tls_serving_and_calling() {
    let server = Server::start(&["--tls"]);
    let out = run(&["call", "--tls", "--insecure", &server.addr, "/math/add", "[2,3]"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "5");
    let out = run(&["call", "--tls", &server.addr, "/math/add", "[2,3]"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--tls alone must ask for --ca or --insecure"
    );
}

#[cfg(unix)]
#[test]
fn serve_stops_gracefully_on_sigterm() {
    // SIGTERM right after the address line, several times: the handlers must be in place by
    // the time the address is printed, or the default action kills the process (signal 15).
    for _ in 0..5 {
        let mut server = Server::start(&[]);
        let mut child = server.child.take().expect("the server runs");
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        // The exit is waited for on a thread of its own, so the wait is bounded.
        let (done, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait());
        });
        let status = exited
            .recv_timeout(Duration::from_secs(20))
            .expect("serve did not stop after SIGTERM")
            .unwrap();
        assert!(status.success(), "serve exits 0 after SIGTERM, got {status}");
    }
}

#[test]
fn every_protocol_works_from_the_command_line() {
    for proto in ["raw", "json", "pb", "http", "thrift", "thrift-struct"] {
        let server = Server::start(&["--proto", proto]);
        // thrift-struct bodies are thrift structs: the JSON body is converted.
        let codec = if proto == "thrift-struct" { "thrift" } else { "json" };
        let out = run(&[
            "call",
            "--proto",
            proto,
            "--codec",
            codec,
            "--meta",
            "author=x",
            "--show-meta",
            &server.addr,
            "/math/add",
            "[1,2,3]",
        ]);
        assert!(out.status.success(), "{proto}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "6", "{proto}");
        assert!(
            stderr(&out).to_lowercase().contains("author: x"),
            "{proto}: {}",
            stderr(&out)
        );
        let out = run(&["call", "--proto", proto, "--codec", codec, &server.addr, "/err/custom"]);
        assert_eq!(out.status.code(), Some(1), "{proto}");
        assert!(stderr(&out).contains("code=10005"), "{proto}: {}", stderr(&out));
        if proto != "http" {
            let out = run(&[
                "push",
                "--proto",
                proto,
                "--codec",
                codec,
                &server.addr,
                "/push/status",
                "\"hi\"",
            ]);
            assert!(out.status.success(), "{proto}: {}", stderr(&out));
            let out = run(&["watch", "--proto", proto, &server.addr, "--count", "1"]);
            assert!(
                stdout(&out).starts_with("/push/status server time"),
                "{proto}: {}",
                stdout(&out)
            );
        }
    }
}

#[test]
fn bench_says_why_calls_failed() {
    // A jsonproto server cannot read the rawproto frames bench sends: every call fails.
    let server = Server::start(&["--proto", "json"]);
    let out = run(&["bench", "--addr", &server.addr, "-c", "4", "-n", "20", "--json"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("of 20 calls failed: "), "{err}");
    assert!(err.contains("Connection Closed"), "{err}");
    // stdout keeps its one JSON line.
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
}
