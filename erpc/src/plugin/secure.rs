//! The `secure` plugin: message bodies encrypted end to end, switched per
//! message by meta (`X-Secure: true` encrypts a body; `X-Accept-Secure: true` on a request
//! asks for an encrypted reply, and an encrypted request gets one unless it says `false`).
//!
//! Two modes:
//! - [`SecureMode::Go`], byte-compatible with Go eRPC: AES-128/192/256 in ECB mode with PKCS#7
//!   padding, hex, inside the record `{cipherversion, ciphertext}` encoded with the message's
//!   own codec, the version being the hex MD5 of the key. **Confidentiality without
//!   integrity**: ECB shows which blocks repeat, and nothing stops a body from being altered,
//!   replayed, or moved to another method. Use it to talk to Go peers.
//! - [`SecureMode::Aead`], erpc only: AES-256-GCM with a random nonce per message, and the
//!   message's type, seq and service method bound as associated data, so a tampered body, or
//!   one replayed on another method or call, fails to decrypt. Same record and meta switches;
//!   its version (`aes256gcm-` + the key's MD5) tells a Go peer it cannot read it.
//!
//! Where Go panics (a ciphertext that is not whole blocks) or accepts nonsense (padding bytes
//! of 0 or above 16), this plugin answers its decrypt error status.

use std::sync::Arc;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use bytes::Bytes;
use md5::{Digest, Md5};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::{HookResult, Plugin};
use crate::codec::{CodecId, DecodeBody, EncodeBody, Protobuf};
use crate::message::{Message, MessageType};
use crate::session::Session;
use crate::status::Status;

/// The meta key that marks an encrypted body.
pub const SECURE_KEY: &str = "X-Secure";
/// The meta key by which a request asks for an encrypted (`true`) or plain (`false`) reply.
pub const ACCEPT_SECURE_KEY: &str = "X-Accept-Secure";

/// The storage key under which a session remembers which replies to encrypt.
fn reply_flag(seq: i32) -> String {
    format!("erpc.secure.reply.{seq}")
}

/// Which cipher a [`Secure`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecureMode {
    /// Go eRPC's: AES-ECB, PKCS#7, no integrity.
    Go,
    /// AES-256-GCM with the header bound as associated data (erpc only).
    Aead,
}

/// Why a key was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecureKeyError {
    /// Go mode takes AES-128/192/256 keys.
    #[error("secure: a key of {0} bytes; use 16, 24 or 32 (AES-128/192/256)")]
    Length(usize),
    /// AEAD mode takes AES-256 keys.
    #[error("secure: the AEAD mode needs a 32-byte key, not {0} bytes")]
    AeadLength(usize),
}

/// The plugin. Install it on both peers with the same key.
#[derive(Clone)]
pub struct Secure {
    cipher: Arc<Cipher>,
    version: String,
    status_code: i32,
}

enum Cipher {
    Aes128(aes::Aes128),
    Aes192(aes::Aes192),
    Aes256(aes::Aes256),
    Gcm(LessSafeKey, SystemRandom),
}

/// The record an encrypted body becomes (field order and protobuf tags are Go's).
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
struct Record {
    #[prost(string, tag = "1")]
    #[serde(default)]
    cipherversion: String,
    #[prost(string, tag = "2")]
    #[serde(default)]
    ciphertext: String,
}

impl Secure {
    /// A plugin answering decrypt failures with `status_code` (Go's `NewPlugin(code, key)`).
    pub fn new(mode: SecureMode, status_code: i32, key: &[u8]) -> Result<Secure, SecureKeyError> {
        let cipher = match (mode, key.len()) {
            (SecureMode::Go, 16) => Cipher::Aes128(aes::Aes128::new(GenericArray::from_slice(key))),
            (SecureMode::Go, 24) => Cipher::Aes192(aes::Aes192::new(GenericArray::from_slice(key))),
            (SecureMode::Go, 32) => Cipher::Aes256(aes::Aes256::new(GenericArray::from_slice(key))),
            (SecureMode::Go, n) => return Err(SecureKeyError::Length(n)),
            (SecureMode::Aead, 32) => {
                let key = UnboundKey::new(&AES_256_GCM, key).map_err(|_| SecureKeyError::AeadLength(32))?;
                Cipher::Gcm(LessSafeKey::new(key), SystemRandom::new())
            }
            (SecureMode::Aead, n) => return Err(SecureKeyError::AeadLength(n)),
        };
        let md5 = hex::encode(Md5::digest(key));
        let version = match mode {
            SecureMode::Go => md5,
            SecureMode::Aead => format!("aes256gcm-{md5}"),
        };
        Ok(Secure {
            cipher: Arc::new(cipher),
            version,
            status_code,
        })
    }

