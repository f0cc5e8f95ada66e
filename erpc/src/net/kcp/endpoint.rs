//! One end of a KCP session without any I/O: the KCP state machine (the `kcp` crate, a port of
//! C KCP whose segments are byte-identical to kcp-go's) between the FEC layer and the byte
//! stream eRPC reads and writes. Datagrams go in through [`KcpEndpoint::input`] and come out of
//! [`KcpEndpoint::take_datagrams`]; the caller owns the socket and the clock.
//!
//! Settings are kcp-go's as Go eRPC uses them: MTU 1400 including the 8-byte FEC
//! header (so KCP's own MTU is 1392, MSS 1368), send window 32, update interval 100 ms,
//! no-delay off, congestion control on, message mode with every write cut into MSS-sized
//! messages (so every segment has `frg = 0`, as Go's). The timing differences from kcp-go
//! (none visible in a datagram's bytes) are listed in the module doc of `kcp`: ACKs at once
//! after a datagram with data (kcp-go's optional ACK no-delay), fast resend after 2 later
//! ACKs, a receive window of 128 (the crate's minimum).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;

use super::fec::{self, FecDecoder, FecEncoder, KCP_HEADER_LEN, Kind};

/// Largest datagram sent, FEC header included (kcp-go's default MTU).
pub const MTU: usize = 1400;
/// KCP's own MTU: the datagram less the FEC header.
const KCP_MTU: usize = MTU - fec::HEADER_LEN;
/// Largest payload of one segment.
pub const MSS: usize = KCP_MTU - KCP_HEADER_LEN;
/// kcp-go's send window (segments in flight or queued before a write waits).
const SEND_WINDOW: u16 = 32;
/// kcp-go's receive window; the crate raises anything below 128 to 128.
const RECV_WINDOW: u16 = 32;
/// Resend a segment once 2 later ones are acknowledged, without waiting for its timeout:
/// the `kcp` crate's fast resend standing in for kcp-go's early retransmit (sender policy,
/// invisible on the wire). Without it, a loss at the end of a window stalls the window for a
/// whole timeout.
const FAST_RESEND: i32 = 2;
/// The update interval (ms).
pub const INTERVAL_MS: u32 = 100;
/// The KCP command of a data segment.
const CMD_PUSH: u8 = 81;
/// The KCP command of an acknowledgement.
const CMD_ACK: u8 = 82;

/// Where the KCP state machine writes its packets: each becomes FEC datagrams at once.
#[derive(Default)]
struct Outgoing {
    fec: FecEncoder,
    datagrams: Vec<Vec<u8>>,
}

/// The `Write` the `kcp` crate outputs to: one `write` per KCP packet.
struct PacketSink(Arc<Mutex<Outgoing>>);

impl Write for PacketSink {
    fn write(&mut self, packet: &[u8]) -> io::Result<usize> {
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Outgoing { fec, datagrams } = &mut *out;
        fec.encode(packet, datagrams);
        Ok(packet.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One end of a KCP session with kcp-go's FEC framing, as a sans-I/O state machine: feed it
/// received datagrams and the time, take the datagrams it wants sent.
///
/// ```
/// use bytes::BytesMut;
/// use erpc::net::kcp::KcpEndpoint;
///
/// let (mut client, mut server) = (KcpEndpoint::new(7, 0), KcpEndpoint::new(7, 0));
/// assert_eq!(client.send(b"hello", 0), 5);
/// for datagram in client.take_datagrams() {
///     server.input(&datagram, 1);
/// }
/// let mut got = BytesMut::new();
/// server.recv(&mut got, 1024);
/// assert_eq!(&got[..], b"hello");
/// ```
pub struct KcpEndpoint {
    kcp: kcp::Kcp<PacketSink>,
    outgoing: Arc<Mutex<Outgoing>>,
    fec_rx: FecDecoder,
    /// The rest of a message the reader had no room for.
    leftover: BytesMut,
    recovered: Vec<Vec<u8>>,
}

impl std::fmt::Debug for KcpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KcpEndpoint")
            .field("conv", &self.kcp.conv())
            .field("unacked", &self.kcp.wait_snd())
            .finish_non_exhaustive()
    }
}

impl KcpEndpoint {
    /// A session with conversation id `conv`, its clock at `now` (ms, any origin, wrapping).
    /// Its first flush runs at once (it sends nothing, but opens the congestion window).
    pub fn new(conv: u32, now: u32) -> Self {
        let outgoing = Arc::new(Mutex::new(Outgoing::default()));
        let mut kcp = kcp::Kcp::new(conv, PacketSink(outgoing.clone()));
        kcp.set_mtu(KCP_MTU).expect("1392 is a valid MTU");
        kcp.set_wndsize(SEND_WINDOW, RECV_WINDOW);
        kcp.set_nodelay(false, INTERVAL_MS as i32, FAST_RESEND, false);
        let _ = kcp.update(now);
        KcpEndpoint {
            kcp,
            outgoing,
            fec_rx: FecDecoder::new(),
            leftover: BytesMut::new(),
            recovered: Vec::new(),
        }
    }

