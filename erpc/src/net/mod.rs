//! Transports: listening, dialing and the byte streams sessions run on.
//!
//! A [`Conn`] is any ordered, reliable byte stream (`AsyncRead + AsyncWrite`) with its two
//! addresses; sessions neither know nor care whether it is TCP, a unix socket or TLS over
//! either. The stream transports live here (tcp, tcp4, tcp6, unix) and [`tls`] wraps them;
//! datagram- and QUIC-based transports plug in by producing a `Conn` the same way.
//!
//! KCP (`net::kcp`, erpc's `kcp` feature) is a byte stream over UDP with kcp-go's framing;
//! its sessions share a listener's socket, demultiplexed by address and conversation id.
//!
//! Message transports (`ws`: WebSocket, `seqpacket`: unixpacket) carry one eRPC frame per
//! message. Their `Conn` reads by appending each message's payload to the session's buffer,
//! and writes each frame as one message (the session's outbox keeps frame boundaries for
//! them: see `Messages`).
//!
//! Every [`Network`] variant exists in every build, so a config file naming a transport this
//! build leaves out still parses; listening or dialing on it then fails with an error naming
//! the erpc feature that adds it (see [`Network::missing_feature`]).

pub(crate) mod buffers;
#[cfg(unix)]
pub(crate) mod handover;
#[cfg(unix)]
pub(crate) mod inherit;
#[cfg(feature = "kcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "kcp")))]
pub mod kcp;
#[cfg(feature = "quic")]
#[cfg_attr(docsrs, doc(cfg(feature = "quic")))]
pub mod quic;
#[cfg(target_os = "linux")]
pub(crate) mod seqpacket;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
#[cfg(feature = "websocket")]
pub(crate) mod ws;

use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};

use serde::{Deserialize, Serialize};

/// The transport of a peer's listeners and dials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Network {
    /// TCP over IPv4 or IPv6.
    #[default]
    Tcp,
    /// TCP over IPv4 only.
    Tcp4,
    /// TCP over IPv6 only.
    Tcp6,
    /// Unix stream sockets; addresses are file paths.
    Unix,
    /// Unix seqpacket sockets (Linux): one message per datagram; addresses are file paths.
    Unixpacket,
    /// KCP over UDP, wire-compatible with Go eRPC's kcp-go sessions (FEC 10/3, no
    /// encryption): a byte stream that every protocol runs on, with TLS inside it when the
    /// peer has a TLS configuration. `udp` is the same network (Go's name for it). KCP has no
    /// handshake and no close signal: a dial succeeds without a server, and a session whose
    /// peer vanished ends by the session's own limits (`idle_timeout`, heartbeat), or after 20
    /// unanswered retransmissions. See `net::kcp` (erpc's `kcp` feature).
    #[serde(alias = "udp")]
    Kcp,
    /// [`Network::Kcp`] over IPv4 only.
    Udp4,
    /// [`Network::Kcp`] over IPv6 only.
    Udp6,
    /// QUIC over UDP (quinn), always with TLS: one connection per session, carrying one
    /// bidirectional stream, as Go eRPC. Listeners use the peer's TLS server config, or a
    /// self-signed certificate when none is set (as Go); dials use the peer's TLS client config,
    /// or — as Go — one that **skips certificate verification** when none is set. When a config
    /// names no ALPN protocols, `http/1.1` and `h2` are offered and accepted (those of Go eRPC's
    /// TLS helpers; see `net::quic::DEFAULT_ALPN`, erpc's `quic` feature). A listener sees a session only once its client
    /// has sent its first message (QUIC announces a stream with its first bytes; Go alike).
    Quic,
    /// WebSocket over TCP (RFC 6455), one message per binary frame; TLS when the peer has a
    /// TLS configuration. The endpoint path is `PeerConfig::ws_path`.
    #[serde(alias = "websocket")]
    Ws,
    /// WebSocket over TLS: [`Network::Ws`] that refuses to run without a TLS configuration.
    Wss,
}

impl Network {
    /// Whether this build can listen and dial on it: its erpc feature is enabled (`quic`,
    /// `kcp`, `websocket`) and the system has it (unix sockets on Unix, unixpacket on Linux).
    pub fn is_available(self) -> bool {
        match self {
            Network::Tcp | Network::Tcp4 | Network::Tcp6 => true,
            Network::Unix => cfg!(unix),
            Network::Unixpacket => cfg!(target_os = "linux"),
            Network::Quic => cfg!(feature = "quic"),
            Network::Ws | Network::Wss => cfg!(feature = "websocket"),
            Network::Kcp | Network::Udp4 | Network::Udp6 => cfg!(feature = "kcp"),
        }
    }

