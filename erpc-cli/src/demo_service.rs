//! The demo service that `erpc serve` and `erpc demo` run.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `/math/add` | list of integers | their sum; request meta `author` is copied to the reply |
//! | `/echo/parrot` | string | the same string |
//! | `/err/custom` | anything | always fails: code 10005, msg `custom error`, cause `because` |
//! | `Hello.Say`, `/hello/say` | protobuf `BenchmarkMessage` | the message with field1 "OK", field2 100 |
//! | `/instance/id` | anything | which server answered: `pid N` (for clients balancing over several) |
//!
//! and a PUSH of `/push/status` (plain text) to every session at a fixed interval.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use erpc::codec::Protobuf;
use erpc::router::CallCtx;
use erpc::{CodecId, Peer, Raw, Router, Status};

use crate::bench_message::{BenchmarkMessage, answer};

/// The route pushed to every session.
pub const PUSH_ROUTE: &str = "/push/status";

async fn add(ctx: CallCtx, nums: Vec<i64>) -> Result<i64, Status> {
    if let Some(author) = ctx.meta().get("author") {
        ctx.set_reply_meta("author", author.to_vec());
    }
    nums.iter()
        .try_fold(0i64, |sum, n| sum.checked_add(*n))
        .ok_or_else(|| Status::with_cause(10001, "overflow", "the sum does not fit in 64 bits"))
}

async fn parrot(text: String) -> Result<String, Status> {
    Ok(text)
}

async fn custom_error(_: Raw) -> Result<(), Status> {
    Err(Status::with_cause(10005, "custom error", "because"))
}

async fn say(msg: Protobuf<BenchmarkMessage>) -> Result<Protobuf<BenchmarkMessage>, Status> {
    Ok(Protobuf(answer(msg.0)))
}

async fn instance_id(_: Raw) -> Result<String, Status> {
    Ok(format!("pid {}", std::process::id()))
}

/// The demo service's routes.
pub fn router() -> Router {
    let mut router = Router::new();
    router.group("math").call("add", add);
    router.group("echo").call("parrot", parrot);
    router.group("err").call("custom", custom_error);
    router.group("instance").call("id", instance_id);
    router.call_at("Hello.Say", say).call_at("/hello/say", say);
    router
}

/// Pushes `/push/status` with the time of day to every session of `peer`, every `interval`,
/// until the peer has no more reason to (the task is aborted by its owner).
pub async fn push_status(peer: Peer, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let text = format!("server time {}", time_of_day());
        for session in peer.sessions() {
            let mut pushed = session.push(PUSH_ROUTE, &text).codec(CodecId::PLAIN).await;
            if pushed
                .as_ref()
                .is_err_and(|s| s.code() == erpc::status::Code::WRITE_FAILED)
            {
                // thrift-struct carries thrift bodies only.
                pushed = session.push(PUSH_ROUTE, &text).codec(CodecId::THRIFT).await;
            }
            if let Err(status) = pushed {
                tracing::debug!(session = %session.id(), %status, "push skipped");
            }
        }
    }
}

/// `HH:MM:SS` (UTC).
fn time_of_day() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}