    /// The conversation id.
    pub fn conv(&self) -> u32 {
        self.kcp.conv()
    }

    /// Processes one received datagram (FEC data, FEC parity or plain KCP; anything under 24
    /// bytes is ignored, as kcp-go does). Hostile bytes are dropped, never trusted.
    pub fn input(&mut self, datagram: &[u8], now: u32) {
        if datagram.len() < KCP_HEADER_LEN {
            return;
        }
        let _ = self.kcp.update(now);
        let unacked = self.kcp.wait_snd();
        let mut data = false;
        let packet = match fec::classify(datagram) {
            Some(Kind::Data) => {
                self.fec_rx.decode(datagram, now, &mut self.recovered);
                Some(&datagram[fec::HEADER_LEN..])
            }
            Some(Kind::Parity) => {
                self.fec_rx.decode(datagram, now, &mut self.recovered);
                None
            }
            Some(Kind::Plain) => Some(datagram),
            None => None,
        };
        if let Some(packet) = packet {
            let mut packet = packet.to_vec();
            let segments = Segments::mark(&mut packet, now, None);
            data |= segments.data;
            let _ = self.kcp.input(&packet);
        }
        for mut packet in std::mem::take(&mut self.recovered) {
            let segments = Segments::mark(&mut packet, now, Some(self.kcp.rmt_wnd()));
            data |= segments.data;
            let _ = self.kcp.input(&packet);
        }
        // Acknowledge data at once, and send more when acknowledgements made room (kcp-go
        // flushes on the latter too).
        if data || self.kcp.wait_snd() < unacked {
            let _ = self.kcp.flush();
        }
    }

    /// Queues as much of `bytes` as the send window takes (cut into MSS-sized messages) and
    /// sends what the congestion window allows. Returns how many bytes were taken: 0 while
    /// the window is full (as a Go `Write` blocks).
    pub fn send(&mut self, bytes: &[u8], now: u32) -> usize {
        let room = self.send_room();
        if room == 0 || bytes.is_empty() {
            return 0;
        }
        let _ = self.kcp.update(now);
        let mut taken = 0;
        for piece in bytes.chunks(MSS).take(room) {
            match self.kcp.send(piece) {
                Ok(n) => taken += n,
                Err(_) => break,
            }
        }
        let _ = self.kcp.flush();
        taken
    }

    /// How many more segments a write may queue now.
    fn send_room(&self) -> usize {
        let window = usize::from(SEND_WINDOW.min(self.kcp.rmt_wnd()));
        window.saturating_sub(self.kcp.wait_snd())
    }

    /// Whether [`send`](Self::send) would take bytes now.
    pub fn can_send(&self) -> bool {
        self.send_room() > 0
    }

    /// Segments sent but not acknowledged yet, or queued.
    pub fn unacked(&self) -> usize {
        self.kcp.wait_snd()
    }

    /// Whether received bytes are waiting to be read.
    pub fn readable(&self) -> bool {
        !self.leftover.is_empty() || self.kcp.peeksize().is_ok()
    }

