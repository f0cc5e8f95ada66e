//! Handler contexts: what a CALL or PUSH handler knows about its message and session.
//!
//! A context is cheap to clone (one `Arc`) and may be kept past the handler's return, unlike
//! Go's pooled contexts.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::codec::{self, CodecId};
use crate::message::Message;
use crate::meta::{self, Meta};
use crate::plugin::Plugins;
use crate::session::{Session, Storage};
use crate::status::Status;

/// What both contexts share: the received message and where it came from.
struct Incoming {
    session: Session,
    request: Message,
    plugins: Plugins,
}

impl Incoming {
    fn real_ip(&self) -> String {
        match self.request.meta.get_str(meta::REAL_IP) {
            Some(ip) if !ip.is_empty() => ip.to_string(),
            _ => self.session.remote_addr().to_string(),
        }
    }
}

/// Implements the accessors both contexts share.
macro_rules! incoming_accessors {
    ($ty:ident) => {
        impl $ty {
            /// The session the message came on; use it to call or push back.
            pub fn session(&self) -> &Session {
                &self.0.incoming.session
            }
            /// The message's seq.
            pub fn seq(&self) -> i32 {
                self.0.incoming.request.seq
            }
            /// The service method as received (after header hooks, e.g. ignorecase).
            pub fn service_method(&self) -> &str {
                &self.0.incoming.request.service_method
            }
            /// The received meta.
            pub fn meta(&self) -> &Meta {
                &self.0.incoming.request.meta
            }
            /// The first value of a received meta key, if UTF-8.
            pub fn meta_str(&self, key: &str) -> Option<&str> {
                self.0.incoming.request.meta.get_str(key)
            }
            /// The codec of the received body.
            pub fn body_codec(&self) -> CodecId {
                self.0.incoming.request.body_codec
            }
            /// The received message (its body is the encoded body bytes).
            pub fn message(&self) -> &Message {
                &self.0.incoming.request
            }
            /// The other end's address.
            pub fn remote_addr(&self) -> &str {
                self.0.incoming.session.remote_addr()
            }
            /// The original client address: meta `X-Real-IP` if set (by a proxy), else the
            /// remote address.
            pub fn real_ip(&self) -> String {
                self.0.incoming.real_ip()
            }
            /// The certificate chain the other end presented in the session's TLS handshake
            /// (see [`Session::peer_certificates`]); `None` without TLS.
            pub fn peer_certificates(&self) -> Option<crate::net::PeerCertificates> {
                self.0.incoming.session.peer_certificates()
            }
            /// The session's key/value storage.
            pub fn storage(&self) -> &Storage {
                self.0.incoming.session.storage()
            }
            /// The received meta bound into `T` (Go's `param:"<meta>"`): each field reads the
            /// meta key of its name (or its `#[serde(rename)]`), a `Vec` field every value of
            /// the key, numbers and booleans parsed from text; a missing or unparsable field
            /// is Go's binder status, `400 Invalid Parameter`. Wrap `T` in
            /// [`Valid`](crate::router::Valid) to check its garde rules too.
            #[cfg(feature = "binder")]
            #[cfg_attr(docsrs, doc(cfg(feature = "binder")))]
            pub fn bind_meta<T: crate::router::BindMeta>(&self) -> Result<T, Status> {
                T::bind(&self.0.incoming.request.meta)
                    .map_err(|(param, reason)| crate::router::binder_status(self.service_method(), &param, &reason))
            }
        }
    };
}

/// The context of a CALL handler: the request, the session, and the reply's meta, codec and
/// transfer filters.
#[derive(Clone)]
pub struct CallCtx(Arc<CallInner>);

struct CallInner {
    incoming: Incoming,
    reply: Mutex<ReplyParts>,
}

#[derive(Default)]
pub(crate) struct ReplyParts {
    pub(crate) meta: Meta,
    pub(crate) codec: Option<CodecId>,
    pub(crate) xfer: Vec<u8>,
}

incoming_accessors!(CallCtx);

impl CallCtx {
    pub(crate) fn new(session: Session, request: Message, plugins: Plugins) -> Self {
        CallCtx(Arc::new(CallInner {
            incoming: Incoming {
                session,
                request,
                plugins,
            },
            reply: Mutex::new(ReplyParts::default()),
        }))
    }

