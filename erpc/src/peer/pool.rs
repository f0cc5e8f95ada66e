//! [`Pool`]: sessions to one address, shared by many callers (Go's `multiclient`), with
//! the call and push API of a [`Session`].
//!
//! Each call or push hires the healthy session with the fewest calls in flight; a new session
//! is dialed when none is idle and the pool is below its size. Sessions that are unhealthy, or
//! idle longer than `max_idle`, are closed and dropped when a hire looks at them and by a sweep
//! every `max_idle`. A hire that cannot get a session ends the call at once with `100 Wrong
//! Connection` and the reason (Go's `AsyncCall` blocks forever there).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Peer;
use crate::codec::EncodeBody;
use crate::config::Settings;
use crate::proto::Proto;
use crate::session::{Call, Hire, Push, Session};
use crate::status::{Code, Status};

/// A pool's limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolConfig {
    /// Most sessions at once (Go's default: 64).
    pub max_sessions: usize,
    /// A session idle this long is closed (Go's default: 3 minutes).
    #[serde(with = "crate::config::duration")]
    pub max_idle: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_sessions: 64,
            max_idle: Duration::from_secs(180),
        }
    }
}

/// What a pool is doing (Go's `Stats()`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Sessions held.
    pub sessions: usize,
    /// Sessions with no call in flight.
    pub idle: usize,
    /// Sessions dialed since the pool was made.
    pub created: u64,
    /// Calls in flight, all sessions together.
    pub in_flight: usize,
    /// Calls and pushes sent through the pool.
    pub sent: u64,
    /// The most and fewest calls in flight on one session.
    pub max_load: usize,
    /// See `max_load`.
    pub min_load: usize,
}

/// A pool of sessions to one address. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    peer: Peer,
    addr: String,
    proto: Option<Arc<dyn Proto>>,
    config: PoolConfig,
    sessions: Mutex<Vec<Held>>,
    /// Dials under way, counted toward the size so concurrent hires do not overshoot it.
    dialing: AtomicUsize,
    /// Told whenever a dial ends, for hires waiting for a slot.
    dial_ended: Notify,
    closed: AtomicBool,
    created: AtomicU64,
    sent: AtomicU64,
}

struct Held {
    session: Session,
    last_used: Instant,
}

impl Pool {
    /// A pool of sessions `peer` dials to `addr` (with the peer's protocol).
    pub fn new(peer: &Peer, addr: impl Into<String>, config: PoolConfig) -> Pool {
        Pool::build(peer, addr.into(), None, config)
    }

    /// [`new`](Self::new) with another protocol.
    pub fn with_proto(peer: &Peer, addr: impl Into<String>, proto: Arc<dyn Proto>, config: PoolConfig) -> Pool {
        Pool::build(peer, addr.into(), Some(proto), config)
    }

    fn build(peer: &Peer, addr: String, proto: Option<Arc<dyn Proto>>, mut config: PoolConfig) -> Pool {
        let defaults = PoolConfig::default();
        if config.max_sessions == 0 {
            config.max_sessions = defaults.max_sessions;
        }
        if config.max_idle.is_zero() {
            config.max_idle = defaults.max_idle;
        }
        let inner = Arc::new(Inner {
            peer: peer.clone(),
            addr,
            proto,
            config,
            sessions: Mutex::new(Vec::new()),
            dialing: AtomicUsize::new(0),
            dial_ended: Notify::new(),
            closed: AtomicBool::new(false),
            created: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep(Arc::downgrade(&inner), inner.config.max_idle));
        }
        Pool { inner }
    }

    /// Starts a CALL on a hired session; the same builder as [`Session::call`].
    pub fn call<'a, A: EncodeBody + ?Sized, R>(&self, service_method: &'a str, args: &'a A) -> Call<'a, A, R> {
        Call::on_pool(self.inner.clone(), service_method, args)
    }

    /// Starts a PUSH on a hired session; the same builder as [`Session::push`].
    pub fn push<'a, A: EncodeBody + ?Sized>(&self, service_method: &'a str, args: &'a A) -> Push<'a, A> {
        Push::on_pool(self.inner.clone(), service_method, args)
    }

    /// The pool as a target of calls and pushes.
    pub(crate) fn hirer(&self) -> Arc<dyn Hire> {
        self.inner.clone()
    }

    /// A session for one exchange: the least busy healthy one, or a new one.
    ///
    /// Fails with a [`Status`], like the calls the pool makes: `100 Wrong Connection` with the
    /// reason (a failed dial's status as text). It is the status every call through the pool
    /// ends with when no session can be had; `?` turns it into an [`Error`](crate::Error).
    pub async fn hire(&self) -> Result<Session, Status> {
        self.inner.hire_session().await
    }

