//! A real browser calls `erpc serve` over WebSocket: headless Chromium loads
//! `examples/ws-browser/index.html`, which calls `/math/add` with `[1,2,3]` over the JSON
//! WebSocket sub-protocol and shows the sum. Also `erpc call` and `erpc bench` over the
//! message networks (ws, wss, unixpacket).
//!
//! The browser test skips, saying so, where no Chromium is installed (Debian: `apt-get
//! install chromium`).

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `erpc serve ARGS` in the background, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_erpc"))
            .args(["serve", "--push-interval", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = common::listening_addr(&mut child);
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command`, killing it (and failing the test) after `limit`.
fn run(mut command: Command, limit: Duration) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{command:?} did not finish within {limit:?}");
        }
    }
}

fn erpc(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_erpc"));
    command.args(args);
    run(command, Duration::from_secs(60))
}

/// The first Chromium on PATH.
fn chromium() -> Option<String> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|name| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|file| file.is_file())
                .map(|file| file.display().to_string())
        })
}

#[test]
fn a_browser_calls_math_add_over_websocket() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED a_browser_calls_math_add_over_websocket: no chromium, chromium-browser or google-chrome on PATH (apt-get install chromium)"
        );
        return;
    };
    let server = Server::start(&["--network", "ws", "--proto", "ws-json", "--listen", "127.0.0.1:0"]);
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/ws-browser/index.html");
    let page = std::fs::canonicalize(page).unwrap();
    let profile = std::env::temp_dir().join(format!("erpc-chromium-{}", std::process::id()));
    // Headless Chromium dumps the DOM when its virtual time budget runs out, and a WebSocket
    // exchange does not hold virtual time back: on a loaded machine the dump can come before
    // the answer. A few tries tell a slow browser from a page that never gets its answer.
    let mut last = String::new();
    for _ in 0..4 {
        let mut command = Command::new(&browser);
        command.args([
            "--headless",
            "--no-sandbox", // tests may run as root
            "--disable-gpu",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            // Lets the page's WebSocket exchange finish before the DOM is dumped.
            "--virtual-time-budget=10000",
            "--dump-dom",
            &format!("file://{}?addr={}", page.display(), server.addr),
        ]);
        let out = run(command, Duration::from_secs(90));
        let _ = std::fs::remove_dir_all(&profile);
        let dom = String::from_utf8_lossy(&out.stdout).into_owned();
        if dom.contains(r#"<output id="result">6</output>"#) && dom.contains(r#"<span id="status">ok</span>"#) {
            return;
        }
        assert!(
            !dom.contains(r#"<span id="status">error"#),
            "the page reported an error:\n{dom}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        last = dom;
    }
    panic!("the page did not show 6 in four tries:\n{last}");
}

#[test]
fn call_and_bench_over_the_message_networks() {
    for (network, tls) in [("ws", false), ("wss", true), ("unixpacket", false)] {
        let listen = match network {
            "unixpacket" => {
                let path = std::env::temp_dir().join(format!("erpc-cli-seqpacket-{}.sock", std::process::id()));
                let _ = std::fs::remove_file(&path);
                path.display().to_string()
            }
            _ => "127.0.0.1:0".into(),
        };
        let server = Server::start(&["--network", network, "--listen", &listen, "--ws-path", "/erpc"]);
        let mut args = vec!["call", "--network", network, "--ws-path", "/erpc?token=1"];
        if tls {
            args.extend(["--tls", "--insecure"]);
        }
        args.extend([server.addr.as_str(), "/math/add", "[1,2,3]"]);
        let out = erpc(&args);
        assert!(
            out.status.success(),
            "{network}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6", "{network}");
        drop(server);
        let out = erpc(&["bench", "--network", network, "-c", "10", "-n", "500", "--json"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("\"concurrency\":10"),
            "bench over {network}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