    /// Encrypts `msg`'s body in place (if its status is OK), as the record in its codec.
    fn encrypt(&self, msg: &mut Message) -> Result<(), Status> {
        if !msg.status.is_ok() {
            return Ok(());
        }
        let ciphertext = match &*self.cipher {
            Cipher::Gcm(key, random) => {
                let mut nonce = [0u8; NONCE_LEN];
                random
                    .fill(&mut nonce)
                    .map_err(|_| Status::new(self.status_code, "encrypt error: no random nonce"))?;
                let mut sealed = msg.body.to_vec();
                key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad(msg)), &mut sealed)
                    .map_err(|_| Status::new(self.status_code, "encrypt error"))?;
                let mut out = nonce.to_vec();
                out.extend_from_slice(&sealed);
                out
            }
            block => block.ecb_encrypt(&msg.body),
        };
        let record = Record {
            cipherversion: self.version.clone(),
            ciphertext: hex::encode(ciphertext),
        };
        msg.body = encode_record(&record, msg.body_codec).map_err(|e| {
            Status::with_cause(
                self.status_code,
                "encrypt error",
                format!("the record cannot be encoded: {e}"),
            )
        })?;
        Ok(())
    }

    /// Replaces an encrypted body by its plaintext.
    fn decrypt(&self, msg: &mut Message) -> Result<(), Status> {
        let fail = |cause: String| Status::with_cause(self.status_code, "decrypt ciphertext error", cause);
        if msg.body.is_empty() {
            // An error reply, say: nothing was encrypted (Go reads an empty record, and skips).
            return Ok(());
        }
        let record = decode_record(msg.body_codec, msg.body.clone()).map_err(|e| fail(e.to_string()))?;
        if record.cipherversion.is_empty() {
            // Go: no version, nothing to decrypt; the destination stays empty.
            msg.body = Bytes::new();
            return Ok(());
        }
        if record.cipherversion != self.version {
            return Err(fail(format!(
                "inconsistent encryption version, get:{:?}, want:{:?}",
                record.cipherversion, self.version
            )));
        }
        let ciphertext =
            hex::decode(&record.ciphertext).map_err(|e| fail(format!("the ciphertext is not hex: {e}")))?;
        let plain = match &*self.cipher {
            Cipher::Gcm(key, _) => {
                if ciphertext.len() < NONCE_LEN {
                    return Err(fail("the ciphertext is shorter than its nonce".into()));
                }
                let (nonce, sealed) = ciphertext.split_at(NONCE_LEN);
                let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail("bad nonce".into()))?;
                let mut sealed = sealed.to_vec();
                let plain = key
                    .open_in_place(nonce, Aad::from(aad(msg)), &mut sealed)
                    .map_err(|_| {
                        fail("the body was altered, or belongs to another message (authentication failed)".into())
                    })?;
                plain.to_vec()
            }
            block => block.ecb_decrypt(&ciphertext).map_err(fail)?,
        };
        msg.body = Bytes::from(plain);
        Ok(())
    }

    /// The decrypt side of a received CALL, PUSH or REPLY.
    fn on_read(&self, msg: &mut Message) -> HookResult {
        match msg.meta.get_str(SECURE_KEY) {
            Some("true") => self.decrypt(msg),
            Some(_) => {
                msg.meta.remove(SECURE_KEY);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The encrypt side of a CALL or PUSH being sent.
    fn on_write(&self, msg: &mut Message) -> HookResult {
        match msg.meta.get_str(SECURE_KEY) {
            Some("true") => self.encrypt(msg),
            Some(_) => {
                msg.meta.remove(SECURE_KEY);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Cipher {
    fn ecb_encrypt(&self, plain: &[u8]) -> Vec<u8> {
        // PKCS#7: 1 to 16 bytes of padding, always.
        let pad = 16 - plain.len() % 16;
        let mut data = Vec::with_capacity(plain.len() + pad);
        data.extend_from_slice(plain);
        data.resize(plain.len() + pad, pad as u8);
        for block in data.chunks_exact_mut(16) {
            let block = GenericArray::from_mut_slice(block);
            match self {
                Cipher::Aes128(c) => c.encrypt_block(block),
                Cipher::Aes192(c) => c.encrypt_block(block),
                Cipher::Aes256(c) => c.encrypt_block(block),
                Cipher::Gcm(..) => unreachable!("GCM does not use ECB"),
            }
        }
        data
    }

    fn ecb_decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, String> {
        if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
            return Err(format!(
                "a ciphertext of {} bytes is not whole 16-byte blocks",
                ciphertext.len()
            ));
        }
        let mut data = ciphertext.to_vec();
        for block in data.chunks_exact_mut(16) {
            let block = GenericArray::from_mut_slice(block);
            match self {
                Cipher::Aes128(c) => c.decrypt_block(block),
                Cipher::Aes192(c) => c.decrypt_block(block),
                Cipher::Aes256(c) => c.decrypt_block(block),
                Cipher::Gcm(..) => unreachable!("GCM does not use ECB"),
            }
        }
        let pad = usize::from(data[data.len() - 1]);
        if !(1..=16).contains(&pad) || !data[data.len() - pad..].iter().all(|&b| usize::from(b) == pad) {
            return Err("bad PKCS#7 padding (wrong key?)".into());
        }
        data.truncate(data.len() - pad);
        Ok(data)
    }
}

/// What the AEAD mode binds to a body: the message's type, seq and service method.
fn aad(msg: &Message) -> Vec<u8> {
    let mut aad = Vec::with_capacity(5 + msg.service_method.len());
    aad.push(msg.mtype.as_u8());
    aad.extend_from_slice(&msg.seq.to_be_bytes());
    aad.extend_from_slice(msg.service_method.as_bytes());
    aad
}

fn encode_record(record: &Record, codec: CodecId) -> Result<Bytes, crate::codec::CodecError> {
    if codec == CodecId::PROTOBUF {
        Protobuf(record.clone()).encode_body(codec)
    } else {
        record.encode_body(codec)
    }
}

fn decode_record(codec: CodecId, body: Bytes) -> Result<Record, crate::codec::CodecError> {
    if codec == CodecId::PROTOBUF {
        Protobuf::<Record>::decode_body(codec, body).map(|p| p.0)
    } else {
        Record::decode_body(codec, body)
    }
}

impl Plugin for Secure {
    fn name(&self) -> &str {
        "secure(encrypt/decrypt)"
    }
    fn observes_writes(&self) -> bool {
        false
    }
    fn pre_write_call(&self, _: &Session, message: &mut Message) -> HookResult {
        self.on_write(message)
    }
    fn pre_write_push(&self, _: &Session, message: &mut Message) -> HookResult {
        self.on_write(message)
    }
    fn pre_write_reply(&self, session: &Session, message: &mut Message) -> HookResult {
        let asked = session.storage().remove(&reply_flag(message.seq));
        if asked && message.status.is_ok() {
            message.meta.set(SECURE_KEY, "true");
        }
        if message.meta.get_str(SECURE_KEY) == Some("true")
            && let Err(status) = self.encrypt(message)
        {
            // Never send in the clear what was to be encrypted: the error is the reply.
            message.status = status;
            message.body = Bytes::new();
            message.body_codec = CodecId::NONE;
        }
        Ok(())
    }
    fn pre_read_call_body(&self, session: &Session, message: &mut Message) -> HookResult {
        let encrypted = message.meta.get_str(SECURE_KEY) == Some("true");
        let wants = match message.meta.get_str(ACCEPT_SECURE_KEY) {
            Some("true") => true,
            Some("false") => false,
            _ => encrypted,
        };
        if wants && message.mtype == MessageType::Call {
            session.storage().insert(reply_flag(message.seq), true);
        }
        self.on_read(message)
    }
    fn pre_read_push_body(&self, _: &Session, message: &mut Message) -> HookResult {
        self.on_read(message)
    }
    fn pre_read_reply_body(&self, _: &Session, message: &mut Message) -> HookResult {
        self.on_read(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go() -> Secure {
        Secure::new(SecureMode::Go, 600, b"cipherkey1234567").unwrap()
    }

    #[test]
    fn encrypts_the_spec_example_byte_for_byte() {
        let mut msg = Message::new(MessageType::Call, 1).with_body(CodecId::JSON, r#"{"A":10,"B":2}"#);
        go().encrypt(&mut msg).unwrap();
        assert_eq!(
            std::str::from_utf8(&msg.body).unwrap(),
            r#"{"cipherversion":"1ba49884c59b16619f411c7c80343c9c","ciphertext":"fe7b3fcbf0514f72a3156b8b85acf646"}"#
        );
        go().decrypt(&mut msg).unwrap();
        assert_eq!(&msg.body[..], br#"{"A":10,"B":2}"#);
    }

    #[test]
    fn what_go_panics_on_is_a_decrypt_error() {
        let secure = go();
        for ciphertext in ["fe7b3fcbf0514f72", "zz", "fe7b3fcbf0514f72a3156b8b85acf646fe"] {
            let body = format!(r#"{{"cipherversion":"1ba49884c59b16619f411c7c80343c9c","ciphertext":"{ciphertext}"}}"#);
            let mut msg = Message::new(MessageType::Call, 1).with_body(CodecId::JSON, body);
            let err = secure.decrypt(&mut msg).unwrap_err();
            assert_eq!(
                (err.code().get(), err.msg()),
                (600, "decrypt ciphertext error"),
                "{ciphertext}"
            );
        }
        // A block whose padding byte is 0 (Go accepts it).
        let mut block = [0u8; 16];
        if let Cipher::Aes128(c) = &*secure.cipher {
            c.encrypt_block(GenericArray::from_mut_slice(&mut block));
        }
        let body = format!(
            r#"{{"cipherversion":"1ba49884c59b16619f411c7c80343c9c","ciphertext":"{}"}}"#,
            hex::encode(block)
        );
        let mut msg = Message::new(MessageType::Call, 1).with_body(CodecId::JSON, body);
        assert!(secure.decrypt(&mut msg).is_err());
    }

    #[test]
    fn a_version_mismatch_says_both() {
        let mut msg = Message::new(MessageType::Call, 1).with_body(CodecId::JSON, r#"{"A":1}"#);
        go().encrypt(&mut msg).unwrap();
        let other = Secure::new(SecureMode::Go, 600, b"another-key-1234").unwrap();
        let err = other.decrypt(&mut msg).unwrap_err();
        assert!(
            err.cause().unwrap().contains("inconsistent encryption version"),
            "{err}"
        );
    }

    #[test]
    fn aead_detects_tampering_and_bodies_moved_to_another_method() {
        let secure = Secure::new(SecureMode::Aead, 600, &[7u8; 32]).unwrap();
        let mut msg = Message::new(MessageType::Call, 3).with_body(CodecId::JSON, r#"{"amount":10}"#);
        msg.service_method = "/bank/pay".into();
        secure.encrypt(&mut msg).unwrap();
        let sealed = msg.clone();
        secure.decrypt(&mut msg).unwrap();
        assert_eq!(&msg.body[..], br#"{"amount":10}"#);

        let mut moved = sealed.clone();
        moved.service_method = "/bank/refund".into();
        assert!(secure.decrypt(&mut moved).is_err(), "replayed on another method");

        let mut tampered = sealed.clone();
        let mut record: Record = serde_json::from_slice(&tampered.body).unwrap();
        let mut bytes = hex::decode(&record.ciphertext).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        record.ciphertext = hex::encode(bytes);
        tampered.body = serde_json::to_vec(&record).unwrap().into();
        assert!(secure.decrypt(&mut tampered).is_err(), "tampered");

        // The same body twice never looks the same (a fresh nonce each time).
        let mut again = Message::new(MessageType::Call, 3).with_body(CodecId::JSON, r#"{"amount":10}"#);
        again.service_method = "/bank/pay".into();
        secure.encrypt(&mut again).unwrap();
        assert_ne!(again.body, sealed.body);
    }

    #[test]
    fn keys_of_other_sizes_are_refused() {
        assert!(Secure::new(SecureMode::Go, 600, b"short").is_err());
        assert!(Secure::new(SecureMode::Aead, 600, b"cipherkey1234567").is_err());
    }
}
