//! [`PeerConfig`]: everything a peer is configured with, as a plain serde struct, and
//! [`ConfigLoader`], which builds one from layers (defaults, TOML/YAML/JSON/INI files, `ERPC_`
//! environment variables, flags) and tells where each value came from.
//!
//! The fields and defaults are Go eRPC's, under the same YAML and ini keys,
//! plus a few of ours (call timeout, size limit, socket options, shutdown timeout). Durations
//! are written as Go writes them (`100ms`, `1.5s`, `2h45m`) or as an integer of nanoseconds,
//! as Go's config loaders accept. Missing keys take their defaults. docs/CONFIGURATION.md
//! lists every key.
//!
//! ```
//! # #[cfg(feature = "toml")] {
//! use erpc::PeerConfig;
//! let config = PeerConfig::from_toml_str("listen_port = 9090\nredial_times = 3\nredial_interval = \"200ms\"").unwrap();
//! assert_eq!(config.listen_addr(), "0.0.0.0:9090");
//! assert_eq!(config.redial_interval(), std::time::Duration::from_millis(200));
//! # }
//! ```

pub mod duration;
mod env;
mod formats;
mod layer;
mod loader;
mod origin;
mod settings;

pub use env::{ENV_PREFIX, env_name};
pub use formats::Format;
pub use loader::{ConfigLoader, Explained};
pub use origin::{FieldError, Origin};
pub(crate) use settings::Settings;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::net::Network;

/// Why a configuration could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `default_body_codec` names no registered codec.
    #[error("default_body_codec {0:?} {reason}", reason = unknown_codec_reason(.0))]
    UnknownCodec(String),
    /// The network cannot be used by this build.
    #[error("network {0:?} {reason}", reason = .0.unavailable_reason())]
    UnavailableNetwork(Network),
    /// A value is out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid in its format, or not a mapping of keys.
    #[error("{}{}: {reason}", path.as_deref().unwrap_or("config"), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file, when loading one.
        path: Option<String>,
        /// The line at fault, when the parser says.
        line: Option<usize>,
        /// The parser's message.
        reason: String,
    },
    /// The file's extension names no format.
    #[error("config file {0} must end in .toml, .yaml, .yml, .json or .ini")]
    UnknownFormat(String),
    /// Keys that cannot be used: unknown keys, values of the wrong type, values
    /// [`PeerConfig::validate`] refuses; one line each, with where the value was written.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Fields(Vec<FieldError>),
    /// The file has no such top-level section.
    #[error("config file {path} has no section {section:?}")]
    MissingSection {
        /// The file.
        path: String,
        /// The section asked for.
        section: String,
    },
}

