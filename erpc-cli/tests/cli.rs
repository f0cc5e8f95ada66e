//! The `erpc` command, run as users run it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{stderr, stdout};

fn erpc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_erpc"))
}

/// Runs `erpc ARGS`, failing the test if it takes more than a minute.
fn run(args: &[&str]) -> Output {
    common::run_captured(erpc().args(args), &format!("erpc {args:?}"))
}

/// `erpc serve` in the background, killed when dropped.
struct Server {
    /// Taken by a test that waits for the server to exit by itself.
    child: Option<Child>,
    addr: String,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut args = vec!["--listen", "127.0.0.1:0", "--push-interval", "200ms"];
        args.extend(extra);
        Server::spawn(&args, Stdio::null())
    }

    /// `erpc serve ARGS`, once it has printed the address it listens on.
    fn spawn(args: &[&str], stderr: Stdio) -> Server {
        let mut child = erpc()
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let addr = common::listening_addr(&mut child);
        Server {
            child: Some(child),
            addr,
        }
    }

    /// Stops the server and returns what it wrote on stderr (if that was piped).
    fn stop(mut self) -> String {
        let mut child = self.child.take().expect("the server runs");
        let _ = child.kill();
        child.wait_with_output().map(|out| stderr(&out)).unwrap_or_default()
    }

    /// Waits (up to a minute) until the server logs a line containing `needle`, then kills it;
    /// returns the log so far. A server writes a line after the event it tells of, so a test
    /// that saw the event must wait for the line rather than kill the server at once.
    fn stop_after_log(mut self, needle: &str) -> String {
        let mut child = self.child.take().expect("the server runs");
        let err = child.stderr.take().expect("the server's stderr is piped");
        let (line_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = String::new();
        while !log.contains(needle) {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    log.push_str(&line);
                    log.push('\n');
                }
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        log
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
fn quic_serving_calling_pushing_and_benchmarking() {
    let server = Server::start(&["--network", "quic"]);
    // Without --tls, a QUIC client skips verifying the certificate, as Go's does.
    let out = run(&["call", "--network", "quic", &server.addr, "/math/add", "[2,3]"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "5");
    let out = run(&["push", "--network", "quic", &server.addr, "/push/status", "\"hi\""]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Over plain UDP nobody answers: the dial fails with a clear line rather than hanging.
    let out = run(&["call", "--network", "tcp", &server.addr, "/math/add", "[2,3]"]);
    assert!(!out.status.success());

    let out = run(&["bench", "--network", "quic", "-c", "4", "-n", "200", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (line["total"].as_u64(), line["errors"].as_u64()),
        (Some(200), Some(0)),
        "{line}"
    );
}

#[test]
fn kcp_serving_calling_pushing_watching_and_benchmarking() {
    let server = Server::start(&["--network", "kcp"]);
    let out = run(&["call", "--network", "kcp", &server.addr, "/math/add", "[2,3]"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "5");
    let out = run(&["push", "--network", "udp", &server.addr, "/push/status", "\"hi\""]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The watcher announces itself at once, so the server's pushes reach it.
    let out = run(&["watch", "--network", "kcp", &server.addr, "--count", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("/push/status server time"), "{}", stdout(&out));

    let out = run(&["bench", "--network", "kcp", "-c", "4", "-n", "200", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (line["total"].as_u64(), line["errors"].as_u64()),
        (Some(200), Some(0)),
        "{line}"
    );
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

/// A config file in a directory of its own, removed when dropped.
struct ConfigFile {
    path: std::path::PathBuf,
}

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let dir = std::env::temp_dir().join(format!("erpc-cli-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        ConfigFile { path }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.path.parent().unwrap());
    }
}

fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// A 2000-byte plain body: over a 1024-byte limit, under the default.
fn big_body() -> String {
    "a".repeat(2000)
}

#[test]
fn serve_takes_its_limits_and_address_from_a_toml_or_yaml_file() {
    for (name, text) in [
        (
            "peer.toml",
            "local_ip = \"127.0.0.1\"\nlisten_port = 0\nmax_message_size = 1024\n",
        ),
        (
            "peer.yaml",
            "local_ip: 127.0.0.1\nlisten_port: 0\nmax_message_size: 1024\n",
        ),
    ] {
        let file = ConfigFile::new(name, text);
        // No --listen: the address is the file's (a free port, not serve's default 9090).
        let server = Server::spawn(&["--config", file.path(), "--push-interval", "0"], Stdio::piped());
        assert_ne!(port(&server.addr), 9090, "{name}");

        let out = run(&["call", "--codec", "plain", &server.addr, "/echo/parrot", "small"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "small");
        // Over the file's limit: the server closes the session; its log says why.
        let out = run(&["call", "--codec", "plain", &server.addr, "/echo/parrot", &big_body()]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: a 2000-byte body must not pass a 1024-byte limit"
        );
        assert!(stderr(&out).contains("code=102"), "{name}: {}", stderr(&out));
        let log = server.stop_after_log("exceeds the size limit of 1024 bytes");
        assert!(log.contains("exceeds the size limit of 1024 bytes"), "{name}: {log}");
    }
}

#[test]
fn flags_override_the_file() {
    let file = ConfigFile::new("override.toml", "listen_port = 1\nmax_message_size = 1024\n");
    // --listen over listen_port, --max-message-size over max_message_size.
    let server = Server::spawn(
        &[
            "--config",
            file.path(),
            "--listen",
            "127.0.0.1:0",
            "--max-message-size",
            "100000",
            "--push-interval",
            "0",
        ],
        Stdio::null(),
    );
    assert_ne!(port(&server.addr), 1);
    let out = run(&["call", "--codec", "plain", &server.addr, "/echo/parrot", &big_body()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim().len(), 2000);

    // The client reads the same file: its own limit stops the body before it is sent.
    let out = run(&[
        "call",
        "--config",
        file.path(),
        "--codec",
        "plain",
        &server.addr,
        "/echo/parrot",
        &big_body(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("size limit of 1024 bytes"), "{}", stderr(&out));
    // …unless a flag raises it.
    let out = run(&[
        "call",
        "--config",
        file.path(),
        "--max-message-size",
        "100000",
        "--codec",
        "plain",
        &server.addr,
        "/echo/parrot",
        &big_body(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_bad_config_file_exits_2_naming_the_file_and_the_field() {
    for (name, text, field) in [
        ("bad-type.toml", "max_sessions = \"many\"\n", "max_sessions"),
        ("bad-key.yaml", "idle_timout: 5m\n", "idle_timout"),
        ("bad-value.yml", "max_message_size: 10\n", "max_message_size"),
    ] {
        let file = ConfigFile::new(name, text);
        for command in [
            vec!["serve", "--config", file.path()],
            vec!["call", "--config", file.path(), "127.0.0.1:1", "/math/add"],
            vec!["demo", "--config", file.path()],
        ] {
            let out = run(&command);
            assert_eq!(out.status.code(), Some(2), "{command:?}: {}", stderr(&out));
            let err = stderr(&out);
            assert!(err.starts_with("error: "), "{err}");
            assert!(err.contains(name) && err.contains(field), "{command:?}: {err}");
        }
    }
    let out = run(&["serve", "--config", "/nonexistent/erpc.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read config file /nonexistent/erpc.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_sample_config_serves() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/erpc.toml");
    let server = Server::start(&["--config", sample]);
    let out = run(&["call", &server.addr, "/math/add", "[1,2,3]"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "6");
}

/// Waits (up to 20 s) for the server to close `conn`; how long it took.
fn closed_by_server(mut conn: std::net::TcpStream) -> Duration {
    use std::io::Read;
    let started = std::time::Instant::now();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 64];
    match conn.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the server sent {n} bytes instead of closing"),
        Err(e) => assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "the server did not close the connection within 20 s"
        ),
    }
    started.elapsed()
}

#[test]
fn serve_closes_idle_sessions_after_the_files_idle_timeout() {
    // serve's own default is 5 minutes: a close within the read's 20 s is the file's doing.
    let file = ConfigFile::new("idle.yaml", "idle_timeout: 300ms\n");
    let server = Server::spawn(
        &[
            "--config",
            file.path(),
            "--listen",
            "127.0.0.1:0",
            "--push-interval",
            "0",
        ],
        Stdio::null(),
    );
    let conn = std::net::TcpStream::connect(&server.addr).unwrap();
    let took = closed_by_server(conn);
    assert!(
        took >= Duration::from_millis(250),
        "closed after {took:?}, before the idle timeout"
    );
}

#[test]
fn max_sessions_from_the_flag_caps_what_serve_accepts() {
    let server = Server::spawn(
        &["--max-sessions", "1", "--listen", "127.0.0.1:0", "--push-interval", "0"],
        Stdio::null(),
    );
    // The one allowed session: accepted (and counted) first, as connections are accepted in order.
    let held = std::net::TcpStream::connect(&server.addr).unwrap();
    let out = run(&["call", &server.addr, "/math/add", "[1,2]"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("code=102"), "{}", stderr(&out));
    drop(held);
}

#[test]
fn serve_with_qps_answers_calls_over_the_rate_with_go_s_status() {
    let server = Server::start(&["--qps", "2"]);
    // 20 calls in a moment against 2 a second: most are refused, and bench says why.
    let out = run(&["bench", "--addr", &server.addr, "-c", "1", "-n", "20", "--json"]);
    let said = stdout(&out) + &stderr(&out);
    assert!(said.contains("qps overload, total_limit=2"), "{said}");
}

#[test]
fn auth_lets_in_clients_with_the_token_only() {
    let server = Server::start(&["--auth", "s3cret"]);
    let out = run(&["call", "--auth", "s3cret", &server.addr, "/math/add", "[1,2,3]"]);
    assert_eq!(stdout(&out).trim(), "6", "{}", stderr(&out));
    let out = run(&["call", "--auth", "guess", &server.addr, "/math/add", "[1,2,3]"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("wrong token"),
        "the checker's cause: {}",
        stderr(&out)
    );
    let out = run(&["call", &server.addr, "/math/add", "[1,2,3]"]);
    assert_ne!(out.status.code(), Some(0), "a client without the token was served");
}

#[test]
fn serve_answers_go_s_heartbeat() {
    use std::io::{Read, Write};
    // No status pushes: the first frame back is the answer.
    let server = Server::spawn(&["--listen", "127.0.0.1:0", "--push-interval", "0"], Stdio::null());
    let mut go = std::net::TcpStream::connect(&server.addr).unwrap();
    go.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    go.write_all(b"\x00\x00\x00\x23\x00\x011\x01\x0a/heartbeat\x00\x06code=0\x00\x05hb_=3\x6a")
        .unwrap();
    let mut pong = [0u8; 24];
    go.read_exact(&mut pong).unwrap();
    assert_eq!(
        &pong[..],
        b"\x00\x00\x00\x18\x00\x011\x02\x00\x00\x06code=0\x00\x00\x6anull"
    );
}

#[test]
fn secure_calls_work_in_both_modes_and_a_wrong_key_is_refused() {
    for (mode, key) in [("go", "cipherkey1234567"), ("aead", "0123456789abcdef0123456789abcdef")] {
        let server = Server::start(&["--secure", key, "--secure-mode", mode]);
        let out = run(&[
            "call",
            "--secure",
            key,
            "--secure-mode",
            mode,
            &server.addr,
            "/math/add",
            "[1,2,3]",
        ]);
        assert_eq!(stdout(&out).trim(), "6", "{mode}: {}", stderr(&out));
    }
    let server = Server::start(&["--secure", "cipherkey1234567"]);
    let out = run(&[
        "call",
        "--secure",
        "anotherkey123456",
        &server.addr,
        "/math/add",
        "[1,2,3]",
    ]);
    assert!(stderr(&out).contains("decrypt"), "{}", stderr(&out));
    let out = run(&["serve", "--secure", "short"]);
    assert_eq!(out.status.code(), Some(2), "a bad key is a usage error");
}

#[test]
fn serve_proxies_unknown_routes_and_bench_sends_through_a_pool() {
    let upstream = Server::start(&[]);
    let gateway = Server::start(&["--proxy-to", &upstream.addr]);
    // /math/add is local; an unknown route goes upstream, whose 404 comes back.
    let out = run(&["call", &gateway.addr, "/math/add", "[1,2,3]"]);
    assert_eq!(stdout(&out).trim(), "6", "{}", stderr(&out));
    let out = run(&["call", &gateway.addr, "/nowhere", "1"]);
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    // An upstream that is not there: a bad gateway.
    let lost = Server::start(&["--proxy-to", "127.0.0.1:1"]);
    let out = run(&["call", &lost.addr, "/nowhere", "1"]);
    assert!(stderr(&out).contains("502"), "{}", stderr(&out));

    let out = run(&["call", "--pool", "2", &upstream.addr, "/math/add", "[2,2]"]);
    assert_eq!(stdout(&out).trim(), "4", "{}", stderr(&out));
    let out = run(&[
        "bench",
        "--addr",
        &upstream.addr,
        "--pool",
        "3",
        "-c",
        "8",
        "-n",
        "200",
        "--json",
    ]);
    let line: serde_json::Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(line["errors"], 0, "{}", stderr(&out));
}

#[test]
fn a_watcher_that_only_receives_is_not_idle() {
    // Pushes every 200 ms, idle sessions closed after 1 s: a session that is written to is
    // not idle, so the watcher gets pushes for its whole 3 s.
    let server = Server::start(&["--idle-timeout", "1s"]);
    let out = run(&["watch", &server.addr, "--for", "3s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).lines().count() >= 8, "{}", stdout(&out));
}

/// `GET /metrics` over plain HTTP/1.1 (what curl does), retried until the exporter listens.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match std::net::TcpStream::connect(addr) {
            Ok(mut stream) => {
                write!(
                    stream,
                    "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).unwrap();
                return response;
            }
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::yield_now();
            }
            Err(e) => panic!("the metrics endpoint {addr} never listened: {e}"),
        }
    }
}

#[test]
fn serve_exposes_prometheus_metrics() {
    let metrics = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let server = Server::start(&["--metrics", &metrics]);
    for _ in 0..3 {
        assert!(run(&["call", &server.addr, "/math/add", "[1,2]"]).status.success());
    }
    assert!(!run(&["call", &server.addr, "/no/such/route", "1"]).status.success());
    let response = scrape(&metrics);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("erpc_calls_total{route=\"/math/add\"} 3"),
        "{response}"
    );
    assert!(
        response.contains("erpc_call_errors_total{route=\"<unknown>\",code=\"404\"} 1"),
        "{response}"
    );
    assert!(
        response.contains("erpc_call_duration_seconds_bucket{route=\"/math/add\""),
        "{response}"
    );
    assert!(response.contains("erpc_bytes_received_total"), "{response}");
    server.stop();
}

#[test]
fn bench_draws_its_progress_bar_into_a_pipe_only_when_asked() {
    let server = Server::start(&[]);
    // stderr is a pipe here: by default no bar (nor any `\r`) reaches it.
    let out = run(&["bench", "--addr", &server.addr, "-c", "2", "-n", "200"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains('\r'), "{:?}", stderr(&out));
    assert!(stdout(&out).contains("concurrency"), "{}", stdout(&out));

    let out = run(&[
        "bench",
        "--addr",
        &server.addr,
        "-c",
        "2",
        "-n",
        "200",
        "--progress",
        "always",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bar = stderr(&out);
    assert!(bar.contains('\r') && bar.contains("/200"), "{bar:?}");
}
