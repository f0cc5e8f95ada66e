//! Per-message logging through `tracing`.
//!
//! Each handled or sent message gives one event on target `erpc::msg` in Go's shape,
//! `CALL<- 127.0.0.1:5050 1.2ms "/math/add" RECV(…) SEND(…)`. With `print_detail` the
//! parts show meta and body; with `count_time` the cost is measured, and a message slower
//! than `slow_comet_duration` is logged at WARN with `(slow)`. Others are logged at DEBUG
//! (Go uses INFO; per-message lines at INFO would drown a busy server's logs and cost CPU).
//!
//! Warnings a remote peer can cause at will (a push to a route that does not exist, a bad
//! frame…) go through [`remote_warn!`] and the peer's [`RemoteWarnings`]: a burst is logged,
//! the rest are counted and summarised in one line per window, so no client can flood the log.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Session;
use crate::config::Settings;
use crate::message::Message;
use crate::meta;
use crate::status::Status;

fn level_for(settings: &Settings, cost: Option<Duration>) -> tracing::Level {
    match (cost, settings.slow_comet_duration) {
        (Some(cost), Some(slow)) if cost >= slow => tracing::Level::WARN,
        _ => tracing::Level::DEBUG,
    }
}

fn enabled(level: tracing::Level) -> bool {
    if level == tracing::Level::WARN {
        tracing::enabled!(target: "erpc::msg", tracing::Level::WARN)
    } else {
        tracing::enabled!(target: "erpc::msg", tracing::Level::DEBUG)
    }
}

fn emit(level: tracing::Level, line: &str) {
    if level == tracing::Level::WARN {
        tracing::warn!(target: "erpc::msg", "{line}");
    } else {
        tracing::debug!(target: "erpc::msg", "{line}");
    }
}

fn addr(session: &Session, msg: &Message) -> String {
    match msg.meta.get_str(meta::REAL_IP) {
        Some(ip) if ip == session.remote_addr() => format!("{}(real:same)", session.remote_addr()),
        Some(ip) if !ip.is_empty() => format!("{}(real:{ip})", session.remote_addr()),
        _ => format!("{}(real:-)", session.remote_addr()),
    }
}

fn cost_text(cost: Option<Duration>, level: tracing::Level) -> String {
    match cost {
        Some(cost) if level == tracing::Level::WARN => format!("{cost:?}(slow)"),
        Some(cost) => format!("{cost:?}(fast)"),
        None => "(-)".to_string(),
    }
}

/// `{"size":N,"status":"…","meta":"…","body":…}`: status when not OK, meta and body only with
/// print_detail.
fn part(settings: &Settings, msg: &Message, status: Option<&Status>) -> String {
    let mut out = format!("{{\"size\":{}", msg.body.len());
    let status = status.unwrap_or(&msg.status);
    if !status.is_ok() {
        let _ = write!(out, ",\"status\":{:?}", String::from_utf8_lossy(&status.encode_query()));
    }
    if settings.print_detail {
        let _ = write!(out, ",\"meta\":{:?}", String::from_utf8_lossy(&msg.meta.encode_query()));
        let body = String::from_utf8_lossy(&msg.body);
        let _ = write!(out, ",\"body\":{}", serde_json::Value::String(body.into_owned()));
    }
    out.push('}');
    out
}

/// Emits one line if its level is enabled; `make` gets the cost text and builds the line only
/// then, so disabled logging costs no formatting.
fn log_line(settings: &Settings, started: Option<Instant>, make: impl FnOnce(&str) -> String) {
    let cost = started.map(|s| s.elapsed());
    let level = level_for(settings, cost);
    if enabled(level) {
        emit(level, &make(&cost_text(cost, level)));
    }
}

/// A CALL this peer handled.
pub(crate) fn call_in(
    settings: &Settings,
    session: &Session,
    req: &Message,
    reply: &Message,
    started: Option<Instant>,
) {
    log_line(settings, started, |cost| {
        let (recv, send) = (part(settings, req, None), part(settings, reply, None));
        format!(
            "CALL<- {} {cost} {:?} RECV({recv}) SEND({send})",
            addr(session, req),
            req.service_method
        )
    });
}

