//! What a session needs from the rest of its peer, as narrow interfaces.
//!
//! A session knows nothing of routers, plugins or peers. It reaches them through an [`Env`],
//! shared by every session of one peer:
//!
//! - [`Dispatch`]: where received CALLs and PUSHes go (the router implements it);
//! - [`Hooks`]: the session-level plugin hooks (the plugin list implements it);
//! - the [`Registry`] of sessions and the [`Redial`]er, both held weakly: a session never
//!   keeps its peer alive.
//!
//! Nothing in an `Env` refers back to sessions, so ownership runs one way: the peer owns its
//! registry, the registry its sessions, each session its env.

use crate::observe::PeerMetrics;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;

use super::log::RemoteWarnings;
use super::{HandlerGuard, PreSession, Registry, Session};
use crate::config::Settings;
use crate::message::Message;
use crate::proto::Proto;
use crate::status::Status;

/// Handles the CALLs and PUSHes a session receives. Called on the session's reader task: it
/// must not block; it queues replies with [`Session::queue_reply`] and spawns what takes time.
pub(crate) trait Dispatch: Send + Sync + 'static {
    /// A CALL arrived; `guard` counts it as running until dropped.
    fn call(&self, session: &Session, msg: Message, guard: HandlerGuard);
    /// A PUSH arrived; `guard` counts it as running until dropped.
    fn push(&self, session: &Session, msg: Message, guard: HandlerGuard);
}

/// The plugin hooks a session runs itself (the others run in the router and the peer).
/// Implementations catch panics: a hook that panics is an error status, never an unwinding
/// reader.
pub(crate) trait Hooks: Send + Sync + 'static {
    /// Whether any post-write hook exists (else writes are not watched).
    fn observes_writes(&self) -> bool;
    fn pre_write_call(&self, session: &Session, msg: &mut Message) -> Result<(), Status>;
    fn post_write_call(&self, session: &Session, msg: &Message);
    fn pre_write_push(&self, session: &Session, msg: &mut Message) -> Result<(), Status>;
    fn post_write_push(&self, session: &Session, msg: &Message);
    fn pre_read_header(&self, session: &Session) -> Result<(), Status>;
    fn post_read_reply_header(&self, session: &Session, msg: &mut Message) -> Result<(), Status>;
    fn pre_read_reply_body(&self, session: &Session, msg: &mut Message) -> Result<(), Status>;
    fn post_read_reply_body(&self, session: &Session, msg: &Message) -> Result<(), Status>;
    fn post_disconnect(&self, session: &Session);
}

/// Makes a new connection for a client session that lost its own (the peer implements it).
pub(crate) trait Redial: Send + Sync + 'static {
    /// Dials `addr` again, with the peer's attempts, TLS and PostDial hooks.
    fn redial<'a>(
        &'a self,
        session: &'a Session,
        addr: &'a str,
        proto: Arc<dyn Proto>,
    ) -> BoxFuture<'a, Result<PreSession, Status>>;

    /// Dials `addr` again, once (TLS and PostDial hooks included): for a session that moves
    /// while its connection still works.
    fn dial_once<'a>(
        &'a self,
        session: &'a Session,
        addr: &'a str,
        proto: Arc<dyn Proto>,
    ) -> BoxFuture<'a, Result<PreSession, Status>>;
}

/// Everything the sessions of one peer share.
pub(crate) struct Env {
    pub(crate) settings: Settings,
    pub(crate) dispatch: Arc<dyn Dispatch>,
    /// `None` when the peer has no plugins, so the hot path skips hooks with one branch.
    pub(crate) hooks: Option<Arc<dyn Hooks>>,
    pub(crate) registry: Weak<Registry>,
    pub(crate) redial: Option<Weak<dyn Redial>>,
    /// Limits the warnings remote peers cause (see `log::remote_warn!`).
    pub(crate) remote_warnings: RemoteWarnings,
    /// Set when the peer stops listening: a client asked to move would find nobody to take
    /// its new connection, unless a rebooted process (or systemd) holds the listening sockets.
    pub(crate) stopped_listening: AtomicBool,
    /// The peer's metric handles (no-ops without a recorder).
    pub(crate) metrics: PeerMetrics,
}

impl Env {
    /// An env with no peer behind it: no registry, no redial.
    #[cfg(test)]
    pub(crate) fn standalone(settings: Settings, dispatch: Arc<dyn Dispatch>) -> Env {
        Env {
            settings,
            dispatch,
            hooks: None,
            registry: Weak::new(),
            redial: None,
            remote_warnings: RemoteWarnings::default(),
            stopped_listening: AtomicBool::new(false),
            metrics: PeerMetrics::default(),
        }
    }

    /// Whether a client that moves to a new connection finds someone to take it: the peer
    /// still listens, or the listening sockets live on in a rebooted process or in systemd.
    pub(crate) fn new_connections_served(&self) -> bool {
        if !self.stopped_listening.load(std::sync::atomic::Ordering::Acquire) {
            return true;
        }
        #[cfg(unix)]
        return crate::net::handover::successor_listens();
        #[cfg(not(unix))]
        false
    }
}
