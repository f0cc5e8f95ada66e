//! QUIC with quinn (rustls, ring provider): one QUIC connection per session, carrying exactly one
//! bidirectional stream that carries the protocol's bytes, as Go eRPC (quic-go) does.
//!
//! This module owns the QUIC side of a peer: the server and client configurations built from the
//! peer's TLS configs (ALPN, self-signed default certificate, skip-verify default client),
//! the transport parameters taken from `PeerConfig`, the listener (one quinn [`Endpoint`] per
//! listener, one UDP socket) and dialing (one endpoint per dial, as Go opens one UDP socket per
//! dial, so each dialed session has a local address — its id — of its own).
//!
//! A stream is announced to the other end only by its first data (QUIC opens streams
//! implicitly): the listener hands a connection to the accept path once the client has sent
//! its first bytes, exactly as Go's listener does. Until then the connection waits in the
//! listener (at most `idle_timeout` when one is set), concurrently with other handshakes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
#[cfg(feature = "self-signed")]
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, Endpoint, ReadError, RecvStream, SendStream};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::{Conn, Io, ReadHalf, SocketOptions, WriteHalf, tls};

/// The ALPN protocols offered and accepted when the TLS config names none: those of Go eRPC's
/// TLS helpers (`http/1.1`, `h2`), which quic-go requires both ends to agree on.
pub const DEFAULT_ALPN: [&[u8]; 2] = [b"http/1.1", b"h2"];

/// Keep-alive period when `PeerConfig::keepalive` is not set: Go's QUIC listener's.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// QUIC's own idle timeout (no packet at all, keep-alives included): quic-go's default. It only
/// detects a vanished peer; the session's `idle_timeout` still applies to messages.
const DEFAULT_MAX_IDLE: Duration = Duration::from_secs(30);

/// Connections that finished their handshake and sent their first bytes, waiting for the accept
/// loop.
const ACCEPT_QUEUE: usize = 64;

/// Connections of one listener in their handshake or waiting for their stream's first bytes;
/// more are refused.
const MAX_PENDING: usize = 4096;

/// What a QUIC listener or dialer takes from the peer's configuration.
#[derive(Clone, Debug)]
pub(crate) struct QuicSettings {
    /// Keep-alive period (PING frames).
    pub(crate) keepalive: Duration,
    /// Bounds the QUIC handshake.
    pub(crate) handshake_timeout: Option<Duration>,
    /// Bounds the wait of an accepted connection for its stream's first bytes.
    pub(crate) idle_timeout: Option<Duration>,
}

impl QuicSettings {
    pub(crate) fn new(
        socket: &SocketOptions,
        handshake_timeout: Option<Duration>,
        idle_timeout: Option<Duration>,
    ) -> Self {
        QuicSettings {
            keepalive: socket.keepalive.unwrap_or(DEFAULT_KEEPALIVE),
            handshake_timeout,
            idle_timeout,
        }
    }

    fn transport(&self) -> Arc<quinn::TransportConfig> {
        let mut transport = quinn::TransportConfig::default();
        // A keep-alive period at or past the idle timeout would let idle connections die.
        let max_idle = DEFAULT_MAX_IDLE.max(self.keepalive * 2);
        transport
            .keep_alive_interval(Some(self.keepalive))
            .max_idle_timeout(quinn::IdleTimeout::try_from(max_idle).ok());
        Arc::new(transport)
    }
}

/// With the default ALPN protocols if the config names none.
fn with_alpn(mut alpn: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if alpn.is_empty() {
        alpn = DEFAULT_ALPN.iter().map(|p| p.to_vec()).collect();
    }
    alpn
}

/// The process-wide self-signed config QUIC listeners use when the peer has none (as Go).
#[cfg(feature = "self-signed")]
fn default_server_tls() -> io::Result<Arc<rustls::ServerConfig>> {
    static CONFIG: OnceLock<Result<Arc<rustls::ServerConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| super::tls::self_signed_server_config(&["localhost"]).map_err(|e| e.to_string()))
        .clone()
        .map_err(io::Error::other)
}

/// Without certificate generation, a QUIC listener needs the peer's TLS config.
#[cfg(not(feature = "self-signed"))]
fn default_server_tls() -> io::Result<Arc<rustls::ServerConfig>> {
    Err(invalid(
        "a QUIC listener needs a TLS server config: set one with PeerBuilder::tls_server, or \
         enable erpc's `self-signed` feature to generate a self-signed certificate (development only)"
            .into(),
    ))
}