/// A peer's configuration. `PeerConfig::default()` is Go's default configuration plus the
/// limits Go lacks (meta size, handshake and frame timeouts), each chosen so that no honest
/// peer meets it; the README's "Where we differ from Go" lists them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerConfig {
    /// Transport of listeners and dials.
    pub network: Network,
    /// Local IP for listening and dialing (default `0.0.0.0`).
    pub local_ip: String,
    /// Local port used when dialing (0: any).
    pub local_port: u16,
    /// Port to listen on (0: a free one).
    pub listen_port: u16,
    /// Limit of one dial attempt (0: none).
    #[serde(with = "duration")]
    pub dial_timeout: Duration,
    /// Extra dial attempts, for the first dial and for redials after a lost connection
    /// (0: never redial; negative: without limit).
    pub redial_times: i32,
    /// Pause before each extra attempt (0 means 100 ms, as in Go).
    #[serde(with = "duration")]
    pub redial_interval: Duration,
    /// Codec of bodies that do not choose one, by name (default `json`).
    pub default_body_codec: String,
    /// Absolute lifetime of each session (0: unlimited); not an idle timeout.
    #[serde(with = "duration")]
    pub default_session_age: Duration,
    /// Time a handler may take before the call is answered `408` (0: unlimited).
    #[serde(with = "duration")]
    pub default_context_age: Duration,
    /// Calls slower than this are logged at WARN (needs `count_time`; 0: never).
    #[serde(with = "duration")]
    pub slow_comet_duration: Duration,
    /// Log meta and body of each message.
    pub print_detail: bool,
    /// Measure how long each message takes.
    pub count_time: bool,
    /// How long a caller waits for a reply before `408` (0: forever, discouraged: a peer that
    /// never answers then holds the call until the connection drops).
    #[serde(with = "duration")]
    pub call_timeout: Duration,
    /// How long a push may wait for room in the output queue (or for a redial) before it
    /// fails (none: the call timeout). A push is never waited on longer than this, so a peer
    /// that stops reading cannot stall the pusher.
    #[serde(with = "duration::option")]
    pub push_timeout: Option<Duration>,
    /// Largest message accepted or sent, in bytes; checked before anything is allocated. It
    /// also bounds a body or document after its transfer filters (gzip) are undone.
    pub max_message_size: usize,
    /// Most meta pairs one incoming message may carry (checked while decoding, after transfer
    /// filters, in every protocol); a message with more closes its session as malformed.
    pub max_meta_pairs: usize,
    /// Most bytes of meta one incoming message may carry, as written on the wire (the query
    /// text, or the header lines of httproto).
    pub max_meta_bytes: usize,
    /// Most accepted sessions a peer holds at once (0: no limit), counted from the accept
    /// (a TLS handshake in progress counts) until the session closes. Connections beyond it
    /// are closed as soon as they are accepted, before anything is read.
    pub max_sessions: usize,
    /// Most accepted sessions from one remote IP address (0: no limit).
    pub max_sessions_per_ip: usize,
    /// Limit of a connection's handshake: the TLS handshake and the PostAccept/PostDial
    /// hooks (authentication), separate from the call timeout (0: none). Over QUIC it bounds
    /// the QUIC handshake, then the hooks.
    #[serde(with = "duration")]
    pub handshake_timeout: Duration,
    /// A session that reads no complete message and writes nothing for this long is closed
    /// (0: never, as in Go; `erpc serve` sets 5 minutes). Heartbeats count as messages; a
    /// subscriber that only receives pushes is not idle (writes are noticed when the limit is
    /// checked, so such a session may outlive its last write by up to twice the limit). A QUIC listener also
    /// waits at most this long for a new connection's first message.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// A frame whose first byte has arrived must be complete within this time, or the session
    /// is closed: the guard against slowloris clients that dribble a frame (0: none).
    #[serde(with = "duration")]
    pub frame_timeout: Duration,
    /// Queue length of pending connections of each listener (0: the system's maximum,
    /// `net.core.somaxconn`, as Go does).
    pub listen_backlog: u32,
    /// `SO_REUSEPORT` on TCP (and WebSocket) listeners: several processes, or several peers
    /// in one process, listen on one port and the kernel spreads connections over them.
    /// erpc's answer to Go's evio mixer, whose point was an event-loop server (tokio already
    /// is one). Unix only; off by default.
    pub reuse_port: bool,
    /// `TCP_NODELAY` on TCP connections.
    pub nodelay: bool,
    /// TCP keep-alive period (none: the system's default). Over QUIC, the period of keep-alive
    /// PINGs (none: 15 s, as Go's QUIC listener).
    #[serde(with = "duration::option")]
    pub keepalive: Option<Duration>,
    /// Socket receive buffer size (none: the system's default).
    pub read_buffer_size: Option<usize>,
    /// Socket send buffer size (none: the system's default).
    pub write_buffer_size: Option<usize>,
    /// How long a graceful close may take.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// The WebSocket endpoint path of `ws`/`wss` listeners and dials (Go's `rootPath`;
    /// default `/`, which a listener answers on every path). A dialer sends it with any query
    /// string (`/token?access_token=abc`).
    pub ws_path: String,
    /// Send each call's timeout along (meta `X-Erpc-Timeout`, milliseconds), so an erpc server
    /// can stop working for a caller that has given up. Go peers ignore the key. Off by
    /// default: one more meta pair costs the server about 4 % more instructions per call
    /// (docs/PERFORMANCE.md).
    pub send_deadline: bool,
    /// Stop a call's handler when its caller has given up: when the caller's deadline
    /// (`X-Erpc-Timeout`) has passed (answered `408`), or when the connection the call came on
    /// is lost (nobody could read the reply). Off: handlers run to the end, as in Go.
    pub cancel_handlers: bool,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            network: Network::Tcp,
            local_ip: "0.0.0.0".into(),
            local_port: 0,
            listen_port: 0,
            dial_timeout: Duration::ZERO,
            redial_times: 0,
            redial_interval: Duration::from_millis(100),
            default_body_codec: "json".into(),
            default_session_age: Duration::ZERO,
            default_context_age: Duration::ZERO,
            slow_comet_duration: Duration::ZERO,
            print_detail: false,
            count_time: false,
            call_timeout: Duration::from_secs(30),
            push_timeout: None,
            max_message_size: crate::proto::DEFAULT_MAX_MESSAGE_SIZE,
            max_meta_pairs: crate::proto::DEFAULT_MAX_META_PAIRS,
            max_meta_bytes: crate::proto::DEFAULT_MAX_META_BYTES,
            max_sessions: 0,
            max_sessions_per_ip: 0,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::ZERO,
            frame_timeout: Duration::from_secs(30),
            listen_backlog: 0,
            reuse_port: false,
            nodelay: true,
            keepalive: None,
            read_buffer_size: None,
            write_buffer_size: None,
            shutdown_timeout: Duration::from_secs(5),
            ws_path: "/".into(),
            send_deadline: false,
            cancel_handlers: true,
        }
    }
}

