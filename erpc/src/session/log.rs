//! Per-message logging through `tracing` (behaviour.md §11).
//!
//! Each handled or sent message gives one event on target `erpc::msg` in Go's shape,
//! `CALL<- 127.0.0.1:5050 1.2ms "/math/add" RECV(…) SEND(…)`. With `print_detail` the
//! parts show meta and body; with `count_time` the cost is measured, and a message slower
//! than `slow_comet_duration` is logged at WARN with `(slow)`. Others are logged at DEBUG
//! (Go uses INFO; per-message lines at INFO would drown a busy server's logs and cost CPU).

use std::fmt::Write as _;
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