/// The quinn server config: the peer's TLS config (or a self-signed one) with the default ALPN
/// protocols if it names none. QUIC needs TLS 1.3.
pub(crate) fn server_config(
    tls: Option<&Arc<rustls::ServerConfig>>,
    settings: &QuicSettings,
) -> io::Result<quinn::ServerConfig> {
    let mut tls = match tls {
        Some(tls) => (**tls).clone(),
        None => (*default_server_tls()?).clone(),
    };
    tls.alpn_protocols = with_alpn(std::mem::take(&mut tls.alpn_protocols));
    let crypto = QuicServerConfig::try_from(tls)
        .map_err(|e| invalid(format!("the TLS server config cannot be used for QUIC: {e}")))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(settings.transport());
    Ok(config)
}

/// The quinn client config: the peer's TLS config or, as Go, one that skips certificate
/// verification; with the default ALPN protocols if it names none.
pub(crate) fn client_config(
    tls: Option<&Arc<rustls::ClientConfig>>,
    settings: &QuicSettings,
) -> io::Result<quinn::ClientConfig> {
    let mut tls = match tls {
        Some(tls) => (**tls).clone(),
        None => skip_verification_config(),
    };
    tls.alpn_protocols = with_alpn(std::mem::take(&mut tls.alpn_protocols));
    let crypto = QuicClientConfig::try_from(tls)
        .map_err(|e| invalid(format!("the TLS client config cannot be used for QUIC: {e}")))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(settings.transport());
    Ok(config)
}

/// The client config QUIC dials use without one of the peer's: like Go's
/// `InsecureSkipVerify`, it accepts any certificate, so it does not protect against an attacker
/// in the middle. Go's listeners default to an RSA-1024 certificate, whose TLS 1.3 signatures
/// ring refuses to check (it verifies RSA keys of 2048 bits and more): RSA signatures that
/// cannot be checked are accepted too, which changes nothing about what this config protects.
fn skip_verification_config() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(SkipVerification {
        algorithms: provider.signature_verification_algorithms,
    });
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

#[derive(Debug)]
struct SkipVerification {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl SkipVerification {
    /// An RSA signature ring could not check is let through (see [`skip_verification_config`]).
    fn tolerate(
        scheme: rustls::SignatureScheme,
        checked: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        use rustls::SignatureScheme as S;
        match checked {
            Err(_)
                if matches!(
                    scheme,
                    S::RSA_PSS_SHA256
                        | S::RSA_PSS_SHA384
                        | S::RSA_PSS_SHA512
                        | S::RSA_PKCS1_SHA256
                        | S::RSA_PKCS1_SHA384
                        | S::RSA_PKCS1_SHA512
                ) =>
            {
                Ok(HandshakeSignatureValid::assertion())
            }
            other => other,
        }
    }
}

impl rustls::client::danger::ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let checked = rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms);
        Self::tolerate(dss.scheme, checked)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let checked = rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms);
        Self::tolerate(dss.scheme, checked)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        // The RSA schemes ring cannot check for small keys must still be offered.
        self.algorithms.supported_schemes()
    }
}

/// The session's stream: both directions of the connection's one bidirectional stream.
pub(crate) struct QuicStream {
    recv: RecvHalf,
    send: SendHalf,
}

impl QuicStream {
    fn new(conn: quinn::Connection, send: SendStream, recv: RecvStream) -> Self {
        QuicStream {
            recv: RecvHalf { recv },
            send: SendHalf {
                send,
                conn,
                acked: None,
            },
        }
    }

    pub(crate) fn into_split(self) -> (ReadHalf, WriteHalf) {
        (ReadHalf::Quic(self.recv), Box::new(self.send))
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_shutdown(cx)
    }
}

/// The receiving side. The other end closing the connection (rather than only finishing the
/// stream) reads as the end of the stream, as a TCP close does.
pub(crate) struct RecvHalf {
    recv: RecvStream,
}

impl AsyncRead for RecvHalf {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.recv).poll_read(cx, buf)) {
            Err(e) if closed_by_application(&e) => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }
}

fn closed_by_application(e: &io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|inner| inner.downcast_ref::<ReadError>()),
        Some(ReadError::ConnectionLost(
            ConnectionError::ApplicationClosed(_) | ConnectionError::LocallyClosed
        ))
    )
}

/// The sending side. It holds the connection, which QUIC closes (code 0) once the stream and
/// this handle are gone; shutting down finishes the stream and waits until the other end has
/// every byte, so closing the connection right after cannot discard the last replies.
pub(crate) struct SendHalf {
    send: SendStream,
    conn: quinn::Connection,
    acked: Option<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>,
}

