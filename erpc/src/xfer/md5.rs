//! The md5 filter: appends the 16-byte MD5 digest of the data and checks it on the way in.

use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5 as Hasher};

use super::{XferError, XferFilter};

/// md5 integrity check (Go's convention registers `'m'`, `"md5"`).
pub struct Md5 {
    id: u8,
    name: &'static str,
}

impl Md5 {
    /// An md5 filter.
    pub fn new(id: u8, name: &'static str) -> Self {
        Md5 { id, name }
    }
}

impl XferFilter for Md5 {
    fn id(&self) -> u8 {
        self.id
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn pack(&self, input: Bytes) -> Result<Bytes, XferError> {
        let mut out = BytesMut::with_capacity(input.len() + 16);
        out.extend_from_slice(&input);
        out.extend_from_slice(&Hasher::digest(&input));
        Ok(out.freeze())
    }
    fn unpack(&self, mut input: Bytes, _limit: usize) -> Result<Bytes, XferError> {
        let check_failed = || XferError::Corrupt {
            filter: self.name,
            reason: "check failed".into(),
        };
        if input.len() < 16 {
            return Err(check_failed());
        }
        let digest = input.split_off(input.len() - 16);
        if Hasher::digest(&input)[..] != digest[..] {
            return Err(check_failed());
        }
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_checks_the_digest() {
        let md5 = Md5::new(b'm', "md5");
        let packed = md5.pack(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(hex::encode(&packed[3..]), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(md5.unpack(packed.clone(), 0).unwrap(), "abc");
        let mut bad = packed.to_vec();
        bad[0] ^= 1;
        assert!(md5.unpack(bad.into(), 0).is_err());
        assert!(md5.unpack(Bytes::from_static(b"short"), 0).is_err());
    }
}