impl PeerConfig {
    /// Every key, in the order of the fields.
    pub const KEYS: &'static [&'static str] = &[
        "network",
        "local_ip",
        "local_port",
        "listen_port",
        "dial_timeout",
        "redial_times",
        "redial_interval",
        "default_body_codec",
        "default_session_age",
        "default_context_age",
        "slow_comet_duration",
        "print_detail",
        "count_time",
        "call_timeout",
        "push_timeout",
        "max_message_size",
        "max_meta_pairs",
        "max_meta_bytes",
        "max_sessions",
        "max_sessions_per_ip",
        "handshake_timeout",
        "idle_timeout",
        "frame_timeout",
        "listen_backlog",
        "reuse_port",
        "nodelay",
        "keepalive",
        "read_buffer_size",
        "write_buffer_size",
        "shutdown_timeout",
        "ws_path",
        "send_deadline",
        "cancel_handlers",
    ];

    /// Parses TOML (unknown keys refused; not [`validate`](Self::validate)d).
    #[cfg(feature = "toml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_text(Format::Toml, text)
    }

    /// Parses YAML (unknown keys refused; not [`validate`](Self::validate)d).
    #[cfg(feature = "yaml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_text(Format::Yaml, text)
    }

    #[cfg(any(feature = "toml", feature = "yaml"))]
    fn from_text(format: Format, text: &str) -> Result<Self, ConfigError> {
        let loader = ConfigLoader::new().text(format, format.name(), text, None)?;
        Ok(loader.extract()?.config)
    }

    /// Loads a `.toml`, `.yaml`/`.yml`, `.json` or `.ini` file over the defaults (unknown keys
    /// refused; not [`validate`](Self::validate)d). For environment variables and flags on
    /// top, use [`ConfigLoader`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Ok(ConfigLoader::new().file(path)?.extract()?.config)
    }

    /// Loads one top-level section of a file, as Go's config files have one section per
    /// struct (`cfg_srv:` …).
    pub fn from_file_section(path: impl AsRef<Path>, section: &str) -> Result<Self, ConfigError> {
        Ok(ConfigLoader::new().file_section(path, section)?.extract()?.config)
    }

    /// Checks what can be checked before the peer starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if crate::codec::by_name(&self.default_body_codec).is_none() {
            return Err(ConfigError::UnknownCodec(self.default_body_codec.clone()));
        }
        if !self.network.is_available() {
            return Err(ConfigError::UnavailableNetwork(self.network));
        }
        if self.max_message_size < 64 {
            return Err(ConfigError::Invalid {
                field: "max_message_size",
                reason: format!("{} bytes cannot hold a message; use at least 64", self.max_message_size),
            });
        }
        if self.local_ip.is_empty() {
            return Err(ConfigError::Invalid {
                field: "local_ip",
                reason: "empty; use 0.0.0.0 for any".into(),
            });
        }
        Ok(())
    }

    /// The listen address, `local_ip:listen_port` (for unix networks Go uses this string as the
    /// socket's file path; pass a real path to `Peer::listen_on` instead).
    pub fn listen_addr(&self) -> String {
        join_host_port(&self.local_ip, self.listen_port)
    }

    /// The local address dials bind to, `local_ip:local_port`.
    pub fn local_dial_addr(&self) -> String {
        join_host_port(&self.local_ip, self.local_port)
    }

    /// The pause between dial attempts: `redial_interval`, or 100 ms when it is zero.
    pub fn redial_interval(&self) -> Duration {
        if self.redial_interval.is_zero() {
            Duration::from_millis(100)
        } else {
            self.redial_interval
        }
    }
}