    /// The erpc feature that adds this network, when this build leaves it out (`None` when it
    /// is available, or when what is missing is the system's support, not a feature).
    pub fn missing_feature(self) -> Option<&'static str> {
        match self {
            Network::Quic if !cfg!(feature = "quic") => Some("quic"),
            Network::Ws | Network::Wss if !cfg!(feature = "websocket") => Some("websocket"),
            Network::Kcp | Network::Udp4 | Network::Udp6 if !cfg!(feature = "kcp") => Some("kcp"),
            _ => None,
        }
    }

    /// Why it cannot be used in this build (for error messages; call when not
    /// [`is_available`](Self::is_available)): the feature to enable, or that the system lacks it.
    pub(crate) fn unavailable_reason(self) -> String {
        let available: Vec<String> = ALL
            .iter()
            .filter(|n| n.is_available())
            .map(|n| format!("{n:?}").to_lowercase())
            .collect();
        let instead = format!("use {}", available.join(", "));
        match self.missing_feature() {
            Some(feature) => format!("needs erpc's `{feature}` feature: enable it, or {instead}"),
            None if self == Network::Unixpacket => format!("needs Linux (seqpacket sockets); {instead}"),
            None if self == Network::Unix => format!("needs a Unix system; {instead}"),
            None => format!("is not available in this build; {instead}"),
        }
    }
}

/// Every network, for listing the available ones.
const ALL: [Network; 11] = [
    Network::Tcp,
    Network::Tcp4,
    Network::Tcp6,
    Network::Unix,
    Network::Unixpacket,
    Network::Kcp,
    Network::Udp4,
    Network::Udp6,
    Network::Quic,
    Network::Ws,
    Network::Wss,
];

impl Network {
    /// Whether it runs KCP over UDP (`kcp`, `udp`, `udp4`, `udp6`).
    pub fn is_kcp(self) -> bool {
        matches!(self, Network::Kcp | Network::Udp4 | Network::Udp6)
    }

    /// Whether it runs WebSocket (over TCP, after TLS if any).
    pub fn is_websocket(self) -> bool {
        matches!(self, Network::Ws | Network::Wss)
    }

    /// Whether it carries messages rather than a byte stream (one eRPC frame per message).
    pub fn carries_messages(self) -> bool {
        matches!(self, Network::Ws | Network::Wss | Network::Unixpacket)
    }
}

/// A byte stream a session can run on.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// The write half of a connection. For a message transport, every `poll_write` that does not
/// return `Pending` sends exactly the bytes given as one whole message.
pub(crate) type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The receiving side of a message transport.
pub(crate) trait MessageRecv: Send + Unpin {
    /// Appends the payload of the next message to `buf` and returns its length (`Ok(0)`: the
    /// end of the connection; empty messages are skipped). Takes a buffer only once a message
    /// is there, so an idle session holds none.
    fn poll_recv(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>>;
}

/// A message transport: one eRPC frame per message (a WebSocket, a seqpacket socket).
///
/// Its `AsyncWrite` sends each `poll_write`'s bytes as one whole message (never a part), so a
/// caller that writes frame by frame keeps one frame per message; [`MessageRecv`] receives.
pub(crate) trait Messages: MessageRecv + AsyncWrite + Send + Unpin + 'static {
    /// The two halves, for the reader and writer tasks.
    fn split(self: Box<Self>) -> (Box<dyn MessageRecv>, WriteHalf);
}

/// The read half of a connection. Socket halves wait for readability before they need a
/// buffer, so an idle session holds none.
pub(crate) enum ReadHalf {
    Tcp(tokio::net::tcp::OwnedReadHalf),
    #[cfg(unix)]
    Unix(tokio::net::unix::OwnedReadHalf),
    Boxed(tokio::io::ReadHalf<Box<dyn Stream>>),
    #[cfg(feature = "quic")]
    Quic(quic::RecvHalf),
    #[cfg(feature = "kcp")]
    Kcp(kcp::RecvHalf),
    Messages(Box<dyn MessageRecv>),
}

