//! The KCP listener: one UDP socket, one task reading it, sessions told apart by the sender's
//! address and conversation id exactly as kcp-go's listener does:
//!
//! - datagrams under 24 bytes are dropped; a datagram from a known address goes to its
//!   session when it carries no conv (parity, short data) or the session's conv;
//! - a different conv with first-segment sn 0 closes that session and starts a new one (a
//!   client redialing from the same port); any other different conv is dropped;
//! - an unknown address with a conv starts a session if fewer than 128 wait to be accepted,
//!   else the datagram is dropped (a parity datagram starts nothing).
//!
//! When the listener is dropped it takes no new sessions, but its socket keeps serving the
//! sessions it accepted; the task (and the socket) end with the last of them, or at once when
//! the peer closes the listener. While it accepts, its socket is offered to a reboot
//! (`net::handover`), and a listener in a rebooted process takes the socket its parent passed.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use super::fec;
use super::session::{KcpStream, RECV_BUFFER, Shared, Socket};
#[cfg(unix)]
use crate::net::inherit::Kind;
use crate::net::{Conn, Io};

/// Sessions waiting for `accept` (kcp-go's accept backlog).
pub(crate) const ACCEPT_BACKLOG: usize = 128;

/// What the listener's task shares with the listener handle and the sessions.
struct Table {
    sessions: Mutex<HashMap<SocketAddr, Arc<Shared>>>,
    /// Wakes the task: a session ended, or the listener stopped.
    changed: Notify,
    stop: Mutex<Stop>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Serving,
    /// No new sessions; end with the last one.
    Draining,
    /// End now.
    Now,
}

