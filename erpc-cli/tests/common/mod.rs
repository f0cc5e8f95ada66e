//! What the CLI tests share.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `command` with its output captured, failing the test (and killing the process) if it
/// takes more than a minute; `what` names it in that failure.
pub fn run_captured(command: &mut Command, what: &str) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{what} did not finish within a minute");
        }
    }
}

/// What a finished process printed on stdout.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a finished process printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The address a started `erpc serve` announces on its first line of output
/// (`listening on ADDR (…)`); takes the child's stdout.
pub fn listening_addr(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("serve's stdout is piped"))
        .read_line(&mut line)
        .unwrap();
    line.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("serve prints 'listening on ADDR', got {line:?}"))
        .to_string()
}

pub mod etcd;
