//! The auth plugins: a connection's first exchange, before its session
//! starts. The dialing side's [`Bearer`] sends credentials in an AUTH_CALL and waits for the
//! AUTH_REPLY; the accepting side's [`Checker`] reads them, decides, and answers — closing the
//! connection when it refuses. Wire-exact with Go's `auth-bearer` and `auth-checker`.
//!
//! Nothing reaches a session before its checker passes it: the exchange runs in PostAccept,
//! before the session exists, so a CALL or PUSH sent early waits unread, and one sent instead
//! of the AUTH_CALL fails the check (`401`) and closes the connection without a handler
//! running. Checkers run before every other plugin's PostAccept, whatever order the plugins
//! were added in. The bearer runs again on every redial; a refused dial ends in `105 Dial
//! Failed` whose cause is the checker's.
//!
//! ```
//! use erpc::plugin::{AuthInfo, Bearer, Checker};
//! use erpc::{CodecId, Status};
//!
//! let bearer = Bearer::new(|| async { Ok::<_, Status>("secret-token") }).codec(CodecId::PLAIN);
//! let checker = Checker::new(|token: String, info: AuthInfo| async move {
//!     if token != "secret-token" {
//!         return Err(Status::with_cause(403, "auth fail", "unknown token"));
//!     }
//!     info.set_session_id("user-1");
//!     Ok("pass")
//! })
//! .codec(CodecId::PLAIN);
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::{HookResult, Plugin};
use crate::codec::{CodecId, DecodeBody, EncodeBody};
use crate::message::{Message, MessageType};
use crate::meta::Meta;
use crate::session::{PreSession, Storage};
use crate::status::{Code, Status};

type Encoded = Result<Box<dyn EncodeBody + Send>, Status>;
type Credentials = Box<dyn Fn() -> BoxFuture<'static, Encoded> + Send + Sync>;
type VerdictCheck = Box<dyn Fn(CodecId, Bytes) -> HookResult + Send + Sync>;
type Check = Box<dyn Fn(CodecId, Bytes, AuthInfo) -> BoxFuture<'static, Encoded> + Send + Sync>;

/// What every auth message a plugin sends carries besides its body.
#[derive(Clone, Debug, Default)]
struct Settings {
    /// The body codec (none: the peer's default).
    codec: Option<CodecId>,
    meta: Meta,
}

impl Settings {
    fn message(&self, mtype: MessageType, seq: i32, default_codec: CodecId) -> Message {
        let mut msg = Message::new(mtype, seq);
        msg.body_codec = self.codec.unwrap_or(default_codec);
        msg.meta = self.meta.clone();
        msg
    }
}

/// The `codec` and `meta` builders both sides share, for the message named `$message`.
macro_rules! message_settings {
    ($message:literal) => {
        #[doc = concat!("The body codec of the ", $message, " (Go's examples use plain text, [`CodecId::PLAIN`]).")]
        pub fn codec(mut self, codec: CodecId) -> Self {
            self.settings.codec = Some(codec);
            self
        }

        #[doc = concat!("A meta pair sent with the ", $message, ".")]
        pub fn meta(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
            self.settings.meta.add(key, value);
            self
        }
    };
}

/// The dialing side: sends credentials on every dial and redial, and fails the dial unless the
/// checker passes them.
pub struct Bearer {
    credentials: Credentials,
    verdict: Option<VerdictCheck>,
    settings: Settings,
}

impl Bearer {
    /// A bearer sending what `credentials` gives (any body type; a token, a struct…).
    pub fn new<C, F, Fut>(credentials: F) -> Bearer
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, Status>> + Send + 'static,
        C: EncodeBody + Send + 'static,
    {
        Bearer {
            credentials: Box::new(move || {
                let fut = credentials();
                Box::pin(async move { fut.await.map(|c| Box::new(c) as Box<dyn EncodeBody + Send>) })
            }),
            verdict: None,
            settings: Settings::default(),
        }
    }

    message_settings!("AUTH_CALL");

    /// Reads the body of a passing AUTH_REPLY (the checker's result) as `V`; an error, or a
    /// body that is not a `V`, fails the dial.
    pub fn on_verdict<V: DecodeBody>(mut self, check: impl Fn(V) -> HookResult + Send + Sync + 'static) -> Self {
        self.verdict = Some(Box::new(move |codec, body| {
            let verdict = V::decode_body(codec, body)
                .map_err(|e| Status::with_cause(Code::BAD_MESSAGE, "Bad Message", format!("the auth verdict: {e}")))?;
            check(verdict)
        }));
        self
    }

    async fn authenticate(&self, pre: &mut PreSession) -> HookResult {
        let credentials = (self.credentials)().await?;
        let mut call = self
            .settings
            .message(MessageType::AuthCall, pre.next_seq(), pre.default_codec());
        call.body = credentials
            .encode_body(call.body_codec)
            .map_err(|e| Status::with_cause(Code::BAD_MESSAGE, "Bad Message", format!("the auth credentials: {e}")))?;
        pre.send(&call).await?;
        let reply = pre.receive().await?;
        if !reply.status.is_ok() {
            return Err(reply.status);
        }
        if reply.mtype != MessageType::AuthReply {
            return Err(unexpected(MessageType::AuthReply, reply.mtype));
        }
        match &self.verdict {
            Some(check) => check(reply.body_codec, reply.body),
            None => Ok(()),
        }
    }
}

