//! [`Error`]: what can go wrong building a peer or starting a listener.
//!
//! RPC operations (calls, pushes, dials) fail with a [`Status`](crate::Status) instead, as in
//! Go; this type is for the edges: configuration, sockets, TLS and plugin hooks at start-up.

use crate::status::Status;

/// An error at the edges of the framework.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (`listen on 127.0.0.1:9090`…).
        context: String,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error(transparent)]
    Tls(#[from] crate::net::tls::TlsError),
    /// A plugin hook refused to go on.
    #[error("plugin {plugin:?} stopped {hook}: {status}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// The hook.
        hook: &'static str,
        /// What the plugin said.
        status: Status,
    },
    /// Something else the caller asked for is not possible.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
