//! The peer options every command that opens a peer takes (`--config FILE` and the common
//! limits), and the one function that turns them into the `PeerConfig` the peer runs with.
//!
//! Precedence, lowest first (erpc's `ConfigLoader` layers): the library's defaults changed by
//! the command (`erpc serve` closes idle sessions after 5 minutes; `erpc call` gives up after
//! 10 s), the keys the file sets, the `ERPC_` environment variables, the common flags here,
//! the command's own flags (`--network`, `--timeout`, …). Only what a layer names changes:
//! `idle_timeout = "0s"` in a file turns `serve`'s idle timeout off, while a file without the
//! key leaves it on, and a flag not given changes nothing.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use erpc::Session;
use erpc::config::{ConfigLoader, Network, duration};
use erpc::heartbeat::{Ping, Pong};
use erpc::message::Message;
use erpc::plugin::{ACCEPT_SECURE_KEY, AuthInfo, Bearer, Checker, HookResult, Plugin, SECURE_KEY, Secure, SecureMode};
use erpc::{CodecId, PeerBuilder, PeerConfig, Status};
use serde_json::Value;

use crate::CliError;

// Per flag rather than `next_help_heading`, which would carry over to the flags after them.
const HEADING: &str = "Peer options";

/// `--config FILE` and the flags for the most common `PeerConfig` fields.
#[derive(Args, Debug, Clone, Default)]
pub struct PeerArgs {
    /// Peer configuration, .toml, .yaml, .yml, .json or .ini: any `PeerConfig` key (see
    /// docs/CONFIGURATION.md); ERPC_* environment variables and the flags override it.
    #[arg(long = "config", value_name = "FILE", help_heading = HEADING)]
    pub file: Option<PathBuf>,
    /// Read the peer's keys from this top-level section of the --config file (Go's files
    /// have one per struct, e.g. cfg_srv).
    #[arg(long = "config-section", value_name = "NAME", requires = "file", help_heading = HEADING)]
    pub section: Option<String>,
    /// Close a session that has read no message for this long, e.g. 30s or 5m; 0: never.
    /// [default: 5m for serve, never for the other commands]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = HEADING)]
    pub idle_timeout: Option<Duration>,
    /// Largest message accepted or sent, in bytes. [default: 16777216]
    #[arg(long, value_name = "BYTES", help_heading = HEADING)]
    pub max_message_size: Option<usize>,
    /// Most sessions held at once; more connections are closed when accepted. 0: no limit.
    /// [default: 0]
    #[arg(long, value_name = "N", help_heading = HEADING)]
    pub max_sessions: Option<usize>,
    /// With --network ws or wss: the WebSocket endpoint path (a client sends it with any
    /// query string, e.g. /erpc?token=abc). [default: /]
    #[arg(long, value_name = "PATH", help_heading = HEADING)]
    pub ws_path: Option<String>,
    /// Connection authentication, as Go eRPC's auth plugins do it: `serve` lets in only
    /// clients that present TOKEN; the other commands present it. Plain text, compared
    /// exactly; the verdict is `pass`.
    #[arg(long, value_name = "TOKEN", help_heading = HEADING)]
    pub auth: Option<String>,
    /// Ping the other end every SECS seconds of quiet (at least 3) and close the session if
    /// it does not answer, as Go eRPC's heartbeat does. `serve` always answers pings.
    #[arg(long, value_name = "SECS", help_heading = HEADING)]
    pub heartbeat: Option<u64>,
    /// Encrypt bodies with this key (16, 24 or 32 bytes; 32 for `--secure-mode aead`), as Go
    /// eRPC's secure plugin does: clients encrypt every call and push and ask for encrypted
    /// replies; `serve` decrypts them and answers in kind.
    #[arg(long, value_name = "KEY", help_heading = HEADING)]
    pub secure: Option<String>,
    /// `go` (AES-ECB, Go-compatible, no integrity) or `aead` (AES-256-GCM, erpc only).
    #[arg(long, value_name = "MODE", default_value = "go", value_parser = parse_secure_mode, help_heading = HEADING)]
    pub secure_mode: SecureModeArg,
}

/// Marks every call and push for encryption, and asks for encrypted replies (`--secure`).
struct MarkSecure;

impl Plugin for MarkSecure {
    fn name(&self) -> &str {
        "mark-secure"
    }
    fn observes_writes(&self) -> bool {
        false
    }
    fn pre_write_call(&self, _: &Session, message: &mut Message) -> HookResult {
        message.meta.set(SECURE_KEY, "true");
        message.meta.set(ACCEPT_SECURE_KEY, "true");
        Ok(())
    }
    fn pre_write_push(&self, _: &Session, message: &mut Message) -> HookResult {
        message.meta.set(SECURE_KEY, "true");
        Ok(())
    }
}

