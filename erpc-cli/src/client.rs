//! Flags shared by the commands that dial (`call`, `push`, `watch`) and how they dial.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use erpc::config::Network;
use erpc::{CodecId, DecodeBody, EncodeBody, Peer, PeerConfig, Router, Session};

use crate::CliError;

/// How to reach the server.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Transport: tcp, tcp4, tcp6 or unix (ADDR is then a socket path).
    #[arg(long, default_value = "tcp", value_parser = parse_network)]
    pub network: Network,
    /// Wire protocol.
    #[arg(long, default_value = "raw")]
    pub proto: String,
    /// Use TLS.
    #[arg(long)]
    pub tls: bool,
    /// With --tls: accept any server certificate (tests and demos only).
    #[arg(long, requires = "tls")]
    pub insecure: bool,
    /// With --tls: trust the certificates in this PEM file.
    #[arg(long, requires = "tls")]
    pub ca: Option<std::path::PathBuf>,
    /// How long to wait for the connection and the reply.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// What to send.
#[derive(Args, Debug, Clone)]
pub struct Payload {
    /// Body codec: json, plain, form, xml, protobuf…
    #[arg(long, default_value = "json")]
    pub codec: String,
    /// Meta pair to send, `KEY=VALUE`; repeat for more.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
}

impl Payload {
    /// The codec id, or a usage error naming the registered codecs.
    pub fn codec_id(&self) -> Result<CodecId, CliError> {
        erpc::codec::by_name(&self.codec).map(|c| c.id()).ok_or_else(|| {
            CliError::Usage(format!(
                "unknown codec {:?}; use json, plain, form, xml, thrift or protobuf",
                self.codec
            ))
        })
    }

    /// The body bytes. BODY is JSON (checked here, so a typo is reported here and not by the
    /// server) and sent as it is with the json codec; the thrift, xml and form codecs get the
    /// JSON value converted; plain and protobuf bodies are sent as given.
    pub fn body(&self, body: Option<&str>) -> Result<bytes::Bytes, CliError> {
        let body = body.unwrap_or("");
        let converted = matches!(self.codec.as_str(), "thrift" | "xml" | "form");
        if body.is_empty() || !(self.codec == "json" || converted) {
            return Ok(bytes::Bytes::copy_from_slice(body.as_bytes()));
        }
        let value: serde_json::Value = serde_json::from_str(body).map_err(|e| {
            CliError::Usage(format!(
                "BODY is not valid JSON ({e}); quote it for the shell, e.g. '[1,2,3]'"
            ))
        })?;
        if !converted {
            return Ok(bytes::Bytes::copy_from_slice(body.as_bytes()));
        }
        value
            .encode_body(self.codec_id()?)
            .map_err(|e| CliError::Usage(format!("BODY cannot be sent with the {} codec: {e}", self.codec)))
    }
}

/// A received body as text: JSON for the codecs the command line cannot show as they are
/// (thrift, xml, form), the bytes otherwise.
pub fn show_body(codec: CodecId, body: &bytes::Bytes) -> String {
    if matches!(codec, CodecId::THRIFT | CodecId::XML | CodecId::FORM)
        && let Ok(value) = serde_json::Value::decode_body(codec, body.clone())
    {
        return match value {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
    }
    String::from_utf8_lossy(body).into_owned()
}

impl Connection {
    /// The protocol named by `--proto`.
    pub fn proto(&self) -> Result<Arc<dyn erpc::proto::Proto>, CliError> {
        erpc::proto::by_name(&self.proto).ok_or_else(|| {
            CliError::Usage(format!(
                "unknown protocol {:?}; use one of: {}",
                self.proto,
                erpc::proto::NAMES.join(", ")
            ))
        })
    }

    /// Builds a client peer (with `router` for what the server pushes or calls back) and dials.
    pub async fn dial(&self, addr: &str, router: Router) -> Result<(Peer, Session), CliError> {
        let proto = self.proto()?;
        let config = PeerConfig {
            network: self.network,
            dial_timeout: self.timeout,
            call_timeout: self.timeout,
            ..PeerConfig::default()
        };
        let mut builder = Peer::builder().config(config).router(router);
        if self.tls {
            let tls = match (&self.ca, self.insecure) {
                (_, true) => erpc::net::tls::insecure_client_config(),
                (Some(ca), false) => {
                    let pem =
                        std::fs::read(ca).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", ca.display())))?;
                    erpc::net::tls::client_config_with_roots_pem(&pem).map_err(|e| CliError::Usage(e.to_string()))?
                }
                (None, false) => {
                    return Err(CliError::Usage(
                        "--tls needs --ca FILE to trust the server's certificate, or --insecure".into(),
                    ));
                }
            };
            builder = builder.tls_client(tls);
        }
        let peer = builder.build().map_err(|e| CliError::Usage(e.to_string()))?;
        let session = peer.dial_with(addr, proto).await.map_err(|status| {
            let why = status
                .cause()
                .filter(|c| !c.is_empty())
                .unwrap_or(status.msg())
                .to_string();
            CliError::Failed(format!("cannot connect to {addr}: {why}"))
        })?;
        Ok((peer, session))
    }
}

fn parse_network(s: &str) -> Result<Network, String> {
    let network: Network = serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("unknown network {s:?}; use tcp, tcp4, tcp6 or unix"))?;
    if !network.is_available() {
        return Err(format!(
            "network {s:?} is not available yet; use tcp, tcp4, tcp6 or unix"
        ));
    }
    Ok(network)
}

/// Durations like `500ms`, `2s`, `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    erpc::config::duration::parse(s)
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("meta {s:?} must look like KEY=VALUE"))?;
    if k.is_empty() {
        return Err(format!("meta {s:?} has an empty key"));
    }
    Ok((k.to_string(), v.to_string()))
}
