//! The `overloader` plugin: a cap on sessions and token buckets on the
//! calls and pushes a peer takes per second, in total and per route, all changeable at run
//! time through a handle the user keeps.
//!
//! On the wire it is Go's: a session over the cap is closed at once (the other end sees the
//! connection close), a CALL over a bucket is answered `500 qps overload, total_limit=<L>` (or
//! `handler_limit=<L>`), a PUSH over a bucket is dropped. Without Go's bugs: a refused
//! connection does not raise the cap (Go releases a slot it never took), a route limit of 0
//! means no limit (Go's rejects every request to that route), and a refill period outside
//! (0, 1 s] is refused by [`Overloader::update`] instead of dividing by zero.
//!
//! For caps enforced before a connection's first byte (and per remote IP), use
//! `PeerConfig::max_sessions` / `max_sessions_per_ip`; this plugin counts sessions after
//! their handshake, dialed ones included, and its cap can change while the peer runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{HookResult, Plugin};
use crate::message::Message;
use crate::session::{PreSession, Session};
use crate::status::{Code, Status};

/// The storage key under which a session holds its slot.
const SLOT_KEY: &str = "erpc.overloader.slot";

/// The overloader's limits. Zero means no limit everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OverloaderConfig {
    /// Most sessions at once, accepted and dialed (Go's `MaxConn`).
    pub max_sessions: usize,
    /// How often the buckets refill, in (0, 1 s] (Go's `QPSInterval`).
    #[serde(with = "crate::config::duration")]
    pub qps_interval: Duration,
    /// Calls and pushes per second, all routes together (Go's `MaxTotalQPS`).
    pub max_total_qps: u32,
    /// Calls and pushes per second per route, by service method (Go's `MaxHandlerQPS`).
    pub max_route_qps: HashMap<String, u32>,
}

impl Default for OverloaderConfig {
    fn default() -> Self {
        OverloaderConfig {
            max_sessions: 0,
            qps_interval: Duration::from_millis(100),
            max_total_qps: 0,
            max_route_qps: HashMap::new(),
        }
    }
}

/// The plugin. Clone it before adding it to a peer to keep a handle for [`update`]
/// (`Overloader` is a handle: clones share their limits and counts).
///
/// [`update`]: Overloader::update
#[derive(Clone)]
pub struct Overloader {
    state: Arc<State>,
}

struct State {
    config: RwLock<OverloaderConfig>,
    sessions: AtomicUsize,
    total: Mutex<Option<Bucket>>,
    routes: RwLock<HashMap<String, Mutex<Bucket>>>,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[error("overloader: qps_interval must be more than 0 and at most 1s, not {0:?}")]
pub struct BadInterval(pub Duration);

impl Overloader {
    /// An overloader with these limits.
    pub fn new(config: OverloaderConfig) -> Result<Overloader, BadInterval> {
        let overloader = Overloader {
            state: Arc::new(State {
                config: RwLock::new(OverloaderConfig::default()),
                sessions: AtomicUsize::new(0),
                total: Mutex::new(None),
                routes: RwLock::new(HashMap::new()),
            }),
        };
        overloader.update(config)?;
        Ok(overloader)
    }

    /// Replaces the limits while the peer runs. Buckets whose limit changed start full; the
    /// others keep their tokens. Sessions above a lowered cap are not closed; new ones wait
    /// for the count to drop.
    pub fn update(&self, config: OverloaderConfig) -> Result<(), BadInterval> {
        let interval = config.qps_interval;
        if interval.is_zero() || interval > Duration::from_secs(1) {
            return Err(BadInterval(interval));
        }
        let state = &self.state;
        {
            let mut total = lock(&state.total);
            if total.as_ref().map(|b| (b.limit, b.interval)) != Some((config.max_total_qps, interval)) {
                *total = (config.max_total_qps > 0).then(|| Bucket::new(config.max_total_qps, interval));
            }
        }
        {
            let mut routes = state.routes.write().unwrap_or_else(|e| e.into_inner());
            routes.retain(|route, bucket| {
                let bucket = lock(bucket);
                config.max_route_qps.get(route) == Some(&bucket.limit) && bucket.interval == interval
            });
            for (route, &limit) in &config.max_route_qps {
                if limit > 0 && !routes.contains_key(route) {
                    routes.insert(route.clone(), Mutex::new(Bucket::new(limit, interval)));
                }
            }
        }
        *state.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// The limits in force.
    pub fn config(&self) -> OverloaderConfig {
        self.state.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sessions counted now.
    pub fn sessions(&self) -> usize {
        self.state.sessions.load(Ordering::Acquire)
    }

    /// Takes a session slot, stored in the session so that it is given back when the session
    /// closes — or when the connection never becomes a session.
    fn take_slot(&self, pre: &PreSession) -> HookResult {
        let limit = self.config().max_sessions;
        let taken = self
            .state
            .sessions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (limit == 0 || now < limit).then_some(now + 1)
            });
        match taken {
            Ok(_) => {
                pre.storage().insert(SLOT_KEY, Slot(self.state.clone()));
                Ok(())
            }
            Err(now) => Err(Status::new(
                500,
                format!("connection overload, limit={limit}, now={now}"),
            )),
        }
    }

