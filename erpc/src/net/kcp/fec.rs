//! kcp-go's forward error correction layer, as Go eRPC configures it: 10 data
//! shards and 3 parity shards, no encryption.
//!
//! Every KCP packet leaves as a data datagram (an 8-byte header: seqid, type `0xF1`, size); each
//! 10th data datagram of a group is followed by 3 parity datagrams (type `0xF2`) computed with
//! klauspost/reedsolomon's matrix, which `reed-solomon-erasure` builds identically. The
//! receiver keeps the last datagrams of each group (at most 39, at most 60 s) and rebuilds lost
//! data datagrams once any 10 of a group's 13 are there.

use std::collections::VecDeque;
use std::sync::OnceLock;

use reed_solomon_erasure::galois_8::ReedSolomon;

/// Data shards per FEC group.
pub const DATA_SHARDS: usize = 10;
/// Parity shards per FEC group.
pub const PARITY_SHARDS: usize = 3;
/// Datagrams per FEC group (seqids `13g … 13g+12`).
const GROUP: u32 = (DATA_SHARDS + PARITY_SHARDS) as u32;
/// The FEC header of a data datagram: seqid (u32), type (u16), size (u16), all little-endian.
pub const HEADER_LEN: usize = 8;
/// Where a shard starts in its datagram: the size field of a data datagram is part of it.
const SHARD_OFFSET: usize = 6;
/// The type of a data datagram.
pub const TYPE_DATA: u16 = 0xF1;
/// The type of a parity datagram.
pub const TYPE_PARITY: u16 = 0xF2;
/// The seqid after which the counter starts again at 0: the largest multiple of 13 that fits a
/// u32, so that groups stay aligned across the wrap.
pub const SEQID_WRAP: u32 = u32::MAX / GROUP * GROUP;
/// Most datagrams the receiver keeps for recovery (3 groups).
const RX_LIMIT: usize = 3 * GROUP as usize;
/// How long (ms) the receiver keeps a datagram for recovery.
const RX_EXPIRE_MS: i32 = 60_000;
/// The 24-byte KCP segment header.
pub const KCP_HEADER_LEN: usize = 24;

/// The Reed–Solomon codec for 10 + 3 shards (built once: it inverts a matrix).
fn codec() -> &'static ReedSolomon {
    static CODEC: OnceLock<ReedSolomon> = OnceLock::new();
    CODEC.get_or_init(|| ReedSolomon::new(DATA_SHARDS, PARITY_SHARDS).expect("10 + 3 shards is a valid code"))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Wrap-aware `a - b` of two sequence numbers or clock values.
fn diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// What a received datagram is, by the u16 at offset 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An FEC data datagram: the KCP packet follows the 8-byte header.
    Data,
    /// An FEC parity datagram: only useful for recovery.
    Parity,
    /// A plain KCP packet without FEC header (kcp-go accepts those too).
    Plain,
}

/// Classifies a datagram; `None` if it is too short for its kind (under 8 bytes).
pub fn classify(datagram: &[u8]) -> Option<Kind> {
    let kind = match u16_at(datagram, 4)? {
        TYPE_DATA => Kind::Data,
        TYPE_PARITY => Kind::Parity,
        _ => Kind::Plain,
    };
    (kind == Kind::Plain || datagram.len() >= HEADER_LEN).then_some(kind)
}

/// The conversation id and first segment's sn a listener reads from a datagram:
/// from a data datagram of at least 32 bytes or a plain KCP packet of at least 24; parity
/// datagrams and shorter data datagrams carry none.
pub fn conv_and_sn(datagram: &[u8]) -> Option<(u32, u32)> {
    match classify(datagram)? {
        Kind::Data if datagram.len() >= HEADER_LEN + KCP_HEADER_LEN => {
            Some((u32_at(datagram, HEADER_LEN)?, u32_at(datagram, HEADER_LEN + 12)?))
        }
        Kind::Plain if datagram.len() >= KCP_HEADER_LEN => Some((u32_at(datagram, 0)?, u32_at(datagram, 12)?)),
        _ => None,
    }
}

/// The sending half: turns each KCP packet into a data datagram and adds a group's 3 parity
/// datagrams right after its 10th data datagram.
#[derive(Debug, Default)]
pub struct FecEncoder {
    next: u32,
    /// The shards (bytes 6.. of each data datagram) of the group being filled.
    shards: Vec<Vec<u8>>,
}

impl FecEncoder {
    /// A new encoder; its first datagram has seqid 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The seqid the next datagram will carry.
    pub fn next_seqid(&self) -> u32 {
        self.next
    }

