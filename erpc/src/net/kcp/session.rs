//! A KCP session on a UDP socket: the endpoint behind a lock, the task that drives its timer
//! (and, for a dialed session, reads its socket), and the byte stream eRPC runs on.
//!
//! One task per session: it sleeps until KCP's next deadline (at most 100 ms, as kcp-go's
//! timer), and a dialed session's task also reads the session's own socket. A listener's
//! sessions are fed by the listener's task, which reads the shared socket and calls
//! [`Shared::input`] directly, so a datagram is never copied between tasks. Readers and
//! writers never wait on the socket: sending is `try_send` (a full socket buffer is a lost
//! datagram, which KCP retransmits), and they park on wakers that input and the timer wake.
//!
//! Ending: when every handle on the stream is dropped, the session flushes once (pending ACKs
//! and anything due) and forgets unacknowledged data, as kcp-go's `Close`; nothing is sent to
//! say so (KCP has no FIN). A graceful shutdown of the write half first waits until the other
//! end has acknowledged everything written (the session's drain limit bounds that wait). A
//! session also ends when a segment goes unacknowledged for 20 transmissions (kcp-go only
//! notes it), when a dialed session's socket reports the other end's port closed, and, on a
//! listener, when a new conversation from the same address replaces it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use super::endpoint::KcpEndpoint;

/// How the receive buffer of a socket is sized: kcp-go reads into 1500 bytes and drops the rest.
pub(crate) const RECV_BUFFER: usize = 1500;

/// A UDP socket that says when it is closed (so a closing listener can wait until its port is
/// free again).
#[derive(Debug)]
pub(crate) struct Socket {
    pub(crate) udp: UdpSocket,
    released: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Socket {
    pub(crate) fn new(udp: UdpSocket) -> (Arc<Socket>, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let socket = Socket {
            udp,
            released: Mutex::new(Some(tx)),
        };
        (Arc::new(socket), rx)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        drop(self.released.get_mut().ok().and_then(Option::take));
    }
}

/// Why a session ended.
#[derive(Clone, Debug)]
enum End {
    /// Closed here (its stream dropped) or replaced by a new conversation: reads see the end.
    Closed,
    /// Something went wrong: reads and writes fail with this.
    Failed(io::ErrorKind, String),
}

struct State {
    endpoint: KcpEndpoint,
    reader: Option<Waker>,
    writer: Option<Waker>,
    end: Option<End>,
}

/// What the stream, the session's task and (for an accepted session) the listener share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the session's task: its deadline may have moved, or the session ended.
    wake: Notify,
    socket: Arc<Socket>,
    /// Where datagrams go; `None` for a connected (dialed) socket.
    peer: Option<SocketAddr>,
    epoch: Instant,
}

impl Shared {
    pub(crate) fn new(conv: u32, socket: Arc<Socket>, peer: Option<SocketAddr>) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                endpoint: KcpEndpoint::new(conv, 0),
                reader: None,
                writer: None,
                end: None,
            }),
            wake: Notify::new(),
            socket,
            peer,
            epoch: Instant::now(),
        })
    }

    /// The session's clock (ms since it began; wraps after 49 days, as KCP expects).
    fn now(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn conv(&self) -> u32 {
        self.lock().endpoint.conv()
    }

    /// Processes one received datagram.
    pub(crate) fn input(&self, datagram: &[u8]) {
        let now = self.now();
        let mut state = self.lock();
        if state.end.is_some() {
            return;
        }
        state.endpoint.input(datagram, now);
        self.after_io(&mut state);
    }

    /// Sends what the endpoint produced, ends the session on a dead link, wakes whoever can go
    /// on.
    fn after_io(&self, state: &mut State) {
        for datagram in state.endpoint.take_datagrams() {
            // Straight to the system: tokio's `try_send` refuses until its reactor has seen
            // the socket writable, which would lose a new socket's first datagrams.
            let socket = socket2::SockRef::from(&self.socket.udp);
            let sent = match self.peer {
                Some(peer) => socket.send_to(&datagram, &peer.into()),
                None => socket.send(&datagram),
            };
            match sent {
                Ok(_) => {}
                // A full socket buffer loses the datagram; KCP sends it again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    self.end(state, peer_gone());
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "KCP datagram not sent"),
            }
        }
        if state.endpoint.is_dead() {
            let end = End::Failed(
                io::ErrorKind::TimedOut,
                "the KCP peer acknowledged nothing through 20 retransmissions: it is gone".into(),
            );
            self.end(state, end);
            return;
        }
        if state.endpoint.readable() {
            wake(&mut state.reader);
        }
        if state.endpoint.can_send() || state.endpoint.unacked() == 0 {
            wake(&mut state.writer);
        }
    }

    fn end(&self, state: &mut State, end: End) {
        if state.end.is_none() {
            state.end = Some(end);
        }
        wake(&mut state.reader);
        wake(&mut state.writer);
        self.wake.notify_one();
    }

    /// Ends the session from outside (a replacing conversation, a closing listener).
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        self.end(&mut state, End::Closed);
    }

    /// The last flush, then the end: what dropping the stream does.
    fn release(&self) {
        let now = self.now();
        let mut state = self.lock();
        if state.end.is_none() {
            state.endpoint.flush(now);
            self.after_io(&mut state);
        }
        self.end(&mut state, End::Closed);
    }

    /// Runs the timer once; returns how long until it is due again, `None` once ended.
    fn tick(&self) -> Option<Duration> {
        let now = self.now();
        let mut state = self.lock();
        if state.end.is_some() {
            return None;
        }
        let wait = state.endpoint.tick(now);
        self.after_io(&mut state);
        state
            .end
            .is_none()
            .then(|| Duration::from_millis(u64::from(wait.max(1))))
    }

    /// Drives the session until it ends: its timer, and for a dialed session (`reads`) its own
    /// socket. `on_end` runs last (a listener forgets the session there).
    pub(crate) async fn drive(self: Arc<Self>, reads: bool, on_end: impl FnOnce()) {
        let mut buf = if reads { vec![0u8; RECV_BUFFER] } else { Vec::new() };
        while let Some(wait) = self.tick() {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break,
                    () = self.wake.notified() => break,
                    received = self.socket.udp.recv(&mut buf), if reads => match received {
                        Ok(n) => self.input(&buf[..n]),
                        Err(e) => {
                            let end = if e.kind() == io::ErrorKind::ConnectionRefused {
                                peer_gone()
                            } else {
                                End::Failed(e.kind(), format!("KCP socket: {e}"))
                            };
                            let mut state = self.lock();
                            self.end(&mut state, end);
                            break;
                        }
                    },
                }
            }
        }
        on_end();
    }
}