impl AsyncWrite for SendHalf {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send).poll_write(cx, buf).map_err(io::Error::from)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.acked.is_none() {
            // Finishing twice is an error in quinn; an already-closed stream has nothing left.
            let _ = self.send.finish();
            let stopped = self.send.stopped();
            self.acked = Some(Box::pin(async move {
                let _ = stopped.await;
            }));
        }
        let acked = self.acked.as_mut().expect("set above");
        ready!(acked.as_mut().poll(cx));
        Poll::Ready(Ok(()))
    }
}

impl Drop for SendHalf {
    fn drop(&mut self) {
        // Go closes the connection with application code 0 and no reason.
        self.conn.close(0u32.into(), b"");
    }
}

/// A QUIC listener: its endpoint and the connections whose stream has begun.
pub(crate) struct QuicListener {
    endpoint: Endpoint,
    /// Ends when the endpoint has let go of its UDP socket.
    released: Option<oneshot::Receiver<()>>,
    ready: Mutex<mpsc::Receiver<Conn>>,
    accepting: JoinHandle<()>,
    /// Offers the UDP socket to a reboot while the listener accepts.
    #[cfg(unix)]
    _handover: super::handover::Registration,
}

impl QuicListener {
    /// Binds a UDP socket on `addr` (or takes the one a rebooting parent or systemd passed
    /// for it) and starts accepting QUIC connections on it.
    pub(crate) async fn bind(addr: &str, config: quinn::ServerConfig, settings: &QuicSettings) -> io::Result<Self> {
        let addrs = resolve(addr, "0.0.0.0").await?;
        #[cfg(unix)]
        if let Some(fd) = super::inherit::take_inet(super::inherit::Kind::Udp, &addrs).map_err(super::invalid)? {
            return Self::on_socket(super::inherit::into_std(fd)?, config, settings);
        }
        let mut last = io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("{addr} resolves to no usable address"),
        );
        for sa in addrs {
            match std::net::UdpSocket::bind(sa) {
                Ok(socket) => return Self::on_socket(socket, config, settings),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn on_socket(
        socket: std::net::UdpSocket,
        config: quinn::ServerConfig,
        settings: &QuicSettings,
    ) -> io::Result<Self> {
        #[cfg(unix)]
        let handover = {
            use std::os::fd::AsFd;
            let addr = socket.local_addr()?.to_string();
            super::handover::register(super::inherit::Kind::Udp, &addr, socket.as_fd())?
        };
        let (socket, released) = TrackedSocket::wrap(socket)?;
        let endpoint = Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            Some(config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        let accepting = tokio::spawn(accept_loop(endpoint.clone(), tx, settings.clone()));
        Ok(QuicListener {
            endpoint,
            released: Some(released),
            ready: Mutex::new(rx),
            accepting,
            #[cfg(unix)]
            _handover: handover,
        })
    }

    /// The next connection whose client has opened its stream.
    pub(crate) async fn accept(&self) -> io::Result<Conn> {
        self.ready
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the QUIC endpoint is closed"))
    }

    /// The bound UDP address.
    pub(crate) fn local_addr(&self) -> String {
        self.endpoint.local_addr().map(|a| a.to_string()).unwrap_or_default()
    }

    /// What the peer needs to close the endpoint once its sessions are closed.
    pub(crate) fn closer(&mut self) -> EndpointCloser {
        EndpointCloser {
            endpoint: self.endpoint.clone(),
            released: self.released.take(),
        }
    }
}

/// Closes a listener's endpoint after the peer's sessions (Go closes QUIC listeners last).
pub(crate) struct EndpointCloser {
    endpoint: Endpoint,
    released: Option<oneshot::Receiver<()>>,
}

impl EndpointCloser {
    /// Closes the endpoint at once: connections still open end with code 0.
    pub(crate) fn close_now(&self) {
        self.endpoint.close(0u32.into(), b"");
    }

    /// Closes the endpoint and waits (up to `limit`) until its UDP port is free again, so a
    /// server restarted right after can bind it.
    pub(crate) async fn close(self, limit: Duration) {
        self.close_now();
        let EndpointCloser { endpoint, released } = self;
        let released = async move {
            endpoint.wait_idle().await;
            drop(endpoint);
            if let Some(released) = released {
                let _ = released.await;
            }
        };
        let _ = tokio::time::timeout(limit, released).await;
    }
}

/// A UDP socket that says when quinn drops it: the endpoint's driver task owns the socket and
/// ends on its own, so without this a closed endpoint's port is freed at an unknown time.
#[derive(Debug)]
struct TrackedSocket {
    inner: Option<Arc<dyn quinn::AsyncUdpSocket>>,
    released: Option<oneshot::Sender<()>>,
}

impl TrackedSocket {
    fn wrap(socket: std::net::UdpSocket) -> io::Result<(Arc<dyn quinn::AsyncUdpSocket>, oneshot::Receiver<()>)> {
        use quinn::Runtime;
        let inner = quinn::TokioRuntime.wrap_udp_socket(socket)?;
        let (tx, rx) = oneshot::channel();
        let tracked = TrackedSocket {
            inner: Some(inner),
            released: Some(tx),
        };
        Ok((Arc::new(tracked), rx))
    }

    fn inner(&self) -> &Arc<dyn quinn::AsyncUdpSocket> {
        self.inner.as_ref().expect("taken only on drop")
    }
}

impl Drop for TrackedSocket {
    fn drop(&mut self) {
        // Pollers hold this wrapper, so the inner socket is not shared any more: dropping it
        // closes the file descriptor before the waiter hears of it.
        drop(self.inner.take());
        drop(self.released.take());
    }
}

impl quinn::AsyncUdpSocket for TrackedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn quinn::UdpPoller>> {
        let poller = self.inner().clone().create_io_poller();
        Box::pin(TrackedPoller { poller, _socket: self })
    }

    fn try_send(&self, transmit: &quinn::udp::Transmit) -> io::Result<()> {
        self.inner().try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [quinn::udp::RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner().poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner().local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner().max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner().max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner().may_fragment()
    }
}

/// The inner socket's poller, keeping the wrapper (and so the socket) alive.
#[derive(Debug)]
struct TrackedPoller {
    poller: Pin<Box<dyn quinn::UdpPoller>>,
    _socket: Arc<TrackedSocket>,
}

impl quinn::UdpPoller for TrackedPoller {
    fn poll_writable(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        self.poller.as_mut().poll_writable(cx)
    }
}

impl Drop for QuicListener {
    fn drop(&mut self) {
        // Stop taking new connections (the endpoint refuses them) but keep the socket: the
        // sessions already accepted still run on it until the peer closes them.
        self.accepting.abort();
        self.endpoint.set_server_config(None);
    }
}

/// Accepts connections; each one's handshake and wait for its stream run concurrently, so a
/// slow or silent client delays no other.
async fn accept_loop(endpoint: Endpoint, ready: mpsc::Sender<Conn>, settings: QuicSettings) {
    let Ok(bound) = endpoint.local_addr() else { return };
    let mut pending = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => match incoming {
                // Connections waiting for their handshake or stream are not counted by the
                // session caps yet: a bound of their own keeps a flood of them finite.
                Some(incoming) if pending.len() >= MAX_PENDING => incoming.refuse(),
                Some(incoming) => {
                    pending.spawn(accept_one(incoming, bound, ready.clone(), settings.clone()));
                }
                None => break,
            },
            Some(_) = pending.join_next(), if !pending.is_empty() => {}
        }
    }
}

async fn accept_one(incoming: quinn::Incoming, bound: SocketAddr, ready: mpsc::Sender<Conn>, settings: QuicSettings) {
    let remote = incoming.remote_address();
    let connection = async {
        let connecting = incoming.accept().map_err(|e| e.to_string())?;
        bounded(settings.handshake_timeout, connecting, "the QUIC handshake")
            .await?
            .map_err(|e| e.to_string())
    };
    let connection = match connection.await {
        Ok(connection) => connection,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "QUIC connection refused");
            return;
        }
    };
    let stream = bounded(settings.idle_timeout, connection.accept_bi(), "the first stream").await;
    let (send, recv) = match stream {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "QUIC connection ended before its stream");
            return;
        }
        Err(e) => {
            tracing::debug!(%remote, error = %e, "QUIC connection closed");
            connection.close(0u32.into(), b"");
            return;
        }
    };
    let conn = Conn {
        local_addr: SocketAddr::new(connection.local_ip().unwrap_or(bound.ip()), bound.port()).to_string(),
        remote_addr: remote.to_string(),
        peer_certificates: peer_certificates_of(&connection),
        io: Io::Quic(QuicStream::new(connection, send, recv)),
    };
    let _ = ready.send(conn).await;
}