    /// Appends received bytes, in order, to `out`: whole messages while their total stays
    /// within `max` (at least the first, or part of it if it alone is larger). Returns how many.
    pub fn recv(&mut self, out: &mut BytesMut, max: usize) -> usize {
        let mut got = 0;
        if !self.leftover.is_empty() {
            let n = self.leftover.len().min(max.max(1));
            out.extend_from_slice(&self.leftover.split_to(n));
            got += n;
        }
        while let Ok(size) = self.kcp.peeksize() {
            if got > 0 && got + size > max {
                break;
            }
            let start = out.len();
            out.resize(start + size, 0);
            match self.kcp.recv(&mut out[start..]) {
                Ok(n) => {
                    out.truncate(start + n);
                    got += n;
                }
                Err(_) => {
                    out.truncate(start);
                    break;
                }
            }
        }
        if got > max {
            // A message larger than `max`: keep its tail for the next read.
            let tail = out.split_off(out.len() - (got - max));
            self.leftover.unsplit(tail);
            got = max;
        }
        got
    }

    /// Copies received bytes into `out` (a message that does not fit is kept for the next
    /// call); returns how many.
    pub fn recv_slice(&mut self, out: &mut [u8]) -> usize {
        let mut buf = BytesMut::new();
        let n = self.recv(&mut buf, out.len());
        out[..n].copy_from_slice(&buf[..n]);
        n
    }

    /// Runs KCP's timer (retransmissions, window probes, delayed flushes) at `now`; returns
    /// how many ms until it wants to run again.
    pub fn tick(&mut self, now: u32) -> u32 {
        let _ = self.kcp.update(now);
        self.kcp.check(now)
    }

    /// Sends what is due now (pending acknowledgements, retransmissions): the last flush
    /// before the session is let go.
    pub fn flush(&mut self, now: u32) {
        let _ = self.kcp.update(now);
        let _ = self.kcp.flush();
    }

    /// Whether a segment has been sent 20 times without acknowledgement (kcp-go notes this
    /// and carries on; erpc ends the session: the other end is gone).
    pub fn is_dead(&self) -> bool {
        self.kcp.is_dead_link()
    }

    /// The datagrams to send, in order.
    pub fn take_datagrams(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.outgoing.lock().unwrap_or_else(|e| e.into_inner()).datagrams)
    }
}

/// What [`Segments::mark`] found in a KCP packet.
struct Segments {
    /// It holds a data segment (which must be acknowledged).
    data: bool,
}

impl Segments {
    /// Walks a packet's segments (stopping at the first malformed one, as the state machine
    /// does) and takes out what kcp-go would not use: an RTT sample from any ACK but the last
    /// (kcp-go samples the last ACK's timestamp only), and, from a packet rebuilt by FEC
    /// (`irregular`: the current remote window), any RTT sample or window at all, since it
    /// may be long stale. The `kcp` crate samples every ACK and takes every window, so the
    /// unwanted timestamps are moved far into the future (it skips negative RTTs) and the
    /// windows set to the current one.
    fn mark(packet: &mut [u8], now: u32, irregular: Option<u16>) -> Segments {
        let mut found = Segments { data: false };
        let mut at = 0;
        let mut last_ack = None;
        while packet.len() - at >= KCP_HEADER_LEN {
            let header = &mut packet[at..at + KCP_HEADER_LEN];
            match header[4] {
                CMD_PUSH => found.data = true,
                CMD_ACK => {
                    if let Some(previous) = last_ack.replace(at) {
                        never_sampled(&mut packet[previous..], now);
                    }
                }
                _ => {}
            }
            let header = &mut packet[at..at + KCP_HEADER_LEN];
            if let Some(wnd) = irregular {
                header[6..8].copy_from_slice(&wnd.to_le_bytes());
            }
            let len = u32::from_le_bytes([header[20], header[21], header[22], header[23]]) as usize;
            match (at + KCP_HEADER_LEN).checked_add(len) {
                Some(next) if next <= packet.len() => at = next,
                _ => break,
            }
        }
        if let (Some(last), Some(_)) = (last_ack, irregular) {
            never_sampled(&mut packet[last..], now);
        }
        found
    }
}

/// Sets an ACK segment's echoed timestamp half the clock ahead of `now`, where no RTT can be
/// computed from it.
fn never_sampled(segment: &mut [u8], now: u32) {
    segment[8..12].copy_from_slice(&now.wrapping_add(1 << 30).to_le_bytes());
}
