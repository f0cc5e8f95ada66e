//! The KCP network's receive path on arbitrary datagrams: kcp-go's FEC framing (storage and
//! Reed–Solomon recovery) and the KCP state machine behind it must never panic, and what a
//! reader gets is bounded by what it asks for. The input is split into datagrams, each
//! prefixed by its length (u16, little-endian, capped at 1500 as the sockets read); the first
//! 4 bytes are the session's conversation id, so the fuzzer can match it.
#![no_main]

use bytes::BytesMut;
use erpc::net::kcp::KcpEndpoint;
use erpc::net::kcp::fec::FecDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((conv, mut rest)) = data.split_first_chunk::<4>() else { return };
    let mut endpoint = KcpEndpoint::new(u32::from_le_bytes(*conv), 0);
    let mut decoder = FecDecoder::new();
    let mut recovered = Vec::new();
    let mut now = 0u32;
    let _ = endpoint.send(b"something in flight", now);
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_le_bytes(*len)).min(1500).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;
        endpoint.input(datagram, now);
        decoder.decode(datagram, now, &mut recovered);
        assert!(decoder.held() <= 39);
        for packet in recovered.drain(..) {
            assert!(packet.len() <= 1500);
        }
        now = now.wrapping_add(u32::from(datagram.first().copied().unwrap_or(1)) * 97);
        endpoint.tick(now);
        let mut out = BytesMut::new();
        let n = endpoint.recv(&mut out, 4096);
        assert!(n <= 4096 && out.len() == n);
        for sent in endpoint.take_datagrams() {
            assert!(sent.len() <= erpc::net::kcp::MTU);
        }
    }
});