/// Runs `fut` within `limit` (if any); the error names `what` timed out.
async fn bounded<F: Future>(limit: Option<Duration>, fut: F, what: &str) -> Result<F::Output, String> {
    match limit {
        None => Ok(fut.await),
        Some(limit) => tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| format!("{what} did not finish within {limit:?}")),
    }
}

/// Dials `addr` over QUIC from a UDP socket of its own (bound to `local`, else to any address
/// of the remote's family), then opens the session's stream.
pub(crate) async fn connect(
    addr: &str,
    local: Option<&str>,
    config: &quinn::ClientConfig,
    settings: &QuicSettings,
) -> io::Result<Conn> {
    let remote = resolve(addr, "127.0.0.1").await?.into_iter().next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("{addr} resolves to no address"),
        )
    })?;
    let bind: SocketAddr = match local {
        Some(local) => local
            .parse()
            .map_err(|e| invalid(format!("bad local address {local:?}: {e}")))?,
        None if remote.is_ipv4() => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        None => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let endpoint = Endpoint::client(bind)?;
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_matches(['[', ']']);
    let host = if host.is_empty() { "localhost" } else { host };
    let connecting = endpoint
        .connect_with(config.clone(), remote, host)
        .map_err(|e| invalid(format!("cannot dial {addr} over QUIC: {e}")))?;
    let connection = bounded(settings.handshake_timeout, connecting, "the QUIC handshake")
        .await
        .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e))?
        .map_err(|e| handshake_error(addr, e))?;
    let (send, recv) = connection.open_bi().await.map_err(io::Error::other)?;
    let local_addr = endpoint.local_addr().map(|a| a.to_string()).unwrap_or_default();
    Ok(Conn {
        local_addr,
        remote_addr: remote.to_string(),
        peer_certificates: peer_certificates_of(&connection),
        io: Io::Quic(QuicStream::new(connection, send, recv)),
    })
}

