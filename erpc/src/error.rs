//! [`Error`]: the one error type of the peer surface (building, listening, dialing).
//!
//! Calls and pushes fail with a [`Status`], as in Go, and handlers return one. Everything a
//! [`Peer`](crate::Peer) does (build, listen, dial, serve or connect a connection, reboot)
//! fails with an [`Error`], and a `Status` converts into an `Error` with `?`, so application
//! code can use one error type for both.

use std::borrow::Cow;

use crate::status::{Code, Status};

/// What a [`Peer`](crate::Peer) operation can fail with.
///
/// Which variant you get:
///
/// - [`Error::Status`] from [`Peer::dial`](crate::Peer::dial),
///   [`dial_with`](crate::Peer::dial_with), [`serve_conn`](crate::Peer::serve_conn) and
///   [`connect_conn`](crate::Peer::connect_conn): the status Go eRPC's `Dial` would return,
///   e.g. `105 Dial Failed` with the last attempt's error as cause, or whatever status a
///   PreDial/PostDial/PostAccept plugin refused with. Also any `Status` turned into an
///   `Error` with `?` (a call's result, [`Pool::hire`](crate::Pool::hire)).
/// - [`Error::Io`] when a listener's socket cannot be opened (address in use…) or a reboot
///   cannot prepare the new process.
/// - [`Error::Tls`] when the TLS or QUIC configuration cannot be built.
/// - [`Error::Config`] when the peer's configuration is invalid.
/// - [`Error::Plugin`] when a plugin hook refuses at start-up (PreNewPeer, PostNewPeer,
///   PostListen): the plugin's name and hook with its status.
/// - [`Error::Invalid`] when what was asked is not possible (a transport that the protocol
///   cannot run on, listening on a closed peer…).
///
/// [`code`](Error::code) and [`status`](Error::status) read the status code whatever the
/// variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An RPC-level failure: dialing or accepting a session failed with this status.
    #[error(transparent)]
    Status(#[from] Status),
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
    /// A plugin hook refused to go on at start-up.
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

    /// The status this error carries: the [`Status`](Error::Status) itself or what a
    /// [`Plugin`](Error::Plugin) refused with; `None` for the other variants.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Status(status) | Error::Plugin { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The status code: that of [`status`](Error::status) (`105 Dial Failed` for a failed
    /// dial, a plugin's own code…), [`Code::UNKNOWN_ERROR`] for errors without a status.
    pub fn code(&self) -> Code {
        self.status().map_or(Code::UNKNOWN_ERROR, Status::code)
    }

    /// The error as a status, to answer a call with it (a handler that dials another peer):
    /// the carried status, or `-1 Unknown Error` with this error's text as cause.
    pub fn into_status(self) -> Status {
        match self {
            Error::Status(status) | Error::Plugin { status, .. } => status,
            other => Status::from_code(Code::UNKNOWN_ERROR, Cow::Owned(other.to_string())),
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        error.into_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_the_carried_status_code() {
        let dial = Error::from(Status::from_code(Code::DIAL_FAILED, "refused"));
        assert_eq!(dial.code(), Code::DIAL_FAILED);
        assert_eq!(dial.to_string(), "105 Dial Failed: refused");
        let plugin = Error::Plugin {
            plugin: "auth".into(),
            hook: "post_listen",
            status: Status::new(403, "no"),
        };
        assert_eq!(plugin.code(), 403);
        assert_eq!(plugin.into_status(), Status::new(403, "no"));
        let invalid = Error::Invalid("closed".into());
        assert_eq!(invalid.code(), Code::UNKNOWN_ERROR);
        assert!(invalid.status().is_none());
        assert_eq!(Status::from(invalid), Status::with_cause(-1, "Unknown Error", "closed"));
    }
}
