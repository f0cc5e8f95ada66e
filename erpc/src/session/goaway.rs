//! GOAWAY: moving a client off a server session that closes gracefully, so that no call is
//! lost to the close.
//!
//! Without it, a call the client writes just as the server closes crosses the close: the
//! server has stopped reading, the connection goes, and the call fails with `102` although the
//! server meant to stop cleanly (a reboot, a deploy). So a closing server session first asks
//! the client to move, with a CALL to the reserved route [`ROUTE`] (an internal exchange: no
//! plugins, no handler):
//!
//! - An erpc client with redial on dials a fresh connection at once, once (to the same address:
//!   after a reboot the new process is already accepting there); if it is up, the client
//!   answers `200` and sends its new calls on it. Once every call it sent on the old connection is answered, it closes the old
//!   one. The server keeps reading and answering on the old connection until that end of
//!   stream (or the shutdown timeout), so every call that crossed the close is answered.
//! - Any other peer answers with an error: a Go peer answers `404` to a route it does not know
//!   (and logs it); an erpc client without redial, or whose new connection fails (a plain
//!   shutdown: nobody listens any more), answers `404` too. The server then closes as
//!   before. The question is bounded by the shutdown timeout like the rest of the close, so a
//!   peer that never answers delays nothing beyond it.
//!
//! A peer that shuts down for good (it stopped listening, and no rebooted process or systemd
//! holds its sockets) does not ask: the client would find nobody to take its new connection.
//!
//! Only the protocols whose clients are eRPC peers ask (raw, json, protobuf): an HTTP or
//! Thrift client would take a CALL from the server for a malformed response. QUIC sessions do
//! not ask: a QUIC listener that stopped accepting does not refuse new connections at once, so
//! the client's new connection would hang until its dial timeout, and after a reboot both
//! processes read the one UDP socket anyway. They close as in Go.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::link::Link;
use super::outbox::with_frame;
use super::pending::Outcome;
use super::{LAST_WRITES, NO_SEQ, OK, Session, Side};
use crate::message::{Message, MessageType};
use crate::net::Conn;
use crate::proto::Proto;
use crate::status::{Code, Status};

/// The reserved route of the GOAWAY exchange. Do not register a handler under it.
pub const ROUTE: &str = "/_erpc/goaway";

/// Protocols whose other end is an eRPC peer that answers calls from the server.
const PROTOCOLS: &[&str] = &["raw", "json", "protobuf"];

/// Whether a session's graceful close asks the client to move: server sessions of the
/// protocols above, on any connection but QUIC.
pub(super) fn asks_to_move(side: Side, proto: &dyn Proto, conn: &Conn) -> bool {
    side == Side::Server && PROTOCOLS.contains(&proto.name()) && !conn.is_quic()
}

impl Session {
    /// Server side, first step of a graceful close: asks the client to move and, if it will,
    /// keeps serving the connection until the client closes it or `deadline` passes. Returns
    /// whether the client moved (closed the connection itself).
    pub(super) async fn let_client_move(&self, deadline: Instant) -> bool {
        if !self.inner.asks_to_move || !self.env().new_connections_served() {
            return false;
        }
        let Some(link) = self.current_link() else {
            return false;
        };
        let (seq, reply) = self.register_call(Some(deadline));
        self.inner.goaway_seq.store(i64::from(seq), Ordering::Release);
        let mut ask = Message::new(MessageType::Call, seq);
        ask.service_method = ROUTE.to_string();
        let queued = with_frame(
            self.proto().as_ref(),
            &ask,
            self.settings().limits.max_message_size,
            |frame| link.outbox.push(frame, false),
        );
        if !matches!(queued, Ok(Ok(_))) {
            return false; // the waiting entry is dropped with `reply`
        }
        link.outbox.kick();
        let moving = matches!(reply.await, Outcome::Reply(answer) if answer.status.is_ok());
        self.inner.goaway_seq.store(NO_SEQ, Ordering::Release);
        if !moving {
            return false;
        }
        tracing::debug!(session = %self.id(), "the client moves to a new connection; serving the old one until it closes it");
        let closed_by_client = self.wait_for(|s| s.current_link().is_none_or(|l| !Arc::ptr_eq(&l, &link)));
        tokio::time::timeout_at(deadline, closed_by_client).await.is_ok()
    }

    /// Client side: the server asked this session to move (a CALL to [`ROUTE`], taken on the
    /// reader of the current link). With redial on, dials once in the background and answers
    /// `200` on the old link if the new connection is up, `404` if not; otherwise answers `404`
    /// at once.
    pub(super) fn on_goaway(&self, ask: &Message) {
        let redial = self.inner.env.redial.as_ref().and_then(|r| r.upgrade());
        let addr = self.inner.dial_addr.clone();
        let link = self.current_link();
        let can_move =
            self.settings().redial_times != 0 && self.state() == OK && !self.inner.moving.swap(true, Ordering::AcqRel);
        let mut answer = Message::new(MessageType::Reply, ask.seq);
        answer.xfer_pipe = ask.xfer_pipe.clone();
        match (redial, addr, link) {
            (Some(redial), Some(addr), Some(old)) if can_move => {
                let session = self.clone();
                tokio::spawn(async move {
                    session.move_to_new_link(redial.as_ref(), &addr, old, answer).await;
                    session.inner.moving.store(false, Ordering::Release);
                });
            }
            _ => {
                if can_move {
                    self.inner.moving.store(false, Ordering::Release);
                }
                self.refuse_to_move(answer, None, "this session does not redial; close as usual");
            }
        }
    }

    /// Answers the GOAWAY with Go's answer to a route it does not know: the server then closes
    /// as usual.
    fn refuse_to_move(&self, mut answer: Message, link: Option<Arc<Link>>, why: &'static str) {
        answer.status = Status::with_cause(Code::NOT_FOUND, "Not Found", why);
        let _ = match link {
            Some(link) => self.queue_reply_on(link, &answer, false),
            None => self.queue_reply(&answer, true),
        };
    }

    /// Dials a new connection (once); if it is up, answers `200` on `old`, sends new calls on
    /// the new one, and closes `old` once the calls sent on it are answered (bounded by the
    /// shutdown timeout).
    async fn move_to_new_link(&self, redial: &dyn super::Redial, addr: &str, old: Arc<Link>, mut answer: Message) {
        let pre = match redial.dial_once(self, addr, self.proto().clone()).await {
            Ok(pre) => pre,
            Err(status) => {
                // Nowhere to go (a plain shutdown: nobody listens any more): the server closes
                // as usual, and the ordinary redial takes over when it does.
                tracing::debug!(session = %self.id(), %status, "the server asked to move, but no new connection could be made");
                self.refuse_to_move(answer, Some(old), "no new connection could be made");
                return;
            }
        };
        answer.status = Status::OK;
        if self.queue_reply_on(old.clone(), &answer, false).is_err() || !self.adopt(pre, Some(&old)) {
            return; // closed, or the old link was lost meanwhile (the ordinary redial runs)
        }
        tracing::info!(session = %self.id(), "moved to a new connection (the server is going away)");
        // Calls registered before the switch may have gone out on the old link: wait for their
        // replies, which the server still sends there.
        let before = self.pending().seqs();
        let deadline = Instant::now() + self.settings().shutdown_timeout;
        let answered = self.pending().settled(&before);
        if tokio::time::timeout_at(deadline, answered).await.is_err() {
            tracing::debug!(session = %self.id(), "calls on the old connection still unanswered; closing it anyway");
        }
        old.shutdown(LAST_WRITES).await;
    }
}
