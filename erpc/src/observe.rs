//! Metrics through the [`metrics`](https://docs.rs/metrics) facade: the names erpc reports
//! under, and the handles it resolves once — per peer when it is built, per route when the
//! peer freezes its router — so the hot path only adds to atomics. Install a recorder (for
//! instance `metrics-exporter-prometheus`, which `erpc serve --metrics ADDR` uses) **before**
//! building the peer; without one every handle is a no-op.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `erpc_calls_total` | counter | `route` | CALLs handled (every outcome) |
//! | `erpc_call_errors_total` | counter | `route`, `code` | CALLs answered with an error status |
//! | `erpc_call_duration_seconds` | histogram | `route` | from the header read to the reply queued |
//! | `erpc_pushes_total` | counter | `route` | PUSHes handled |
//! | `erpc_push_errors_total` | counter | `route`, `code` | PUSHes whose handler failed |
//! | `erpc_client_calls_total` | counter | — | CALLs this peer made |
//! | `erpc_client_call_errors_total` | counter | `code` | CALLs this peer made that ended in an error |
//! | `erpc_sessions_open` | gauge | — | sessions registered with the peer |
//! | `erpc_bytes_received_total`, `erpc_bytes_sent_total` | counter | — | bytes read from and written to connections |
//! | `erpc_queued_bytes` | gauge | — | bytes waiting in output queues, summed over sessions |
//!
//! Routes are labelled by their registered name; messages to unknown routes are counted under
//! `route="<unknown>"`, so a remote peer cannot create label values.

/// The label value of messages that matched no registered route.
pub const UNKNOWN_ROUTE: &str = "<unknown>";

#[cfg(feature = "metrics")]
mod live {
    use std::time::Instant;

    use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

    /// A peer's handles.
    #[derive(Clone)]
    pub(crate) struct PeerMetrics {
        pub(crate) sessions_open: Gauge,
        pub(crate) bytes_received: Counter,
        pub(crate) bytes_sent: Counter,
        pub(crate) queued_bytes: Gauge,
        pub(crate) client_calls: Counter,
    }

    impl PeerMetrics {
        pub(crate) fn register() -> PeerMetrics {
            PeerMetrics {
                sessions_open: gauge!("erpc_sessions_open"),
                bytes_received: counter!("erpc_bytes_received_total"),
                bytes_sent: counter!("erpc_bytes_sent_total"),
                queued_bytes: gauge!("erpc_queued_bytes"),
                client_calls: counter!("erpc_client_calls_total"),
            }
        }

        /// A call this peer made ended with `code` (0: a reply).
        pub(crate) fn client_call_ended(&self, code: i32) {
            self.client_calls.increment(1);
            if code != 0 {
                counter!("erpc_client_call_errors_total", "code" => code.to_string()).increment(1);
            }
        }
    }

    impl Default for PeerMetrics {
        fn default() -> Self {
            PeerMetrics {
                sessions_open: Gauge::noop(),
                bytes_received: Counter::noop(),
                bytes_sent: Counter::noop(),
                queued_bytes: Gauge::noop(),
                client_calls: Counter::noop(),
            }
        }
    }

    /// A route's handles.
    #[derive(Clone)]
    pub(crate) struct RouteMetrics {
        route: std::sync::Arc<str>,
        handled: Counter,
        duration: Option<Histogram>,
        push: bool,
    }

    impl RouteMetrics {
        pub(crate) fn register_call(route: &str) -> RouteMetrics {
            RouteMetrics {
                route: route.into(),
                handled: counter!("erpc_calls_total", "route" => route.to_string()),
                duration: Some(histogram!("erpc_call_duration_seconds", "route" => route.to_string())),
                push: false,
            }
        }

        pub(crate) fn register_push(route: &str) -> RouteMetrics {
            RouteMetrics {
                route: route.into(),
                handled: counter!("erpc_pushes_total", "route" => route.to_string()),
                duration: None,
                push: true,
            }
        }

        /// When timing starts, if anything records durations.
        pub(crate) fn start(&self) -> Option<Instant> {
            self.duration.as_ref().map(|_| Instant::now())
        }

        /// A message of this route was handled with `code` (0: OK).
        pub(crate) fn handled(&self, code: i32, started: Option<Instant>) {
            self.handled.increment(1);
            if let (Some(duration), Some(started)) = (&self.duration, started) {
                duration.record(started.elapsed());
            }
            if code != 0 {
                let name = if self.push {
                    "erpc_push_errors_total"
                } else {
                    "erpc_call_errors_total"
                };
                counter!(name, "route" => self.route.to_string(), "code" => code.to_string()).increment(1);
            }
        }
    }

    impl Default for RouteMetrics {
        fn default() -> Self {
            RouteMetrics {
                route: super::UNKNOWN_ROUTE.into(),
                handled: Counter::noop(),
                duration: None,
                push: false,
            }
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod live {
    //! Without the `metrics` feature: the same handles, doing nothing.
    use std::time::Instant;

    #[derive(Clone, Default)]
    pub(crate) struct Noop;

    impl Noop {
        pub(crate) fn increment<T>(&self, _: T) {}
        pub(crate) fn decrement<T>(&self, _: T) {}
        pub(crate) fn set<T>(&self, _: T) {}
    }

    #[derive(Clone, Default)]
    pub(crate) struct PeerMetrics {
        pub(crate) sessions_open: Noop,
        pub(crate) bytes_received: Noop,
        pub(crate) bytes_sent: Noop,
        pub(crate) queued_bytes: Noop,
    }

    impl PeerMetrics {
        pub(crate) fn register() -> PeerMetrics {
            PeerMetrics::default()
        }
        pub(crate) fn client_call_ended(&self, _: i32) {}
    }

    // Not a unit struct: the router builds it with `default()`, as it does the real one.
    #[derive(Clone, Default)]
    pub(crate) struct RouteMetrics(());

    impl RouteMetrics {
        pub(crate) fn register_call(_: &str) -> RouteMetrics {
            RouteMetrics(())
        }
        pub(crate) fn register_push(_: &str) -> RouteMetrics {
            RouteMetrics(())
        }
        pub(crate) fn start(&self) -> Option<Instant> {
            None
        }
        pub(crate) fn handled(&self, _: i32, _: Option<Instant>) {}
    }
}

#[cfg(not(feature = "metrics"))]
pub(crate) use live::{Noop as Counter, Noop as Gauge};
pub(crate) use live::{PeerMetrics, RouteMetrics};
#[cfg(feature = "metrics")]
pub(crate) use metrics::{Counter, Gauge};
