//! Plugins: code that runs at the 24 hook points of a peer's life.
//!
//! A [`Plugin`] implements any subset of the hooks; the others default to doing nothing.
//! Plugins attach to the peer (every hook) or to a route group (the hooks that run for a matched
//! handler: `post_reg`, `pre_read_call_body`, `post_read_call_body`, `pre_write_reply`,
//! `post_write_reply`, `pre_read_push_body`, `post_read_push_body`). Hooks run in order, peer
//! plugins first, then the group's, and the first error stops the chain; what an error does
//! depends on the hook, as in Go (see each method).

mod auth;
mod ignorecase;
mod overloader;
#[cfg(feature = "secure")]
mod secure;

pub use auth::{AuthInfo, Bearer, Checker};
pub use ignorecase::IgnoreCase;
pub use overloader::{BadInterval, Overloader, OverloaderConfig};
#[cfg(feature = "secure")]
#[cfg_attr(docsrs, doc(cfg(feature = "secure")))]
pub use secure::{ACCEPT_SECURE_KEY, SECURE_KEY, Secure, SecureKeyError, SecureMode};

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::config::PeerConfig;
use crate::message::Message;
use crate::session::{Hooks, PreSession, Session, Sessions};
use crate::status::Status;

/// Whether a handler answers CALLs or PUSHes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandlerKind {
    /// A CALL handler.
    Call,
    /// A PUSH handler.
    Push,
}

/// What plugins learn about a registered handler (`post_reg`).
#[derive(Clone, Debug)]
pub struct HandlerInfo {
    /// The route.
    pub name: String,
    /// CALL or PUSH.
    pub kind: HandlerKind,
    /// Whether it is the fallback for unknown routes.
    pub unknown: bool,
    /// The Rust type of the argument.
    pub arg_type: &'static str,
}

/// What a hook returns: `Ok(())` to go on, or a status that stops the chain.
pub type HookResult = Result<(), Status>;