impl ReadHalf {
    /// Reads what is available into `buf`, making `room` bytes of room first, but only once
    /// there is something to read on a socket. `Ok(0)` is the end of the stream.
    pub(crate) async fn read_into(&mut self, buf: &mut BytesMut, room: usize) -> io::Result<usize> {
        loop {
            match self {
                // `poll_read_ready` parks on the socket's one reader slot; `readable()` would
                // join a waiter list behind a lock, on every wait.
                ReadHalf::Tcp(half) => std::future::poll_fn(|cx| half.as_ref().poll_read_ready(cx)).await?,
                #[cfg(unix)]
                ReadHalf::Unix(half) => std::future::poll_fn(|cx| half.as_ref().poll_read_ready(cx)).await?,
                ReadHalf::Boxed(half) => {
                    make_room(buf, room);
                    return half.read_buf(buf).await;
                }
                ReadHalf::Messages(half) => return std::future::poll_fn(|cx| half.poll_recv(cx, buf)).await,
                #[cfg(feature = "kcp")]
                ReadHalf::Kcp(half) => return std::future::poll_fn(|cx| half.poll_read_into(cx, buf, room)).await,
                #[cfg(feature = "quic")]
                ReadHalf::Quic(half) => {
                    make_room(buf, room);
                    return half.read_buf(buf).await;
                }
            }
            make_room(buf, room);
            // One poll of an ordinary read: unlike `try_read`, it learns from a short read that
            // the socket is drained, which saves a system call per wake-up.
            let read = match self {
                ReadHalf::Tcp(half) => half.read_buf(buf).now_or_never(),
                #[cfg(unix)]
                ReadHalf::Unix(half) => half.read_buf(buf).now_or_never(),
                ReadHalf::Boxed(half) => half.read_buf(buf).now_or_never(),
                ReadHalf::Messages(_) => unreachable!("returned above"),
                #[cfg(feature = "kcp")]
                ReadHalf::Kcp(_) => unreachable!("returned above"),
                #[cfg(feature = "quic")]
                ReadHalf::Quic(half) => half.read_buf(buf).now_or_never(),
            };
            match read {
                Some(read) => return read,
                // Readiness can be spurious (a new socket starts out "ready"): give the room
                // back unless it holds part of a frame.
                None => buffers::give_if_empty(buf),
            }
        }
    }
}

/// Makes `room` bytes of room in `buf`: a pooled buffer if it has none, more if less than half
/// of `room` is free.
pub(crate) fn make_room(buf: &mut BytesMut, room: usize) {
    if buf.capacity() == 0 {
        *buf = buffers::take(room);
    } else if buf.capacity() - buf.len() < room / 2 {
        buf.reserve(room);
    }
}

/// An established connection: the stream and its two addresses.
pub struct Conn {
    io: Io,
    /// This end's address (`ip:port`, or a socket path for unix networks).
    pub local_addr: String,
    /// The other end's address.
    pub remote_addr: String,
    /// The certificate chain the other end presented in a TLS (or QUIC) handshake.
    peer_certificates: Option<PeerCertificates>,
}