    /// Appends the datagrams for one KCP packet (at most 1392 bytes) to `out`: its data
    /// datagram, then the group's parity datagrams if it completes a group.
    pub fn encode(&mut self, packet: &[u8], out: &mut Vec<Vec<u8>>) {
        let mut datagram = Vec::with_capacity(HEADER_LEN + packet.len());
        datagram.extend_from_slice(&self.next.to_le_bytes());
        datagram.extend_from_slice(&TYPE_DATA.to_le_bytes());
        // Larger packets are never produced (MTU 1400); the cast cannot truncate for them.
        datagram.extend_from_slice(&((packet.len() + 2) as u16).to_le_bytes());
        datagram.extend_from_slice(packet);
        self.next = self.next.wrapping_add(1);
        self.shards.push(datagram[SHARD_OFFSET..].to_vec());
        out.push(datagram);
        if self.shards.len() == DATA_SHARDS {
            self.parity(out);
        }
    }

    fn parity(&mut self, out: &mut Vec<Vec<u8>>) {
        let mut shards = std::mem::take(&mut self.shards);
        let len = shards.iter().map(Vec::len).max().unwrap_or(0);
        for shard in &mut shards {
            shard.resize(len, 0);
        }
        let mut parity = vec![vec![0u8; len]; PARITY_SHARDS];
        let encoded = codec().encode_sep(&shards, &mut parity);
        for shard in parity {
            if encoded.is_ok() {
                let mut datagram = Vec::with_capacity(SHARD_OFFSET + len);
                datagram.extend_from_slice(&self.next.to_le_bytes());
                datagram.extend_from_slice(&TYPE_PARITY.to_le_bytes());
                datagram.extend_from_slice(&shard);
                out.push(datagram);
            }
            // The counter wraps only after a parity datagram, keeping groups aligned.
            self.next = (self.next + 1) % SEQID_WRAP;
        }
        shards.clear();
        self.shards = shards;
    }
}

/// One stored datagram of the receiver.
#[derive(Debug)]
struct Stored {
    seqid: u32,
    data: bool,
    /// Bytes 6.. of the datagram.
    shard: Vec<u8>,
    /// Arrival (ms, the caller's clock).
    at: u32,
}

/// The receiving half: keeps recent datagrams by seqid and rebuilds lost data datagrams of a
/// group once 10 of its 13 datagrams have arrived.
#[derive(Debug, Default)]
pub struct FecDecoder {
    rx: VecDeque<Stored>,
}

impl FecDecoder {
    /// A decoder holding nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Datagrams held for recovery.
    pub fn held(&self) -> usize {
        self.rx.len()
    }

    /// Stores an FEC datagram (data or parity, at least 8 bytes; others are ignored) that
    /// arrived at `now` (ms) and appends the KCP packets of any data datagrams it lets the
    /// decoder rebuild to `recovered`.
    pub fn decode(&mut self, datagram: &[u8], now: u32, recovered: &mut Vec<Vec<u8>>) {
        let data = match classify(datagram) {
            Some(Kind::Data) => true,
            Some(Kind::Parity) => false,
            _ => return,
        };
        let Some(seqid) = u32_at(datagram, 0) else { return };
        while self.rx.front().is_some_and(|s| diff(now, s.at) > RX_EXPIRE_MS) {
            self.rx.pop_front();
        }
        // Ordered by seqid (wrap-aware); a seqid already held is ignored.
        let mut at = 0;
        for (i, stored) in self.rx.iter().enumerate().rev() {
            if stored.seqid == seqid {
                return;
            }
            if diff(seqid, stored.seqid) > 0 {
                at = i + 1;
                break;
            }
        }
        self.rx.insert(
            at,
            Stored {
                seqid,
                data,
                shard: datagram[SHARD_OFFSET..].to_vec(),
                at: now,
            },
        );
        self.try_recover(at, seqid, recovered);
        if self.rx.len() > RX_LIMIT {
            self.rx.pop_front();
        }
    }