/// A plugin. Every hook has a default that does nothing; implement the ones you need.
#[allow(unused_variables)]
pub trait Plugin: Send + Sync + 'static {
    /// A unique name within the peer (used in logs and to reject duplicates).
    fn name(&self) -> &str;

    /// Whether this plugin implements a post-write hook (`post_write_call`,
    /// `post_write_reply`, `post_write_push`). Those run once the message is on the socket,
    /// so the runtime watches each write for them (for replies, a task each); a peer none of
    /// whose plugins observe writes skips that. Return `false` if you implement none of them.
    fn observes_writes(&self) -> bool {
        true
    }

    /// Whether this plugin authenticates connections in PostAccept (the auth [`Checker`]):
    /// such plugins run before all others, so no other plugin sees a connection before it is
    /// authenticated.
    fn authenticates(&self) -> bool {
        false
    }

    /// Before the peer is built; may change the config. An error stops `build()`.
    fn pre_new_peer(&self, config: &mut PeerConfig) -> HookResult {
        Ok(())
    }
    /// After the peer is built, with a handle on its sessions (keep it to range over them
    /// later: it does not keep the peer alive). An error stops `build()`.
    fn post_new_peer(&self, sessions: &Sessions) -> HookResult {
        Ok(())
    }
    /// For each registered handler. An error stops `build()`.
    fn post_reg(&self, handler: &HandlerInfo) -> HookResult {
        Ok(())
    }
    /// When a listener is ready. An error stops `listen()`.
    fn post_listen(&self, addr: &str) -> HookResult {
        Ok(())
    }
    /// Before each dial and redial. An error is returned by `dial()` / fails the redial.
    fn pre_dial(&self, local_addr: &str, remote_addr: &str) -> HookResult {
        Ok(())
    }
    /// After each connection is made by dialing, before the session starts; may exchange
    /// messages with [`PreSession`] (authentication). An error closes that connection and
    /// counts as a failed attempt.
    fn post_dial<'a>(&'a self, session: &'a mut PreSession, is_redial: bool) -> BoxFuture<'a, HookResult> {
        Box::pin(async { Ok(()) })
    }
    /// After a connection is accepted (and its TLS handshake done), before the session
    /// starts. An error closes the connection.
    fn post_accept<'a>(&'a self, session: &'a mut PreSession) -> BoxFuture<'a, HookResult> {
        Box::pin(async { Ok(()) })
    }
    /// Before a CALL is written; may change it. An error fails the call with that status.
    fn pre_write_call(&self, session: &Session, message: &mut Message) -> HookResult {
        Ok(())
    }
    /// After a CALL is written. Errors are logged.
    fn post_write_call(&self, session: &Session, message: &Message) -> HookResult {
        Ok(())
    }
    /// Before a REPLY is written; may change it. Errors are logged; the reply is still sent.
    fn pre_write_reply(&self, session: &Session, message: &mut Message) -> HookResult {
        Ok(())
    }
    /// After a REPLY is written. Errors are logged.
    fn post_write_reply(&self, session: &Session, message: &Message) -> HookResult {
        Ok(())
    }
    /// Before a PUSH is written; may change it. An error is returned by `push()`.
    fn pre_write_push(&self, session: &Session, message: &mut Message) -> HookResult {
        Ok(())
    }
    /// After a PUSH is written. Errors are logged.
    fn post_write_push(&self, session: &Session, message: &Message) -> HookResult {
        Ok(())
    }
    /// Before each message is read. An error closes the session.
    fn pre_read_header(&self, session: &Session) -> HookResult {
        Ok(())
    }
    /// After a CALL's header is read, before the route lookup; may change the message (the
    /// service method, for instance). An error is the reply.
    fn post_read_call_header(&self, session: &Session, message: &mut Message) -> HookResult {
        Ok(())
    }
    /// Before a CALL's body is decoded. An error is the reply.
    fn pre_read_call_body(&self, session: &Session, message: &mut Message) -> HookResult {
        Ok(())
    }
    /// After a CALL's body is decoded, before the handler. An error is the reply.
    fn post_read_call_body(&self, session: &Session, message: &Message) -> HookResult {
        Ok(())
    }
    /// After a PUSH's header is read. An error drops the push (logged).
    fn post_read_push_header(&self, session: &Session, message: &mut Message) -> HookResult {
        Ok(())
    }
    /// Before a PUSH's body is decoded. An error drops the push (logged).
    fn pre_read_push_body(&self, session: &Session, message: &mut Message) -> HookResult {
        Ok(())
    }
    /// After a PUSH's body is decoded. An error skips the handler silently.
    fn post_read_push_body(&self, session: &Session, message: &Message) -> HookResult {
        Ok(())
    }
    /// After a REPLY's header is read. An error becomes the call's status.
    fn post_read_reply_header(&self, session: &Session, message: &mut Message) -> HookResult {
        Ok(())
    }
    /// Before a REPLY's body is decoded. An error becomes the call's status.
    fn pre_read_reply_body(&self, session: &Session, message: &mut Message) -> HookResult {
        Ok(())
    }
    /// After a REPLY's body is decoded (only when the reply's status is OK). An error becomes
    /// the call's status.
    fn post_read_reply_body(&self, session: &Session, message: &Message) -> HookResult {
        Ok(())
    }
    /// Once after a session is closed. Errors are logged.
    fn post_disconnect(&self, session: &Session) -> HookResult {
        Ok(())
    }
}

/// An ordered list of plugins; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Plugins {
    list: Arc<[Arc<dyn Plugin>]>,
    /// Whether any plugin has a post-write hook.
    observes_writes: bool,
}

impl Plugins {
    /// A list, authenticating plugins first (otherwise in the order given); fails on a
    /// duplicate name.
    pub(crate) fn new(mut list: Vec<Arc<dyn Plugin>>) -> Result<Self, Status> {
        list.sort_by_key(|p| !p.authenticates());
        for (i, p) in list.iter().enumerate() {
            if list[..i].iter().any(|q| q.name() == p.name()) {
                return Err(Status::new(
                    crate::status::Code::INVALID_OP,
                    format!("plugin name {:?} is used twice; plugin names must be unique", p.name()),
                ));
            }
        }
        let observes_writes = list.iter().any(|p| p.observes_writes());
        Ok(Plugins {
            list: list.into(),
            observes_writes,
        })
    }

    /// This list followed by `more`; fails on a duplicate name.
    pub(crate) fn with(&self, more: &[Arc<dyn Plugin>]) -> Result<Self, Status> {
        if more.is_empty() {
            return Ok(self.clone());
        }
        Plugins::new(self.list.iter().chain(more).cloned().collect())
    }

