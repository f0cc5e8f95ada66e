//! The KCP network (`kcp`, `udp`, `udp4`, `udp6`), wire-compatible with Go eRPC's kcp-go v5
//! sessions: Reed–Solomon FEC with 10 data and 3 parity shards, no encryption, MTU 1400,
//! message mode, a random conversation id chosen by the dialer (docs/KCP.md in the
//! repository tells what differs from Go, and why).
//!
//! Layers, bottom up:
//! - [`fec`]: kcp-go's FEC framing (the 8-byte header, groups of 13, seqid wrap, recovery);
//! - [`KcpEndpoint`] (`endpoint.rs`): the KCP state machine of the `kcp` crate between that
//!   framing and a byte stream, without I/O;
//! - `session.rs`: an endpoint on a UDP socket, its timer task, and the stream halves eRPC's
//!   sessions read and write (every protocol runs over it unchanged; TLS too, inside the
//!   stream, as Go);
//! - `listener.rs`: one UDP socket demultiplexed by sender address and conversation id;
//! - [`connect`](self): a dial opens a socket of its own, connected to the server, and sends
//!   nothing until the first write (KCP has no handshake).
//!
//! Differences from Go, none visible in the bytes of a datagram (all are sender or receiver
//! policy; `docs/KCP.md` has the details): acknowledgements leave at once instead of at the
//! next 100 ms tick; a segment is resent once two later ones are acknowledged (the crate's
//! fast resend standing in for kcp-go's early retransmit) and its timeout doubles on each
//! resend (kcp-go adds the base timeout instead); the advertised receive window is 128
//! segments, not 32; a session whose peer acknowledges nothing through 20 transmissions of a
//! segment ends (Go retransmits for ever); a dialed socket is connected, so an ICMP "port
//! unreachable" from a vanished server ends the session as a TCP reset would; and a listener
//! bound to an empty host listens on IPv4 only (`udp6` for IPv6) where Go's is dual-stack.
//!
//! Tasks: one per listener socket (reading it and routing each datagram to its session
//! inline) and one per session (its timer; for a dialed session also its own socket). A
//! session's timer must run every 100 ms whatever its neighbours do, and a task per session
//! keeps that independent of the listener's load; the state is shared behind one short lock.

mod endpoint;
pub mod fec;
mod listener;
mod session;

use std::io;
use std::net::SocketAddr;

pub use endpoint::{INTERVAL_MS, KcpEndpoint, MSS, MTU};
pub(crate) use listener::{KcpCloser, KcpListener};
pub(crate) use session::{KcpStream, RecvHalf};

use super::{Conn, Io, Network};

/// Resolves `host:port` for `network`, an empty host being `empty_host`; `udp4`/`udp6` keep
/// only addresses of their family.
async fn resolve(network: Network, addr: &str, empty_host: &str) -> io::Result<Vec<SocketAddr>> {
    let addr = if addr.starts_with(':') {
        format!("{empty_host}{addr}")
    } else {
        addr.to_string()
    };
    let all = tokio::net::lookup_host(&addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {addr:?}: {e} (expected host:port)")))?;
    let found: Vec<SocketAddr> = all
        .filter(|sa| match network {
            Network::Udp4 => sa.is_ipv4(),
            Network::Udp6 => sa.is_ipv6(),
            _ => true,
        })
        .collect();
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("{addr} resolves to no address usable by {network:?}"),
        ));
    }
    Ok(found)
}

/// Binds a KCP listener on `addr` (an empty host: every IPv4 address, or every IPv6 one for
/// `udp6`).
pub(crate) async fn listen(network: Network, addr: &str) -> io::Result<KcpListener> {
    let empty_host = if network == Network::Udp6 { "[::]" } else { "0.0.0.0" };
    KcpListener::bind(resolve(network, addr, empty_host).await?).await
}

/// Opens a KCP session to `addr` (an empty host is 127.0.0.1, as Go) from a UDP socket of its
/// own, bound to `local` when given. Nothing is sent until the first write.
pub(crate) async fn connect(network: Network, addr: &str, local: Option<&str>) -> io::Result<Conn> {
    let empty_host = if network == Network::Udp6 { "[::1]" } else { "127.0.0.1" };
    let remote = resolve(network, addr, empty_host).await?[0];
    let bind: SocketAddr = match local {
        Some(local) => local
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad local address {local:?}: {e}")))?,
        None if remote.is_ipv4() => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        None => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let udp = tokio::net::UdpSocket::bind(bind).await?;
    udp.connect(remote).await?;
    let local_addr = udp.local_addr()?.to_string();
    let (socket, _released) = session::Socket::new(udp);
    let shared = session::Shared::new(random_conv()?, socket, None);
    tokio::spawn(shared.clone().drive(true, || {}));
    Ok(Conn {
        io: Io::Kcp(KcpStream::new(shared)),
        peer_certificates: None,
        local_addr,
        remote_addr: remote.to_string(),
    })
}

/// A conversation id from the system's random source, as kcp-go draws it (any value, 0 too).
fn random_conv() -> io::Result<u32> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| io::Error::other("the system's random source failed"))?;
    Ok(u32::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests;