    /// What the pool is doing.
    pub fn stats(&self) -> PoolStats {
        let sessions = self.inner.lock();
        let loads: Vec<usize> = sessions.iter().map(|h| h.session.pending_calls()).collect();
        PoolStats {
            sessions: sessions.len(),
            idle: loads.iter().filter(|&&n| n == 0).count(),
            created: self.inner.created.load(Ordering::Acquire),
            in_flight: loads.iter().sum(),
            sent: self.inner.sent.load(Ordering::Acquire),
            max_load: loads.iter().copied().max().unwrap_or(0),
            min_load: loads.iter().copied().min().unwrap_or(0),
        }
    }

    /// Hires no more, then closes every session; each close waits for its calls in flight
    /// (up to the peer's shutdown timeout).
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let sessions: Vec<Session> = self.inner.lock().drain(..).map(|h| h.session).collect();
        futures_util::future::join_all(sessions.iter().map(Session::close)).await;
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("addr", &self.inner.addr)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wrong_connection(cause: impl Into<String>) -> Status {
        Status::with_cause(Code::WRONG_CONN, "Wrong Connection", cause.into())
    }

    /// Drops unhealthy sessions and those idle too long (closing them).
    fn prune(&self, sessions: &mut Vec<Held>, now: Instant) {
        let max_idle = self.config.max_idle;
        sessions.retain(|held| {
            let idle_too_long =
                held.session.pending_calls() == 0 && now.saturating_duration_since(held.last_used) >= max_idle;
            let keep = held.session.health() && !idle_too_long;
            if !keep {
                let session = held.session.clone();
                tokio::spawn(async move { session.close().await });
            }
            keep
        });
    }

    async fn hire_session(&self) -> Result<Session, Status> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(Self::wrong_connection("the pool is closed"));
            }
            // Registered before looking, so a dial that ends in between is not missed.
            let dial_ended = self.dial_ended.notified();
            tokio::pin!(dial_ended);
            dial_ended.as_mut().enable();
            let took_slot = {
                let now = Instant::now();
                let mut sessions = self.lock();
                self.prune(&mut sessions, now);
                let room = sessions.len() + self.dialing.load(Ordering::Acquire) < self.config.max_sessions;
                // The least busy session, unless it is busy and there is room for a new one.
                if let Some(held) = sessions
                    .iter_mut()
                    .min_by_key(|h| h.session.pending_calls())
                    .filter(|held| held.session.pending_calls() == 0 || !room)
                {
                    held.last_used = now;
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(held.session.clone());
                }
                if room {
                    self.dialing.fetch_add(1, Ordering::AcqRel);
                }
                room
            };
            if !took_slot {
                // Every slot is a dial under way: wait for one to end, then look again.
                dial_ended.await;
                continue;
            }
            return self.dial().await;
        }
    }

    /// Dials one session into the pool (a slot is counted in `dialing`).
    async fn dial(&self) -> Result<Session, Status> {
        let dialed = match &self.proto {
            Some(proto) => self.peer.dial_with(&self.addr, proto.clone()).await,
            None => self.peer.dial(&self.addr).await,
        };
        let session = match dialed {
            Ok(session) if !self.closed.load(Ordering::Acquire) => {
                self.created.fetch_add(1, Ordering::Relaxed);
                self.sent.fetch_add(1, Ordering::Relaxed);
                self.lock().push(Held {
                    session: session.clone(),
                    last_used: Instant::now(),
                });
                Ok(session)
            }
            Ok(session) => {
                session.close().await;
                Err(Self::wrong_connection("the pool is closed"))
            }
            Err(status) => Err(Self::wrong_connection(status.to_string())),
        };
        self.dialing.fetch_sub(1, Ordering::AcqRel);
        self.dial_ended.notify_waiters();
        session
    }
}

impl Hire for Inner {
    fn hire(&self) -> BoxFuture<'_, Result<Session, Status>> {
        Box::pin(self.hire_session())
    }
    fn settings(&self) -> &Settings {
        &self.peer.inner.env.settings
    }
}

/// Closes idle and unhealthy sessions every `every`, while the pool lives.
async fn sweep(pool: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else { return };
        if pool.closed.load(Ordering::Acquire) {
            return;
        }
        let mut sessions = pool.lock();
        pool.prune(&mut sessions, Instant::now());
    }
}