/// The certificate chain a TLS peer presented, its own certificate first, shared by the
/// connection and its session.
pub type PeerCertificates = std::sync::Arc<[rustls_pki_types::CertificateDer<'static>]>;

/// TCP and unix streams split into halves without a lock between them; other streams are
/// split with `tokio::io::split`.
enum Io {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
    Boxed(Box<dyn Stream>),
    #[cfg(feature = "quic")]
    Quic(quic::QuicStream),
    #[cfg(feature = "kcp")]
    Kcp(kcp::KcpStream),
    // Built by the WebSocket and unixpacket transports only.
    #[cfg_attr(not(any(target_os = "linux", feature = "websocket")), allow(dead_code))]
    Messages(Box<dyn Messages>),
}

impl Conn {
    /// A connection over any byte stream (a TLS stream, a websocket adapter, an in-memory
    /// pipe…).
    pub fn new(io: impl Stream, local_addr: impl Into<String>, remote_addr: impl Into<String>) -> Conn {
        Conn {
            io: Io::Boxed(Box::new(io)),
            peer_certificates: None,
            local_addr: local_addr.into(),
            remote_addr: remote_addr.into(),
        }
    }

    /// A connection over a message transport.
    #[cfg_attr(not(any(target_os = "linux", feature = "websocket")), allow(dead_code))]
    pub(crate) fn messages(io: impl Messages, local_addr: impl Into<String>, remote_addr: impl Into<String>) -> Conn {
        Conn {
            io: Io::Messages(Box::new(io)),
            peer_certificates: None,
            local_addr: local_addr.into(),
            remote_addr: remote_addr.into(),
        }
    }

    /// The certificate chain the other end presented in the TLS handshake, its own
    /// certificate first; `None` without TLS, or when the other end sent none (a client
    /// without a certificate).
    pub fn peer_certificates(&self) -> Option<&[rustls_pki_types::CertificateDer<'static>]> {
        self.peer_certificates.as_deref()
    }

    /// Records the certificate chain of the other end, for a connection whose TLS handshake
    /// was made elsewhere (then [`Session::peer_certificates`](crate::Session::peer_certificates)
    /// shows it). An empty chain is recorded as none.
    pub fn with_peer_certificates(mut self, chain: impl Into<PeerCertificates>) -> Conn {
        self.peer_certificates = Some(chain.into()).filter(|c| !c.is_empty());
        self
    }

    /// The shared chain, to carry it over to a wrapping connection or a session.
    pub(crate) fn peer_certificate_chain(&self) -> Option<PeerCertificates> {
        self.peer_certificates.clone()
    }

    /// Sets (or clears) the chain, for the TLS handshakes and wrappers of this crate.
    #[cfg(any(feature = "tls", feature = "websocket"))]
    pub(crate) fn set_peer_certificates(&mut self, chain: Option<PeerCertificates>) {
        self.peer_certificates = chain.filter(|c| !c.is_empty());
    }

    /// The stream and the two addresses, to wrap the stream (in TLS, say). A message
    /// transport comes back as a stream of its messages' payloads, back to back.
    pub fn into_parts(self) -> (Box<dyn Stream>, String, String) {
        let io: Box<dyn Stream> = match self.io {
            Io::Tcp(s) => Box::new(s),
            #[cfg(unix)]
            Io::Unix(s) => Box::new(s),
            Io::Boxed(s) => s,
            #[cfg(feature = "quic")]
            Io::Quic(s) => Box::new(s),
            #[cfg(feature = "kcp")]
            Io::Kcp(s) => Box::new(s),
            Io::Messages(m) => Box::new(MessageStream {
                inner: m,
                pending: BytesMut::new(),
            }),
        };
        (io, self.local_addr, self.remote_addr)
    }

    /// Whether it is a QUIC stream.
    pub(crate) fn is_quic(&self) -> bool {
        #[cfg(feature = "quic")]
        return matches!(self.io, Io::Quic(_));
        #[cfg(not(feature = "quic"))]
        false
    }

    /// Whether it carries one frame per message (the outbox then keeps frame boundaries).
    pub(crate) fn carries_messages(&self) -> bool {
        matches!(self.io, Io::Messages(_))
    }

    pub(crate) fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self.io {
            Io::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), Box::new(w))
            }
            #[cfg(unix)]
            Io::Unix(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Unix(r), Box::new(w))
            }
            Io::Boxed(s) => {
                let (r, w) = tokio::io::split(s);
                (ReadHalf::Boxed(r), Box::new(w))
            }
            #[cfg(feature = "quic")]
            Io::Quic(s) => s.into_split(),
            #[cfg(feature = "kcp")]
            Io::Kcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Kcp(r), Box::new(w))
            }
            Io::Messages(m) => {
                let (r, w) = m.split();
                (ReadHalf::Messages(r), w)
            }
        }
    }

    /// Writes one whole frame (one message on a message transport), for the handshake phase.
    pub(crate) async fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let io: &mut (dyn AsyncWrite + Send + Unpin) = match &mut self.io {
            Io::Tcp(s) => s,
            #[cfg(unix)]
            Io::Unix(s) => s,
            Io::Boxed(s) => s.as_mut(),
            #[cfg(feature = "quic")]
            Io::Quic(s) => s,
            #[cfg(feature = "kcp")]
            Io::Kcp(s) => s,
            Io::Messages(m) => m.as_mut(),
        };
        io.write_all(frame).await?;
        io.flush().await
    }

    /// Reads more into `buf` (one message on a message transport), for the handshake phase.
    /// `Ok(0)` is the end of the connection.
    pub(crate) async fn read_more(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let io: &mut (dyn AsyncRead + Send + Unpin) = match &mut self.io {
            Io::Tcp(s) => s,
            #[cfg(unix)]
            Io::Unix(s) => s,
            Io::Boxed(s) => s.as_mut(),
            #[cfg(feature = "quic")]
            Io::Quic(s) => s,
            #[cfg(feature = "kcp")]
            Io::Kcp(s) => s,
            Io::Messages(m) => return std::future::poll_fn(|cx| m.poll_recv(cx, buf)).await,
        };
        buf.reserve(4096);
        io.read_buf(buf).await
    }
}

