//! [`Peer`]: one endpoint that listens and dials at once, and owns the sessions of both.
//!
//! ```no_run
//! use erpc::{Peer, PeerConfig, Router, Status};
//!
//! // Building, listening, dialing and calling all fail into `erpc::Error`.
//! # async fn run() -> Result<(), erpc::Error> {
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

mod admission;
mod dial;
mod listen;
mod pool;

use crate::observe::PeerMetrics;
use admission::Admission;
pub use pool::{Pool, PoolConfig, PoolStats};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
#[cfg(any(feature = "quic", feature = "kcp", feature = "signal"))]
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::codec::EncodeBody;
use crate::config::{Network, PeerConfig, Settings};
use crate::error::Error;
use crate::net::Conn;
use crate::plugin::{Plugin, Plugins};
use crate::proto::{Proto, RawProto};
use crate::router::{Dispatcher, Router};
use crate::session::{self, Broadcast, Env, Hooks, Registry, Seqs, Session, Sessions, Side, Storage};
use crate::status::{Code, Status};
use dial::Dialer;

/// A peer: server and client at once. Cheap to clone; the peer lives as long as a handle
/// does. Dropping the last handle stops its listeners and closes its sessions at once
/// ([`close`](Self::close) is the graceful way).
#[derive(Clone)]
pub struct Peer {
    inner: Arc<PeerInner>,
}

/// What a peer owns. Sessions refer to none of it strongly: they hold the shared [`Env`]
/// (settings, dispatcher, hooks) and weak references to the registry and the dialer.
struct PeerInner {
    config: PeerConfig,
    env: Arc<Env>,
    plugins: Plugins,
    registry: Arc<Registry>,
    dialer: Arc<Dialer>,
    proto: Arc<dyn Proto>,
    #[cfg(feature = "tls")]
    tls_server: Option<tokio_rustls::TlsAcceptor>,
    /// The session caps of accepted connections, when configured.
    admission: Option<Arc<Admission>>,
    stop_listening: watch::Sender<bool>,
    listeners: Mutex<Vec<JoinHandle<()>>>,
    /// The endpoints of QUIC listeners: closed after the sessions (as Go closes QUIC listeners
    /// last), since the sessions run on their sockets.
    #[cfg(feature = "quic")]
    quic_endpoints: Mutex<Vec<crate::net::quic::EndpointCloser>>,
    /// The sockets of KCP listeners: their sessions run on them, so they close after those.
    #[cfg(feature = "kcp")]
    kcp_sockets: Mutex<Vec<crate::net::kcp::KcpCloser>>,
    closed: AtomicBool,
}

impl Drop for PeerInner {
    fn drop(&mut self) {
        self.stop_listening.send_replace(true);
        self.dialer.closed.store(true, Ordering::Release);
        let reason = Status::conn_closed("the peer was dropped");
        for session in self.registry.all() {
            session.close_now(&reason);
        }
        #[cfg(feature = "quic")]
        for endpoint in self
            .quic_endpoints
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            endpoint.close_now();
        }
        #[cfg(feature = "kcp")]
        for socket in self.kcp_sockets.get_mut().unwrap_or_else(|e| e.into_inner()).drain(..) {
            socket.close_now();
        }
    }
}

/// Whether the peer serves TLS on its listeners.
fn has_tls_server(inner: &PeerInner) -> bool {
    #[cfg(feature = "tls")]
    return inner.tls_server.is_some();
    #[cfg(not(feature = "tls"))]
    {
        let _ = inner;
        false
    }
}

/// Builds a [`Peer`]: configuration, routes, plugins, protocol, TLS.
#[must_use]
pub struct PeerBuilder {
    config: PeerConfig,
    router: Router,
    plugins: Vec<Arc<dyn Plugin>>,
    proto: Arc<dyn Proto>,
    #[cfg(feature = "tls")]
    tls_server: Option<Arc<rustls::ServerConfig>>,
    #[cfg(feature = "tls")]
    tls_client: Option<Arc<rustls::ClientConfig>>,
    /// Routes extensions add, whatever router is set.
    extra_routes: Vec<AddRoutes>,
}

