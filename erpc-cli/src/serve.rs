//! `erpc serve`: runs the demo service until SIGINT/SIGTERM; SIGUSR2 reboots it without
//! downtime (a new process takes over the listener, this one drains and exits).

use std::io::Write;
use std::time::Duration;

use clap::Args;
use erpc::config::Network;
use erpc::plugin::{Overloader, OverloaderConfig};
use erpc::proxy::Proxy;
use erpc::{Peer, PeerConfig};
use erpc::{Pool, PoolConfig};
use tokio::io::AsyncReadExt;

use crate::peer_args::{PeerArgs, network_name, parse_duration, parse_network};
use crate::{CliError, demo_service};
use metrics_exporter_prometheus::Matcher;

/// Flags of `erpc serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Transport: tcp, tcp4, tcp6, unix (LISTEN is then a socket path), kcp (or udp), udp4,
    /// udp6 or quic. [default: tcp]
    #[arg(long, value_parser = parse_network)]
    network: Option<Network>,
    /// Address to listen on (port 0: a free one; the first line printed says which).
    /// [default: local_ip:listen_port of the config, 127.0.0.1:9090]
    #[arg(long)]
    listen: Option<String>,
    /// Wire protocol.
    #[arg(long, default_value = "raw")]
    proto: String,
    /// Push `/push/status` to every session this often (0 turns it off).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    push_interval: Duration,
    /// Serve TLS with a fresh self-signed certificate (clients need --tls --insecure).
    #[arg(long)]
    tls: bool,
    /// Calls and pushes taken per second, all sessions together (the overloader plugin; beyond
    /// it calls are answered `500 qps overload`, pushes dropped). 0: no limit.
    #[arg(long, default_value_t = 0)]
    qps: u32,
    /// Forward calls and pushes to routes this server does not have to the eRPC server at
    /// ADDR (through a pool of sessions), as Go eRPC's proxy plugin does.
    #[arg(long, value_name = "ADDR")]
    proxy_to: Option<String>,
    /// Write the process id to this file once listening (a rebooted process writes its own).
    #[arg(long, value_name = "PATH")]
    pid_file: Option<std::path::PathBuf>,
    /// Register this server's address in etcd under a service name, for clients that call
    /// `etcd://HOST:PORT/SERVICE`. The registration is revoked on SIGINT/SIGTERM and when the
    /// server stops; if the server dies it expires after --register-ttl.
    #[cfg(feature = "discovery")]
    #[arg(long, value_name = "etcd://HOST:PORT/SERVICE")]
    register: Option<String>,
    /// With --register: the registration's lease TTL, whole seconds (renewed every third).
    #[cfg(feature = "discovery")]
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    register_ttl: Duration,
    /// Serve the peer's metrics (calls, errors by code, latency per route, sessions, bytes) in
    /// Prometheus text format on http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Stop when standard input closes (for a parent process that runs the server).
    #[arg(long, hide = true)]
    exit_on_stdin_eof: bool,
    #[command(flatten)]
    peer: PeerArgs,
}

/// `erpc serve`'s defaults: the library's, on 127.0.0.1:9090, and idle sessions closed after
/// 5 minutes (the library, like Go, keeps them forever; a public server should not).
pub fn defaults() -> PeerConfig {
    PeerConfig {
        local_ip: "127.0.0.1".into(),
        listen_port: 9090,
        idle_timeout: Duration::from_secs(5 * 60),
        ..PeerConfig::default()
    }
}

/// Runs the server.
pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let proto = erpc::proto::by_name(&args.proto).ok_or_else(|| {
        CliError::Usage(format!(
            "unknown protocol {:?}; use one of: {}",
            args.proto,
            erpc::proto::NAMES.join(", ")
        ))
    })?;
    if let Some(addr) = args.metrics {
        // Before the peer is built: it registers its metric handles with this recorder.
        // Latency as a Prometheus histogram (aggregatable across instances), 100 µs to 10 s.
        let buckets = [
            1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ];
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .map_err(|e| CliError::Failed(e.to_string()))?
            .install()
            .map_err(|e| CliError::Failed(format!("cannot serve metrics on {addr}: {e}")))?;
    }
    let config = args
        .peer
        .resolve("erpc serve", defaults(), |loader| match args.network {
            Some(network) => loader.set("network", network_name(network), "--network"),
            None => loader,
        })?;
    // `--listen` wins over the config's local_ip and listen_port; it may be a socket path,
    // which those two cannot express.
    let listen = args.listen.clone().unwrap_or_else(|| config.listen_addr());
    let network = config.network;
    let config_for_upstream = config.clone();
    let mut builder = Peer::builder().config(config).router(demo_service::router());
    builder = args.peer.server_plugins(builder)?;
    if let Some(upstream) = &args.proxy_to {
        // Upstream sessions come from a client peer of their own, with the same options.
        let dialer = args
            .peer
            .client_plugins(Peer::builder().config(PeerConfig {
                redial_times: 0,
                ..config_for_upstream.clone()
            }))?
            .build()
            .map_err(|e| CliError::Usage(e.to_string()))?;
        builder = builder.with(Proxy::to_pool(Pool::new(
            &dialer,
            upstream.clone(),
            PoolConfig::default(),
        )));
    }
    if args.qps > 0 {
        let overloader = Overloader::new(OverloaderConfig {
            max_total_qps: args.qps,
            ..OverloaderConfig::default()
        })
        .map_err(|e| CliError::Usage(e.to_string()))?;
        builder = builder.plugin(overloader);
    }
    // wss is WebSocket over TLS: it implies --tls.
    if args.tls || network == Network::Wss {
        let tls = erpc::net::tls::self_signed_server_config(&["localhost", "127.0.0.1"])
            .map_err(|e| CliError::Failed(e.to_string()))?;
        builder = builder.tls_server(tls);
    }
    let peer = builder.build().map_err(|e| CliError::Failed(e.to_string()))?;
    let addr = peer
        .listen_with(network, &listen, proto.clone())
        .await
        .map_err(|e| CliError::Failed(format!("cannot serve: {e}")))?;
    // Signal handlers go in before the address is announced: whoever reads it may signal at once.
    let shutdown = peer.shutdown_on_signal();
    if let Some(path) = &args.pid_file {
        // Written whole under another name first, so a reader never sees half a pid.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, format!("{}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| CliError::Failed(format!("cannot write the pid file {}: {e}", path.display())))?;
    }
    #[cfg(feature = "discovery")]
    let registration = match &args.register {
        Some(target) => {
            Some(crate::discovery::register(target, args.register_ttl, network, &addr, proto.name()).await?)
        }
        None => None,
    };
    // For whoever started the server; one that stopped reading after the first line (a test
    // harness, `head -1`) is no reason to stop serving, so write errors are ignored.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {addr} ({}, {})", network_name(network), proto.name());
    if let Some(metrics) = args.metrics {
        let _ = writeln!(out, "metrics on http://{metrics}/metrics");
    }
    let _ = out.flush();
    drop(out);
    let pusher = (!args.push_interval.is_zero())
        .then(|| tokio::spawn(demo_service::push_status(peer.clone(), args.push_interval)));
    if args.exit_on_stdin_eof {
        tokio::select! {
            _ = shutdown => {}
            () = stdin_closed() => peer.close().await,
        }
    } else {
        let _ = shutdown.await;
    }
    if let Some(pusher) = pusher {
        pusher.abort();
    }
    // Already revoked if a signal stopped the server; this covers the other ways it stops.
    #[cfg(feature = "discovery")]
    if let Some(registration) = registration {
        crate::discovery::deregister(&registration).await;
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
