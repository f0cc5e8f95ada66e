//! [`Peer`]: one endpoint that listens and dials at once, and owns the sessions of both.
//!
//! ```no_run
//! use erpc::{Peer, PeerConfig, Router, Status};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut router = Router::new();
//! router.group("math").call("add", |nums: Vec<i64>| async move { Ok::<_, Status>(nums.iter().sum::<i64>()) });
//! let server = Peer::builder().config(PeerConfig::default()).router(router).build()?;
//! let addr = server.listen_on("127.0.0.1:0").await?;
//!
//! let client = Peer::builder().build()?;
//! let session = client.dial(&addr).await?;
//! let sum: i64 = session.call("/math/add", &[1, 2, 3]).await?;
//! assert_eq!(sum, 6);
//! # Ok(()) }
//! ```

mod hub;
mod listen;
mod settings;

pub(crate) use hub::Hub;
pub(crate) use settings::Settings;

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::codec::EncodeBody;
use crate::config::{Network, PeerConfig};
use crate::error::Error;
use crate::net::{self, Conn};
use crate::plugin::{Plugin, Plugins};
use crate::proto::{Proto, RawProto};
use crate::router::{Router, Routes};
use crate::session::{PreSession, Session, Side, Storage};
use crate::status::{Status, code};

/// Everything sessions of one peer share.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) config: PeerConfig,
    pub(crate) routes: Routes,
    pub(crate) plugins: Plugins,
    pub(crate) hub: Hub,
    pub(crate) proto: Arc<dyn Proto>,
    tls_server: Option<tokio_rustls::TlsAcceptor>,
    tls_client: Option<tokio_rustls::TlsConnector>,
    stop_listening: watch::Sender<bool>,
    listeners: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
}

/// A peer: server and client at once. Cheap to clone.
#[derive(Clone)]
pub struct Peer {
    shared: Arc<Shared>,
}

/// Builds a [`Peer`]: configuration, routes, plugins, protocol, TLS.
#[must_use]
pub struct PeerBuilder {
    config: PeerConfig,
    router: Router,
    plugins: Vec<Arc<dyn Plugin>>,
    proto: Arc<dyn Proto>,
    tls_server: Option<Arc<rustls::ServerConfig>>,
    tls_client: Option<Arc<rustls::ClientConfig>>,
}

impl Default for PeerBuilder {
    fn default() -> Self {
        PeerBuilder {
            config: PeerConfig::default(),
            router: Router::new(),
            plugins: Vec::new(),
            proto: Arc::new(RawProto),
            tls_server: None,
            tls_client: None,
        }
    }
}

impl PeerBuilder {
    /// The configuration (default: [`PeerConfig::default`]).
    pub fn config(mut self, config: PeerConfig) -> Self {
        self.config = config;
        self
    }

    /// The routes this peer answers (default: none; every call gets 404).
    pub fn router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// Adds a peer-level plugin (they run in the order added).
    pub fn plugin(mut self, plugin: impl Plugin) -> Self {
        self.plugins.push(Arc::new(plugin));
        self
    }

    /// The default wire protocol of listeners and dials (default: rawproto).
    pub fn proto(mut self, proto: Arc<dyn Proto>) -> Self {
        self.proto = proto;
        self
    }

    /// Serves TLS on every listener (tcp and unix).
    pub fn tls_server(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls_server = Some(config);
        self
    }

    /// Dials with TLS.
    pub fn tls_client(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls_client = Some(config);
        self
    }

    /// Builds the peer: runs PreNewPeer, validates the config, registers the routes (PostReg)
    /// and runs PostNewPeer.
    pub fn build(self) -> Result<Peer, Error> {
        let PeerBuilder {
            mut config,
            router,
            plugins,
            proto,
            tls_server,
            tls_client,
        } = self;
        let plugins = Plugins::new(plugins).map_err(|status| Error::Invalid(status.msg().to_string()))?;
        for plugin in plugins.iter() {
            plugin
                .pre_new_peer(&mut config)
                .map_err(|status| hook_error(plugin, "pre_new_peer", status))?;
        }
        config.validate()?;
        let settings = Settings::from_config(&config)?;
        let routes = router
            .into_routes()
            .with_peer_plugins(&plugins)
            .map_err(|status| Error::Invalid(status.msg().to_string()))?;
        for info in routes.infos() {
            for plugin in plugins.iter() {
                plugin
                    .post_reg(info)
                    .map_err(|status| hook_error(plugin, "post_reg", status))?;
            }
            tracing::debug!(route = %info.name, kind = ?info.kind, "registered handler");
        }
        let peer = Peer {
            shared: Arc::new(Shared {
                settings,
                config,
                routes,
                plugins,
                hub: Hub::default(),
                proto,
                tls_server: tls_server.map(tokio_rustls::TlsAcceptor::from),
                tls_client: tls_client.map(tokio_rustls::TlsConnector::from),
                stop_listening: watch::Sender::new(false),
                listeners: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
            }),
        };
        for plugin in peer.shared.plugins.iter() {
            plugin
                .post_new_peer(&peer)
                .map_err(|status| hook_error(plugin, "post_new_peer", status))?;
        }
        Ok(peer)
    }
}