/// Routes an extension adds to the router at build time.
type AddRoutes = Box<dyn FnOnce(&mut Router) + Send>;

/// A ready-made feature that adds what it needs to a peer being built — plugins and routes
/// together — in one step: `Peer::builder().with(Pong::new())`.
pub trait Extension {
    /// Adds itself to `builder`.
    fn extend(self, builder: PeerBuilder) -> PeerBuilder;
}

impl Default for PeerBuilder {
    fn default() -> Self {
        PeerBuilder {
            config: PeerConfig::default(),
            router: Router::new(),
            plugins: Vec::new(),
            proto: Arc::new(RawProto),
            #[cfg(feature = "tls")]
            tls_server: None,
            #[cfg(feature = "tls")]
            tls_client: None,
            extra_routes: Vec::new(),
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

    /// Adds an [`Extension`] (plugins and routes that belong together).
    pub fn with(self, extension: impl Extension) -> Self {
        extension.extend(self)
    }

    /// Adds routes to whatever router the peer ends up with (for extensions: a later
    /// [`router`](Self::router) call does not drop them).
    pub fn routes(mut self, add: impl FnOnce(&mut Router) + Send + 'static) -> Self {
        self.extra_routes.push(Box::new(add));
        self
    }

    /// The default wire protocol of listeners and dials (default: rawproto).
    pub fn proto(mut self, proto: Arc<dyn Proto>) -> Self {
        self.proto = proto;
        self
    }

    /// Serves TLS on every listener (tcp and unix), and is the TLS config of QUIC listeners
    /// (which use a self-signed certificate without it). For QUIC, a config that names no ALPN
    /// protocols gets `http/1.1` and `h2`, and it must allow TLS 1.3.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_server(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls_server = Some(config);
        self
    }

    /// Dials with TLS. For QUIC, which always uses TLS, this is the config that verifies the
    /// server; **without it QUIC dials skip certificate verification**, as Go eRPC does (use
    /// [`tls::client_config_with_roots_pem`](crate::net::tls::client_config_with_roots_pem) to
    /// pin a certificate). A config that names no ALPN protocols offers `http/1.1` and `h2`.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
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
            #[cfg(feature = "tls")]
            tls_server,
            #[cfg(feature = "tls")]
            tls_client,
            extra_routes,
        } = self;
        let mut router = router;
        for add in extra_routes {
            add(&mut router);
        }
        let plugins = Plugins::new(plugins).map_err(|status| Error::Invalid(status.msg().to_string()))?;
        for plugin in plugins.iter() {
            plugin
                .pre_new_peer(&mut config)
                .map_err(|status| hook_error(plugin, "pre_new_peer", status))?;
        }
        config.validate()?;
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
        let settings = Settings::from_config(&config)?;
        let metrics = PeerMetrics::register();
        let registry = Arc::new(Registry::new(metrics.sessions_open.clone()));
        let dialer = Arc::new(
            Dialer::new(
                &config,
                settings.clone(),
                plugins.clone(),
                #[cfg(feature = "tls")]
                tls_client.map(tokio_rustls::TlsConnector::from),
            )
            .map_err(|e| Error::Invalid(e.to_string()))?,
        );
        let hooks: Option<Arc<dyn Hooks>> = (!plugins.is_empty()).then(|| Arc::new(plugins.clone()) as _);
        let redial: std::sync::Weak<dyn session::Redial> = Arc::downgrade(&dialer) as _;
        let env = Arc::new(Env {
            settings,
            dispatch: Arc::new(Dispatcher::new(routes, plugins.clone())),
            hooks,
            registry: Arc::downgrade(&registry),
            redial: Some(redial),
            remote_warnings: session::log::RemoteWarnings::default(),
            stopped_listening: AtomicBool::new(false),
            metrics,
        });
        let sessions = Sessions::new(&registry);
        let admission = Admission::new(&env.settings);
        let peer = Peer {
            inner: Arc::new(PeerInner {
                config,
                env,
                plugins,
                registry,
                dialer,
                proto,
                #[cfg(feature = "tls")]
                tls_server: tls_server.map(tokio_rustls::TlsAcceptor::from),
                admission,
                stop_listening: watch::Sender::new(false),
                listeners: Mutex::new(Vec::new()),
                #[cfg(feature = "quic")]
                quic_endpoints: Mutex::new(Vec::new()),
                #[cfg(feature = "kcp")]
                kcp_sockets: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
            }),
        };
        remember(&peer);
        for plugin in peer.inner.plugins.iter() {
            plugin
                .post_new_peer(&sessions)
                .map_err(|status| hook_error(plugin, "post_new_peer", status))?;
        }
        Ok(peer)
    }
}