    fn reply(&self) -> std::sync::MutexGuard<'_, ReplyParts> {
        self.0.reply.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets a reply meta key (replacing the first pair with that key).
    pub fn set_reply_meta(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.reply().meta.set(key, value);
    }

    /// Appends a reply meta pair.
    pub fn add_reply_meta(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.reply().meta.add(key, value);
    }

    /// Chooses the reply's codec explicitly.
    pub fn set_reply_codec(&self, codec: CodecId) {
        self.reply().codec = Some(codec);
    }

    /// The codec the reply will use, fixed from now on: the one set with
    /// [`set_reply_codec`](Self::set_reply_codec), else the one the caller asked for with meta
    /// `X-Accept-Body-Codec` if it is registered, else the request's codec.
    pub fn reply_codec(&self) -> CodecId {
        let mut reply = self.reply();
        *reply
            .codec
            .get_or_insert_with(|| accepted_codec(&self.0.incoming.request.meta).unwrap_or(self.body_codec()))
    }

    /// Appends a transfer filter to the reply (after the ones copied from the request).
    pub fn add_reply_xfer(&self, filter_id: u8) -> Result<(), Status> {
        crate::xfer::by_id(filter_id)
            .ok_or_else(|| Status::internal(format!("xfer filter {filter_id:?} is not registered")))?;
        self.reply().xfer.push(filter_id);
        Ok(())
    }

    /// Takes what the handler set for the reply.
    pub(crate) fn take_reply_parts(&self) -> ReplyParts {
        std::mem::take(&mut *self.reply())
    }

    pub(crate) fn after_decode(&self) -> Result<(), Status> {
        let inc = &self.0.incoming;
        if inc.plugins.is_empty() {
            return Ok(());
        }
        inc.plugins.run("post_read_call_body", |p| {
            p.post_read_call_body(&inc.session, &inc.request)
        })
    }

    /// The plugins of the matched route (the peer's when none matched).
    pub(crate) fn plugins(&self) -> &Plugins {
        &self.0.incoming.plugins
    }
}

/// The context of a PUSH handler: the message and the session.
#[derive(Clone)]
pub struct PushCtx(Arc<PushInner>);

struct PushInner {
    incoming: Incoming,
}

incoming_accessors!(PushCtx);

impl PushCtx {
    pub(crate) fn new(session: Session, request: Message, plugins: Plugins) -> Self {
        PushCtx(Arc::new(PushInner {
            incoming: Incoming {
                session,
                request,
                plugins,
            },
        }))
    }

    pub(crate) fn after_decode(&self) -> Result<(), Status> {
        let inc = &self.0.incoming;
        if inc.plugins.is_empty() {
            return Ok(());
        }
        inc.plugins.run("post_read_push_body", |p| {
            p.post_read_push_body(&inc.session, &inc.request)
        })
    }
}

/// The codec named by meta `X-Accept-Body-Codec`: 1–3 decimal digits, non-zero, registered.
pub(crate) fn accepted_codec(meta: &Meta) -> Option<CodecId> {
    let text = meta.get(meta::ACCEPT_BODY_CODEC)?;
    if text.is_empty() || text.len() > 3 {
        return None;
    }
    let id: u8 = std::str::from_utf8(text).ok()?.parse().ok()?;
    let id = CodecId(id);
    (id != CodecId::NONE && codec::by_id(id).is_some()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_body_codec_follows_go_rules() {
        let meta = |v: &'static str| -> Meta { [(meta::ACCEPT_BODY_CODEC, v)].into_iter().collect() };
        assert_eq!(accepted_codec(&meta("115")), Some(CodecId::PLAIN));
        assert_eq!(accepted_codec(&meta("106")), Some(CodecId::JSON));
        assert_eq!(accepted_codec(&meta("0")), None);
        assert_eq!(accepted_codec(&meta("0115")), None);
        assert_eq!(accepted_codec(&meta("256")), None);
        assert_eq!(accepted_codec(&meta("90")), None);
        assert_eq!(accepted_codec(&meta("s")), None);
        assert_eq!(accepted_codec(&Meta::new()), None);
    }
}