/// A message transport seen as a byte stream ([`Conn::into_parts`]): reads return the
/// messages' payloads back to back, each write is one message.
struct MessageStream {
    inner: Box<dyn Messages>,
    pending: BytesMut,
}

impl AsyncRead for MessageStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pending.is_empty() && std::task::ready!(this.inner.poll_recv(cx, &mut this.pending))? == 0 {
            return Poll::Ready(Ok(()));
        }
        let n = this.pending.len().min(out.remaining());
        out.put_slice(&this.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MessageStream {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut *self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("local_addr", &self.local_addr)
            .field("remote_addr", &self.remote_addr)
            .field("peer_certificates", &self.peer_certificates.as_ref().map(|c| c.len()))
            .finish()
    }
}

/// The socket options of a peer's configuration that apply to TCP connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SocketOptions {
    nodelay: bool,
    keepalive: Option<Duration>,
    read_buffer_size: Option<usize>,
    write_buffer_size: Option<usize>,
}

impl SocketOptions {
    pub(crate) fn new(
        nodelay: bool,
        keepalive: Option<Duration>,
        read_buffer_size: Option<usize>,
        write_buffer_size: Option<usize>,
    ) -> Self {
        SocketOptions {
            nodelay,
            keepalive,
            read_buffer_size,
            write_buffer_size,
        }
    }

    fn apply(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(self.nodelay)?;
        let sock = socket2::SockRef::from(stream);
        if let Some(period) = self.keepalive {
            sock.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(period).with_interval(period))?;
        }
        if let Some(size) = self.read_buffer_size {
            sock.set_recv_buffer_size(size)?;
        }
        if let Some(size) = self.write_buffer_size {
            sock.set_send_buffer_size(size)?;
        }
        Ok(())
    }
}

/// A bound listener of a stream network.
pub(crate) enum Listener {
    Tcp(TcpListener),
    /// A unix listener, its path, and how many unnamed clients it has numbered.
    #[cfg(unix)]
    Unix(UnixListener, String, std::sync::atomic::AtomicU64),
    #[cfg(feature = "quic")]
    Quic(quic::QuicListener),
    #[cfg(feature = "kcp")]
    Kcp(kcp::KcpListener),
    #[cfg(target_os = "linux")]
    Seqpacket(seqpacket::Listener, String),
}

