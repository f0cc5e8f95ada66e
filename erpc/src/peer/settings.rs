//! [`Settings`]: the config resolved once into what the hot path reads.

use std::time::Duration;

use crate::codec::{self, CodecId};
use crate::config::{ConfigError, PeerConfig};
use crate::net::SocketOptions;

/// The runtime form of [`PeerConfig`]: codec names resolved, "0 means none" turned into
/// `Option`s.
pub(crate) struct Settings {
    pub(crate) max_message_size: usize,
    pub(crate) default_codec: CodecId,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) context_age: Option<Duration>,
    pub(crate) session_age: Option<Duration>,
    pub(crate) slow_comet_duration: Option<Duration>,
    pub(crate) print_detail: bool,
    pub(crate) count_time: bool,
    pub(crate) redial_times: i32,
    pub(crate) redial_interval: Duration,
    pub(crate) dial_timeout: Option<Duration>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) socket: SocketOptions,
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl Settings {
    pub(crate) fn from_config(config: &PeerConfig) -> Result<Settings, ConfigError> {
        let default_codec = codec::by_name(&config.default_body_codec)
            .map(|c| c.id())
            .ok_or_else(|| ConfigError::UnknownCodec(config.default_body_codec.clone()))?;
        Ok(Settings {
            max_message_size: config.max_message_size,
            default_codec,
            call_timeout: nonzero(config.call_timeout),
            context_age: nonzero(config.default_context_age),
            session_age: nonzero(config.default_session_age),
            slow_comet_duration: config.count_time.then(|| nonzero(config.slow_comet_duration)).flatten(),
            print_detail: config.print_detail,
            count_time: config.count_time,
            redial_times: config.redial_times,
            redial_interval: config.redial_interval(),
            dial_timeout: nonzero(config.dial_timeout),
            shutdown_timeout: config.shutdown_timeout,
            socket: SocketOptions::from_config(config),
        })
    }

    /// How long a handshake message may take in PostDial/PostAccept.
    pub(crate) fn handshake_timeout(&self) -> Option<Duration> {
        self.context_age.or(self.call_timeout)
    }
}
