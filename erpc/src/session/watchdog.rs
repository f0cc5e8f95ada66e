//! [`Watchdog`]: the reader's time limits — session age, idle timeout (no message read, and
//! nothing written), frame timeout — and the [`Alarm`] the reader waits on for them and for the
//! deadlines of the session's calls.
//!
//! All are checked on one timer that is re-armed lazily: while messages flow, the timer is left
//! where it is and, when it fires early, simply set again to the new due time. A busy session
//! touches the timer about once per limit, not once per read; and the clock is read only when a
//! message completes or a new frame starts.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::config::Settings;
use crate::status::Status;

pub(crate) struct Watchdog {
    /// When the session's age runs out.
    expires: Option<Instant>,
    idle_timeout: Option<Duration>,
    frame_timeout: Option<Duration>,
    last_message: Instant,
    /// Output written by the session when the idle limit was last looked at.
    output_seen: u64,
    /// When the first byte of the frame now partly read arrived.
    frame_started: Option<Instant>,
}

impl Watchdog {
    pub(crate) fn new(settings: &Settings) -> Watchdog {
        let now = Instant::now();
        Watchdog {
            expires: settings.session_age.and_then(|age| now.checked_add(age)),
            idle_timeout: settings.idle_timeout,
            frame_timeout: settings.frame_timeout,
            last_message: now,
            output_seen: 0,
            frame_started: None,
        }
    }

    /// Notes what a decoding pass left: whether it took whole messages, and whether part of a
    /// frame waits in the buffer.
    pub(crate) fn after_decode(&mut self, took_messages: bool, partial_frame: bool) {
        if self.idle_timeout.is_none() && self.frame_timeout.is_none() {
            return;
        }
        if took_messages {
            // The clock is read only for a limit that needs it.
            let now = (self.idle_timeout.is_some() || partial_frame).then(Instant::now);
            if let (Some(now), Some(_)) = (now, self.idle_timeout) {
                self.last_message = now;
            }
            self.frame_started = if partial_frame { now } else { None };
        } else if !partial_frame {
            self.frame_started = None;
        } else if self.frame_started.is_none() {
            self.frame_started = Some(Instant::now());
        }
    }

    /// The earliest time one of the limits may run out (none: no limit applies now).
    pub(crate) fn due(&self) -> Option<Instant> {
        let idle = self.idle_timeout.and_then(|d| self.last_message.checked_add(d));
        let frame = self
            .frame_started
            .zip(self.frame_timeout)
            .and_then(|(started, d)| started.checked_add(d));
        [self.expires, idle, frame].into_iter().flatten().min()
    }

    /// Why the session must close at `now`, if a limit ran out. `output` is the bytes the
    /// session has written so far: a session that wrote since the last look is not idle (a
    /// subscriber receiving pushes), and is looked at again a whole idle limit later. Writes
    /// are noticed only here, so that they need no clock: a session may outlive its last write
    /// by up to twice the limit.
    pub(crate) fn expired(&mut self, now: Instant, output: u64) -> Option<Status> {
        if let (Some(started), Some(limit)) = (self.frame_started, self.frame_timeout)
            && now.saturating_duration_since(started) >= limit
        {
            return Some(Status::conn_closed(format!(
                "a frame was not completed within the frame timeout of {limit:?} (a slow or \
                 stalled sender; raise frame_timeout for very slow links)"
            )));
        }
        if let Some(limit) = self.idle_timeout
            && now.saturating_duration_since(self.last_message) >= limit
        {
            if output != self.output_seen {
                self.output_seen = output;
                self.last_message = now;
                return None;
            }
            return Some(Status::conn_closed(format!(
                "no message read or written for {limit:?}: closed as idle (idle_timeout)"
            )));
        }
        if self.expires.is_some_and(|at| now >= at) {
            return Some(Status::conn_closed("session age expired"));
        }
        None
    }
}

/// One timer, set to the earliest time something is due, and only ever moved earlier (when it
/// rings early, its owner sets it again).
///
/// Awaited beside every read, it costs next to nothing while it waits: the timer is polled once
/// after each setting, which leaves the task's waker with it, and afterwards only asked whether
/// it has elapsed (one load). Polling a `Sleep` on every read would register the waker again
/// each time.
#[derive(Default)]
pub(crate) struct Alarm {
    /// Made the first time something is due (boxed, so a reader that never needs it carries
    /// none), then kept and moved.
    timer: Option<Pin<Box<Sleep>>>,
    /// When it rings; `None` while nothing is due.
    at: Option<Instant>,
    /// Whether the timer was polled since it was last set.
    polled: bool,
}