impl Listener {
    /// Binds `addr` (`ip:port`, or a path for unix networks) and listens with a queue of
    /// `backlog` pending connections (none: the system's maximum, as Go does); `reuse_port`
    /// shares a TCP port with other listeners.
    pub(crate) async fn bind(
        network: Network,
        addr: &str,
        backlog: Option<u32>,
        reuse_port: bool,
    ) -> io::Result<Listener> {
        let backlog = backlog.map_or_else(system_max_backlog, |b| i32::try_from(b).unwrap_or(i32::MAX));
        match network {
            #[cfg(unix)]
            Network::Unix => {
                if let Some(fd) = inherit::take_path(addr).map_err(invalid)? {
                    return Ok(Listener::Unix(
                        UnixListener::from_std(inherit::into_std(fd)?)?,
                        addr.to_string(),
                        std::sync::atomic::AtomicU64::new(0),
                    ));
                }
                Ok(Listener::Unix(
                    listen_unix(addr, backlog)?,
                    addr.to_string(),
                    std::sync::atomic::AtomicU64::new(0),
                ))
            }
            #[cfg(target_os = "linux")]
            Network::Unixpacket => Ok(Listener::Seqpacket(
                seqpacket::Listener::bind(addr, backlog)?,
                addr.to_string(),
            )),
            // WebSocket listens on TCP; the upgrade is part of each connection's handshake.
            Network::Tcp | Network::Tcp4 | Network::Tcp6 | Network::Ws | Network::Wss => {
                let addrs = resolve(network, addr).await?;
                #[cfg(unix)]
                if let Some(fd) = inherit::take_inet(inherit::Kind::Tcp, &addrs).map_err(invalid)? {
                    return Ok(Listener::Tcp(TcpListener::from_std(inherit::into_std(fd)?)?));
                }
                let mut last = io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("{addr} resolves to no usable address"),
                );
                for sa in addrs {
                    match listen_tcp(sa, backlog, reuse_port) {
                        Ok(l) => return Ok(Listener::Tcp(l)),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            #[cfg(feature = "kcp")]
            Network::Kcp | Network::Udp4 | Network::Udp6 => Ok(Listener::Kcp(kcp::listen(network, addr).await?)),
            other => Err(unsupported(other)),
        }
    }

    /// Waits for the next connection.
    pub(crate) async fn accept(&self, options: &SocketOptions) -> io::Result<Conn> {
        match self {
            Listener::Tcp(l) => {
                let (stream, remote) = l.accept().await?;
                options.apply(&stream)?;
                let local = stream.local_addr()?.to_string();
                Ok(Conn {
                    io: Io::Tcp(stream),
                    peer_certificates: None,
                    local_addr: local,
                    remote_addr: remote.to_string(),
                })
            }
            #[cfg(feature = "quic")]
            Listener::Quic(l) => l.accept().await,
            #[cfg(feature = "kcp")]
            Listener::Kcp(l) => l.accept().await,
            #[cfg(unix)]
            Listener::Unix(l, path, unnamed) => {
                let (stream, remote) = l.accept().await?;
                // Clients rarely bind a path: number the unnamed ones, or they would all share
                // the session id "@" and each would close the one before.
                let remote = remote.as_pathname().map_or_else(
                    || format!("@{}", unnamed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1),
                    |p| p.display().to_string(),
                );
                Ok(Conn {
                    io: Io::Unix(stream),
                    peer_certificates: None,
                    local_addr: path.clone(),
                    remote_addr: remote,
                })
            }
            #[cfg(target_os = "linux")]
            Listener::Seqpacket(l, path) => {
                let (socket, remote) = l.accept().await?;
                Ok(Conn::messages(socket, path.clone(), remote))
            }
        }
    }

    /// The bound address (with the real port when listening on port 0).
    pub(crate) fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            #[cfg(unix)]
            Listener::Unix(_, path, _) => path.clone(),
            #[cfg(feature = "quic")]
            Listener::Quic(l) => l.local_addr(),
            #[cfg(feature = "kcp")]
            Listener::Kcp(l) => l.local_addr(),
            #[cfg(target_os = "linux")]
            Listener::Seqpacket(_, path) => path.clone(),
        }
    }

    /// The listening socket, for a reboot to hand over (QUIC listeners register their UDP
    /// socket themselves).
    #[cfg(unix)]
    pub(crate) fn handover_socket(&self) -> Option<(inherit::Kind, std::os::fd::BorrowedFd<'_>)> {
        use std::os::fd::AsFd;
        match self {
            Listener::Tcp(l) => Some((inherit::Kind::Tcp, l.as_fd())),
            Listener::Unix(l, _, _) => Some((inherit::Kind::Unix, l.as_fd())),
            _ => None,
        }
    }

    /// Releases what the listener holds on the system (the socket file of unix listeners,
    /// unless a rebooted process listens on it now).
    pub(crate) fn cleanup(&self) {
        match self {
            #[cfg(unix)]
            Listener::Unix(..) if handover::handed_over() => {}
            #[cfg(unix)]
            Listener::Unix(_, path, _) => drop(std::fs::remove_file(path)),
            #[cfg(target_os = "linux")]
            Listener::Seqpacket(_, path) => drop(std::fs::remove_file(path)),
            Listener::Tcp(_) => {}
            #[cfg(feature = "quic")]
            Listener::Quic(_) => {}
            #[cfg(feature = "kcp")]
            Listener::Kcp(_) => {}
        }
    }
}

/// A local name for a unix client socket bound to no path: `@<pid>.<n>`, unique in the
/// process, since a dialed session's id is its local address and two sessions with one id
/// would close each other.
#[cfg(unix)]
fn unnamed_local_addr() -> String {
    static DIALED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = DIALED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    format!("@{}.{n}", std::process::id())
}

