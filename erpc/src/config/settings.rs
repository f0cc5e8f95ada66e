//! [`Settings`]: the config resolved once into what the hot path reads.

use std::time::Duration;

use super::{ConfigError, PeerConfig};
use crate::codec::{self, CodecId};
use crate::net::SocketOptions;
use crate::proto::Limits;

/// The runtime form of [`PeerConfig`]: codec names resolved, "0 means none" turned into
/// `Option`s. Sessions, the router and the peer all read it; none of them owns it.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) limits: Limits,
    pub(crate) default_codec: CodecId,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) push_timeout: Option<Duration>,
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
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) frame_timeout: Option<Duration>,
    pub(crate) max_sessions: Option<usize>,
    pub(crate) max_sessions_per_ip: Option<usize>,
    pub(crate) listen_backlog: Option<u32>,
    pub(crate) reuse_port: bool,
    /// `PeerConfig::ws_path`.
    #[cfg(feature = "websocket")]
    pub(crate) ws_path: std::sync::Arc<str>,
    pub(crate) send_deadline: bool,
    pub(crate) cancel_handlers: bool,
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl Settings {
    pub(crate) fn from_config(config: &PeerConfig) -> Result<Settings, ConfigError> {
        let default_codec = codec::by_name(&config.default_body_codec)
            .map(|c| c.id())
            .ok_or_else(|| ConfigError::UnknownCodec(config.default_body_codec.clone()))?;
        let call_timeout = nonzero(config.call_timeout);
        Ok(Settings {
            limits: Limits {
                max_message_size: config.max_message_size,
                max_meta_pairs: config.max_meta_pairs,
                max_meta_bytes: config.max_meta_bytes,
            },
            default_codec,
            call_timeout,
            push_timeout: config.push_timeout.and_then(nonzero).or(call_timeout),
            context_age: nonzero(config.default_context_age),
            session_age: nonzero(config.default_session_age),
            slow_comet_duration: config.count_time.then(|| nonzero(config.slow_comet_duration)).flatten(),
            print_detail: config.print_detail,
            count_time: config.count_time,
            redial_times: config.redial_times,
            redial_interval: config.redial_interval(),
            dial_timeout: nonzero(config.dial_timeout),
            shutdown_timeout: config.shutdown_timeout,
            socket: SocketOptions::new(
                config.nodelay,
                config.keepalive,
                config.read_buffer_size,
                config.write_buffer_size,
            ),
            handshake_timeout: nonzero(config.handshake_timeout),
            idle_timeout: nonzero(config.idle_timeout),
            frame_timeout: nonzero(config.frame_timeout),
            send_deadline: config.send_deadline,
            cancel_handlers: config.cancel_handlers,
            max_sessions: (config.max_sessions > 0).then_some(config.max_sessions),
            max_sessions_per_ip: (config.max_sessions_per_ip > 0).then_some(config.max_sessions_per_ip),
            listen_backlog: (config.listen_backlog > 0).then_some(config.listen_backlog),
            reuse_port: config.reuse_port,
            #[cfg(feature = "websocket")]
            ws_path: config.ws_path.as_str().into(),
        })
    }

    /// Settings for a session made without a peer (tests, embedding): the default config.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Settings {
        Settings::from_config(&PeerConfig::default()).expect("the default config is valid")
    }
}
