//! unixpacket: unix `SOCK_SEQPACKET` sockets (Linux), one eRPC frame per datagram.
//!
//! A thin wrapper over socket2 sockets registered with tokio ([`AsyncFd`]). A datagram is
//! received whole: its length is peeked first (`MSG_PEEK | MSG_TRUNC`), so the read buffer
//! grows to exactly that size and nothing is truncated. The kernel bounds a datagram by the
//! sender's send buffer, which is asked for [`SEND_BUFFER`] bytes (capped by
//! `net.core.wmem_max`); a larger frame fails to send ("message too long") and ends its link.

use std::io::{self, Read as _};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use socket2::{Domain, SockAddr, Socket as RawSocket, Type};
use tokio::io::AsyncWrite;
use tokio::io::unix::AsyncFd;

use super::{MessageRecv, Messages, WriteHalf, buffers};

/// The send buffer asked for on every socket: the kernel refuses datagrams larger than the
/// send buffer, and its default (about 208 KiB) is smaller than many messages. The kernel
/// caps it at `net.core.wmem_max` (and doubles it); memory is only used while queued.
const SEND_BUFFER: usize = 8 * 1024 * 1024;

/// A listening seqpacket socket, and how many connections it accepted.
pub(crate) struct Listener(AsyncFd<RawSocket>, std::sync::atomic::AtomicU64);

impl Listener {
    pub(crate) fn bind(path: &str, backlog: i32) -> io::Result<Listener> {
        let socket = RawSocket::new(Domain::UNIX, Type::SEQPACKET, None)?;
        socket.set_nonblocking(true)?;
        socket.bind(&SockAddr::unix(path)?)?;
        socket.listen(backlog)?;
        Ok(Listener(register(socket)?, Default::default()))
    }

    /// The next connection, and a name for its unnamed other end: `@N`, the N-th accepted.
    /// (A session's id is its remote address: a shared `@` would make each new session take
    /// the id of the one before, and close it.)
    pub(crate) async fn accept(&self) -> io::Result<(Socket, String)> {
        loop {
            let mut ready = self.0.readable().await?;
            match ready.try_io(|fd| fd.get_ref().accept()) {
                Ok(accepted) => {
                    let n = self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    return Ok((Socket::new(accepted?.0)?, format!("@{n}")));
                }
                Err(_would_block) => continue,
            }
        }
    }
}

/// A connected seqpacket socket; its halves share it.
pub(crate) struct Socket(Arc<AsyncFd<RawSocket>>);

impl Socket {
    fn new(socket: RawSocket) -> io::Result<Socket> {
        socket.set_nonblocking(true)?;
        // Best effort: without it, only smaller messages fit.
        let _ = socket.set_send_buffer_size(SEND_BUFFER);
        Ok(Socket(Arc::new(register(socket)?)))
    }

    /// Connects to the socket at `path`. A unix connect does not wait for the other end: it
    /// succeeds at once or fails (a full backlog included), as in Go.
    pub(crate) async fn connect(path: &str) -> io::Result<Socket> {
        let socket = RawSocket::new(Domain::UNIX, Type::SEQPACKET, None)?;
        socket.set_nonblocking(true)?;
        socket.connect(&SockAddr::unix(path)?)?;
        Socket::new(socket)
    }
}

/// Registers `socket` with the runtime's reactor.
fn register(socket: RawSocket) -> io::Result<AsyncFd<RawSocket>> {
    // SAFETY: the `AsyncFd` owns the socket, so its descriptor stays open while registered.
    unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)
}

fn poll_recv(fd: &AsyncFd<RawSocket>, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
    loop {
        let mut ready = ready!(fd.poll_read_ready(cx))?;
        // The length of the next datagram, without taking it (and without a buffer).
        let peeked = ready.try_io(|fd| {
            let mut none: [MaybeUninit<u8>; 0] = [];
            fd.get_ref()
                .recv_with_flags(&mut none, libc::MSG_PEEK | libc::MSG_TRUNC)
        });
        let len = match peeked {
            Err(_would_block) => continue,
            Ok(Err(e)) => return Poll::Ready(Err(e)),
            // The end of the connection (an empty datagram reads the same, and means nothing).
            Ok(Ok(0)) => return Poll::Ready(Ok(0)),
            Ok(Ok(len)) => len,
        };
        if buf.capacity() == 0 {
            *buf = buffers::take(len);
        }
        let start = buf.len();
        buf.resize(start + len, 0);
        let read = fd.get_ref().read(&mut buf[start..]);
        match read {
            Ok(n) => {
                buf.truncate(start + n);
                return Poll::Ready(Ok(n));
            }
            Err(e) => {
                buf.truncate(start);
                if e.kind() != io::ErrorKind::WouldBlock {
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

fn poll_send(fd: &AsyncFd<RawSocket>, cx: &mut Context<'_>, frame: &[u8]) -> Poll<io::Result<usize>> {
    loop {
        let mut ready = ready!(fd.poll_write_ready(cx))?;
        match ready.try_io(|fd| fd.get_ref().send(frame)) {
            Err(_would_block) => continue,
            Ok(Err(e)) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                return Poll::Ready(Err(io::Error::new(
                    e.kind(),
                    format!(
                        "a frame of {} bytes is larger than a unixpacket datagram can be here (raise net.core.wmem_max)",
                        frame.len()
                    ),
                )));
            }
            Ok(sent) => return Poll::Ready(sent),
        }
    }
}

impl MessageRecv for Socket {
    fn poll_recv(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        poll_recv(&self.0, cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, frame: &[u8]) -> Poll<io::Result<usize>> {
        poll_send(&self.0, cx, frame)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket is shared with the read half: shut writing down, the fd closes with both.
        Poll::Ready(match self.0.get_ref().shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }
}

impl Messages for Socket {
    fn split(self: Box<Self>) -> (Box<dyn MessageRecv>, WriteHalf) {
        let other = Socket(self.0.clone());
        (self, Box::new(other))
    }
}