/// A TCP listener made with socket2, for the backlog (tokio's `bind` fixes it at 1024) and
/// `SO_REUSEADDR` (as Go sets it, so a restarted server rebinds at once).
fn listen_tcp(addr: std::net::SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    TcpListener::from_std(socket.into())
}

/// A unix stream listener with the given backlog.
#[cfg(unix)]
fn listen_unix(path: &str, backlog: i32) -> io::Result<UnixListener> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(backlog)?;
    UnixListener::from_std(socket.into())
}

/// The system's largest listen backlog: `net.core.somaxconn` on Linux (what Go reads), else
/// 4096 (the kernel caps what is asked anyway).
fn system_max_backlog() -> i32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .filter(|&n: &i32| n > 0)
        .unwrap_or(4096)
}

/// Connects to `addr`, binding `local` first when given (for unix, a socket path).
pub(crate) async fn connect(
    network: Network,
    addr: &str,
    local: Option<&str>,
    options: &SocketOptions,
) -> io::Result<Conn> {
    match network {
        #[cfg(unix)]
        Network::Unix => {
            let stream = UnixStream::connect(addr).await?;
            let local_addr = stream
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_else(unnamed_local_addr);
            Ok(Conn {
                io: Io::Unix(stream),
                peer_certificates: None,
                local_addr,
                remote_addr: addr.to_string(),
            })
        }
        #[cfg(target_os = "linux")]
        Network::Unixpacket => {
            let socket = seqpacket::Socket::connect(addr).await?;
            Ok(Conn::messages(socket, unnamed_local_addr(), addr))
        }
        // WebSocket dials TCP; the upgrade is part of the dial's handshake.
        Network::Tcp | Network::Tcp4 | Network::Tcp6 | Network::Ws | Network::Wss => {
            let addrs = resolve(network, addr).await?;
            let mut last = io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{addr} resolves to no usable address"),
            );
            for sa in addrs {
                let socket = if sa.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                if let Some(local) = local {
                    socket.bind(
                        local
                            .parse()
                            .map_err(|e| invalid(format!("bad local address {local:?}: {e}")))?,
                    )?;
                }
                match socket.connect(sa).await {
                    Ok(stream) => {
                        options.apply(&stream)?;
                        return Ok(Conn {
                            local_addr: stream.local_addr()?.to_string(),
                            // The address connected to: no system call to ask for it again.
                            remote_addr: sa.to_string(),
                            io: Io::Tcp(stream),
                            peer_certificates: None,
                        });
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        #[cfg(feature = "kcp")]
        Network::Kcp | Network::Udp4 | Network::Udp6 => kcp::connect(network, addr, local).await,
        other => Err(unsupported(other)),
    }
}

/// Resolves `host:port` (an empty host means localhost, as in Go), keeping only the address
/// family `tcp4`/`tcp6` ask for.
async fn resolve(network: Network, addr: &str) -> io::Result<Vec<std::net::SocketAddr>> {
    let addr = if addr.starts_with(':') {
        format!("localhost{addr}")
    } else {
        addr.to_string()
    };
    let all = tokio::net::lookup_host(&addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {addr:?}: {e} (expected host:port)")))?;
    Ok(all
        .filter(|sa| match network {
            Network::Tcp4 => sa.is_ipv4(),
            Network::Tcp6 => sa.is_ipv6(),
            _ => true,
        })
        .collect())
}

pub(crate) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn unsupported(network: Network) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("network {network:?} {}", network.unavailable_reason()),
    )
}

#[cfg(test)]
mod tests {
    use super::Network;

    #[test]
    fn left_out_networks_stay_and_name_their_feature() {
        assert!(Network::Tcp.is_available() && Network::Tcp.missing_feature().is_none());
        #[cfg(feature = "quic")]
        assert!(Network::Quic.is_available());
        #[cfg(not(feature = "quic"))]
        {
            assert_eq!(Network::Quic.missing_feature(), Some("quic"));
            let reason = Network::Quic.unavailable_reason();
            assert!(
                reason.starts_with("needs erpc's `quic` feature") && reason.contains("tcp"),
                "{reason}"
            );
        }
        #[cfg(not(feature = "websocket"))]
        assert_eq!(Network::Wss.missing_feature(), Some("websocket"));
    }
}
