//! `erpc watch`: prints the pushes a server sends, one line each.

use std::time::Duration;

use clap::Args;
use erpc::router::PushCtx;
use erpc::{Raw, Router, Status};
use tokio::sync::mpsc;

use crate::CliError;
use crate::client::{Connection, show_body};
use crate::peer_args::parse_duration;

/// The heartbeat rate of a watcher without `--heartbeat`, in seconds.
const WATCH_HEARTBEAT_SECS: u64 = 60;

/// Flags of `erpc watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    connection: Connection,
    /// Stop after this many pushes.
    #[arg(long)]
    count: Option<usize>,
    /// Stop after this long.
    #[arg(long = "for", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Server address.
    addr: String,
}

/// Prints `SERVICE_METHOD BODY` for each push until done.
pub async fn run(mut args: WatchArgs) -> Result<(), CliError> {
    // A watcher only listens. It pings (every minute unless --heartbeat says otherwise), so a
    // server with an idle timeout (`erpc serve`: 5 minutes) keeps it and a dead server is
    // noticed.
    args.connection.peer.heartbeat.get_or_insert(WATCH_HEARTBEAT_SECS);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut router = Router::new();
    router.unknown_push(move |ctx: PushCtx, body: Raw| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(format!(
                "{} {}",
                ctx.service_method(),
                show_body(ctx.body_codec(), &body.0)
            ));
            Ok::<_, Status>(())
        }
    });
    let config = args.connection.config("erpc watch", |loader| loader)?;
    if config.network == erpc::config::Network::Quic {
        // QUIC announces a stream with its first bytes, and watch sends none (Go alike).
        eprintln!(
            "note: over QUIC a server sees this client only once it has sent a message: its first heartbeat, after {WATCH_HEARTBEAT_SECS} s of quiet"
        );
    }
    let kcp = config.network.is_kcp();
    let (peer, session) = args.connection.dial(config, &args.addr, router).await?;
    if kcp {
        // A KCP server learns of a client from its first datagram and a watcher sends none
        // until its first heartbeat: announce it with one now, so pushes start at once.
        let rate = args.connection.peer.heartbeat.unwrap_or(WATCH_HEARTBEAT_SECS);
        session
            .push(erpc::heartbeat::ROUTE, &())
            .meta(erpc::heartbeat::RATE_KEY, rate.to_string())
            .await
            .map_err(|status| CliError::Failed(format!("cannot reach {} over KCP: {status}", args.addr)))?;
    }
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut seen = 0;
    // One Ctrl-C future for the whole loop: a fresh one per push would miss a Ctrl-C that
    // arrives between two pushes (tokio keeps the handler, so nothing else would see it).
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while args.count.is_none_or(|n| seen < n) {
        let next = async {
            match deadline {
                Some(at) => tokio::time::timeout_at(at, rx.recv()).await.ok().flatten(),
                None => rx.recv().await,
            }
        };
        tokio::select! {
            line = next => match line {
                Some(line) => {
                    println!("{line}");
                    seen += 1;
                }
                None => break,
            },
            () = session.closed() => {
                peer.close().await;
                return Err(CliError::Failed(format!("the connection to {} closed", args.addr)));
            }
            _ = &mut ctrl_c => break,
        }
    }
    peer.close().await;
    Ok(())
}