fn hook_error(plugin: &Arc<dyn Plugin>, hook: &'static str, status: Status) -> Error {
    Error::Plugin {
        plugin: plugin.name().to_string(),
        hook,
        status,
    }
}

impl Peer {
    /// A builder with the default configuration, no routes and no plugins.
    pub fn builder() -> PeerBuilder {
        PeerBuilder::default()
    }

    /// The configuration the peer runs with (after PreNewPeer hooks).
    pub fn config(&self) -> &PeerConfig {
        &self.shared.config
    }

    /// Listens on the configured network and address (`local_ip:listen_port`) with the
    /// default protocol; returns the bound address (with the real port if the port was 0).
    pub async fn listen(&self) -> Result<String, Error> {
        let addr = self.shared.config.listen_addr();
        self.listen_with(self.shared.config.network, &addr, self.shared.proto.clone())
            .await
    }

    /// Listens on `addr` (`ip:port`, or a socket path for unix) on the configured network.
    pub async fn listen_on(&self, addr: &str) -> Result<String, Error> {
        self.listen_with(self.shared.config.network, addr, self.shared.proto.clone())
            .await
    }

    /// Listens on `addr` with the given network and protocol. Accepting runs in the
    /// background until [`close`](Self::close).
    pub async fn listen_with(&self, network: Network, addr: &str, proto: Arc<dyn Proto>) -> Result<String, Error> {
        listen::start(&self.shared, network, addr, proto).await
    }

    /// Dials `addr` with the default protocol. Attempts and their spacing follow the
    /// config's `redial_times` and `redial_interval`; failure is `105 Dial Failed` with the
    /// last error as cause.
    pub async fn dial(&self, addr: &str) -> Result<Session, Status> {
        self.dial_with(addr, self.shared.proto.clone()).await
    }

    /// Dials `addr` with the given protocol.
    pub async fn dial_with(&self, addr: &str, proto: Arc<dyn Proto>) -> Result<Session, Status> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Status::from_code(code::DIAL_FAILED, "the peer is closed"));
        }
        let pre = self.shared.connect(addr, proto, false, None).await?;
        let session = Session::start(self.shared.clone(), pre, Side::Client, Some(addr.to_string()));
        self.shared.hub.insert(session.clone());
        tracing::debug!(session = %session.id(), remote = %session.remote_addr(), "dial ok");
        Ok(session)
    }

    /// Serves a connection made elsewhere (a websocket, an in-memory pipe…) as an accepted
    /// one: PostAccept runs, then the session starts. Its id is the remote address.
    pub async fn serve_conn(&self, conn: Conn, proto: Arc<dyn Proto>) -> Result<Session, Status> {
        listen::serve_conn(self.shared.clone(), conn, proto).await
    }

    /// Uses a connection made elsewhere as a dialed one: PostDial runs, then the session
    /// starts. Such a session cannot redial (there is no address to dial).
    pub async fn connect_conn(&self, conn: Conn, proto: Arc<dyn Proto>) -> Result<Session, Status> {
        let settings = &self.shared.settings;
        let mut pre = PreSession::new(
            conn,
            proto,
            String::new(),
            Arc::new(AtomicI32::new(0)),
            Storage::default(),
            settings.max_message_size,
            settings.default_codec,
            settings.handshake_timeout(),
        );
        pre.set_id(pre.local_addr().to_string());
        self.shared.run_post_dial(&mut pre, false).await.map_err(|status| {
            Status::from_code(
                code::DIAL_FAILED,
                status
                    .cause()
                    .filter(|c| !c.is_empty())
                    .unwrap_or(status.msg())
                    .to_string(),
            )
        })?;
        let session = Session::start(self.shared.clone(), pre, Side::Client, None);
        self.shared.hub.insert(session.clone());
        Ok(session)
    }

    /// The session with this id.
    pub fn session(&self, id: &str) -> Option<Session> {
        self.shared.hub.get(id)
    }

    /// Every live session (both accepted and dialed).
    pub fn sessions(&self) -> Vec<Session> {
        self.shared.hub.all()
    }

    /// Number of live sessions.
    pub fn count_sessions(&self) -> usize {
        self.shared.hub.len()
    }

    /// Pushes to every live session; returns how many it reached.
    pub async fn broadcast<A: EncodeBody + ?Sized + Sync>(&self, service_method: &str, args: &A) -> usize {
        let mut reached = 0;
        for session in self.sessions() {
            match session.push(service_method, args).await {
                Ok(()) => reached += 1,
                Err(status) => {
                    tracing::debug!(session = %session.id(), %status, "broadcast skipped a session")
                }
            }
        }
        reached
    }

    /// Closes gracefully: stops accepting, then closes every session (each lets its running
    /// handlers answer, within the shutdown timeout).
    pub async fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.stop_listening.send_replace(true);
        let listeners = std::mem::take(&mut *self.shared.listeners.lock().unwrap_or_else(|e| e.into_inner()));
        for listener in listeners {
            let _ = listener.await;
        }
        let closing: Vec<_> = self
            .sessions()
            .into_iter()
            .map(|s| tokio::spawn(async move { s.close().await }))
            .collect();
        for task in closing {
            let _ = task.await;
        }
    }

    /// Waits for SIGINT or SIGTERM (Ctrl-C on other systems), then [`close`](Self::close)s,
    /// bounded by the config's `shutdown_timeout`.
    ///
    /// The signal handlers are installed by this call, not when the future is first polled: a
    /// signal that arrives after the call and before the `.await` is not lost and does not kill
    /// the process. So call it before announcing readiness (printing the address, writing a pid
    /// file), and await the returned future afterwards.
    ///
    /// # Panics
    ///
    /// If called outside a Tokio runtime.
    pub fn shutdown_on_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let signalled = wait_for_signal();
        let peer = self.clone();
        async move {
            signalled.await;
            tracing::info!("shutting down");
            let limit = peer.shared.settings.shutdown_timeout + Duration::from_secs(1);
            if tokio::time::timeout(limit, peer.close()).await.is_err() {
                tracing::warn!("shutdown took longer than {limit:?}; stopping anyway");
            }
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers now; the future completes on the first of them.
#[cfg(unix)]
fn wait_for_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        match (int, term) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn wait_for_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("sessions", &self.count_sessions())
            .finish()
    }
}