/// A PUSH this peer received.
pub(crate) fn push_in(
    settings: &Settings,
    session: &Session,
    req: &Message,
    status: Option<&Status>,
    started: Option<Instant>,
) {
    log_line(settings, started, |cost| {
        let recv = part(settings, req, status);
        format!(
            "PUSH<- {} {cost} {:?} RECV({recv})",
            addr(session, req),
            req.service_method
        )
    });
}

/// A CALL this peer made, with its reply (or the status it ended with).
pub(crate) fn call_out(
    settings: &Settings,
    session: &Session,
    req: &Message,
    reply: Result<&Message, &Status>,
    started: Option<Instant>,
) {
    log_line(settings, started, |cost| {
        let recv = match reply {
            Ok(reply) => part(settings, reply, None),
            Err(status) => format!("{{\"status\":{:?}}}", String::from_utf8_lossy(&status.encode_query())),
        };
        let send = part(settings, req, None);
        format!(
            "CALL-> {} {cost} {:?} SEND({send}) RECV({recv})",
            addr(session, req),
            req.service_method
        )
    });
}

/// A PUSH this peer sent.
pub(crate) fn push_out(settings: &Settings, session: &Session, req: &Message, started: Option<Instant>) {
    log_line(settings, started, |cost| {
        let send = part(settings, req, None);
        format!(
            "PUSH-> {} {cost} {:?} SEND({send})",
            addr(session, req),
            req.service_method
        )
    });
}

/// Logs a WARN event caused by remote input, if the peer's [`RemoteWarnings`] let it through.
/// `$env` is anything with a `remote_warnings` field (an [`Env`](super::Env), `session.env()`);
/// the rest is what `tracing::warn!` takes. Costs nothing until a warning is due.
///
/// ```ignore
/// remote_warn!(env, session = %session.id(), error = %e, "bad frame; closing the session");
/// ```
macro_rules! remote_warn {
    ($env:expr, $($arg:tt)+) => {
        if ::tracing::enabled!(::tracing::Level::WARN) && $env.remote_warnings.allow() {
            ::tracing::warn!($($arg)+);
        }
    };
}
pub(crate) use remote_warn;

/// At most this many warnings caused by remote input are logged per window…
const REMOTE_WARN_BURST: u32 = 20;
/// …and the lines suppressed in a window are summarised when it ends.
const REMOTE_WARN_WINDOW: Duration = Duration::from_secs(10);

/// Limits the warnings remote peers cause, for all sessions of one peer: a sum over sessions,
/// so that neither one flooding client nor many of them can fill the log.
///
/// A window starts with the first warning after the previous one ended (an idle peer keeps no
/// timer). In a window the first [`REMOTE_WARN_BURST`] warnings are logged; the others are
/// counted, and the count is logged in one line when the window ends (by a task started at the
/// first suppressed line) or, without a runtime, before the next line that is let through.
/// A cheap handle; the clock is tokio's, so tests can pause it.
#[derive(Clone)]
pub(crate) struct RemoteWarnings(Arc<Limiter>);

struct Limiter {
    burst: u32,
    window: Duration,
    state: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    /// When the current window started; `None` before the first warning.
    started: Option<tokio::time::Instant>,
    logged: u32,
    suppressed: u64,
}

impl Default for RemoteWarnings {
    fn default() -> Self {
        RemoteWarnings::new(REMOTE_WARN_BURST, REMOTE_WARN_WINDOW)
    }
}

impl RemoteWarnings {
    /// Up to `burst` lines per `window`.
    pub(crate) fn new(burst: u32, window: Duration) -> Self {
        RemoteWarnings(Arc::new(Limiter {
            burst,
            window,
            state: Mutex::new(Window::default()),
        }))
    }

    /// Whether one more warning caused by remote input may be logged now; if not, it is
    /// counted. Call it only when about to log (see [`remote_warn!`]).
    pub(crate) fn allow(&self) -> bool {
        self.allow_at(tokio::time::Instant::now())
    }