fn peer_gone() -> End {
    End::Failed(
        io::ErrorKind::ConnectionRefused,
        "the KCP peer's port is closed (ICMP port unreachable)".into(),
    )
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(waker) = waker.take() {
        waker.wake();
    }
}

fn park(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// Ends the session when the last half of its stream is dropped.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// The receiving half of a session's stream.
pub(crate) struct RecvHalf(Arc<Handle>);

impl RecvHalf {
    /// Appends what has arrived to `buf` (making `room` bytes of room only once there is
    /// something), `Ok(0)` at the end. An idle session holds no buffer.
    pub(crate) fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        room: usize,
    ) -> Poll<io::Result<usize>> {
        let shared = &self.0.0;
        let mut state = shared.lock();
        if state.endpoint.readable() {
            crate::net::make_room(buf, room);
            let max = (buf.capacity() - buf.len()).max(super::MSS);
            return Poll::Ready(Ok(state.endpoint.recv(buf, max)));
        }
        match &state.end {
            Some(End::Closed) => Poll::Ready(Ok(0)),
            Some(End::Failed(kind, msg)) => Poll::Ready(Err(io::Error::new(*kind, msg.clone()))),
            None => {
                park(&mut state.reader, cx);
                Poll::Pending
            }
        }
    }
}

impl AsyncRead for RecvHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut state = self.0.0.lock();
        if state.endpoint.readable() {
            let n = state.endpoint.recv_slice(out.initialize_unfilled());
            out.advance(n);
            return Poll::Ready(Ok(()));
        }
        match &state.end {
            Some(End::Closed) => Poll::Ready(Ok(())),
            Some(End::Failed(kind, msg)) => Poll::Ready(Err(io::Error::new(*kind, msg.clone()))),
            None => {
                park(&mut state.reader, cx);
                Poll::Pending
            }
        }
    }
}

/// The sending half of a session's stream.
pub(crate) struct SendHalf(Arc<Handle>);

impl AsyncWrite for SendHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let shared = &self.0.0;
        let now = shared.now();
        let mut state = shared.lock();
        match &state.end {
            None => {}
            Some(End::Closed) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the KCP session is closed",
                )));
            }
            Some(End::Failed(kind, msg)) => return Poll::Ready(Err(io::Error::new(*kind, msg.clone()))),
        }
        let n = state.endpoint.send(buf, now);
        if n == 0 && !buf.is_empty() {
            park(&mut state.writer, cx);
            return Poll::Pending;
        }
        // The timer needs no news: KCP's next deadline is never before its next tick.
        shared.after_io(&mut state);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Waits until the other end has acknowledged everything written (KCP has no FIN: the
    /// session simply ends when the stream is dropped).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.0.0.lock();
        if state.end.is_some() || state.endpoint.unacked() == 0 {
            return Poll::Ready(Ok(()));
        }
        park(&mut state.writer, cx);
        Poll::Pending
    }
}

/// A session's whole stream (for TLS over KCP, and the handshake phase).
pub(crate) struct KcpStream {
    recv: RecvHalf,
    send: SendHalf,
}

impl KcpStream {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let handle = Arc::new(Handle(shared));
        KcpStream {
            recv: RecvHalf(handle.clone()),
            send: SendHalf(handle),
        }
    }

    pub(crate) fn into_split(self) -> (RecvHalf, SendHalf) {
        (self.recv, self.send)
    }
}

impl AsyncRead for KcpStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for KcpStream {
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
