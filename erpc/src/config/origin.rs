//! Where a configuration value came from ([`Origin`]), and a problem with one value, told
//! with its origin ([`FieldError`]).

use std::fmt;

/// Where the value of one key came from: the layer that set it last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `PeerConfig::default()`.
    Default,
    /// Defaults a program sets over the library's, by the program's name (`erpc serve`).
    Preset(String),
    /// A configuration file, with the line of the key when it could be found.
    File {
        /// The file, as it was named.
        path: String,
        /// The key's line (1-based).
        line: Option<usize>,
    },
    /// An environment variable, by name (`ERPC_CALL_TIMEOUT`).
    Env(String),
    /// A command-line flag or an override in code, by name (`--timeout`).
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Preset(program) => write!(f, "{program} default"),
            Origin::File { path, line: Some(line) } => write!(f, "{path}:{line}"),
            Origin::File { path, line: None } => f.write_str(path),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// One key's problem: an unknown key, a value of the wrong type, or a value `validate` refuses.
/// Displayed as `ORIGIN: KEY: REASON`, e.g. `erpc.toml:7: call_timeout: invalid duration "5x": …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Where the value (or the unknown key) was written.
    pub origin: Origin,
    /// The key.
    pub field: String,
    /// What is wrong and what to do.
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.field, self.reason)
    }
}
