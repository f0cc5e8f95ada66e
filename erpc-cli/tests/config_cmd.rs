//! `erpc config print|check`, and the environment layer as the commands see it. Environment
//! variables are set only on the spawned `erpc` processes, never on this test process.

mod common;

use std::process::{Child, Command, Output, Stdio};

use common::{stderr, stdout};

/// `erpc ARGS` with `env` added to its environment.
fn erpc(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_erpc"));
    command.args(args).envs(env.iter().copied());
    command
}

/// Runs it, failing the test if it takes more than a minute.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    common::run_captured(&mut erpc(args, env), &format!("erpc {args:?}"))
}

/// A file in a fresh directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let dir = std::env::temp_dir().join(format!("erpc-config-cmd-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

/// The value and origin `config print` shows for `key`: `key = VALUE  # ORIGIN`.
fn shown(printed: &str, key: &str) -> (String, String) {
    let line = printed
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} = ")))
        .unwrap_or_else(|| panic!("config print shows no {key}:\n{printed}"));
    let (assignment, origin) = line.rsplit_once("  # ").unwrap();
    let value = assignment.split_once(" = ").unwrap().1.trim();
    (value.to_string(), origin.to_string())
}

#[test]
fn config_print_shows_each_value_and_where_it_came_from() {
    let file = TempFile::new("peer.toml", "# a peer\nlisten_port = 9090\ncall_timeout = \"20s\"\n");
    let out = run(
        &[
            "config",
            "print",
            "--for",
            "serve",
            "--config",
            file.path(),
            "--max-sessions",
            "3",
        ],
        &[("ERPC_CALL_TIMEOUT", "5s"), ("ERPC_MAX_SESSIONS", "20")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let at_line = |n: usize| format!("{}:{n}", file.path());
    assert_eq!(shown(&printed, "listen_port"), ("9090".into(), at_line(2)));
    assert_eq!(
        shown(&printed, "call_timeout"),
        ("\"5s\"".into(), "env ERPC_CALL_TIMEOUT".into())
    );
    assert_eq!(
        shown(&printed, "max_sessions"),
        ("3".into(), "flag --max-sessions".into())
    );
    assert_eq!(
        shown(&printed, "idle_timeout"),
        ("\"5m0s\"".into(), "erpc serve default".into())
    );
    assert_eq!(shown(&printed, "network"), ("\"tcp\"".into(), "default".into()));
    assert_eq!(shown(&printed, "keepalive"), ("(not set)".into(), "default".into()));
    // Every key is shown once.
    let keys = printed.lines().filter(|l| l.contains(" = ")).count();
    assert_eq!(keys, erpc::PeerConfig::KEYS.len(), "{printed}");
}

#[test]
fn flags_not_given_leave_the_file_and_the_environment_alone() {
    // `erpc call` defaults its timeouts to 10 s and has --timeout and --network flags; none given.
    let file = TempFile::new("client.yaml", "call_timeout: 3s\n");
    let out = run(
        &["config", "print", "--for", "call", "--config", file.path()],
        &[("ERPC_NETWORK", "tcp6")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert_eq!(
        shown(&printed, "call_timeout"),
        ("\"3s\"".into(), format!("{}:1", file.path()))
    );
    assert_eq!(
        shown(&printed, "dial_timeout"),
        ("\"10s\"".into(), "erpc call default".into())
    );
    assert_eq!(
        shown(&printed, "network"),
        ("\"tcp6\"".into(), "env ERPC_NETWORK".into())
    );
    // Given, they win.
    let out = run(
        &["config", "print", "--config", file.path(), "--network", "tcp4"],
        &[("ERPC_NETWORK", "tcp6")],
    );
    assert_eq!(
        shown(&stdout(&out), "network"),
        ("\"tcp4\"".into(), "flag --network".into())
    );
}

/// One configuration in each format; the INI as Go's ini library writes it.
const GOOD: [(&str, &str); 4] = [
    (
        "good.toml",
        "listen_port = 9090\ncall_timeout = \"5s\"\ncount_time = true\n",
    ),
    (
        "good.yaml",
        "cfg_srv:\n  listen_port: 9090\n  call_timeout: 5s\n  count_time: true\n",
    ),
    (
        "good.json",
        "{\"listen_port\": 9090, \"call_timeout\": \"5s\", \"count_time\": true}",
    ),
    (
        "good.ini",
        "; Listen port; for server role\nlisten_port         = 9090\n; Is count cost time or not\ncount_time          = true\ncall_timeout        = 5s\n",
    ),
];

#[test]
fn config_check_accepts_a_good_file_in_every_format() {
    for (name, text) in GOOD {
        let file = TempFile::new(name, text);
        let mut args = vec!["config", "check", file.path()];
        if name.ends_with(".yaml") {
            args.extend(["--section", "cfg_srv"]);
        }
        let out = run(&args, &[]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("ok (3 of {} keys set)", erpc::PeerConfig::KEYS.len())),
            "{name}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn config_check_refuses_a_bad_file_naming_the_field_and_the_line() {
    for (name, text, line) in [
        ("bad.toml", "listen_port = 9090\n\ncall_timeout = \"5x\"\n", 3),
        ("bad.yaml", "listen_port: 9090\ncall_timeout: 5x\n", 2),
        (
            "bad.json",
            "{\n  \"listen_port\": 9090,\n  \"call_timeout\": \"5x\"\n}",
            3,
        ),
        ("bad.ini", "listen_port = 9090\ncall_timeout = 5x\n", 2),
    ] {
        let file = TempFile::new(name, text);
        let out = run(&["config", "check", file.path()], &[]);
        assert!(!out.status.success(), "{name}: a bad file must fail the check");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "{}:{line}: call_timeout: invalid duration \"5x\"",
                file.path()
            )),
            "{name}: {err}"
        );
    }
    let file = TempFile::new("typo.toml", "listen_port = 9090\nidle_timout = \"5m\"\n");
    let out = run(&["config", "check", file.path()], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:2: idle_timout: unknown key", file.path())) && err.contains("idle_timeout"),
        "{err}"
    );
    // validate()'s cross-field rules are part of the check.
    let file = TempFile::new("small.yaml", "max_message_size: 10\n");
    let out = run(&["config", "check", file.path()], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("{}:1: max_message_size: 10 bytes", file.path())),
        "{}",
        stderr(&out)
    );
    // The environment does not change what a file check says.
    let file = TempFile::new("fine.toml", "listen_port = 9090\n");
    let out = run(&["config", "check", file.path()], &[("ERPC_LISTEN_PORT", "http")]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `erpc serve` with `env`, once it listens.
fn serve(env: &[(&str, &str)]) -> (Child, String) {
    let mut child = erpc(&["serve", "--listen", "127.0.0.1:0", "--push-interval", "0"], env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = common::listening_addr(&mut child);
    (child, addr)
}

#[test]
fn serve_and_call_take_erpc_variables_and_flags_beat_them() {
    let (mut server, addr) = serve(&[("ERPC_MAX_MESSAGE_SIZE", "1024")]);
    let big = "x".repeat(2000);
    // The client's limit is the library's: the server's, from its environment, refuses.
    let out = run(&["call", "--codec", "plain", &addr, "/echo/parrot", &big], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("code=102"), "{}", stderr(&out));
    // A plain body needs the plain codec: from the environment…
    let plain = [("ERPC_DEFAULT_BODY_CODEC", "plain")];
    let out = run(&["call", &addr, "/echo/parrot", "small"], &plain);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "small");
    // …unless a flag says otherwise.
    let out = run(&["call", "--codec", "json", &addr, "/echo/parrot", "small"], &plain);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("BODY is not valid JSON"), "{}", stderr(&out));
    let _ = server.kill();
    let _ = server.wait();

    // A bad variable stops a command before it starts, naming the variable.
    let out = run(&["serve"], &[("ERPC_MAX_MESSAGE_SIZE", "10")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("env ERPC_MAX_MESSAGE_SIZE: max_message_size: 10 bytes"),
        "{}",
        stderr(&out)
    );
    let out = run(&["call", "127.0.0.1:1", "/x"], &[("ERPC_CALL_TIMOUT", "5s")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ERPC_CALL_TIMOUT"), "{}", stderr(&out));
}