impl Plugin for Bearer {
    fn name(&self) -> &str {
        "auth-bearer"
    }
    fn observes_writes(&self) -> bool {
        false
    }
    fn post_dial<'a>(&'a self, session: &'a mut PreSession, _is_redial: bool) -> BoxFuture<'a, HookResult> {
        Box::pin(self.authenticate(session))
    }
}

/// What a checker knows about the connection it decides on, and what it may set on the
/// session to be.
#[derive(Clone)]
pub struct AuthInfo {
    /// The session's id so far (the remote address, for accepted connections).
    pub id: String,
    /// The local address.
    pub local_addr: String,
    /// The remote address.
    pub remote_addr: String,
    /// The meta of the AUTH_CALL.
    pub meta: Meta,
    /// The session's storage: what the checker puts here, handlers find.
    pub storage: Storage,
    new_id: Arc<Mutex<Option<String>>>,
}

impl AuthInfo {
    /// Names the session (a user id, say), as Go's handlers do after auth. A session already
    /// under that id is closed, as Go does.
    pub fn set_session_id(&self, id: impl Into<String>) {
        *self.new_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.into());
    }
}

impl std::fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthInfo")
            .field("id", &self.id)
            .field("remote_addr", &self.remote_addr)
            .field("meta", &self.meta)
            .finish()
    }
}

/// The accepting side: reads each connection's credentials, answers with the verdict, and
/// closes connections it refuses.
pub struct Checker {
    check: Check,
    settings: Settings,
}

impl Checker {
    /// A checker deciding with `check`: the credentials decoded as `A` (a body that is not an
    /// `A` is refused with `400`), and what is known of the connection. `Ok(result)` passes
    /// (the result is the AUTH_REPLY's body); `Err(status)` refuses, and the status goes back
    /// to the bearer before the connection closes.
    pub fn new<A, R, F, Fut>(check: F) -> Checker
    where
        A: DecodeBody,
        R: EncodeBody + Send + 'static,
        F: Fn(A, AuthInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Status>> + Send + 'static,
    {
        let check = Arc::new(check);
        Checker {
            check: Box::new(move |codec, body, info| {
                let check = check.clone();
                Box::pin(async move {
                    let credentials = A::decode_body(codec, body).map_err(|e| {
                        Status::with_cause(Code::BAD_MESSAGE, "Bad Message", format!("the auth credentials: {e}"))
                    })?;
                    check(credentials, info)
                        .await
                        .map(|r| Box::new(r) as Box<dyn EncodeBody + Send>)
                })
            }),
            settings: Settings::default(),
        }
    }

    message_settings!("AUTH_REPLY");

    async fn check(&self, pre: &mut PreSession) -> HookResult {
        let call = pre.receive().await?;
        let new_id = Arc::new(Mutex::new(None));
        let verdict = if !call.status.is_ok() {
            Err(call.status)
        } else if call.mtype != MessageType::AuthCall {
            Err(unexpected(MessageType::AuthCall, call.mtype))
        } else {
            let info = AuthInfo {
                id: pre.id().to_string(),
                local_addr: pre.local_addr().to_string(),
                remote_addr: pre.remote_addr().to_string(),
                meta: call.meta,
                storage: pre.storage().clone(),
                new_id: new_id.clone(),
            };
            (self.check)(call.body_codec, call.body, info).await
        };
        let mut reply = self
            .settings
            .message(MessageType::AuthReply, pre.next_seq(), pre.default_codec());
        let passed = match verdict {
            Ok(result) => match result.encode_body(reply.body_codec) {
                Ok(body) => {
                    reply.body = body;
                    Ok(())
                }
                Err(e) => Err(Status::with_cause(
                    Code::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    format!("the auth result cannot be encoded: {e}"),
                )),
            },
            Err(status) => Err(status),
        };
        if let Err(status) = &passed {
            reply.status = status.clone();
        }
        pre.send(&reply).await?;
        passed?;
        if let Some(id) = new_id.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pre.set_id(id);
        }
        Ok(())
    }
}

impl Plugin for Checker {
    fn name(&self) -> &str {
        "auth-checker"
    }
    fn observes_writes(&self) -> bool {
        false
    }
    fn authenticates(&self) -> bool {
        true
    }
    fn post_accept<'a>(&'a self, session: &'a mut PreSession) -> BoxFuture<'a, HookResult> {
        Box::pin(self.check(session))
    }
}

/// Go's status for a first message of the wrong type.
fn unexpected(expected: MessageType, got: MessageType) -> Status {
    Status::with_cause(
        Code::UNAUTHORIZED,
        "Unauthorized",
        format!("auth message(1st) expect: {expected}, but received: {got}"),
    )
}