/// `--secure-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecureModeArg(pub SecureMode);

impl Default for SecureModeArg {
    fn default() -> Self {
        SecureModeArg(SecureMode::Go)
    }
}

fn parse_secure_mode(text: &str) -> Result<SecureModeArg, String> {
    match text {
        "go" => Ok(SecureModeArg(SecureMode::Go)),
        "aead" => Ok(SecureModeArg(SecureMode::Aead)),
        other => Err(format!("{other:?}: use go or aead")),
    }
}

impl PeerArgs {
    /// The layers of a command's configuration, all but its own flags: `defaults` (the
    /// command's, reported as `"{program} default"`), the file, the environment, the common
    /// flags given.
    pub fn loader(&self, program: &str, defaults: &PeerConfig) -> Result<ConfigLoader, CliError> {
        let mut loader = ConfigLoader::new().preset(program, defaults);
        if let Some(path) = &self.file {
            let with_file = match &self.section {
                Some(section) => loader.file_section(path, section),
                None => loader.file(path),
            };
            loader = with_file.map_err(|e| CliError::Usage(e.to_string()))?;
        }
        loader = loader.env();
        if let Some(idle) = self.idle_timeout {
            loader = loader.set_duration("idle_timeout", idle, "--idle-timeout");
        }
        if let Some(size) = self.max_message_size {
            loader = loader.set("max_message_size", size, "--max-message-size");
        }
        if let Some(n) = self.max_sessions {
            loader = loader.set("max_sessions", n, "--max-sessions");
        }
        if let Some(path) = &self.ws_path {
            loader = loader.set("ws_path", path, "--ws-path");
        }
        Ok(loader)
    }

    /// The configuration to run with: [`loader`](Self::loader)'s layers, then the command's
    /// own flags (`command_flags`), checked with `PeerConfig::validate`. Every way a command
    /// builds its peer goes through here.
    pub fn resolve(
        &self,
        program: &str,
        defaults: PeerConfig,
        command_flags: impl FnOnce(ConfigLoader) -> ConfigLoader,
    ) -> Result<PeerConfig, CliError> {
        command_flags(self.loader(program, &defaults)?)
            .load()
            .map_err(|e| CliError::Usage(e.to_string()))
    }

    /// The same options as arguments of a child `erpc serve` (which `erpc bench` starts).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(path) = &self.file {
            args.extend(["--config".into(), path.display().to_string()]);
        }
        if let Some(section) = &self.section {
            args.extend(["--config-section".into(), section.clone()]);
        }
        if let Some(idle) = self.idle_timeout {
            args.extend(["--idle-timeout".into(), duration::format(idle)]);
        }
        if let Some(size) = self.max_message_size {
            args.extend(["--max-message-size".into(), size.to_string()]);
        }
        if let Some(n) = self.max_sessions {
            args.extend(["--max-sessions".into(), n.to_string()]);
        }
        if let Some(path) = &self.ws_path {
            args.extend(["--ws-path".into(), path.clone()]);
        }
        if let Some(token) = &self.auth {
            args.extend(["--auth".into(), token.clone()]);
        }
        if let Some(secs) = self.heartbeat {
            args.extend(["--heartbeat".into(), secs.to_string()]);
        }
        if let Some(key) = &self.secure {
            args.extend(["--secure".into(), key.clone()]);
        }
        if self.secure_mode.0 == SecureMode::Aead {
            args.extend(["--secure-mode".into(), "aead".into()]);
        }
        args
    }

    /// The plugins a serving peer gets from these options: the heartbeat's answering side
    /// always, the auth checker with `--auth`, a pinger with `--heartbeat`, the secure plugin
    /// with `--secure`.
    pub fn server_plugins(&self, builder: PeerBuilder) -> Result<PeerBuilder, CliError> {
        let mut builder = self.pinger(builder.with(Pong::new()));
        if let Some(secure) = self.secure()? {
            builder = builder.plugin(secure);
        }
        if let Some(token) = self.auth.clone() {
            builder = builder.plugin(
                Checker::new(move |presented: String, _: AuthInfo| {
                    let passed = presented == token;
                    async move {
                        if passed {
                            Ok("pass")
                        } else {
                            Err(Status::with_cause(403, "auth fail", "wrong token"))
                        }
                    }
                })
                .codec(CodecId::PLAIN),
            );
        }
        Ok(builder)
    }

    /// The secure plugin, with `--secure`.
    fn secure(&self) -> Result<Option<Secure>, CliError> {
        let Some(key) = &self.secure else { return Ok(None) };
        Secure::new(self.secure_mode.0, 600, key.as_bytes())
            .map(Some)
            .map_err(|e| CliError::Usage(format!("--secure: {e}")))
    }

    /// A pinger, with `--heartbeat`.
    fn pinger(&self, builder: PeerBuilder) -> PeerBuilder {
        match self.heartbeat {
            Some(secs) => builder.plugin(Ping::new(Duration::from_secs(secs), true)),
            None => builder,
        }
    }

    /// The plugins a dialing peer gets from these options: the auth bearer with `--auth`, a
    /// pinger with `--heartbeat`, the secure plugin (with every call and push marked secure)
    /// with `--secure`.
    pub fn client_plugins(&self, builder: PeerBuilder) -> Result<PeerBuilder, CliError> {
        let mut builder = self.pinger(builder);
        if let Some(secure) = self.secure()? {
            builder = builder.plugin(MarkSecure).plugin(secure);
        }
        if let Some(token) = self.auth.clone() {
            builder = builder.plugin(
                Bearer::new(move || {
                    let token = token.clone();
                    async move { Ok::<_, Status>(token) }
                })
                .codec(CodecId::PLAIN),
            );
        }
        Ok(builder)
    }
}