impl Table {
    fn stop(&self) -> Stop {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_stop(&self, stop: Stop) {
        let mut current = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if stop == Stop::Now || *current == Stop::Serving {
            *current = stop;
        }
        drop(current);
        self.changed.notify_one();
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<Shared>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bound KCP listener.
pub(crate) struct KcpListener {
    local: SocketAddr,
    accepted: tokio::sync::Mutex<mpsc::Receiver<Conn>>,
    table: Arc<Table>,
    released: Option<oneshot::Receiver<()>>,
    /// Offers the UDP socket to a reboot while the listener accepts.
    #[cfg(unix)]
    _handover: crate::net::handover::Registration,
}

impl KcpListener {
    /// Binds a UDP socket on `addrs` (or takes the one a rebooting parent passed for them) and
    /// starts serving it.
    pub(crate) async fn bind(addrs: Vec<SocketAddr>) -> io::Result<Self> {
        #[cfg(unix)]
        if let Some(fd) = crate::net::inherit::take_inet(Kind::Kcp, &addrs).map_err(crate::net::invalid)? {
            return Self::on_socket(tokio::net::UdpSocket::from_std(crate::net::inherit::into_std(fd)?)?);
        }
        let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "the address resolves to nothing");
        for sa in addrs {
            match tokio::net::UdpSocket::bind(sa).await {
                Ok(udp) => return Self::on_socket(udp),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn on_socket(udp: tokio::net::UdpSocket) -> io::Result<Self> {
        let local = udp.local_addr()?;
        #[cfg(unix)]
        let handover = {
            use std::os::fd::AsFd;
            crate::net::handover::register(Kind::Kcp, &local.to_string(), udp.as_fd())?
        };
        let (socket, released) = Socket::new(udp);
        let table = Arc::new(Table {
            sessions: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            stop: Mutex::new(Stop::Serving),
        });
        let (tx, rx) = mpsc::channel(ACCEPT_BACKLOG);
        tokio::spawn(serve(socket, table.clone(), tx, local));
        Ok(KcpListener {
            local,
            accepted: tokio::sync::Mutex::new(rx),
            table,
            released: Some(released),
            #[cfg(unix)]
            _handover: handover,
        })
    }

    /// The next new session.
    pub(crate) async fn accept(&self) -> io::Result<Conn> {
        self.accepted
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the KCP listener has stopped"))
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> String {
        self.local.to_string()
    }

    /// What the peer needs to end the socket after its sessions.
    pub(crate) fn closer(&mut self) -> KcpCloser {
        KcpCloser {
            table: self.table.clone(),
            released: self.released.take(),
        }
    }

    /// Sessions waiting to be accepted (for tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.accepted.try_lock().map_or(0, |rx| rx.len())
    }
}

impl Drop for KcpListener {
    fn drop(&mut self) {
        self.table.set_stop(Stop::Draining);
    }
}

/// Ends a listener's socket once the peer's sessions are closed.
pub(crate) struct KcpCloser {
    table: Arc<Table>,
    released: Option<oneshot::Receiver<()>>,
}

impl KcpCloser {
    /// Ends the socket's task and every session still on it, at once.
    pub(crate) fn close_now(&self) {
        self.table.set_stop(Stop::Now);
    }

    /// Ends the socket and waits (up to `limit`) until its UDP port is free again, so a server
    /// restarted right after can bind it.
    pub(crate) async fn close(mut self, limit: Duration) {
        self.close_now();
        if let Some(released) = self.released.take() {
            let _ = tokio::time::timeout(limit, released).await;
        }
    }
}

/// The listener's task: reads the socket and hands each datagram to its session.
async fn serve(socket: Arc<Socket>, table: Arc<Table>, accept: mpsc::Sender<Conn>, local: SocketAddr) {
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        match table.stop() {
            Stop::Now => break,
            Stop::Draining if table.sessions().is_empty() => break,
            _ => {}
        }
        tokio::select! {
            received = socket.udp.recv_from(&mut buf) => match received {
                Ok((n, from)) => route(&buf[..n], from, &socket, &table, &accept, local),
                // ICMP errors of earlier sends and the like: nothing to do with the next one.
                Err(e) => tracing::trace!(error = %e, "KCP listener receive"),
            },
            () = table.changed.notified() => {}
        }
    }
    let sessions: Vec<Arc<Shared>> = table.sessions().drain().map(|(_, s)| s).collect();
    for session in sessions {
        session.close();
    }
}

/// kcp-go's demultiplexing rules (module doc).
fn route(
    datagram: &[u8],
    from: SocketAddr,
    socket: &Arc<Socket>,
    table: &Arc<Table>,
    accept: &mpsc::Sender<Conn>,
    local: SocketAddr,
) {
    if datagram.len() < fec::KCP_HEADER_LEN {
        return;
    }
    let opens = fec::conv_and_sn(datagram);
    let known = table.sessions().get(&from).cloned();
    if let Some(session) = known {
        match opens {
            Some((conv, sn)) if conv != session.conv() => {
                if sn != 0 {
                    return;
                }
                // A new conversation from the same address (a client redialing from a fixed
                // port): it replaces the old one.
                session.close();
                let mut sessions = table.sessions();
                if sessions.get(&from).is_some_and(|s| Arc::ptr_eq(s, &session)) {
                    sessions.remove(&from);
                }
            }
            _ => return session.input(datagram),
        }
    }
    let Some((conv, _)) = opens else { return };
    if table.stop() != Stop::Serving {
        return;
    }
    let Ok(permit) = accept.try_reserve() else {
        return; // the accept queue is full: dropped, as kcp-go does
    };
    let session = Shared::new(conv, socket.clone(), Some(from));
    table.sessions().insert(from, session.clone());
    let forget = {
        let table = Arc::downgrade(table);
        let session = session.clone();
        move || {
            if let Some(table) = table.upgrade() {
                let mut sessions = table.sessions();
                if sessions.get(&from).is_some_and(|s| Arc::ptr_eq(s, &session)) {
                    sessions.remove(&from);
                }
                drop(sessions);
                table.changed.notify_one();
            }
        }
    };
    tokio::spawn(session.clone().drive(false, forget));
    session.input(datagram);
    permit.send(Conn {
        io: Io::Kcp(KcpStream::new(session)),
        peer_certificates: None,
        local_addr: local.to_string(),
        remote_addr: from.to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data datagram opening conversation `conv` (an ACK-only KCP packet with sn 0).
    fn opening(conv: u32) -> Vec<u8> {
        let mut d = vec![0u8; 32];
        d[4] = 0xf1;
        d[6] = 26;
        d[8..12].copy_from_slice(&conv.to_le_bytes());
        d[12] = 82;
        d
    }

    /// Polls `cond` every 2 ms for up to 5 s.
    async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !cond() {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }

    #[tokio::test]
    async fn a_new_conv_with_sn_0_replaces_a_session_and_the_accept_queue_holds_128() {
        let listener = KcpListener::bind(vec!["127.0.0.1:0".parse().unwrap()]).await.unwrap();
        let addr: SocketAddr = listener.local_addr().parse().unwrap();
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let from = client.local_addr().unwrap();
        let conv_of_client = || listener.table.sessions().get(&from).map(|s| s.conv());

        client.send_to(&opening(1), addr).await.unwrap();
        let Io::Kcp(old) = listener.accept().await.unwrap().io else {
            unreachable!("a KCP listener accepts KCP sessions")
        };
        // The same client starts a new conversation from the same port: it replaces the old one.
        client.send_to(&opening(5000), addr).await.unwrap();
        assert!(eventually(|| conv_of_client() == Some(5000)).await);
        let (mut recv, _send) = old.into_split();
        let mut buf = bytes::BytesMut::new();
        let n = std::future::poll_fn(|cx| recv.poll_read_into(cx, &mut buf, 1024))
            .await
            .unwrap();
        assert_eq!(n, 0, "the replaced session reads its end");

        // 150 more clients while nobody accepts: 127 fit in the queue beside the new session.
        let mut flood = Vec::new();
        for conv in 0..150u32 {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            // Parity and short datagrams open nothing.
            socket.send_to(&[0, 0, 0, 0, 0xf2, 0, 1, 2], addr).await.unwrap();
            socket.send_to(&opening(conv), addr).await.unwrap();
            flood.push(socket);
            tokio::task::yield_now().await;
        }
        // One more replacement finds the queue full: the client's session is closed and none
        // opened. Datagrams are handled in order, so the flood has been handled by then.
        client.send_to(&opening(6000), addr).await.unwrap();
        assert!(eventually(|| conv_of_client().is_none()).await);
        assert_eq!(listener.waiting(), ACCEPT_BACKLOG, "the queue is bounded");
        assert_eq!(
            listener.table.sessions().len(),
            ACCEPT_BACKLOG - 1,
            "refused datagrams open nothing"
        );
    }
}
