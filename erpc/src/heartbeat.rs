//! Heartbeats, wire-exact with Go's `heart-ping` and `heart-pong`: the
//! [`Ping`] side sends `/heartbeat` (a CALL, or a PUSH) with meta `hb_` = its rate in whole
//! seconds when a session has been quiet for a rate; the [`Pong`] side answers `null` and
//! closes sessions that have shown no sign of life for two rates. Either side of a
//! connection can ping, and a peer can have both.
//!
//! What counts as life: a CALL or PUSH sent or read (replies do not count), and heartbeats.
//! (Go counts a message once written; counting it when it is queued lets the runtime skip
//! watching every write.)
//! A pinging side closes a session whose heartbeat CALL fails, within one rate (the
//! heartbeat's own timeout; Go waits for the call timeout); a ponging side closes a session
//! that has been silent for two rates, checked every rate.
//!
//! ```no_run
//! use std::time::Duration;
//! use erpc::heartbeat::{Ping, Pong};
//! use erpc::Peer;
//!
//! let server = Peer::builder().with(Pong::new()).build()?;
//! let client = Peer::builder().plugin(Ping::new(Duration::from_secs(5), true)).build()?;
//! # Ok::<(), erpc::Error>(())
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::codec::Raw;
use crate::message::Message;
use crate::peer::{Extension, PeerBuilder};
use crate::plugin::{HookResult, Plugin};
use crate::router::{CallCtx, PushCtx};
use crate::session::{PreSession, Session, Sessions};
use crate::status::{Code, Status};

/// The heartbeat's route.
pub const ROUTE: &str = "/heartbeat";
/// The meta key carrying the pinger's rate in seconds.
pub const RATE_KEY: &str = "hb_";
/// The least rate (Go's): faster ones are raised to it.
pub const MIN_RATE: Duration = Duration::from_secs(3);

const PING_RECORD: &str = "erpc.heartbeat.ping";
const PONG_RECORD: &str = "erpc.heartbeat.pong";

/// When a session last showed life, and (for the pong side) the rate its pinger announced.
#[derive(Default)]
struct Record {
    /// Milliseconds since the plugin's epoch.
    last: AtomicU64,
    rate_secs: AtomicU64,
}

/// A clock in milliseconds since the plugin was made (tokio's, so tests can pause it).
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

fn touch(session: &Session, key: &str, clock: Clock) {
    if session.health()
        && let Some(record) = session.storage().get::<Arc<Record>>(key)
    {
        record.last.store(clock.now(), Ordering::Release);
    }
}

/// The pinging side. A handle: clones share the rate and mode, which can change at run time.
#[derive(Clone)]
pub struct Ping {
    state: Arc<PingState>,
}

struct PingState {
    rate_secs: AtomicU64,
    use_call: AtomicBool,
    clock: Clock,
    started: Mutex<bool>,
}

impl Ping {
    /// Pings every `rate` (at least [`MIN_RATE`], in whole seconds) on quiet sessions, as a
    /// CALL (`use_call`) or a PUSH.
    pub fn new(rate: Duration, use_call: bool) -> Ping {
        let ping = Ping {
            state: Arc::new(PingState {
                rate_secs: AtomicU64::new(0),
                use_call: AtomicBool::new(use_call),
                clock: Clock(Instant::now()),
                started: Mutex::new(false),
            }),
        };
        ping.set_rate(rate);
        ping
    }

    /// Changes the rate (at least [`MIN_RATE`]).
    pub fn set_rate(&self, rate: Duration) {
        self.state
            .rate_secs
            .store(rate.max(MIN_RATE).as_secs(), Ordering::Release);
    }

    /// Switches between CALL and PUSH heartbeats.
    pub fn set_use_call(&self, use_call: bool) {
        self.state.use_call.store(use_call, Ordering::Release);
    }

    /// The rate.
    pub fn rate(&self) -> Duration {
        Duration::from_secs(self.state.rate_secs.load(Ordering::Acquire))
    }

    fn start_record(&self, pre: &PreSession) {
        let record = Record::default();
        record.last.store(self.state.clock.now(), Ordering::Release);
        pre.storage().insert(PING_RECORD, Arc::new(record));
    }