impl Shared {
    /// Dials until a connection passes PostDial, within the configured attempts.
    pub(crate) async fn connect(
        self: &Arc<Self>,
        addr: &str,
        proto: Arc<dyn Proto>,
        is_redial: bool,
        existing: Option<&Session>,
    ) -> Result<PreSession, Status> {
        let network = self.config.network;
        let local = (self.config.local_port != 0 && network != Network::Unix).then(|| self.config.local_dial_addr());
        for plugin in self.plugins.iter() {
            plugin.pre_dial(local.as_deref().unwrap_or(""), addr)?;
        }
        let settings = &self.settings;
        let mut attempt: i64 = 0;
        let mut last_error = String::new();
        loop {
            if attempt > 0 {
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
            let conn = match self.open(network, addr, local.as_deref()).await {
                Ok(conn) => conn,
                Err(e) => {
                    last_error = e;
                    tracing::debug!(addr, attempt, error = %last_error, "dial attempt failed");
                    continue;
                }
            };
            let (id, seq, storage) = match existing {
                Some(s) => (s.id().to_string(), s.seq_counter(), s.storage().clone()),
                None => (conn.local_addr.clone(), Arc::new(AtomicI32::new(0)), Storage::default()),
            };
            let mut pre = PreSession::new(
                conn,
                proto.clone(),
                id,
                seq,
                storage,
                settings.max_message_size,
                settings.default_codec,
                settings.handshake_timeout(),
            );
            match self.run_post_dial(&mut pre, is_redial).await {
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
        Err(Status::from_code(code::DIAL_FAILED, last_error))
    }

    async fn run_post_dial(&self, pre: &mut PreSession, is_redial: bool) -> Result<(), Status> {
        for plugin in self.plugins.iter() {
            plugin.post_dial(pre, is_redial).await?;
        }
        Ok(())
    }

    /// One connection attempt, TLS included, within the dial timeout.
    async fn open(&self, network: Network, addr: &str, local: Option<&str>) -> Result<Conn, String> {
        let attempt = async {
            let conn = net::connect(network, addr, local, &self.settings.socket)
                .await
                .map_err(|e| e.to_string())?;
            match &self.tls_client {
                None => Ok(conn),
                Some(connector) => {
                    // Unix sockets have no host name: their certificates are checked as
                    // "localhost".
                    let host = match network {
                        Network::Unix => "localhost",
                        _ => addr
                            .rsplit_once(':')
                            .map_or(addr, |(host, _)| host)
                            .trim_matches(['[', ']']),
                    };
                    let host = if host.is_empty() { "localhost" } else { host };
                    let name = net::tls::server_name(host).map_err(|e| e.to_string())?;
                    let (io, local_addr, remote_addr) = conn.into_parts();
                    let io = connector
                        .connect(name, io)
                        .await
                        .map_err(|e| format!("TLS handshake failed: {e}"))?;
                    Ok(Conn::new(io, local_addr, remote_addr))
                }
            }
        };
        match self.settings.dial_timeout {
            Some(limit) => tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or_else(|_| Err(format!("dial timed out after {limit:?}"))),
            None => attempt.await,
        }
    }
}