    fn allow_at(&self, now: tokio::time::Instant) -> bool {
        let limiter = &*self.0;
        let (allowed, summary, first_suppressed) = {
            // Poisoning cannot leave a `Window` inconsistent: keep counting.
            let mut window = limiter.state.lock().unwrap_or_else(PoisonError::into_inner);
            let mut summary = 0;
            let started = match window.started {
                Some(started) if now < started + limiter.window => started,
                _ => {
                    // The previous window's summary, if its task could not log it.
                    summary = window.suppressed;
                    *window = Window {
                        started: Some(now),
                        ..Window::default()
                    };
                    now
                }
            };
            if window.logged < limiter.burst {
                window.logged += 1;
                (true, summary, None)
            } else {
                window.suppressed += 1;
                (false, summary, (window.suppressed == 1).then_some(started))
            }
        };
        if summary > 0 {
            limiter.summarise(summary);
        }
        if let Some(started) = first_suppressed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let this = self.clone();
            runtime.spawn(async move {
                tokio::time::sleep_until(started + this.0.window).await;
                this.0.end_window(started);
            });
        }
        allowed
    }
}

impl Limiter {
    /// Logs the count of the window that started at `started`, unless a newer window has
    /// begun (whoever began it logged the count).
    fn end_window(&self, started: tokio::time::Instant) {
        let suppressed = {
            let mut window = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if window.started != Some(started) {
                return;
            }
            std::mem::take(&mut window.suppressed)
        };
        if suppressed > 0 {
            self.summarise(suppressed);
        }
    }

    fn summarise(&self, suppressed: u64) {
        tracing::warn!(
            suppressed,
            "suppressed {suppressed} warnings caused by remote input in the last {:?}",
            self.window
        );
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::RemoteWarnings;

    /// The log output, as lines.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// Takes the lines written so far.
        fn take(&self) -> Vec<String> {
            let text = std::mem::take(&mut *self.0.lock().unwrap());
            String::from_utf8(text).unwrap().lines().map(str::to_string).collect()
        }
    }

    /// Something with a `remote_warnings` field, as `remote_warn!` wants.
    struct Env {
        remote_warnings: RemoteWarnings,
    }

    const WINDOW: Duration = Duration::from_secs(10);

    fn warn_times(env: &Env, n: usize) {
        for i in 0..n {
            remote_warn!(env, i, "bad input");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_a_count_then_a_new_window() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let env = Env {
            remote_warnings: RemoteWarnings::new(3, WINDOW),
        };

        // The burst is logged, the rest only counted.
        warn_times(&env, 1000);
        let lines = captured.take();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines.iter().all(|l| l.contains("WARN") && l.contains("bad input")),
            "{lines:#?}"
        );

        // Still the same window: nothing more.
        tokio::time::sleep(WINDOW / 2).await;
        warn_times(&env, 10);
        assert_eq!(captured.take(), Vec::<String>::new());

        // When the window ends, one line says how many were suppressed, with no more warnings.
        tokio::time::sleep(WINDOW).await;
        let lines = captured.take();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains("suppressed 1007 warnings caused by remote input in the last 10s"),
            "{lines:#?}"
        );

        // A new window: a new burst, and a window with nothing suppressed has no summary.
        warn_times(&env, 3);
        assert_eq!(captured.take().len(), 3);
        tokio::time::sleep(WINDOW * 2).await;
        warn_times(&env, 1);
        let lines = captured.take();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains("bad input"), "{lines:#?}");
    }

    #[test]
    fn without_a_runtime_the_count_comes_before_the_next_line() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let warnings = RemoteWarnings::new(2, WINDOW);
        let start = tokio::time::Instant::now();
        let allowed: Vec<bool> = (0..5).map(|_| warnings.allow_at(start)).collect();
        assert_eq!(allowed, [true, true, false, false, false]);
        assert!(!warnings.allow_at(start + WINDOW / 2));
        assert_eq!(captured.take(), Vec::<String>::new(), "no task to log the count");

        // The first warning of the next window brings the count of the last one.
        assert!(warnings.allow_at(start + WINDOW));
        let lines = captured.take();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains("suppressed 4 warnings"), "{lines:#?}");
        assert!(warnings.allow_at(start + WINDOW));
        assert!(!warnings.allow_at(start + WINDOW));
        assert_eq!(captured.take(), Vec::<String>::new(), "the count is logged once");
    }

    #[test]
    fn disabled_warnings_are_not_counted() {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::ERROR)
            .with_writer(std::io::sink)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let env = Env {
            remote_warnings: RemoteWarnings::new(1, WINDOW),
        };
        warn_times(&env, 5);
        let window = env.remote_warnings.0.state.lock().unwrap();
        assert_eq!((window.logged, window.suppressed), (0, 0));
    }
}
