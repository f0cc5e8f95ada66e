//! Dialing: connection attempts with TLS and the dial hooks, for first dials and redials.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::BoxFuture;

use crate::config::{Network, PeerConfig, Settings};
#[cfg(feature = "quic")]
use crate::net::quic::{self, QuicSettings};
use crate::net::{self, Conn};
use crate::plugin::{Plugins, guarded_async};
use crate::proto::Proto;
use crate::session::{PreSession, Redial, Seqs, Session, Storage};
use crate::status::{Code, Status};

/// What a peer dials with. Owned by the peer; sessions reach it weakly to redial.
pub(crate) struct Dialer {
    pub(crate) settings: Settings,
    network: Network,
    local: Option<String>,
    plugins: Plugins,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsConnector>,
    /// The QUIC client config and transport settings, when the network is QUIC.
    #[cfg(feature = "quic")]
    quic: Option<(quinn::ClientConfig, QuicSettings)>,
    /// Set when the peer closes: attempts in progress give up.
    pub(crate) closed: AtomicBool,
}

impl Dialer {
    pub(crate) fn new(
        config: &PeerConfig,
        settings: Settings,
        plugins: Plugins,
        #[cfg(feature = "tls")] tls: Option<tokio_rustls::TlsConnector>,
    ) -> std::io::Result<Dialer> {
        let network = config.network;
        #[cfg(feature = "quic")]
        let quic = match network {
            Network::Quic => {
                let quic = QuicSettings::new(&settings.socket, settings.handshake_timeout, settings.idle_timeout);
                Some((quic::client_config(tls.as_ref().map(|tls| tls.config()), &quic)?, quic))
            }
            _ => None,
        };
        Ok(Dialer {
            settings,
            network,
            local: (config.local_port != 0 && network != Network::Unix).then(|| config.local_dial_addr()),
            plugins,
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "quic")]
            quic,
            closed: AtomicBool::new(false),
        })
    }

    /// Dials until a connection passes PostDial, within the configured attempts. A redial
    /// (`existing`) keeps the session's id, seq counter and storage.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        proto: Arc<dyn Proto>,
        existing: Option<&Session>,
    ) -> Result<PreSession, Status> {
        self.connect_within(addr, proto, existing, false).await
    }

    /// [`connect`](Self::connect), or with `once` a single attempt.
    async fn connect_within(
        &self,
        addr: &str,
        proto: Arc<dyn Proto>,
        existing: Option<&Session>,
        once: bool,
    ) -> Result<PreSession, Status> {
        let local = self.local.as_deref();
        super::listen::check_transport(self.network, proto.as_ref(), self.has_tls())
            .map_err(|e| Status::from_code(Code::DIAL_FAILED, e))?;
        self.plugins
            .run("pre_dial", |p| p.pre_dial(local.unwrap_or(""), addr))?;
        let settings = &self.settings;
        let mut attempt: i64 = 0;
        let mut last_error = String::new();
        loop {
            if attempt > 0 {
                if once {
                    break;
                }
                let unlimited = settings.redial_times < 0;
                if !unlimited && attempt > i64::from(settings.redial_times) {
                    break;
                }
                tokio::time::sleep(settings.redial_interval).await;
                if existing.is_some_and(Session::is_closed) || self.closed.load(Ordering::Acquire) {
                    break;
                }
            }
            attempt += 1;
            let conn = match self.open(addr, local).await {
                Ok(conn) => conn,
                Err(e) => {
                    last_error = e;
                    tracing::debug!(addr, attempt, error = %last_error, "dial attempt failed");
                    continue;
                }
            };
            let (id, seq, storage) = match existing {
                Some(s) => (s.id().to_string(), Seqs::Of(s.clone()), s.storage().clone()),
                None => (conn.local_addr.clone(), Seqs::new(), Storage::default()),
            };
            let mut pre = self.pre_session(conn, proto.clone(), id, seq, storage);
            match self.post_dial(&mut pre, existing.is_some()).await {
                Ok(()) => return Ok(pre),
                Err(status) => {
                    last_error = status
                        .cause()
                        .filter(|c| !c.is_empty())
                        .unwrap_or(status.msg())
                        .to_string();
                    tracing::debug!(addr, attempt, %status, "post_dial refused the connection");
                }
            }
        }
        // As Go's websocket mixer reports it.
        #[cfg(feature = "websocket")]
        if let Some(cause) = last_error.strip_prefix(net::ws::UPGRADE_FAILED) {
            let cause = cause.trim_start_matches(": ").to_string();
            return Err(Status::with_cause(Code::DIAL_FAILED, net::ws::UPGRADE_FAILED, cause));
        }
        Err(Status::from_code(Code::DIAL_FAILED, last_error))
    }

    /// Whether dials run TLS (the peer has a TLS client configuration).
    fn has_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    pub(crate) fn pre_session(
        &self,
        conn: Conn,
        proto: Arc<dyn Proto>,
        id: String,
        seqs: Seqs,
        storage: Storage,
    ) -> PreSession {
        let settings = &self.settings;
        PreSession::new(
            conn,
            proto,
            id,
            seqs,
            storage,
            settings.limits,
            settings.default_codec,
            settings.handshake_timeout,
        )
    }

    /// The PostDial hooks (the client's part of the handshake), within the handshake timeout.
    pub(crate) async fn post_dial(&self, pre: &mut PreSession, is_redial: bool) -> Result<(), Status> {
        let hooks = async {
            for plugin in self.plugins.iter() {
                guarded_async(plugin.as_ref(), "post_dial", || plugin.post_dial(&mut *pre, is_redial)).await?;
            }
            Ok(())
        };
        match self.settings.handshake_timeout {
            None => hooks.await,
            Some(limit) => tokio::time::timeout(limit, hooks).await.unwrap_or_else(|_| {
                Err(Status::conn_closed(format!(
                    "the handshake did not finish within {limit:?} (handshake_timeout)"
                )))
            }),
        }
    }

    /// One connection attempt, TLS included, within the dial timeout.
    async fn open(&self, addr: &str, local: Option<&str>) -> Result<Conn, String> {
        let network = self.network;
        let attempt = async {
            #[cfg(feature = "quic")]
            if let Some((config, quic)) = &self.quic {
                // QUIC brings its own TLS.
                return quic::connect(addr, local, config, quic)
                    .await
                    .map_err(|e| e.to_string());
            }
            let conn = net::connect(network, addr, local, &self.settings.socket)
                .await
                .map_err(|e| e.to_string())?;
            #[cfg(feature = "tls")]
            let conn = self.tls(conn, addr).await?;
            #[cfg(not(feature = "tls"))]
            let _ = addr;
            if !network.is_websocket() {
                return Ok(conn);
            }
            #[cfg(feature = "websocket")]
            {
                let settings = &self.settings;
                let upgrade = net::ws::connect(
                    conn,
                    &settings.ws_path,
                    self.has_tls(),
                    settings.limits.max_message_size,
                );
                match settings.handshake_timeout {
                    None => upgrade.await,
                    Some(limit) => tokio::time::timeout(limit, upgrade).await.unwrap_or_else(|_| {
                        Err(format!(
                            "{}: not within {limit:?} (handshake_timeout)",
                            net::ws::UPGRADE_FAILED
                        ))
                    }),
                }
            }
            // check_transport refused ws and wss before any attempt.
            #[cfg(not(feature = "websocket"))]
            unreachable!("websocket dial without the websocket feature")
        };
        match self.settings.dial_timeout {
            Some(limit) => tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or_else(|_| Err(format!("dial timed out after {limit:?}"))),
            None => attempt.await,
        }
    }

    /// The TLS handshake over `conn`, if the peer has a TLS configuration.
    #[cfg(feature = "tls")]
    async fn tls(&self, conn: Conn, addr: &str) -> Result<Conn, String> {
        let Some(connector) = &self.tls else {
            return Ok(conn);
        };
        // Unix sockets have no host name: their certificates are checked as "localhost".
        let host = match self.network {
            Network::Unix | Network::Unixpacket => "localhost",
            _ => addr
                .rsplit_once(':')
                .map_or(addr, |(host, _)| host)
                .trim_matches(['[', ']']),
        };
        let host = if host.is_empty() { "localhost" } else { host };
        let name = net::tls::server_name(host).map_err(|e| e.to_string())?;
        let (io, local_addr, remote_addr) = conn.into_parts();
        let handshake = connector.connect(name, io);
        let io = match self.settings.handshake_timeout {
            None => handshake.await,
            Some(limit) => tokio::time::timeout(limit, handshake)
                .await
                .map_err(|_| format!("the TLS handshake did not finish within {limit:?} (handshake_timeout)"))?,
        }
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
        let chain = net::tls::chain_of(io.get_ref().1.peer_certificates());
        let mut conn = Conn::new(io, local_addr, remote_addr);
        conn.set_peer_certificates(chain);
        Ok(conn)
    }
}

impl Redial for Dialer {
    fn redial<'a>(
        &'a self,
        session: &'a Session,
        addr: &'a str,
        proto: Arc<dyn Proto>,
    ) -> BoxFuture<'a, Result<PreSession, Status>> {
        Box::pin(self.connect(addr, proto, Some(session)))
    }

    fn dial_once<'a>(
        &'a self,
        session: &'a Session,
        addr: &'a str,
        proto: Arc<dyn Proto>,
    ) -> BoxFuture<'a, Result<PreSession, Status>> {
        Box::pin(self.connect_within(addr, proto, Some(session), true))
    }
}
