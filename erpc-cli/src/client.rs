//! Flags shared by the commands that dial (`call`, `push`, `watch`) and how they dial.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use erpc::config::{ConfigLoader, Network};
use erpc::{CodecId, DecodeBody, EncodeBody, Peer, PeerConfig, Router, Session};

use crate::CliError;
use crate::peer_args::{PeerArgs, network_name, parse_duration, parse_network};

/// How to reach the server.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Transport: tcp, tcp4, tcp6, unix or unixpacket (ADDR is then a socket path), kcp (or
    /// udp), udp4, udp6, quic, ws or wss (ADDR is host:port; the WebSocket path is --ws-path;
    /// wss needs --tls). [default: tcp]
    #[arg(long, value_parser = parse_network)]
    pub network: Option<Network>,
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
    /// How long to wait for the connection and the reply (dial_timeout and call_timeout).
    /// [default: 10s]
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// The dialing commands' defaults: the library's with a 10 s dial and call timeout.
pub fn defaults() -> PeerConfig {
    PeerConfig {
        dial_timeout: Duration::from_secs(10),
        call_timeout: Duration::from_secs(10),
        ..PeerConfig::default()
    }
}

/// What to send.
#[derive(Args, Debug, Clone)]
pub struct Payload {
    /// Body codec: json, plain, form, xml, thrift, protobuf (the peer's default_body_codec).
    /// [default: json]
    #[arg(long, value_parser = parse_codec)]
    pub codec: Option<String>,
    /// Meta pair to send, `KEY=VALUE`; repeat for more.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
}

impl Payload {
    /// `--codec` sets the client peer's default body codec, the one its messages are sent with.
    pub fn apply(&self, loader: ConfigLoader) -> ConfigLoader {
        match &self.codec {
            Some(codec) => loader.set("default_body_codec", codec, "--codec"),
            None => loader,
        }
    }

    /// The body bytes for `codec`. BODY is JSON (checked here, so a typo is reported here and
    /// not by the server) and sent as it is with the json codec; the thrift, xml and form
    /// codecs get the JSON value converted; plain and protobuf bodies are sent as given.
    pub fn body(codec: &str, body: Option<&str>) -> Result<bytes::Bytes, CliError> {
        let body = body.unwrap_or("");
        let converted = matches!(codec, "thrift" | "xml" | "form");
        if body.is_empty() || !(codec == "json" || converted) {
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
            .encode_body(codec_id(codec).map_err(CliError::Usage)?)
            .map_err(|e| CliError::Usage(format!("BODY cannot be sent with the {codec} codec: {e}")))
    }
}

/// The id of the codec called `name`, or why there is none.
pub fn codec_id(name: &str) -> Result<CodecId, String> {
    erpc::codec::by_name(name)
        .map(|c| c.id())
        .ok_or_else(|| format!("unknown codec {name:?}; use json, plain, form, xml, thrift or protobuf"))
}

fn parse_codec(name: &str) -> Result<String, String> {
    codec_id(name).map(|_| name.to_string())
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

    /// The client peer's configuration for `program` (`erpc call`…): [`defaults`], then
    /// `--config`, the environment and the peer flags, then `--network`, `--timeout` and
    /// `command_flags`.
    pub fn config(
        &self,
        program: &str,
        command_flags: impl FnOnce(ConfigLoader) -> ConfigLoader,
    ) -> Result<PeerConfig, CliError> {
        self.peer.resolve(program, defaults(), |mut loader| {
            if let Some(network) = self.network {
                loader = loader.set("network", network_name(network), "--network");
            }
            if let Some(timeout) = self.timeout {
                loader = loader.set_duration("dial_timeout", timeout, "--timeout").set_duration(
                    "call_timeout",
                    timeout,
                    "--timeout",
                );
            }
            command_flags(loader)
        })
    }

    /// Builds a client peer with `config` (and `router` for what the server pushes or calls
    /// back) and dials.
    pub async fn dial(&self, config: PeerConfig, addr: &str, router: Router) -> Result<(Peer, Session), CliError> {
        let proto = self.proto()?;
        let peer = self.peer(config, router)?;
        let session = peer.dial_with(addr, proto).await.map_err(|error| {
            let status = error.into_status();
            let why = status
                .cause()
                .filter(|c| !c.is_empty())
                .unwrap_or(status.msg())
                .to_string();
            CliError::Failed(format!("cannot connect to {addr}: {why}"))
        })?;
        Ok((peer, session))
    }

    /// Builds the client peer with `config` (TLS and the peer options' plugins included).
    pub fn peer(&self, config: PeerConfig, router: Router) -> Result<Peer, CliError> {
        let mut builder = self
            .peer
            .client_plugins(Peer::builder().config(config).router(router))?;
        if self.tls {
            let tls = match (&self.ca, self.insecure) {
                (_, true) => erpc::net::tls::dangerous_insecure_client_config(),
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
        builder.build().map_err(|e| CliError::Usage(e.to_string()))
    }
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
