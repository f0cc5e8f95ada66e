//! The loader: every format, the layers' order, where values came from, and errors that say
//! which key, where.

use std::time::Duration;

use super::*;

/// A Go peer's configuration as `ini.SyncINI` writes it: `; comment` lines from the struct's
/// tags, `=` aligned on the longest key, durations as `Duration.String()`.
const GO_WRITTEN_INI: &str = "\
; Network; tcp, tcp4, tcp6, unix, unixpacket, kcp or quic
network             = tcp
; Local IP
local_ip            = 0.0.0.0
; Local port; for client role
local_port          = 0
; Listen port; for server role
listen_port         = 9090
; Maximum duration for dialing; for client role; ns,µs,ms,s,m,h
dial_timeout        = 0s
; The maximum times of attempts to redial, after the connection has been unexpectedly broken; Unlimited when <0; for client role
redial_times        = 3
; Interval of redialing each time, default 100ms; for client role; ns,µs,ms,s,m,h
redial_interval     = 100ms
; Default body codec type id
default_body_codec  = json
; Default session max age, if less than or equal to 0, no time limit; ns,µs,ms,s,m,h
default_session_age = 0s
; Default CALL or PUSH context max age, if less than or equal to 0, no time limit; ns,µs,ms,s,m,h
default_context_age = 1m0s
; Slow operation alarm threshold; ns,µs,ms,s ...
slow_comet_duration = 500ms
; Is print body and metadata or not
print_detail        = false
; Is count cost time or not
count_time          = true
";

/// What `GO_WRITTEN_INI` says.
fn go_written() -> PeerConfig {
    PeerConfig {
        listen_port: 9090,
        redial_times: 3,
        default_context_age: Duration::from_secs(60),
        slow_comet_duration: Duration::from_millis(500),
        count_time: true,
        ..PeerConfig::default()
    }
}

fn load(format: Format, text: &str) -> Result<Explained, ConfigError> {
    ConfigLoader::new().text(format, "peer", text, None)?.explain()
}

fn error_text(result: Result<impl std::fmt::Debug, ConfigError>) -> String {
    result.expect_err("the configuration must be refused").to_string()
}

#[test]
fn an_ini_file_written_by_go_loads() {
    let explained = load(Format::Ini, GO_WRITTEN_INI).unwrap();
    assert_eq!(explained.config, go_written());
    assert_eq!(
        explained.origin("listen_port"),
        Some(&Origin::File {
            path: "peer".into(),
            line: Some(8)
        })
    );
    // In a section of a bigger file, as a Go struct holding the config writes it.
    let sectioned = format!("[other]\nname = x\n\n[cfg_srv]\n{GO_WRITTEN_INI}");
    let config = ConfigLoader::new()
        .text(Format::Ini, "go.ini", &sectioned, Some("cfg_srv"))
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(config, go_written());
    // Go's other spellings: a [DEFAULT] header, `:` for `=`, backquotes, quotes, yes/on booleans,
    // durations as integers of nanoseconds, inline comments.
    let config = load(
        Format::Ini,
        "[DEFAULT]\nws_path = `/erpc;v1`\nlocal_ip: \"127.0.0.1\"\nnodelay = off\nreuse_port = yes\ndial_timeout = 1500000000\nlisten_port = 7070 ; inline\n",
    )
    .unwrap()
    .config;
    assert_eq!(config.ws_path, "/erpc;v1");
    assert_eq!(config.local_ip, "127.0.0.1");
    assert!(!config.nodelay && config.reuse_port);
    assert_eq!(config.dial_timeout, Duration::from_millis(1500));
    assert_eq!(config.listen_port, 7070);
}