/// Every peer of the process, for a reboot to close them all.
static PEERS: Mutex<Vec<Weak<PeerInner>>> = Mutex::new(Vec::new());

fn remember(peer: &Peer) {
    let mut peers = PEERS.lock().unwrap_or_else(|e| e.into_inner());
    peers.retain(|p| p.strong_count() > 0);
    peers.push(Arc::downgrade(&peer.inner));
}

/// The peers of this process that are alive and not closed (for a reboot, Unix only).
#[cfg(unix)]
pub(crate) fn live_peers() -> Vec<Peer> {
    let peers = PEERS.lock().unwrap_or_else(|e| e.into_inner());
    peers
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|inner| !inner.closed.load(Ordering::Acquire))
        .map(|inner| Peer { inner })
        .collect()
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
        &self.inner.config
    }

    /// Listens on the configured network and address (`local_ip:listen_port`) with the
    /// default protocol; returns the bound address (with the real port if the port was 0).
    pub async fn listen(&self) -> Result<String, Error> {
        let addr = self.inner.config.listen_addr();
        self.listen_with(self.inner.config.network, &addr, self.inner.proto.clone())
            .await
    }

    /// Listens on `addr` (`ip:port`, or a socket path for unix) on the configured network.
    pub async fn listen_on(&self, addr: &str) -> Result<String, Error> {
        self.listen_with(self.inner.config.network, addr, self.inner.proto.clone())
            .await
    }

    /// Listens on `addr` with the given network and protocol. Accepting runs in the
    /// background until [`close`](Self::close) or the last handle is dropped.
    pub async fn listen_with(&self, network: Network, addr: &str, proto: Arc<dyn Proto>) -> Result<String, Error> {
        listen::start(self, network, addr, proto).await
    }

    /// Dials `addr` with the default protocol. Attempts and their spacing follow the
    /// config's `redial_times` and `redial_interval`; failure is [`Error::Status`] with
    /// `105 Dial Failed` and the last error as cause, or the status a PreDial plugin refused
    /// with ([`Error::code`] reads it).
    pub async fn dial(&self, addr: &str) -> Result<Session, Error> {
        self.dial_with(addr, self.inner.proto.clone()).await
    }

    /// Dials `addr` with the given protocol; fails as [`dial`](Self::dial).
    pub async fn dial_with(&self, addr: &str, proto: Arc<dyn Proto>) -> Result<Session, Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Status::from_code(Code::DIAL_FAILED, "the peer is closed").into());
        }
        let pre = self.inner.dialer.connect(addr, proto, None).await?;
        let session = Session::start(self.inner.env.clone(), pre, Side::Client, Some(addr.to_string()));
        tracing::debug!(session = %session.id(), remote = %session.remote_addr(), "dial ok");
        Ok(session)
    }

    /// Serves a connection made elsewhere (a websocket, an in-memory pipe…) as an accepted
    /// one: PostAccept runs, then the session starts. Its id is the remote address. A
    /// PostAccept refusal is [`Error::Status`] with the plugin's status.
    pub async fn serve_conn(&self, conn: Conn, proto: Arc<dyn Proto>) -> Result<Session, Error> {
        Ok(listen::serve_conn(&self.accepting(), conn, proto).await?)
    }

    /// Uses a connection made elsewhere as a dialed one: PostDial runs, then the session
    /// starts. Such a session cannot redial (there is no address to dial). A PostDial refusal
    /// is [`Error::Status`] with `105 Dial Failed` and the plugin's message as cause.
    pub async fn connect_conn(&self, conn: Conn, proto: Arc<dyn Proto>) -> Result<Session, Error> {
        let id = conn.local_addr.clone();
        let dialer = &self.inner.dialer;
        let mut pre = dialer.pre_session(conn, proto, id, Seqs::new(), Storage::default());
        dialer.post_dial(&mut pre, false).await.map_err(|status| {
            Status::from_code(
                Code::DIAL_FAILED,
                status
                    .cause()
                    .filter(|c| !c.is_empty())
                    .unwrap_or(status.msg())
                    .to_string(),
            )
        })?;
        let session = Session::start(self.inner.env.clone(), pre, Side::Client, None);
        Ok(session)
    }

    /// The session with this id.
    pub fn session(&self, id: &str) -> Option<Session> {
        self.inner.registry.get(id)
    }

    /// Every live session (both accepted and dialed).
    pub fn sessions(&self) -> Vec<Session> {
        self.inner.registry.all()
    }

    /// A handle on the live sessions that does not keep the peer alive (for background tasks).
    pub fn sessions_handle(&self) -> Sessions {
        Sessions::new(&self.inner.registry)
    }

    /// Number of live sessions.
    pub fn count_sessions(&self) -> usize {
        self.inner.registry.len()
    }

    /// Pushes to every live session at once. Each push is bounded by the push timeout, so a
    /// session whose peer stopped reading delays nobody else; the [`Broadcast`] says how many
    /// took it and why the others did not.
    pub async fn broadcast<A: EncodeBody + ?Sized + Sync>(&self, service_method: &str, args: &A) -> Broadcast {
        session::broadcast(self.sessions(), service_method, args).await
    }

    /// Closes gracefully: stops accepting, then closes every session (each lets its running
    /// handlers answer, within the shutdown timeout).
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.dialer.closed.store(true, Ordering::Release);
        self.inner.env.stopped_listening.store(true, Ordering::Release);
        self.inner.stop_listening.send_replace(true);
        let listeners = std::mem::take(&mut *self.inner.listeners.lock().unwrap_or_else(|e| e.into_inner()));
        for listener in listeners {
            let _ = listener.await;
        }
        // All at once; each session's close runs in a task of its own (see `Session::close`).
        let sessions = self.sessions();
        futures_util::future::join_all(sessions.iter().map(Session::close)).await;
        #[cfg(feature = "quic")]
        let endpoints = std::mem::take(&mut *self.inner.quic_endpoints.lock().unwrap_or_else(|e| e.into_inner()));
        #[cfg(feature = "quic")]
        for endpoint in endpoints {
            // Ends connections still waiting for their stream, and frees the UDP port for a
            // server restarted on it.
            endpoint.close(Duration::from_secs(1)).await;
        }
        #[cfg(feature = "kcp")]
        let sockets = std::mem::take(&mut *self.inner.kcp_sockets.lock().unwrap_or_else(|e| e.into_inner()));
        #[cfg(feature = "kcp")]
        for socket in sockets {
            // Frees the UDP port for a server restarted on it.
            socket.close(Duration::from_secs(1)).await;
        }
    }

    /// What the accept path needs, without a handle on the peer itself.
    fn accepting(&self) -> listen::Accepting {
        listen::Accepting {
            env: self.inner.env.clone(),
            plugins: self.inner.plugins.clone(),
            #[cfg(feature = "tls")]
            tls: self.inner.tls_server.clone(),
            admission: self.inner.admission.clone(),
        }
    }

    /// Reboots the process without downtime ([`crate::reboot::reboot`]): a new process running
    /// the same program takes over the listeners of **every** peer of this process, then every
    /// peer here closes gracefully. Returns the new process's id; the caller then exits.
    #[cfg(unix)]
    pub async fn reboot(&self) -> Result<u32, Error> {
        crate::reboot::reboot().await
    }

    /// Waits for SIGINT or SIGTERM (Ctrl-C on other systems), then [`close`](Self::close)s,
    /// bounded by the config's `shutdown_timeout`. On Unix, SIGUSR2 reboots instead
    /// ([`reboot`](Self::reboot)): a new process takes over the listeners of every peer of the
    /// process, and they all close; if the new process cannot be started, the error is logged
    /// and this one goes on serving.
    ///
    /// The signal handlers are installed by this call, not when the future is first polled: a
    /// signal that arrives after the call and before the `.await` is not lost and does not kill
    /// the process. So call it before announcing readiness (printing the address, writing a pid
    /// file), and await the returned future afterwards. It resolves once the peer is closed,
    /// and says which signal closed it.
    ///
    /// # Panics
    ///
    /// If called outside a Tokio runtime.
    #[cfg(feature = "signal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signal")))]
    // Without SIGUSR2 (not Unix) the first signal always ends the loop.
    #[cfg_attr(not(unix), allow(clippy::never_loop))]
    pub fn shutdown_on_signal(&self) -> impl Future<Output = Signalled> + Send + 'static {
        let mut signals = Signals::install();
        let peer = self.clone();
        async move {
            loop {
                match signals.next().await {
                    Signalled::Shutdown => break,
                    #[cfg(unix)]
                    Signalled::Reboot => match crate::reboot::start_successor() {
                        Ok(pid) => {
                            tracing::info!(pid, "rebooting: closing this process's peers");
                            crate::reboot::close_every_peer().await;
                            return Signalled::Reboot;
                        }
                        Err(e) => tracing::error!(error = %e, "reboot failed; still serving"),
                    },
                }
            }
            tracing::info!("shutting down");
            let limit = peer.inner.env.settings.shutdown_timeout + Duration::from_secs(1);
            if tokio::time::timeout(limit, peer.close()).await.is_err() {
                tracing::warn!("shutdown took longer than {limit:?}; stopping anyway");
            }
            Signalled::Shutdown
        }
    }
}