    /// Takes a token for `service_method` from the total bucket, then from its route's.
    fn take_token(&self, service_method: &str) -> HookResult {
        let now = Instant::now();
        if let Some(total) = lock(&self.state.total).as_mut()
            && !total.take(now)
        {
            return Err(Status::new(
                Code::INTERNAL_SERVER_ERROR,
                format!("qps overload, total_limit={}", total.limit),
            ));
        }
        let routes = self.state.routes.read().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = routes.get(service_method) {
            let mut bucket = lock(bucket);
            if !bucket.take(now) {
                return Err(Status::new(
                    Code::INTERNAL_SERVER_ERROR,
                    format!("qps overload, handler_limit={}", bucket.limit),
                ));
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Overloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overloader")
            .field("config", &self.config())
            .field("sessions", &self.sessions())
            .finish()
    }
}

impl Plugin for Overloader {
    fn name(&self) -> &str {
        "overloader"
    }
    fn observes_writes(&self) -> bool {
        false
    }
    fn post_dial<'a>(&'a self, session: &'a mut PreSession, is_redial: bool) -> BoxFuture<'a, HookResult> {
        // A redial keeps the slot its session took on the first dial.
        Box::pin(async move { if is_redial { Ok(()) } else { self.take_slot(session) } })
    }
    fn post_accept<'a>(&'a self, session: &'a mut PreSession) -> BoxFuture<'a, HookResult> {
        Box::pin(async move { self.take_slot(session) })
    }
    fn post_disconnect(&self, session: &Session) -> HookResult {
        // Give the slot back now, not when the last handle on the session is dropped.
        session.storage().remove(SLOT_KEY);
        Ok(())
    }
    fn post_read_call_header(&self, _: &Session, message: &mut Message) -> HookResult {
        self.take_token(&message.service_method)
    }
    fn post_read_push_header(&self, _: &Session, message: &mut Message) -> HookResult {
        self.take_token(&message.service_method)
    }
}

/// A session's slot; dropping it gives the slot back.
struct Slot(Arc<State>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Go's token bucket: full at the start, `once = max(1, limit / (1 s / interval))` tokens more
/// every interval, never above `limit`. Refilled when a token is taken, for the intervals
/// passed since the last refill, so no task ticks for it.
struct Bucket {
    limit: u32,
    interval: Duration,
    once: u64,
    tokens: u64,
    refilled: Instant,
}

impl Bucket {
    fn new(limit: u32, interval: Duration) -> Bucket {
        let per_second = (Duration::from_secs(1).as_nanos() / interval.as_nanos().max(1)).max(1) as u64;
        Bucket {
            limit,
            interval,
            once: (u64::from(limit) / per_second).max(1),
            tokens: u64::from(limit),
            refilled: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let passed = now.saturating_duration_since(self.refilled).as_nanos() / self.interval.as_nanos().max(1);
        if passed > 0 {
            let passed = u64::try_from(passed).unwrap_or(u64::MAX);
            self.tokens = self
                .tokens
                .saturating_add(passed.saturating_mul(self.once))
                .min(u64::from(self.limit));
            self.refilled += self.interval * u32::try_from(passed).unwrap_or(u32::MAX);
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_starts_full_and_refills_per_interval_up_to_its_limit() {
        // 10 per second refilled every 100 ms: one token per interval.
        let mut bucket = Bucket::new(10, Duration::from_millis(100));
        let now = Instant::now();
        assert_eq!((0..15).filter(|_| bucket.take(now)).count(), 10);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!((0..5).filter(|_| bucket.take(Instant::now())).count(), 2);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            (0..50).filter(|_| bucket.take(Instant::now())).count(),
            10,
            "capped at the limit"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_limit_still_gains_one_token_per_interval() {
        // Go: once = max(1, 2 / 10) = 1.
        let mut bucket = Bucket::new(2, Duration::from_millis(100));
        assert!(bucket.take(Instant::now()) && bucket.take(Instant::now()));
        assert!(!bucket.take(Instant::now()));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(bucket.take(Instant::now()));
        assert!(!bucket.take(Instant::now()));
    }

    #[test]
    fn refill_periods_outside_go_s_range_are_refused() {
        for bad in [Duration::ZERO, Duration::from_millis(1001)] {
            let config = OverloaderConfig {
                qps_interval: bad,
                ..OverloaderConfig::default()
            };
            assert!(Overloader::new(config).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_route_limit_of_zero_means_no_limit() {
        let config = OverloaderConfig {
            max_route_qps: [("/a".to_string(), 0), ("/b".to_string(), 1)].into(),
            ..OverloaderConfig::default()
        };
        let overloader = Overloader::new(config).unwrap();
        assert!((0..100).all(|_| overloader.take_token("/a").is_ok()));
        assert!(overloader.take_token("/b").is_ok());
        let refused = overloader.take_token("/b").unwrap_err();
        assert_eq!(
            refused.to_string(),
            Status::new(500, "qps overload, handler_limit=1").to_string()
        );
    }
}
