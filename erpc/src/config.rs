//! TEMPORARY STUB (replaced by the leaf branch).
#![allow(missing_docs)]
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    #[default]
    Tcp,
    Tcp4,
    Tcp6,
    Unix,
    Unixpacket,
    Kcp,
    Quic,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown codec {0}")]
    UnknownCodec(String),
}

#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub network: Network,
    pub local_ip: String,
    pub local_port: u16,
    pub listen_port: u16,
    pub dial_timeout: Duration,
    pub redial_times: i32,
    pub redial_interval: Duration,
    pub default_body_codec: String,
    pub default_session_age: Duration,
    pub default_context_age: Duration,
    pub slow_comet_duration: Duration,
    pub print_detail: bool,
    pub count_time: bool,
    pub call_timeout: Duration,
    pub max_message_size: usize,
    pub nodelay: bool,
    pub keepalive: Option<Duration>,
    pub read_buffer_size: Option<usize>,
    pub write_buffer_size: Option<usize>,
    pub shutdown_timeout: Duration,
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
            max_message_size: crate::proto::DEFAULT_MAX_MESSAGE_SIZE,
            nodelay: true,
            keepalive: None,
            read_buffer_size: None,
            write_buffer_size: None,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}
impl PeerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
    pub fn listen_addr(&self) -> String {
        format!("{}:{}", self.local_ip, self.listen_port)
    }
    pub fn local_dial_addr(&self) -> String {
        format!("{}:{}", self.local_ip, self.local_port)
    }
    pub fn redial_interval(&self) -> Duration {
        if self.redial_interval.is_zero() {
            Duration::from_millis(100)
        } else {
            self.redial_interval
        }
    }
}