impl Alarm {
    /// Rings at `due` if that is earlier than now set (or nothing is set).
    pub(crate) fn set(&mut self, due: Option<Instant>) {
        let Some(due) = due else { return };
        if self.at.is_some_and(|at| at <= due) {
            return;
        }
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(due),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(due))),
        }
        self.at = Some(due);
        self.polled = false;
    }

    /// Unsets it (after it rang, or to set it later than it is).
    pub(crate) fn clear(&mut self) {
        self.at = None;
    }
}

impl Future for Alarm {
    type Output = ();

    /// Ready when the set time has come; pending for ever while unset. Must be polled from one
    /// task only (the waker left with the timer is the one of its first poll after a setting).
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let (Some(timer), Some(_)) = (&mut this.timer, this.at) else {
            return Poll::Pending;
        };
        if !this.polled {
            this.polled = true;
            return timer.as_mut().poll(cx);
        }
        if timer.is_elapsed() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PeerConfig;

    fn watchdog(idle: u64, frame: u64) -> Watchdog {
        let config = PeerConfig {
            idle_timeout: Duration::from_secs(idle),
            frame_timeout: Duration::from_secs(frame),
            ..PeerConfig::default()
        };
        Watchdog::new(&Settings::from_config(&config).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_frame_must_complete_in_time() {
        let mut dog = watchdog(0, 10);
        assert_eq!(dog.due(), None, "no frame started, no idle limit: nothing is due");
        dog.after_decode(false, true);
        let due = dog.due().expect("a frame started");
        tokio::time::advance(Duration::from_secs(9)).await;
        dog.after_decode(false, true); // more bytes of the same frame: its start stays
        assert_eq!(dog.due(), Some(due));
        assert!(dog.expired(Instant::now(), 0).is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        let why = dog.expired(Instant::now(), 0).expect("the frame is late");
        assert!(why.to_string().contains("frame timeout"), "{why}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_completed_frame_restarts_the_frame_clock() {
        let mut dog = watchdog(0, 10);
        dog.after_decode(false, true);
        tokio::time::advance(Duration::from_secs(8)).await;
        dog.after_decode(true, true); // one message done, the next begun
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(dog.expired(Instant::now(), 0).is_none());
        dog.after_decode(true, false);
        assert_eq!(dog.due(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_that_writes_is_not_idle() {
        let mut dog = watchdog(60, 0);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(dog.expired(Instant::now(), 500).is_none(), "it wrote: not idle");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(
            dog.due().is_some_and(|due| due > Instant::now()),
            "looked at again later"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(dog.expired(Instant::now(), 500).is_some(), "no more output: idle");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_last_whole_message() {
        let mut dog = watchdog(60, 0);
        tokio::time::advance(Duration::from_secs(50)).await;
        dog.after_decode(true, false);
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(dog.expired(Instant::now(), 0).is_none());
        dog.after_decode(false, true); // bytes that never make a message do not count
        tokio::time::advance(Duration::from_secs(10)).await;
        let why = dog.expired(Instant::now(), 0).expect("idle");
        assert!(why.to_string().contains("idle"), "{why}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_alarm_rings_at_its_earliest_setting() {
        let mut alarm = Alarm::default();
        let unset = Pin::new(&mut alarm).poll(&mut Context::from_waker(std::task::Waker::noop()));
        assert!(unset.is_pending(), "unset, it never rings");
        let start = Instant::now();
        alarm.set(Some(start + Duration::from_secs(10)));
        alarm.set(Some(start + Duration::from_secs(20))); // later: ignored
        alarm.set(Some(start + Duration::from_secs(5))); // earlier: taken
        assert_eq!(alarm.at, Some(start + Duration::from_secs(5)));
        (&mut alarm).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        alarm.clear();
        assert_eq!(alarm.at, None);
        alarm.set(Some(start + Duration::from_secs(8)));
        (&mut alarm).await;
        assert_eq!(start.elapsed(), Duration::from_secs(8));
    }
}
