//! What the CLI tests share.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::Child;

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
