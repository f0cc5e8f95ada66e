//! Runs every example (cargo builds them for `cargo test`) and checks it ends well.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn example(name: &str) -> PathBuf {
    // target/debug/deps/run_examples-… → target/debug/examples/NAME
    let mut path = std::env::current_exe().unwrap();
    path.pop();
    path.pop();
    path.push("examples");
    path.push(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo test -p erpc-examples`",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    let child = Command::new(example(name))
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
    let out = match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("example {name} did not finish within a minute");
        }
    };
    assert!(
        out.status.success(),
        "example {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn self_contained_examples_run_and_say_what_they_show() {
    for (name, expected) in [
        ("echo", "echo: hello, erpc"),
        ("async", "squares [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]"),
        ("bytes", "\"stressed\" reversed: desserts"),
        ("config", "/ping -> pong"),
        ("early_comm", "the server calls me \"friend\""),
        ("route_func", "/calc/square 12 -> 144"),
        ("session_age", "102 Connection Closed"),
        ("twoway", "a violin will be shipped to 221B Baker Street"),
        ("unix", "hello ann over a unix socket"),
        ("overloader", "after raising the limit: pong"),
        ("pool", "10 calls over "),
        ("proxy", "6 via the gateway"),
        ("binder", "welcome ann, 30 (from the example)"),
        ("heartbeat", "a heartbeat after 3 s of quiet"),
        ("secure", "the caller reads: hello, ann"),
        ("auth", "ann is \"ann\" to the server"),
    ] {
        let out = stdout(&run(name, &[]));
        assert!(out.contains(expected), "example {name} printed:\n{out}");
    }
    let layers = stdout(&run("layers", &[]));
    assert!(
        layers.contains("add: 6")
            && layers.contains("a second nap while one runs: 503 overloaded")
            && layers.contains("a nap of 5 s: 408 Handle Timeout"),
        "the layers example printed:\n{layers}"
    );
    let typed = stdout(&run("typed", &[]));
    assert_eq!(typed.trim(), "6", "the typed example printed:\n{typed}");
    let overloaded = stdout(&run("overloader", &[]));
    assert!(
        overloaded.contains("5 of 8 calls answered") && overloaded.contains("qps overload"),
        "{overloaded}"
    );
    let auth = stdout(&run("auth", &[]));
    assert!(auth.contains("the stranger: 105 Dial Failed: unknown token"), "{auth}");
    let secure = stdout(&run("secure", &[]));
    assert!(secure.contains("the wire carried: {\"cipherversion\""), "{secure}");
    let binder = stdout(&run("binder", &[]));
    assert!(binder.contains("refused: 400 Invalid Parameter"), "{binder}");
    let early = stdout(&run("early_comm", &[]));
    assert!(early.contains("stranger: 105 Dial Failed: wrong password"), "{early}");
    let detail = run("detail", &[]);
    let logs = String::from_utf8_lossy(&detail.stdout).into_owned() + &String::from_utf8_lossy(&detail.stderr);
    assert!(logs.contains("(slow)") && logs.contains("author=andeya"), "{logs}");
}

#[test]
fn client_talks_to_server() {
    let mut server = Command::new(example("server"))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(';')
        .to_string();
    let out = stdout(&run("client", &[&addr]));
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        out.contains("1+2+3+4+5 = 15 (reply meta author=Some(\"andeya\"))"),
        "{out}"
    );
    assert!(out.contains("push /push/status: tick"), "{out}");
}