/// A handshake failure, with a hint for the usual cause of each TLS alert.
fn handshake_error(addr: &str, e: ConnectionError) -> io::Error {
    let text = e.to_string();
    let hint = if text.contains("error 120") {
        " (no ALPN protocol in common: both ends must name one, erpc offers http/1.1 and h2 by default)"
    } else if text.contains("invalid peer certificate") {
        " (the server's certificate is not trusted by the TLS client config)"
    } else {
        ""
    };
    io::Error::new(
        io::ErrorKind::ConnectionRefused,
        format!("QUIC handshake with {addr} failed: {text}{hint}"),
    )
}

/// Resolves `host:port`; an empty host is `empty_host` (Go listens on every address and dials
/// 127.0.0.1).
async fn resolve(addr: &str, empty_host: &str) -> io::Result<Vec<SocketAddr>> {
    let addr = if addr.starts_with(':') {
        format!("{empty_host}{addr}")
    } else {
        addr.to_string()
    };
    let all = tokio::net::lookup_host(&addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {addr:?}: {e} (expected host:port)")))?;
    Ok(all.collect())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The chain the peer of a QUIC connection presented (quinn's rustls session reports it as
/// a `Vec<CertificateDer>`).
fn peer_certificates_of(connection: &quinn::Connection) -> Option<super::PeerCertificates> {
    let identity = connection.peer_identity()?;
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    tls::chain_of(Some(&chain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::SignatureScheme;

    #[test]
    fn skip_verification_lets_through_only_rsa_signatures_ring_cannot_check() {
        let failed = || Err(rustls::Error::General("key too small".into()));
        assert!(SkipVerification::tolerate(SignatureScheme::RSA_PSS_SHA256, failed()).is_ok());
        assert!(SkipVerification::tolerate(SignatureScheme::RSA_PKCS1_SHA256, failed()).is_ok());
        assert!(SkipVerification::tolerate(SignatureScheme::ECDSA_NISTP256_SHA256, failed()).is_err());
        assert!(SkipVerification::tolerate(SignatureScheme::ED25519, failed()).is_err());
    }

    #[test]
    fn configs_get_the_default_alpn_and_keep_their_own() {
        let settings = QuicSettings::new(&SocketOptions::new(true, None, None, None), None, None);
        assert_eq!(settings.keepalive, DEFAULT_KEEPALIVE);
        // Without a TLS config a listener generates a certificate, or says how to get one.
        let generated = server_config(None, &settings);
        #[cfg(feature = "self-signed")]
        assert!(generated.is_ok());
        #[cfg(not(feature = "self-signed"))]
        assert!(generated.is_err_and(|e| e.to_string().contains("`self-signed` feature")));
        assert!(client_config(None, &settings).is_ok());
        assert_eq!(with_alpn(Vec::new()), [b"http/1.1".to_vec(), b"h2".to_vec()]);
        assert_eq!(with_alpn(vec![b"x".to_vec()]), [b"x".to_vec()]);
    }
}