    /// Sends one heartbeat on `session`; closes the session if it fails.
    async fn beat(self, session: Session) {
        let rate = self.rate();
        let secs = rate.as_secs().to_string();
        let result = if self.state.use_call.load(Ordering::Acquire) {
            session
                .call::<_, ()>(ROUTE, &())
                .meta(RATE_KEY, secs)
                .timeout(rate)
                .local_deadline()
                .await
        } else {
            session.push(ROUTE, &()).meta(RATE_KEY, secs).await
        };
        if let Err(status) = result {
            tracing::info!(session = %session.id(), %status, "heartbeat failed; closing the session");
            session.close().await;
        }
    }

    async fn run(self, sessions: Sessions) {
        let mut wait = self.rate();
        loop {
            tokio::time::sleep(wait).await;
            if !sessions.is_peer_alive() {
                return;
            }
            let rate_ms = u64::try_from(self.rate().as_millis()).unwrap_or(u64::MAX);
            let now = self.state.clock.now();
            // Wake again when the next session becomes due, not a whole rate later: a session
            // dialed just after a check is pinged once it has been quiet for one rate.
            let mut next_due = now.saturating_add(rate_ms);
            for session in sessions.all() {
                let Some(record) = session.storage().get::<Arc<Record>>(PING_RECORD) else {
                    continue;
                };
                if !session.health() {
                    continue;
                }
                let due = record.last.load(Ordering::Acquire).saturating_add(rate_ms);
                if due > now {
                    next_due = next_due.min(due);
                    continue;
                }
                tokio::spawn(self.clone().beat(session));
            }
            wait = Duration::from_millis(next_due.saturating_sub(now).max(1));
        }
    }
}

impl Plugin for Ping {
    fn name(&self) -> &str {
        "heart-ping"
    }
    fn observes_writes(&self) -> bool {
        false
    }
    fn post_new_peer(&self, sessions: &Sessions) -> HookResult {
        let mut started = self.state.started.lock().unwrap_or_else(|e| e.into_inner());
        if *started {
            return Err(Status::new(
                Code::INVALID_OP,
                "a Ping is already pinging for another peer; make one per peer",
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Status::new(
                Code::INVALID_OP,
                "the heartbeat needs a tokio runtime to build its peer in",
            )
        })?;
        runtime.spawn(self.clone().run(sessions.clone()));
        *started = true;
        Ok(())
    }
    fn post_dial<'a>(&'a self, session: &'a mut PreSession, _: bool) -> BoxFuture<'a, HookResult> {
        self.start_record(session);
        Box::pin(async { Ok(()) })
    }
    fn post_accept<'a>(&'a self, session: &'a mut PreSession) -> BoxFuture<'a, HookResult> {
        self.start_record(session);
        Box::pin(async { Ok(()) })
    }
    fn pre_write_call(&self, session: &Session, _: &mut Message) -> HookResult {
        touch(session, PING_RECORD, self.state.clock);
        Ok(())
    }
    fn pre_write_push(&self, session: &Session, _: &mut Message) -> HookResult {
        touch(session, PING_RECORD, self.state.clock);
        Ok(())
    }
    fn post_read_call_header(&self, session: &Session, _: &mut Message) -> HookResult {
        touch(session, PING_RECORD, self.state.clock);
        Ok(())
    }
    fn post_read_push_header(&self, session: &Session, _: &mut Message) -> HookResult {
        touch(session, PING_RECORD, self.state.clock);
        Ok(())
    }
}

/// The answering side: the `/heartbeat` routes (CALL and PUSH) and the liveness check. Add it
/// with [`PeerBuilder::with`], which adds both.
#[derive(Clone)]
pub struct Pong {
    state: Arc<PongState>,
}

struct PongState {
    clock: Clock,
    /// The smallest rate any pinger announced, in seconds (0: none yet).
    min_rate_secs: AtomicU64,
}

impl Default for Pong {
    fn default() -> Self {
        Pong::new()
    }
}

impl Pong {
    /// A pong.
    pub fn new() -> Pong {
        Pong {
            state: Arc::new(PongState {
                clock: Clock(Instant::now()),
                min_rate_secs: AtomicU64::new(0),
            }),
        }
    }

