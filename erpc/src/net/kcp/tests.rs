//! kcp.md §6, the worked example, byte for byte: one CALL and its REPLY over a fresh session.
//!
//! Two fields differ from Go's by design (module doc of `kcp`): the advertised window (`wnd`)
//! is 128 less what is queued, where Go's is 32 less; and the server acknowledges at once, so
//! its ACK always leaves alone before the reply (one of the two orders kcp.md allows).

use bytes::BytesMut;

use super::KcpEndpoint;

fn hex(s: &str) -> Vec<u8> {
    ::hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

const CALL: &str = "00 00 00 31 00 01 31 01 09 2f 6d 61 74 68 2f 61 64 64 00 06 63 6f 64 65 3d 30
                    00 0d 61 75 74 68 6f 72 3d 61 6e 64 65 79 61 6a 5b 31 2c 32 2c 33 5d";
const REPLY: &str = "00 00 00 15 00 01 31 02 00 00 06 63 6f 64 65 3d 30 00 00 6a 36";
const CONV: u32 = 0x1122_3344;

/// kcp.md's bytes with the `wnd` field of the (first) segment set to `wnd`.
fn with_wnd(mut datagram: Vec<u8>, wnd: u16) -> Vec<u8> {
    datagram[14..16].copy_from_slice(&wnd.to_le_bytes());
    datagram
}

#[test]
fn one_call_and_its_reply_are_the_datagrams_of_kcp_md_6() {
    let mut client = KcpEndpoint::new(CONV, 1000);
    let mut server = KcpEndpoint::new(CONV, 5000);
    assert!(client.take_datagrams().is_empty(), "dialing sends nothing");

    // 2. The CALL leaves at once as C0, 81 bytes.
    assert_eq!(client.send(&hex(CALL), 1000), 49);
    let c0 = client.take_datagrams();
    let expected =
        hex("00 00 00 00 f1 00 4b 00 44 33 22 11 51 00 20 00 e8 03 00 00 00 00 00 00 00 00 00 00 31 00 00 00");
    assert_eq!(c0, [with_wnd([expected, hex(CALL)].concat(), 128)]);

    // 3. The server acknowledges (S0, 32 bytes: ts echo 1000, sn 0, una 1), the frame still
    //    unread, then answers (S1, 53 bytes).
    server.input(&c0[0], 5000);
    let s0 = server.take_datagrams();
    let ack = hex("00 00 00 00 f1 00 1a 00 44 33 22 11 52 00 20 00 e8 03 00 00 00 00 00 00 01 00 00 00 00 00 00 00");
    assert_eq!(s0, [with_wnd(ack, 127)]);
    let mut call = BytesMut::new();
    assert_eq!(server.recv(&mut call, 4096), 49);
    assert_eq!(&call[..], hex(CALL));
    assert_eq!(server.send(&hex(REPLY), 5000), 21);
    let s1 = server.take_datagrams();
    let expected =
        hex("01 00 00 00 f1 00 2f 00 44 33 22 11 51 00 20 00 88 13 00 00 00 00 00 00 01 00 00 00 15 00 00 00");
    assert_eq!(s1, [with_wnd([expected, hex(REPLY)].concat(), 128)]);

    // 4. The client: the ACK frees sn 0 (nothing to send); the reply is acknowledged at once
    //    (C1, 32 bytes: ts echo 5000, una 1).
    client.input(&s0[0], 1001);
    assert!(client.take_datagrams().is_empty());
    assert_eq!(client.unacked(), 0);
    client.input(&s1[0], 1002);
    let c1 = hex("01 00 00 00 f1 00 1a 00 44 33 22 11 52 00 20 00 88 13 00 00 00 00 00 00 01 00 00 00 00 00 00 00");
    assert_eq!(client.take_datagrams(), [with_wnd(c1, 127)]);
    let mut reply = BytesMut::new();
    assert_eq!(client.recv(&mut reply, 4096), 21);
    assert_eq!(&reply[..], hex(REPLY));
}

#[test]
fn a_lost_first_datagram_is_sent_again_with_a_new_seqid_after_the_rto() {
    let mut client = KcpEndpoint::new(CONV, 1000);
    client.send(&hex(CALL), 1000);
    let c0 = client.take_datagrams().remove(0);
    // Due at 1000 + rto 200 + rto/8: the 1300 tick resends it (seqid 1, ts 1300).
    for now in [1100, 1200] {
        client.tick(now);
        assert!(client.take_datagrams().is_empty(), "nothing due at {now}");
    }
    client.tick(1300);
    let again = client.take_datagrams();
    assert_eq!(again.len(), 1);
    let mut expected = c0.clone();
    expected[0] = 1;
    expected[16..20].copy_from_slice(&1300u32.to_le_bytes());
    assert_eq!(again[0], expected);
}

#[test]
fn writes_wait_for_the_send_window_and_large_writes_are_cut_at_the_mss() {
    let mut client = KcpEndpoint::new(CONV, 0);
    let big = vec![7u8; 40 * super::MSS];
    // 32 segments are taken (the window), the rest waits.
    assert_eq!(client.send(&big, 0), 32 * super::MSS);
    assert!(!client.can_send());
    assert_eq!(client.send(&big, 0), 0);
    let datagrams = client.take_datagrams();
    assert_eq!(datagrams.len(), 1, "the congestion window starts at one segment");
    assert_eq!(datagrams[0].len(), super::MTU, "a full segment fills the MTU");
    assert_eq!(datagrams[0][13], 0, "every segment is a message of its own (frg 0)");
}

#[test]
fn a_message_larger_than_the_reader_s_room_is_read_in_parts() {
    let (mut a, mut b) = (KcpEndpoint::new(1, 0), KcpEndpoint::new(1, 0));
    a.send(&[1, 2, 3, 4, 5], 0);
    for d in a.take_datagrams() {
        b.input(&d, 0);
    }
    let mut out = [0u8; 2];
    assert_eq!(b.recv_slice(&mut out), 2);
    assert_eq!(out, [1, 2]);
    let mut rest = BytesMut::new();
    assert_eq!(b.recv(&mut rest, 100), 3);
    assert_eq!(&rest[..], [3, 4, 5]);
    assert!(!b.readable());
}

#[test]
fn hostile_sequence_numbers_and_timestamps_do_not_panic() {
    let mut endpoint = KcpEndpoint::new(7, 0);
    endpoint.send(b"x", 0);
    for (cmd, ts, sn, una) in [
        (81u8, 0u32, 0x8000_0000u32, 0x8000_0000u32),
        (82, 0x8000_0000, 0x8000_0000, 0xffff_ffff),
        (82, 0x7fff_ffff, 0, 1),
        (83, 0, 0x7fff_ffff, 0x8000_0001),
        (81, 0xffff_ffff, 0xffff_ff80, 0),
    ] {
        let mut segment = 7u32.to_le_bytes().to_vec();
        segment.extend_from_slice(&[cmd, 0, 0xff, 0xff]);
        for field in [ts, sn, una, 0] {
            segment.extend_from_slice(&field.to_le_bytes());
        }
        endpoint.input(&segment, 0x8000_0000);
        endpoint.tick(0x8000_0001);
    }
    endpoint.take_datagrams();
}

/// The fuzz target's loop (`fuzz/fuzz_targets/kcp_datagrams.rs`) on pseudo-random datagrams
/// shaped like the real ones (FEC headers, KCP headers with the session's conv), so CI runs it.
#[test]
fn random_datagrams_never_panic_and_reads_stay_bounded() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200 {
        let mut endpoint = KcpEndpoint::new(7, 0);
        endpoint.send(&[1; 3000], 0);
        let mut now = 0u32;
        for _ in 0..50 {
            let len = (next() % 1500) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= 32 && next() % 2 == 0 {
                d[4..6].copy_from_slice(&[0xf1 + (next() % 2) as u8, 0]);
                d[..4].copy_from_slice(&((next() % 40) as u32).to_le_bytes());
                d[8..12].copy_from_slice(&7u32.to_le_bytes());
                d[12] = 81 + (next() % 4) as u8;
                d[28..32].copy_from_slice(&((next() % 64) as u32).to_le_bytes());
            }
            endpoint.input(&d, now);
            now = now.wrapping_add((next() % 300) as u32);
            endpoint.tick(now);
            let mut out = BytesMut::new();
            assert!(endpoint.recv(&mut out, 4096) <= 4096);
            assert!(endpoint.take_datagrams().iter().all(|d| d.len() <= super::MTU));
        }
    }
}