/// Durations as Go writes them: `500ms`, `30s`, `5m`, `1h30m`; `0` is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s)
}

/// The networks `--network` takes.
const AVAILABLE: &str = "tcp, tcp4, tcp6, unix, unixpacket, kcp (or udp), udp4, udp6, quic, ws or wss";

/// A network this build can use, by its config name.
pub fn parse_network(s: &str) -> Result<Network, String> {
    let network: Network = serde_json::from_value(Value::String(s.to_string()))
        .map_err(|_| format!("unknown network {s:?}; use {AVAILABLE}"))?;
    if !network.is_available() {
        return Err(format!("network {s:?} is not available yet; use {AVAILABLE}"));
    }
    Ok(network)
}

/// A network's config name (`tcp`, `unix`…), as printed in `listening on` lines.
pub fn network_name(network: Network) -> String {
    match serde_json::to_value(network) {
        Ok(Value::String(name)) => name,
        _ => format!("{network:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config file in a fresh directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> TempFile {
            let dir = std::env::temp_dir().join(format!("erpc-cli-peer-args-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    fn with_file(file: &TempFile) -> PeerArgs {
        PeerArgs {
            file: Some(file.0.clone()),
            ..PeerArgs::default()
        }
    }

    #[test]
    fn defaults_then_file_then_flags_then_command_flags() {
        let file = TempFile::new(
            "layers.toml",
            "max_message_size = 4096\nmax_sessions = 7\nredial_times = 2\n",
        );
        // Defaults alone.
        let config = PeerArgs::default()
            .resolve("erpc serve", crate::serve::defaults(), |l| l)
            .unwrap();
        assert_eq!(config, crate::serve::defaults());
        // The file over the defaults: what it names changes, the rest keeps the command's.
        let config = with_file(&file)
            .resolve("erpc serve", crate::serve::defaults(), |l| l)
            .unwrap();
        assert_eq!(
            (config.max_message_size, config.max_sessions, config.redial_times),
            (4096, 7, 2)
        );
        assert_eq!(config.idle_timeout, Duration::from_secs(300));
        assert_eq!(config.call_timeout, PeerConfig::default().call_timeout);
        // Flags over the file.
        let args = PeerArgs {
            max_message_size: Some(100_000),
            idle_timeout: Some(Duration::from_secs(30)),
            ..with_file(&file)
        };
        let config = args.resolve("erpc serve", crate::serve::defaults(), |l| l).unwrap();
        assert_eq!(
            (config.max_message_size, config.max_sessions, config.idle_timeout),
            (100_000, 7, Duration::from_secs(30))
        );
        // The command's own flags last.
        let config = args
            .resolve("erpc serve", crate::serve::defaults(), |l| {
                l.set("max_sessions", 1, "--own")
            })
            .unwrap();
        assert_eq!(config.max_sessions, 1);
    }

    #[test]
    fn a_file_that_sets_the_idle_timeout_beats_serves_default() {
        // serve turns on what the library (like Go) leaves off.
        assert_eq!(PeerConfig::default().idle_timeout, Duration::ZERO);
        assert_eq!(crate::serve::defaults().idle_timeout, Duration::from_secs(300));
        for (name, text) in [
            ("off.toml", "idle_timeout = \"0s\"\n"),
            ("off.yaml", "idle_timeout: 0\n"),
            ("short.yml", "idle_timeout: 45s\n"),
        ] {
            let file = TempFile::new(name, text);
            let config = with_file(&file)
                .resolve("erpc serve", crate::serve::defaults(), |l| l)
                .unwrap();
            let want = if name.starts_with("off") {
                Duration::ZERO
            } else {
                Duration::from_secs(45)
            };
            assert_eq!(config.idle_timeout, want, "{name}");
        }
        // `--idle-timeout 0` turns it off over a file that sets it.
        let file = TempFile::new("on.toml", "idle_timeout = \"1m\"\n");
        let args = PeerArgs {
            idle_timeout: Some(Duration::ZERO),
            ..with_file(&file)
        };
        assert_eq!(
            args.resolve("erpc serve", crate::serve::defaults(), |l| l)
                .unwrap()
                .idle_timeout,
            Duration::ZERO
        );
    }

    #[test]
    fn bad_files_say_which_file_and_what_is_wrong() {
        let cases = [
            ("type.toml", "max_sessions = \"many\"\n", "max_sessions"),
            ("syntax.toml", "max_sessions = \n", "syntax.toml"),
            ("typo.yaml", "idle_timout: 5m\n", "idle_timout"),
            ("list.yaml", "- 1\n", "list.yaml"),
            ("small.toml", "max_message_size = 10\n", "max_message_size"),
            ("codec.yml", "default_body_codec: yaml\n", "default_body_codec"),
            ("duration.toml", "idle_timeout = \"5 minutes\"\n", "5 minutes"),
        ];
        for (name, text, mentions) in cases {
            let file = TempFile::new(name, text);
            let err = match with_file(&file).resolve("erpc", PeerConfig::default(), |l| l) {
                Err(CliError::Usage(msg)) => msg,
                other => panic!("{name}: expected a usage error, got {other:?}"),
            };
            assert!(err.contains(name), "{name}: {err}");
            assert!(err.contains(mentions), "{name}: {err}");
        }
        let missing = PeerArgs {
            file: Some("/nonexistent/erpc.toml".into()),
            ..PeerArgs::default()
        };
        let err = format!(
            "{:?}",
            missing.resolve("erpc", PeerConfig::default(), |l| l).unwrap_err()
        );
        assert!(err.contains("/nonexistent/erpc.toml"), "{err}");
    }

    #[test]
    fn an_empty_file_keeps_the_defaults() {
        for name in ["empty.toml", "empty.yaml"] {
            let file = TempFile::new(name, "");
            let config = with_file(&file)
                .resolve("erpc serve", crate::serve::defaults(), |l| l)
                .unwrap();
            assert_eq!(config, crate::serve::defaults(), "{name}");
        }
    }

    /// The sample in examples/ loads, and documents every field (so a new field is noticed).
    #[test]
    fn the_sample_config_loads_and_names_every_field() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/erpc.toml");
        let args = PeerArgs {
            file: Some(path.clone()),
            ..PeerArgs::default()
        };
        let config = args.resolve("erpc", PeerConfig::default(), |l| l).unwrap();
        assert_eq!(config.idle_timeout, Duration::from_secs(300));
        let text = std::fs::read_to_string(&path).unwrap();
        for key in PeerConfig::KEYS {
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches(['#', ' ']).starts_with(&format!("{key} ="))),
                "examples/erpc.toml does not mention {key}"
            );
        }
    }

    #[test]
    fn forwarded_args_read_back_the_same() {
        let args = PeerArgs {
            file: Some("peer.yaml".into()),
            idle_timeout: Some(Duration::from_millis(1500)),
            max_message_size: Some(65536),
            max_sessions: Some(3),
            section: Some("cfg_srv".into()),
            ws_path: Some("/erpc?token=1".into()),
            auth: Some("s3cret".into()),
            heartbeat: Some(5),
            secure: Some("cipherkey1234567".into()),
            secure_mode: SecureModeArg(SecureMode::Aead),
        };
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            peer: PeerArgs,
        }
        let argv = std::iter::once("erpc".to_string()).chain(args.to_args());
        let parsed = <Wrapper as clap::Parser>::try_parse_from(argv).unwrap().peer;
        assert_eq!(format!("{parsed:?}"), format!("{args:?}"));
    }
}
