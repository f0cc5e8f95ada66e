//! Logging for the `erpc` command: `tracing` to standard error, through a writer that never
//! blocks the thread that logs.
//!
//! A server whose standard error nobody reads (a full pipe, a terminal stopped with Ctrl-S)
//! must go on serving. So a log line is put on a bounded queue, and one thread of its own
//! writes the queue to stderr. When the queue is full the line is dropped and counted; once
//! the thread can write again it says how many lines were dropped. Panics are logged the same
//! way, since the default panic hook writes to stderr itself.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

/// How many bytes of log lines may wait for stderr; more are dropped.
const QUEUE_BYTES: usize = 256 * 1024;
/// While lines are still being dropped, the count is reported at most this often (otherwise
/// once the queue is written out).
const NOTICE_EVERY: Duration = Duration::from_secs(1);
/// How long the command waits, when it ends, for its last log lines to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// Installs the global `tracing` subscriber: `warn`, `-v` info, `-vv` debug, or `RUST_LOG`.
/// Keep the guard until the command ends: dropping it waits (briefly) for the queued lines.
pub fn init(verbose: u8) -> Guard {
    let default_level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let queue = Arc::new(Queue::default());
    let writer = Writer(queue.clone());
    let spawned = std::thread::Builder::new().name("erpc-log".into()).spawn({
        let queue = queue.clone();
        move || queue.write_out(&mut std::io::stderr())
    });
    if spawned.is_err() {
        // No thread, no logs (better than logs that can block the server).
        queue.lock().closed = true;
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(move || writer.clone())
        .init();
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => tracing::error!("{info}\n{backtrace}"),
            _ => tracing::error!("{info}"),
        }
    }));
    Guard(queue)
}

/// Flushes the log queue when dropped, waiting at most [`FLUSH_WAIT`] for a stalled stderr.
pub struct Guard(Arc<Queue>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.flush(FLUSH_WAIT);
    }
}

/// The `io::Write` the subscriber formats into: one `write` per event, queued or dropped.
#[derive(Clone)]
struct Writer(Arc<Queue>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Log lines waiting for stderr, shared by the loggers and the writer thread.
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    /// Wakes the writer thread: something to write.
    ready: Condvar,
    /// Wakes [`Queue::flush`]: the writer thread has written everything.
    idle: Condvar,
}

#[derive(Default)]
struct State {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Lines dropped since the last notice.
    dropped: u64,
    /// The writer thread is writing what it took off the queue.
    writing: bool,
    /// No writer thread: lines are dropped without counting.
    closed: bool,
}

/// What the writer thread writes next.
enum Out {
    Line(Vec<u8>),
    Dropped(u64),
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic cannot leave the queue inconsistent: go on logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a line, or drops and counts it if the queue is full. Never waits for stderr.
    fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        if state.bytes + line.len() > QUEUE_BYTES {
            state.dropped += 1;
            return;
        }
        state.bytes += line.len();
        state.lines.push_back(line.to_vec());
        drop(state);
        self.ready.notify_one();
    }

    /// The writer thread: writes lines in order, and the count of dropped lines once it has
    /// caught up (or every [`NOTICE_EVERY`] while it cannot). Runs until the process ends.
    fn write_out(&self, out: &mut impl Write) {
        let mut last_notice = Instant::now();
        loop {
            let next = {
                let mut state = self.lock();
                state.writing = false;
                let next = loop {
                    let notice_due =
                        state.dropped > 0 && (state.lines.is_empty() || last_notice.elapsed() >= NOTICE_EVERY);
                    if notice_due {
                        break Out::Dropped(std::mem::take(&mut state.dropped));
                    }
                    if let Some(line) = state.lines.pop_front() {
                        state.bytes -= line.len();
                        break Out::Line(line);
                    }
                    self.idle.notify_all();
                    state = self.ready.wait(state).unwrap_or_else(PoisonError::into_inner);
                };
                state.writing = true;
                next
            };
            // A failed write loses its line; there is nowhere else to say so.
            let _ = match next {
                Out::Line(line) => out.write_all(&line),
                Out::Dropped(n) => {
                    last_notice = Instant::now();
                    writeln!(out, "{n} log lines dropped (stderr not drained)")
                }
            };
        }
    }

    /// Waits until everything queued is written, or `limit` passes.
    fn flush(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut state = self.lock();
        while !state.closed && (state.writing || !state.lines.is_empty() || state.dropped > 0) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            state = self
                .idle
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::{QUEUE_BYTES, Queue};

    /// A stderr that nobody drains until the test opens it: each write waits for a token, and
    /// once the token sender is gone everything goes through.
    struct Stalled {
        tokens: mpsc::Receiver<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.tokens.recv();
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_stderr_drops_and_counts_lines_and_never_blocks_the_logger() {
        let queue = Arc::new(Queue::default());
        let (open, tokens) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        std::thread::spawn({
            let (queue, written) = (queue.clone(), written.clone());
            move || queue.write_out(&mut Stalled { tokens, written })
        });

        // Twice what the queue holds: this thread goes on while the writer is stuck.
        let line = format!("{}\n", "x".repeat(99));
        let pushed = 2 * QUEUE_BYTES / line.len();
        for _ in 0..pushed {
            queue.push(line.as_bytes());
        }
        // A queue's worth waits, one line may be in the writer's hands, the rest is dropped.
        let dropped = queue.lock().dropped;
        let kept = (pushed as u64) - dropped;
        let fits = (QUEUE_BYTES / line.len()) as u64;
        assert!((fits..=fits + 1).contains(&kept), "{dropped} of {pushed} dropped");

        // Once stderr takes lines again, every line is either written or counted.
        drop(open);
        queue.flush(Duration::from_secs(30));
        let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        let lines = text.lines().filter(|l| *l == line.trim_end()).count();
        let notices: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_suffix(" log lines dropped (stderr not drained)")?.parse().ok())
            .collect();
        assert_eq!(notices, [dropped], "{text}");
        assert_eq!(lines as u64 + dropped, pushed as u64);
    }
}