    /// The plugins in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Plugin>> {
        self.list.iter()
    }

    /// Whether any plugin has a post-write hook (else writes are not watched).
    pub(crate) fn observes_writes(&self) -> bool {
        self.observes_writes
    }

    /// Whether the list is empty (lets the hot path skip hook loops).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Runs `hook` on each plugin until one fails; the failure is returned. A hook that panics
    /// fails with `500`, naming the plugin and the hook.
    pub(crate) fn run(&self, hook_name: &str, mut hook: impl FnMut(&dyn Plugin) -> HookResult) -> HookResult {
        for plugin in self.list.iter() {
            guarded(plugin.as_ref(), hook_name, &mut hook)?;
        }
        Ok(())
    }

    /// Runs `hook` on each plugin and logs failures, for hooks whose errors change nothing.
    pub(crate) fn run_logged(&self, hook_name: &str, mut hook: impl FnMut(&dyn Plugin) -> HookResult) {
        for plugin in self.list.iter() {
            if let Err(status) = guarded(plugin.as_ref(), hook_name, &mut hook) {
                tracing::warn!(plugin = plugin.name(), hook = hook_name, %status, "plugin hook failed");
            }
        }
    }
}

/// Runs one async hook (PostDial, PostAccept) of one plugin, turning a panic into a `500`
/// status like [`Plugins::run`].
pub(crate) async fn guarded_async<'a>(
    plugin: &'a dyn Plugin,
    hook_name: &str,
    start: impl FnOnce() -> BoxFuture<'a, HookResult>,
) -> HookResult {
    let result = match std::panic::catch_unwind(AssertUnwindSafe(start)) {
        Ok(running) => AssertUnwindSafe(running).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    result.unwrap_or_else(|panic| Err(panicked(plugin, hook_name, &*panic)))
}

/// Runs one hook of one plugin, turning a panic into a `500` status.
fn guarded(plugin: &dyn Plugin, hook_name: &str, hook: &mut impl FnMut(&dyn Plugin) -> HookResult) -> HookResult {
    std::panic::catch_unwind(AssertUnwindSafe(|| hook(plugin)))
        .unwrap_or_else(|panic| Err(panicked(plugin, hook_name, &*panic)))
}

fn panicked(plugin: &dyn Plugin, hook_name: &str, panic: &(dyn Any + Send)) -> Status {
    let text = crate::status::panic_text(panic);
    tracing::error!(plugin = plugin.name(), hook = hook_name, panic = %text, "plugin hook panicked");
    Status::internal(format!("plugin {:?} panicked in {hook_name}: {text}", plugin.name()))
}

/// The peer's plugins run the hooks sessions run themselves.
impl Hooks for Plugins {
    fn observes_writes(&self) -> bool {
        self.observes_writes
    }
    fn pre_write_call(&self, session: &Session, msg: &mut Message) -> HookResult {
        self.run("pre_write_call", |p| p.pre_write_call(session, msg))
    }
    fn post_write_call(&self, session: &Session, msg: &Message) {
        self.run_logged("post_write_call", |p| p.post_write_call(session, msg));
    }
    fn pre_write_push(&self, session: &Session, msg: &mut Message) -> HookResult {
        self.run("pre_write_push", |p| p.pre_write_push(session, msg))
    }
    fn post_write_push(&self, session: &Session, msg: &Message) {
        self.run_logged("post_write_push", |p| p.post_write_push(session, msg));
    }
    fn pre_read_header(&self, session: &Session) -> HookResult {
        self.run("pre_read_header", |p| p.pre_read_header(session))
    }
    fn post_read_reply_header(&self, session: &Session, msg: &mut Message) -> HookResult {
        self.run("post_read_reply_header", |p| p.post_read_reply_header(session, msg))
    }
    fn pre_read_reply_body(&self, session: &Session, msg: &mut Message) -> HookResult {
        self.run("pre_read_reply_body", |p| p.pre_read_reply_body(session, msg))
    }
    fn post_read_reply_body(&self, session: &Session, msg: &Message) -> HookResult {
        self.run("post_read_reply_body", |p| p.post_read_reply_body(session, msg))
    }
    fn post_disconnect(&self, session: &Session) {
        self.run_logged("post_disconnect", |p| p.post_disconnect(session));
    }
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.list.iter().map(|p| p.name())).finish()
    }
}