    /// Looks at the group of the datagram just stored at `at`, as kcp-go does.
    fn try_recover(&mut self, at: usize, seqid: u32, recovered: &mut Vec<Vec<u8>>) {
        let begin = seqid - seqid % GROUP;
        let end = begin.wrapping_add(GROUP - 1);
        let search_begin = at.saturating_sub((seqid % GROUP) as usize);
        let search_end = (search_begin + GROUP as usize - 1).min(self.rx.len() - 1);
        if search_end + 1 - search_begin < DATA_SHARDS {
            return;
        }
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; GROUP as usize];
        let (mut count, mut data_count, mut first, mut longest) = (0, 0, 0, 0);
        for i in search_begin..=search_end {
            let stored = &self.rx[i];
            if diff(stored.seqid, end) > 0 {
                break;
            }
            if diff(stored.seqid, begin) < 0 {
                continue;
            }
            if count == 0 {
                first = i;
            }
            count += 1;
            data_count += usize::from(stored.data);
            longest = longest.max(stored.shard.len());
            shards[(stored.seqid % GROUP) as usize] = Some(stored.shard.clone());
        }
        if data_count == DATA_SHARDS {
            self.rx.drain(first..first + count);
        } else if count >= DATA_SHARDS {
            let missing: Vec<usize> = (0..DATA_SHARDS).filter(|&k| shards[k].is_none()).collect();
            for shard in shards.iter_mut().flatten() {
                shard.resize(longest, 0);
            }
            if codec().reconstruct_data(&mut shards).is_ok() {
                for k in missing {
                    let Some(shard) = shards[k].take() else { continue };
                    // The size field says how much of the padded shard is the packet.
                    let size = usize::from(u16_at(&shard, 0).unwrap_or(0));
                    if (2..=shard.len()).contains(&size) {
                        recovered.push(shard[2..size].to_vec());
                    }
                }
            }
            self.rx.drain(first..first + count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        ::hex::decode(s.replace(' ', "")).unwrap()
    }

    /// kcp.md §3.4: the parity rows of klauspost/reedsolomon's matrix, through vector A (each
    /// unit data shard picks out one column) and vectors A and B themselves.
    #[test]
    fn the_codec_matches_klauspost_reedsolomon() {
        let rows = [
            "81 96 af b8 d2 c4 fe e8 03 02",
            "96 81 b8 af c4 d2 e8 fe 02 03",
            "bf d6 62 0a 06 6f df b7 05 04",
        ];
        for column in 0..DATA_SHARDS {
            let data: Vec<Vec<u8>> = (0..DATA_SHARDS).map(|i| vec![u8::from(i == column)]).collect();
            let mut parity = vec![vec![0u8; 1]; PARITY_SHARDS];
            codec().encode_sep(&data, &mut parity).unwrap();
            for (p, row) in rows.iter().enumerate() {
                assert_eq!(parity[p][0], hex(row)[column], "row {} column {column}", 10 + p);
            }
        }

        let a: Vec<Vec<u8>> = "0355 0aaa 1fff 4254 73a9 b2fe ff53 5aa8 c3fd 3a52"
            .split(' ')
            .map(hex)
            .collect();
        let mut parity = vec![vec![0u8; 2]; PARITY_SHARDS];
        codec().encode_sep(&a, &mut parity).unwrap();
        assert_eq!(parity, [hex("4635"), hex("6cdf"), hex("57fe")]);

        let b: Vec<Vec<u8>> = (0..10u8).map(|i| (0..4).map(|j| 16 * i + j).collect()).collect();
        let mut parity = vec![vec![0u8; 4]; PARITY_SHARDS];
        codec().encode_sep(&b, &mut parity).unwrap();
        assert_eq!(parity, [hex("a0a1a2a3"), hex("b0b1b2b3"), hex("c0c1c2c3")]);
    }

    /// A KCP-looking packet of `len` bytes, distinct per `i`.
    fn packet(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
    }

    #[test]
    fn data_datagrams_carry_seqid_type_and_size_and_a_group_ends_with_three_parity() {
        let mut encoder = FecEncoder::new();
        let mut out = Vec::new();
        for i in 0..9 {
            encoder.encode(&packet(i, 24 + i), &mut out);
        }
        assert_eq!(out.len(), 9, "no parity before the 10th data datagram");
        assert_eq!(&out[0][..8], [0, 0, 0, 0, 0xf1, 0, 26, 0]);
        assert_eq!(&out[3][..8], [3, 0, 0, 0, 0xf1, 0, 29, 0]);
        assert_eq!(&out[3][8..], packet(3, 27));
        encoder.encode(&packet(9, 100), &mut out);
        assert_eq!(out.len(), 13);
        for (p, parity) in out[10..].iter().enumerate() {
            assert_eq!(&parity[..6], [10 + p as u8, 0, 0, 0, 0xf2, 0]);
            assert_eq!(parity.len(), 108, "as long as the longest data datagram");
        }
        assert_eq!(encoder.next_seqid(), 13);
    }

    #[test]
    fn the_seqid_wraps_after_a_parity_datagram_keeping_groups_aligned() {
        let mut encoder = FecEncoder {
            next: SEQID_WRAP - 13,
            shards: Vec::new(),
        };
        assert_eq!(SEQID_WRAP, 4_294_967_287);
        let mut out = Vec::new();
        for i in 0..11 {
            encoder.encode(&packet(i, 30), &mut out);
        }
        let seqids: Vec<u32> = out.iter().map(|d| u32_at(d, 0).unwrap()).collect();
        let expected: Vec<u32> = (SEQID_WRAP - 13..SEQID_WRAP).chain([0]).collect();
        assert_eq!(seqids, expected);
        assert_eq!(classify(&out[13]), Some(Kind::Data));
    }

    /// Encodes one group of packets of varied lengths.
    fn group(seed: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let packets: Vec<Vec<u8>> = (0..DATA_SHARDS).map(|i| packet(seed + i, 24 + i * 37)).collect();
        let mut encoder = FecEncoder::new();
        let mut out = Vec::new();
        for p in &packets {
            encoder.encode(p, &mut out);
        }
        (packets, out)
    }

    #[test]
    fn up_to_three_lost_data_datagrams_are_rebuilt_from_parity() {
        for lost in [vec![0usize], vec![4, 9], vec![1, 2, 3], vec![0, 5, 9]] {
            let (packets, datagrams) = group(lost.len());
            let mut decoder = FecDecoder::new();
            let mut recovered = Vec::new();
            for (i, d) in datagrams.iter().enumerate() {
                if !lost.contains(&i) {
                    decoder.decode(d, 0, &mut recovered);
                }
            }
            let expected: Vec<Vec<u8>> = lost.iter().map(|&i| packets[i].clone()).collect();
            assert_eq!(recovered, expected, "lost {lost:?}");
            // The group is let go once rebuilt; its parity arriving after that is held again
            // (and ages out), as kcp-go does.
            assert_eq!(decoder.held(), 3 - lost.len(), "lost {lost:?}");
        }
    }

    #[test]
    fn four_losses_cannot_be_rebuilt_and_a_complete_group_needs_no_parity() {
        let (_, datagrams) = group(0);
        let mut decoder = FecDecoder::new();
        let mut recovered = Vec::new();
        for d in &datagrams[4..] {
            decoder.decode(d, 0, &mut recovered);
        }
        assert!(recovered.is_empty());

        let mut decoder = FecDecoder::new();
        for d in &datagrams[..10] {
            decoder.decode(d, 0, &mut recovered);
        }
        assert!(recovered.is_empty());
        assert_eq!(decoder.held(), 0);
    }

    #[test]
    fn parity_first_duplicates_and_old_datagrams_are_handled() {
        let (packets, datagrams) = group(3);
        let mut decoder = FecDecoder::new();
        let mut recovered = Vec::new();
        // Parity first, then a duplicate, then the data but the first: once 7 data datagrams
        // are there, the 3 others are rebuilt (the 2 that arrive later only go to KCP).
        for d in datagrams[10..].iter().chain([&datagrams[10]]).chain(&datagrams[1..10]) {
            decoder.decode(d, 0, &mut recovered);
        }
        assert_eq!(recovered, [packets[0].clone(), packets[8].clone(), packets[9].clone()]);

        // Held datagrams expire after 60 s and are capped at 39.
        let mut decoder = FecDecoder::new();
        decoder.decode(&datagrams[0], 0, &mut recovered);
        decoder.decode(&datagrams[1], 60_001, &mut recovered);
        assert_eq!(decoder.held(), 1);
        for seqid in 0..100u32 {
            let mut d = datagrams[10].clone();
            d[..4].copy_from_slice(&(seqid * 13 + 10).to_le_bytes());
            decoder.decode(&d, 60_001, &mut recovered);
        }
        assert_eq!(decoder.held(), RX_LIMIT);
    }

    #[test]
    fn hostile_datagrams_are_ignored_or_bounded() {
        let mut decoder = FecDecoder::new();
        let mut recovered = Vec::new();
        for d in [
            &[][..],
            &[1, 2, 3],
            &[0, 0, 0, 0, 0xf1, 0, 0xff],
            &[0, 0, 0, 0, 0xf2, 0, 0xff],
        ] {
            decoder.decode(d, 0, &mut recovered);
        }
        assert_eq!(decoder.held(), 0, "short datagrams are not stored");
        // A group of tiny shards with lying size fields: whatever is rebuilt is within bounds.
        for seqid in 1..13u32 {
            let mut d = seqid.to_le_bytes().to_vec();
            d.extend_from_slice(&(if seqid < 10 { TYPE_DATA } else { TYPE_PARITY }).to_le_bytes());
            d.extend_from_slice(&[0xff, 0xff]);
            decoder.decode(&d, 0, &mut recovered);
        }
        assert!(recovered.iter().all(|p| p.len() <= 2));
        assert_eq!(conv_and_sn(&[0, 0, 0, 0, 0xf2, 0, 0, 0]), None);
        assert_eq!(conv_and_sn(&[0; 31]), Some((0, 0)), "plain KCP");
        let mut data = vec![0u8; 32];
        data[4] = 0xf1;
        data[8] = 7;
        data[20] = 9;
        assert_eq!(conv_and_sn(&data), Some((7, 9)));
        assert_eq!(conv_and_sn(&data[..31]), None);
    }
}
