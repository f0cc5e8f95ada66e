//! `erpc serve`: runs the demo service until SIGINT/SIGTERM.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use erpc::Peer;
use erpc::config::Network;
use tokio::io::AsyncReadExt;

use crate::client::parse_duration;
use crate::{CliError, demo_service};

/// Flags of `erpc serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Transport: tcp, tcp4, tcp6 or unix (LISTEN is then a socket path).
    #[arg(long, default_value = "tcp")]
    network: String,
    /// Address to listen on (port 0: a free one; the first line printed says which).
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: String,
    /// Wire protocol.
    #[arg(long, default_value = "raw")]
    proto: String,
    /// Push `/push/status` to every session this often (0 turns it off).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    push_interval: Duration,
    /// Serve TLS with a fresh self-signed certificate (clients need --tls --insecure).
    #[arg(long)]
    tls: bool,
    /// Stop when standard input closes (for a parent process that runs the server).
    #[arg(long, hide = true)]
    exit_on_stdin_eof: bool,
}

/// Runs the server.
pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let network: Network = serde_json::from_value(serde_json::Value::String(args.network.clone()))
        .ok()
        .filter(|n: &Network| n.is_available())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "unknown network {:?}; use tcp, tcp4, tcp6 or unix",
                args.network
            ))
        })?;
    let proto = erpc::proto::by_name(&args.proto).ok_or_else(|| {
        CliError::Usage(format!(
            "unknown protocol {:?}; use one of: {}",
            args.proto,
            erpc::proto::NAMES.join(", ")
        ))
    })?;
    let mut builder = Peer::builder().router(demo_service::router());
    if args.tls {
        let tls = erpc::net::tls::self_signed_server_config(&["localhost", "127.0.0.1"])
            .map_err(|e| CliError::Failed(e.to_string()))?;
        builder = builder.tls_server(tls);
    }
    let peer = builder.build().map_err(|e| CliError::Failed(e.to_string()))?;
    let addr = peer
        .listen_with(network, &args.listen, proto.clone())
        .await
        .map_err(|e| CliError::Failed(format!("cannot serve: {e}")))?;
    // Signal handlers go in before the address is announced: whoever reads it may signal at once.
    let shutdown = peer.shutdown_on_signal();
    println!("listening on {addr} ({}, {})", args.network, proto.name());
    let _ = std::io::stdout().flush();
    let pusher = (!args.push_interval.is_zero())
        .then(|| tokio::spawn(demo_service::push_status(peer.clone(), args.push_interval)));
    if args.exit_on_stdin_eof {
        tokio::select! {
            () = shutdown => {}
            () = stdin_closed() => peer.close().await,
        }
    } else {
        shutdown.await;
    }
    if let Some(pusher) = pusher {
        pusher.abort();
    }
    Ok(())
}

async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}
