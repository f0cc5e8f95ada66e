//! A server whose standard error nobody reads still answers: logging drops lines (and says how
//! many) instead of blocking the workers.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use erpc::{Peer, PeerConfig};

/// `erpc serve -vv` with its standard error on a pipe that is not read; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    /// Held open and unread until the test reads it.
    stderr: Option<ChildStderr>,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_erpc"))
            .args(["serve", "-vv", "--listen", "127.0.0.1:0", "--push-interval", "0"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = common::listening_addr(&mut child);
        let stderr = child.stderr.take();
        Server { child, addr, stderr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes `n` messages to a route the server does not have (each is logged at DEBUG and
/// warned about), then calls `/math/add` on the same session: the server handles a session's
/// messages in order, so the answer comes once every push has been logged. Stops at the first
/// push or call the server does not take or answer in time.
fn flood(addr: &str, n: usize) -> Result<i64, erpc::Status> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = PeerConfig {
            call_timeout: Duration::from_secs(5),
            ..PeerConfig::default()
        };
        let client = Peer::builder().config(config).build().unwrap();
        let session = client.dial(addr).await?;
        for i in 0..n {
            session.push("/nowhere", &i).await?;
        }
        session.call("/math/add", &[1, 2]).await
    })
}

#[test]
fn a_server_whose_stderr_nobody_reads_still_answers() {
    let mut server = Server::start();
    // Far more log than a pipe holds (64 KiB) or the logger queues.
    let flooded = flood(&server.addr, 20_000);

    let call = Command::new(env!("CARGO_BIN_EXE_erpc"))
        .args(["call", "--timeout", "5s", &server.addr, "/math/add", "[1,2,3]"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&call.stdout);
    assert!(
        call.status.success() && stdout.trim() == "6",
        "the call failed (flood: {flooded:?}): {stdout}{}",
        String::from_utf8_lossy(&call.stderr)
    );
    assert_eq!(flooded, Ok(3), "the flooding session's own call");

    // Once someone reads, the logger says how many lines it dropped.
    let stderr = server.stderr.take().unwrap();
    let (found, notice) = mpsc::channel();
    std::thread::spawn(move || {
        let line = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.contains("log lines dropped (stderr not drained)"));
        let _ = found.send(line);
    });
    let line = notice.recv_timeout(Duration::from_secs(30)).ok().flatten();
    let line = line.expect("no notice of dropped log lines");
    let dropped: u64 = line
        .split_whitespace()
        .find_map(|word| word.parse().ok())
        .expect("the notice counts the lines");
    assert!(dropped > 0, "{line}");
}