#[test]
fn every_format_reads_the_same_keys_and_finds_their_lines() {
    let texts = [
        (
            Format::Toml,
            "network = \"tcp\"\nlisten_port = 9090\nredial_times = 3\ndefault_context_age = \"1m\"\nslow_comet_duration = \"500ms\"\ncount_time = true\n",
        ),
        (
            Format::Yaml,
            "network: tcp\nlisten_port: 9090\nredial_times: 3\ndefault_context_age: 1m\nslow_comet_duration: 500ms\ncount_time: true\n",
        ),
        (
            Format::Json,
            "{\n  \"network\": \"tcp\",\n  \"listen_port\": 9090,\n  \"redial_times\": 3,\n  \"default_context_age\": \"1m\",\n  \"slow_comet_duration\": 500000000,\n  \"count_time\": true\n}\n",
        ),
        (
            Format::Ini,
            "network = tcp\nlisten_port = 9090\nredial_times = 3\ndefault_context_age = 1m\nslow_comet_duration = 500ms\ncount_time = true\n",
        ),
    ];
    for (format, text) in texts {
        let explained = load(format, text).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(explained.config, go_written(), "{format:?}");
        // JSON's first key is on line 2, after the brace.
        let first = if format == Format::Json { 2 } else { 1 };
        for (key, line) in [
            ("network", first),
            ("redial_times", first + 2),
            ("count_time", first + 5),
        ] {
            assert_eq!(
                explained.origin(key),
                Some(&Origin::File {
                    path: "peer".into(),
                    line: Some(line)
                }),
                "{format:?} {key}"
            );
        }
        assert_eq!(explained.origin("call_timeout"), Some(&Origin::Default), "{format:?}");
    }
}

#[test]
fn sections_of_every_format() {
    for (format, text, section_line, line) in [
        (
            Format::Toml,
            "[cfg_cli]\nlisten_port = 1\n\n[cfg_srv]\nlisten_port = 9090\n",
            4,
            5,
        ),
        (
            Format::Yaml,
            "cfg_cli:\n  listen_port: 1\ncfg_srv:\n  count_time: true\n  listen_port: 9090\n",
            3,
            5,
        ),
        (
            Format::Json,
            "{\"cfg_cli\": {\"listen_port\": 1},\n \"cfg_srv\": {\n   \"listen_port\": 9090}}",
            2,
            3,
        ),
        (
            Format::Ini,
            "[cfg_cli]\nlisten_port = 1\n[cfg_srv]\nlisten_port = 9090\n",
            3,
            4,
        ),
    ] {
        let explained = ConfigLoader::new()
            .text(format, "f", text, Some("cfg_srv"))
            .and_then(|l| l.explain())
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(explained.config.listen_port, 9090, "{format:?}");
        assert_eq!(
            explained.origin("listen_port"),
            Some(&Origin::File {
                path: "f".into(),
                line: Some(line)
            }),
            "{format:?}"
        );
        let missing = ConfigLoader::new().text(format, "f", text, Some("nope"));
        assert!(matches!(missing, Err(ConfigError::MissingSection { .. })), "{format:?}");
        // Without the section's name, the section is an unknown key that says what to do.
        let err = error_text(load(format, text));
        assert!(
            err.contains(&format!(
                "peer:{section_line}: cfg_srv: unknown key, and it holds a table"
            )),
            "{format:?}: {err}"
        );
    }
}