/// What [`Peer::shutdown_on_signal`] did.
#[cfg(feature = "signal")]
#[cfg_attr(docsrs, doc(cfg(feature = "signal")))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signalled {
    /// SIGINT or SIGTERM (Ctrl-C): the peer closed.
    Shutdown,
    /// SIGUSR2: a new process took over the listeners, and every peer of this one closed.
    #[cfg(unix)]
    Reboot,
}

/// The signal handlers, installed at once.
#[cfg(all(unix, feature = "signal"))]
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
    usr2: Option<tokio::signal::unix::Signal>,
}

#[cfg(all(unix, feature = "signal"))]
impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            usr2: signal(SignalKind::user_defined2()).ok(),
        }
    }

    async fn next(&mut self) -> Signalled {
        async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        if self.int.is_none() && self.term.is_none() {
            let _ = tokio::signal::ctrl_c().await;
            return Signalled::Shutdown;
        }
        tokio::select! {
            () = recv(&mut self.int) => Signalled::Shutdown,
            () = recv(&mut self.term) => Signalled::Shutdown,
            () = recv(&mut self.usr2) => Signalled::Reboot,
        }
    }
}

#[cfg(all(not(unix), feature = "signal"))]
struct Signals;

#[cfg(all(not(unix), feature = "signal"))]
impl Signals {
    fn install() -> Signals {
        Signals
    }

    async fn next(&mut self) -> Signalled {
        let _ = tokio::signal::ctrl_c().await;
        Signalled::Shutdown
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("sessions", &self.count_sessions())
            .finish()
    }
}
