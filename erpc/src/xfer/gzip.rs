//! The gzip filter: RFC 1952 streams via flate2. Unpacking is bounded by the size limit, so
//! a small compressed frame cannot expand into gigabytes.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{XferError, XferFilter};

/// gzip at a given level (Go's convention registers `'g'`, `"gzip"`, level 5).
pub struct Gzip {
    id: u8,
    name: &'static str,
    level: Compression,
}

impl Gzip {
    /// A gzip filter; `level` is clamped to 0..=9.
    pub fn new(id: u8, name: &'static str, level: u32) -> Self {
        Gzip {
            id,
            name,
            level: Compression::new(level.min(9)),
        }
    }
}

impl XferFilter for Gzip {
    fn id(&self) -> u8 {
        self.id
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn pack(&self, input: Bytes) -> Result<Bytes, XferError> {
        let mut encoder = GzEncoder::new(Vec::with_capacity(input.len() / 2 + 32), self.level);
        encoder
            .write_all(&input)
            .and_then(|()| encoder.finish())
            .map(Bytes::from)
            .map_err(|e| XferError::Corrupt {
                filter: self.name,
                reason: e.to_string(),
            })
    }
    fn unpack(&self, input: Bytes, limit: usize) -> Result<Bytes, XferError> {
        if input.is_empty() {
            return Ok(input);
        }
        let mut out = Vec::with_capacity(input.len().saturating_mul(3).min(limit));
        // Read one byte past the limit so that "exactly at the limit" and "over" differ.
        let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        MultiGzDecoder::new(&input[..])
            .take(bound)
            .read_to_end(&mut out)
            .map_err(|e| XferError::Corrupt {
                filter: self.name,
                reason: e.to_string(),
            })?;
        if out.len() > limit {
            return Err(XferError::TooLarge {
                filter: self.name,
                limit,
            });
        }
        Ok(out.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_go_output() {
        let gz = Gzip::new(b'g', "gzip", 5);
        let data = Bytes::from_static(b"[1,2,3][1,2,3][1,2,3]");
        assert_eq!(gz.unpack(gz.pack(data.clone()).unwrap(), 1024).unwrap(), data);
        assert_eq!(gz.unpack(Bytes::new(), 1024).unwrap(), Bytes::new());
        // An empty input still packs to a full gzip stream, as in Go.
        assert!(!gz.pack(Bytes::new()).unwrap().is_empty());
    }

    #[test]
    fn corrupt_and_bomb_inputs_fail_cleanly() {
        let gz = Gzip::new(b'g', "gzip", 5);
        assert!(matches!(
            gz.unpack(Bytes::from_static(b"not gzip"), 1024),
            Err(XferError::Corrupt { .. })
        ));
        let bomb = gz.pack(Bytes::from(vec![0u8; 1 << 20])).unwrap();
        assert!(bomb.len() < 4096);
        assert!(matches!(gz.unpack(bomb, 64 * 1024), Err(XferError::TooLarge { .. })));
    }
}