#[test]
fn the_environment_overrides_the_file_and_flags_override_both() {
    let file = "listen_port = 9090\ncall_timeout = \"20s\"\nmax_sessions = 10\n";
    let env = [
        ("ERPC_CALL_TIMEOUT", "5s"),
        ("ERPC_MAX_SESSIONS", "20"),
        ("ERPC_PRINT_DETAIL", "true"),
        ("ERPC_KEEPALIVE", "15s"),
        ("ERPC_NETWORK", "tcp6"),
        ("ERPC_READ_BUFFER_SIZE", "262144"),
        ("ERPC_REDIAL_TIMES", "-1"),
        ("ERPC_LOCAL_IP", ""), // empty: unset
        ("PATH", "/bin"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let explained = ConfigLoader::new()
        .preset(
            "erpc serve",
            &PeerConfig {
                idle_timeout: Duration::from_secs(300),
                ..PeerConfig::default()
            },
        )
        .text(Format::Toml, "erpc.toml", file, None)
        .unwrap()
        .env_vars(env)
        .set("max_sessions", 30, "--max-sessions")
        .explain()
        .unwrap();
    let c = &explained.config;
    assert_eq!(c.listen_port, 9090);
    assert_eq!(c.call_timeout, Duration::from_secs(5));
    assert_eq!(c.max_sessions, 30);
    assert!(c.print_detail);
    assert_eq!(c.keepalive, Some(Duration::from_secs(15)));
    assert_eq!(c.network, Network::Tcp6);
    assert_eq!((c.read_buffer_size, c.redial_times), (Some(262144), -1));
    assert_eq!(c.local_ip, "0.0.0.0");
    assert_eq!(c.idle_timeout, Duration::from_secs(300));
    let origin = |key| explained.origin(key).unwrap().to_string();
    assert_eq!(origin("listen_port"), "erpc.toml:1");
    assert_eq!(origin("call_timeout"), "env ERPC_CALL_TIMEOUT");
    assert_eq!(origin("max_sessions"), "flag --max-sessions");
    assert_eq!(origin("idle_timeout"), "erpc serve default");
    assert_eq!(origin("local_ip"), "default");
    assert_eq!(explained.origins.len(), PeerConfig::KEYS.len());
}

#[test]
fn a_preset_claims_only_what_it_changes() {
    let explained = ConfigLoader::new()
        .preset(
            "erpc call",
            &PeerConfig {
                call_timeout: Duration::from_secs(10),
                ..PeerConfig::default()
            },
        )
        .explain()
        .unwrap();
    assert_eq!(
        explained.origin("call_timeout"),
        Some(&Origin::Preset("erpc call".into()))
    );
    assert_eq!(explained.origin("dial_timeout"), Some(&Origin::Default));
}

#[test]
fn bad_values_name_the_key_and_the_line_in_every_format() {
    for (format, text, want) in [
        (
            Format::Toml,
            "listen_port = 1\ncall_timeout = \"5x\"\n",
            "peer:2: call_timeout: invalid duration \"5x\"",
        ),
        (
            Format::Yaml,
            "listen_port: 1\ncall_timeout: 5x\n",
            "peer:2: call_timeout: invalid duration \"5x\"",
        ),
        (
            Format::Json,
            "{\"listen_port\": 1,\n\"call_timeout\": \"5x\"}",
            "peer:2: call_timeout: invalid duration \"5x\"",
        ),
        (
            Format::Ini,
            "listen_port = 1\ncall_timeout = 5x\n",
            "peer:2: call_timeout: invalid duration \"5x\"",
        ),
        (
            Format::Toml,
            "\n\nmax_sessions = \"many\"\n",
            "peer:3: max_sessions: invalid type: found string \"many\"",
        ),
        (Format::Ini, "nodelay = maybe\n", "peer:1: nodelay: invalid type"),
        (Format::Yaml, "network: carrier-pigeon\n", "peer:1: network: "),
        (Format::Yaml, "listen_port: 70000\n", "peer:1: listen_port: "),
    ] {
        let err = error_text(load(format, text));
        assert!(err.starts_with(want), "{format:?} {text:?}: {err}");
    }
    // Every bad value is told, not only the first.
    let err = error_text(load(Format::Toml, "call_timeout = \"5x\"\nmax_sessions = -1\n"));
    assert!(
        err.contains("peer:1: call_timeout") && err.contains("peer:2: max_sessions"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_refused_with_the_line_and_the_valid_keys() {
    for (format, text, line) in [
        (Format::Toml, "listen_port = 1\nidle_timout = \"5m\"\n", 2),
        (Format::Yaml, "listen_port: 1\nidle_timout: 5m\n", 2),
        (Format::Json, "{\"listen_port\": 1,\n \"idle_timout\": \"5m\"}", 2),
        (Format::Ini, "listen_port = 1\nidle_timout = 5m\n", 2),
    ] {
        let err = error_text(load(format, text));
        assert!(
            err.starts_with(&format!(
                "peer:{line}: idle_timout: unknown key; the keys are: network, local_ip"
            )),
            "{format:?}: {err}"
        );
        assert!(err.contains("idle_timeout"), "{err}");
    }
    let err = error_text(ConfigLoader::new().set("idle_timout", "5m", "--x").load());
    assert!(err.starts_with("flag --x: idle_timout: unknown key"), "{err}");
}

#[test]
fn syntax_errors_give_the_line() {
    for (format, text, want) in [
        (
            Format::Toml,
            "listen_port = 1\nmax_sessions = \n",
            "peer:2: invalid TOML",
        ),
        (Format::Yaml, "listen_port: 1\nmax_sessions: [\n", "peer:"),
        (Format::Json, "{\"listen_port\": 1,\n\n}", "peer:3: invalid JSON"),
        (Format::Ini, "listen_port = 1\n[cfg_srv", "peer:2: invalid INI"),
    ] {
        let err = error_text(load(format, text));
        assert!(err.starts_with(want), "{format:?}: {err}");
    }
    for (format, text) in [(Format::Yaml, "- 1\n"), (Format::Json, "[1]"), (Format::Toml, "")] {
        let result = load(format, text);
        if format == Format::Toml {
            assert_eq!(
                result.unwrap().config,
                PeerConfig::default(),
                "an empty file sets nothing"
            );
        } else {
            assert!(error_text(result).contains("must be a mapping"), "{format:?}");
        }
    }
}

#[test]
fn environment_variables_are_checked_by_name_and_value() {
    let vars = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let err = error_text(ConfigLoader::new().env_vars(vars(&[("ERPC_CALL_TIMOUT", "5s")])).load());
    assert!(
        err.starts_with("env ERPC_CALL_TIMOUT: call_timout: no such key") && err.contains("ERPC_CALL_TIMEOUT"),
        "{err}"
    );
    let err = error_text(
        ConfigLoader::new()
            .env_vars(vars(&[("ERPC_LISTEN_PORT", "http")]))
            .load(),
    );
    assert!(
        err.starts_with("env ERPC_LISTEN_PORT: listen_port: invalid type"),
        "{err}"
    );
    // The rule is exact: capitals only.
    let err = error_text(ConfigLoader::new().env_vars(vars(&[("ERPC_Listen_Port", "1")])).load());
    assert!(err.contains("ERPC_Listen_Port"), "{err}");
    assert_eq!(env_name("call_timeout"), "ERPC_CALL_TIMEOUT");
}

#[test]
fn validate_still_applies_and_names_the_origin() {
    let err = error_text(
        ConfigLoader::new()
            .text(Format::Yaml, "peer.yaml", "default_body_codec: yaml\n", None)
            .unwrap()
            .load(),
    );
    assert!(
        err.starts_with("peer.yaml:1: default_body_codec: \"yaml\" is not a registered codec"),
        "{err}"
    );
    let err = error_text(
        ConfigLoader::new()
            .set("max_message_size", 10, "--max-message-size")
            .load(),
    );
    assert!(
        err.starts_with("flag --max-message-size: max_message_size: 10 bytes"),
        "{err}"
    );
    // extract() types the values but leaves the cross-field rules to the caller.
    let config = ConfigLoader::new()
        .set("max_message_size", 10, "code")
        .extract()
        .unwrap()
        .config;
    assert_eq!(config.max_message_size, 10);
}

#[test]
fn keys_are_exactly_the_serialised_fields() {
    let serialised = serde_json::to_value(PeerConfig::default()).unwrap();
    let mut fields: Vec<&str> = serialised.as_object().unwrap().keys().map(String::as_str).collect();
    let mut keys = PeerConfig::KEYS.to_vec();
    fields.sort_unstable();
    keys.sort_unstable();
    assert_eq!(keys, fields);
}

#[test]
fn a_configuration_round_trips_through_every_layer_kind() {
    let config = PeerConfig {
        keepalive: Some(Duration::from_secs(7)),
        read_buffer_size: Some(4096),
        network: Network::Unix,
        redial_times: -1,
        ..PeerConfig::default()
    };
    let explained = ConfigLoader::new().preset("p", &config).explain().unwrap();
    assert_eq!(explained.config, config);
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(load(Format::Json, &json).unwrap().config, config);
}

#[test]
fn deeply_nested_yaml_is_refused_at_once() {
    let started = std::time::Instant::now();
    let text = format!("listen_port: 1\nkeepalive: {}", "[".repeat(200_000));
    let err = error_text(load(Format::Yaml, &text));
    assert!(
        err.starts_with("peer:2: invalid YAML: lists or maps nested deeper than 128"),
        "{err}"
    );
    // A quoted or commented bracket is not nesting.
    let text = format!("ws_path: \"{}\" # {}\n", "[".repeat(300), "{".repeat(300));
    assert_eq!(load(Format::Yaml, &text).unwrap().config.ws_path, "[".repeat(300));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn files_over_a_mebibyte_are_refused() {
    let dir = std::env::temp_dir().join(format!("erpc-config-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.toml");
    std::fs::write(&path, format!("listen_port = 1\n{}", "#".repeat(1 << 20))).unwrap();
    let err = error_text(ConfigLoader::new().file(&path));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.contains("big.toml: larger than 1048576 bytes"), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Hostile text is refused or read, never a panic.
    #[test]
    fn any_text_in_any_format_is_refused_or_read(text in "\\PC{0,80}", which in 0usize..4) {
        let format = [Format::Toml, Format::Yaml, Format::Json, Format::Ini][which];
        let _ = load(format, &text);
        let _ = ConfigLoader::new().text(format, "f", &text, Some("s")).and_then(|l| l.explain());
    }
}