    /// Takes a heartbeat: Go's rules for the `hb_` value (missing: 0; not a whole number of
    /// seconds: invalid, refused with `400` on a session's first heartbeat).
    fn beat(&self, session: &Session, rate_text: Option<&str>) -> Result<(), Status> {
        let rate: i64 = match rate_text {
            None | Some("") => 0,
            Some(text) => text.parse::<u64>().map_or(-1, |n| i64::try_from(n).unwrap_or(-1)),
        };
        let record = match session.storage().get::<Arc<Record>>(PONG_RECORD) {
            Some(record) => record,
            None if rate > 0 => {
                let record = Arc::new(Record::default());
                session.storage().insert(PONG_RECORD, record.clone());
                record
            }
            None if rate < 0 => {
                return Err(Status::with_cause(
                    Code::BAD_MESSAGE,
                    "invalid heartbeat rate",
                    rate_text.unwrap_or_default().to_string(),
                ));
            }
            None => return Ok(()),
        };
        if rate > 0 {
            let rate = rate as u64;
            record.rate_secs.store(rate, Ordering::Release);
            let _ = self
                .state
                .min_rate_secs
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |min| {
                    (min == 0 || rate < min).then_some(rate)
                });
        }
        record.last.store(self.state.clock.now(), Ordering::Release);
        Ok(())
    }

    /// Notes life on `session` if it has a pinger (nothing to do before anyone pinged).
    fn touch(&self, session: &Session) {
        if self.state.min_rate_secs.load(Ordering::Acquire) != 0 {
            touch(session, PONG_RECORD, self.state.clock);
        }
    }

    async fn run(self, sessions: Sessions) {
        // Go's first interval: 3 s less a nanosecond; then the smallest rate announced.
        let mut interval = MIN_RATE - Duration::from_nanos(1);
        loop {
            tokio::time::sleep(interval).await;
            if !sessions.is_peer_alive() {
                return;
            }
            let now = self.state.clock.now();
            for session in sessions.all() {
                let Some(record) = session.storage().get::<Arc<Record>>(PONG_RECORD) else {
                    continue;
                };
                let rate_ms = record.rate_secs.load(Ordering::Acquire).saturating_mul(1000);
                if session.health() && record.last.load(Ordering::Acquire).saturating_add(2 * rate_ms) < now {
                    tracing::info!(session = %session.id(), "no heartbeat for two rates; closing the session");
                    tokio::spawn(async move { session.close().await });
                }
            }
            let min = self.state.min_rate_secs.load(Ordering::Acquire);
            if min > 0 {
                interval = Duration::from_secs(min);
            }
        }
    }
}

impl Extension for Pong {
    fn extend(self, builder: PeerBuilder) -> PeerBuilder {
        let (call, push) = (self.clone(), self.clone());
        builder
            .routes(move |router| {
                router.call_at(ROUTE, move |ctx: CallCtx, _: ()| {
                    // Go answers the JSON `null`, not an empty body.
                    let result = call
                        .beat(ctx.session(), ctx.meta_str(RATE_KEY))
                        .map(|()| Raw(Bytes::from_static(b"null")));
                    async move { result }
                });
                router.push_at(ROUTE, move |ctx: PushCtx, _: ()| {
                    let result = push.beat(ctx.session(), ctx.meta_str(RATE_KEY));
                    async move { result }
                });
            })
            .plugin(self)
    }
}

impl Plugin for Pong {
    fn name(&self) -> &str {
        "heart-pong"
    }
    fn observes_writes(&self) -> bool {
        false
    }
    fn post_new_peer(&self, sessions: &Sessions) -> HookResult {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Status::new(
                Code::INVALID_OP,
                "the heartbeat needs a tokio runtime to build its peer in",
            )
        })?;
        runtime.spawn(self.clone().run(sessions.clone()));
        Ok(())
    }
    fn pre_write_call(&self, session: &Session, _: &mut Message) -> HookResult {
        self.touch(session);
        Ok(())
    }
    fn pre_write_push(&self, session: &Session, _: &mut Message) -> HookResult {
        self.touch(session);
        Ok(())
    }
    fn post_read_call_header(&self, session: &Session, message: &mut Message) -> HookResult {
        if message.service_method != ROUTE {
            self.touch(session);
        }
        Ok(())
    }
    fn post_read_push_header(&self, session: &Session, message: &mut Message) -> HookResult {
        if message.service_method != ROUTE {
            self.touch(session);
        }
        Ok(())
    }
}