/// Why `name` is no usable codec: the feature that adds it, or the codecs there are.
pub(crate) fn unknown_codec_reason(name: &str) -> String {
    if let Some(feature) = crate::codec::missing_feature(name) {
        return format!("needs erpc's `{feature}` feature: enable it, or use another codec");
    }
    let mut names: Vec<&str> = ["json", "protobuf", "plain", "form", "xml", "thrift"]
        .into_iter()
        .filter(|n| crate::codec::by_name(n).is_some())
        .collect();
    names.sort_unstable();
    format!("is not a registered codec; use one of {}", names.join(", "))
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

// Most cases compare the four formats side by side, so they need TOML and YAML.
#[cfg(all(test, feature = "toml", feature = "yaml"))]
mod loader_tests;

// The tests read TOML and YAML; the JSON and INI paths are covered by loader_tests.
#[cfg(all(test, feature = "toml", feature = "yaml"))]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_gos() {
        let c = PeerConfig::default();
        assert_eq!(c.network, Network::Tcp);
        assert_eq!(c.listen_addr(), "0.0.0.0:0");
        assert_eq!(c.redial_interval(), Duration::from_millis(100));
        assert_eq!(c.default_body_codec, "json");
        assert_eq!(
            PeerConfig {
                redial_interval: Duration::ZERO,
                ..c.clone()
            }
            .redial_interval(),
            Duration::from_millis(100)
        );
        c.validate().unwrap();
    }

    #[test]
    fn durations_in_every_form() {
        for (text, want) in [
            ("100ms", Duration::from_millis(100)),
            ("1.5s", Duration::from_millis(1500)),
            ("2h45m", Duration::from_secs(2 * 3600 + 45 * 60)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("0", Duration::ZERO),
            ("-1s", Duration::ZERO),
        ] {
            assert_eq!(duration::parse(text).unwrap(), want, "{text}");
        }
        for bad in ["", "5", "1x", "ms", "1.2.3s"] {
            assert!(duration::parse(bad).is_err(), "{bad:?}");
        }
        let c = PeerConfig::from_toml_str("dial_timeout = 1500000000\nredial_interval = \"250ms\"").unwrap();
        assert_eq!(c.dial_timeout, Duration::from_millis(1500));
        assert_eq!(c.redial_interval, Duration::from_millis(250));
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(100), "100ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(9900), "2h45m0s"),
            (Duration::from_micros(3), "3µs"),
        ] {
            assert_eq!(duration::format(d), text);
        }
    }

    #[test]
    fn partial_toml_and_yaml_keep_defaults() {
        let c = PeerConfig::from_toml_str("network = \"tcp4\"\nlisten_port = 9090\nprint_detail = true").unwrap();
        assert_eq!((c.network, c.listen_port, c.print_detail), (Network::Tcp4, 9090, true));
        assert_eq!(c.call_timeout, Duration::from_secs(30));
        let y = PeerConfig::from_yaml_str("network: unix\ndefault_session_age: 1m\nkeepalive: 15s\nredial_times: -1\n")
            .unwrap();
        assert_eq!(
            (y.network, y.default_session_age, y.keepalive, y.redial_times),
            (
                Network::Unix,
                Duration::from_secs(60),
                Some(Duration::from_secs(15)),
                -1
            )
        );
        assert_eq!(PeerConfig::from_yaml_str("network: udp").unwrap().network, Network::Kcp);
    }

    #[test]
    fn round_trips_through_both_formats() {
        let c = PeerConfig {
            keepalive: Some(Duration::from_secs(7)),
            count_time: true,
            ..PeerConfig::default()
        };
        assert_eq!(PeerConfig::from_toml_str(&toml::to_string(&c).unwrap()).unwrap(), c);
        assert_eq!(
            PeerConfig::from_yaml_str(&serde_yaml_ng::to_string(&c).unwrap()).unwrap(),
            c
        );
    }

    #[test]
    fn files_and_sections() {
        let dir = std::env::temp_dir().join(format!("erpc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("peer.yaml");
        std::fs::write(
            &yaml,
            "cfg_srv:\n  listen_port: 9090\n  count_time: true\ncfg_cli:\n  redial_times: 3\n",
        )
        .unwrap();
        assert_eq!(
            PeerConfig::from_file_section(&yaml, "cfg_srv").unwrap().listen_port,
            9090
        );
        assert_eq!(PeerConfig::from_file_section(&yaml, "cfg_cli").unwrap().redial_times, 3);
        assert!(matches!(
            PeerConfig::from_file_section(&yaml, "nope"),
            Err(ConfigError::MissingSection { .. })
        ));
        let toml_file = dir.join("peer.toml");
        std::fs::write(&toml_file, "[cfg_srv]\nlisten_port = 7070\n").unwrap();
        assert_eq!(
            PeerConfig::from_file_section(&toml_file, "cfg_srv")
                .unwrap()
                .listen_port,
            7070
        );
        std::fs::write(&toml_file, "listen_port = 7071\n").unwrap();
        assert_eq!(PeerConfig::from_file(&toml_file).unwrap().listen_port, 7071);
        assert!(matches!(
            PeerConfig::from_file(dir.join("peer.conf")),
            Err(ConfigError::UnknownFormat(_))
        ));
        assert!(matches!(
            PeerConfig::from_file(dir.join("missing.toml")),
            Err(ConfigError::Io { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn impossible_values_are_explained() {
        let bad_codec = PeerConfig {
            default_body_codec: "yaml".into(),
            ..PeerConfig::default()
        };
        let err = bad_codec.validate().unwrap_err().to_string();
        assert!(err.contains("yaml") && err.contains("json"), "{err}");
        let kcp = PeerConfig {
            network: Network::Kcp,
            ..PeerConfig::default()
        };
        assert_eq!(
            kcp.validate().is_ok(),
            cfg!(feature = "kcp"),
            "kcp is available with its feature"
        );
        assert!(PeerConfig::from_toml_str("listen_port = \"x\"").is_err());
    }
}
