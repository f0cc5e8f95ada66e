//! `erpc bench`: the seed's self test — the 581-byte protobuf BenchmarkMessage against the
//! demo service's `Hello.Say` — printed as the seed's table or as bench-peers' JSON lines, so
//! erpc compares with tonic, tarpc and the raw-socket baselines in one run.
//!
//! By default the server is a separate child process (`erpc serve`) on a free loopback port;
//! `--addr` uses a running server instead. `-c` workers issue `-n` calls in total over
//! `--conns` multiplexed sessions, each worker's calls one after another, every call timed.
//!
//! `--idle N` measures memory instead (see `bench_idle`): the server child's RSS growth per
//! idle session.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use erpc::codec::Protobuf;
use erpc::{CodecId, Peer, PeerConfig, Pool, PoolConfig, Session};
use serde::Serialize;

use crate::CliError;
use crate::bench_message::{BenchmarkMessage, prepare_args};
use crate::peer_args::{PeerArgs, network_name, parse_network};
use erpc::config::Network;

/// Flags of `erpc bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Concurrent workers; a comma-separated list runs one measurement each.
    #[arg(
        short = 'c',
        long = "concurrency",
        value_delimiter = ',',
        default_value = "100,500,1000,2000,5000"
    )]
    concurrency: Vec<usize>,
    /// Calls per measurement, spread over the workers.
    #[arg(short = 'n', long = "total", default_value_t = 200_000)]
    total: usize,
    /// Sessions the workers share (calls are multiplexed on each).
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Send through a session pool of at most N sessions (each call hires the least busy)
    /// instead of `--conns` fixed sessions; with --target, a pool of N per instance.
    #[arg(long, value_name = "N", conflicts_with = "conns")]
    pool: Option<usize>,
    /// Use a running server instead of starting one. The clients redial (3 times unless the
    /// config sets redial_times), so they follow a server that reboots (SIGUSR2).
    #[arg(long)]
    pub(crate) addr: Option<String>,
    /// Benchmark a service registered in etcd (`etcd://HOST:PORT/SERVICE`) instead of a
    /// server child: the calls (marked idempotent) are balanced over its live instances, and
    /// the calls each instance answered are printed after each measurement.
    #[cfg(feature = "discovery")]
    #[arg(long, value_name = "etcd://HOST:PORT/SERVICE", conflicts_with_all = ["addr", "idle"])]
    pub(crate) target: Option<String>,
    /// With --target: round-robin, least-inflight, or hash (each call keyed by its number).
    #[cfg(feature = "discovery")]
    #[arg(long, default_value = "round-robin", value_parser = crate::discovery::parse_balance)]
    balance: erpc_discovery::Balance,
    /// Network of the server child and the clients: tcp, tcp4, tcp6, unix, unixpacket, kcp,
    /// udp4, udp6, quic, ws or wss (over QUIC and wss the clients skip verifying the child's self-signed
    /// certificate).
    #[arg(long, value_parser = parse_network)]
    pub(crate) network: Option<Network>,
    /// Wire protocol.
    #[arg(long, default_value = "raw")]
    pub(crate) proto: String,
    /// Body codec (the BenchmarkMessage is protobuf).
    #[arg(long, default_value = "protobuf")]
    codec: String,
    /// Unrecorded calls each worker makes first.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Print one JSON line per concurrency (bench-peers' format) instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// The progress bar on stderr: `auto` only when stderr is a terminal, `always` also into a
    /// pipe or file (one `\r`-separated line per update, for a script that follows the run),
    /// `never`. `--json` never draws it.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// Draw throughput and p99 against concurrency into this SVG file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
    /// The "framework" field of the JSON lines (e.g. erpc-conns for a `--conns C -c C` run).
    #[arg(long, default_value = "erpc")]
    pub(crate) name: String,
    /// Measure idle-session memory instead of calls: open N TCP connections to the server
    /// child that never send a byte, wait until it has accepted them all, and print its RSS
    /// growth (VmRSS, /proc) per session.
    #[arg(long, value_name = "N")]
    pub(crate) idle: Option<usize>,
    /// With --idle: the server to measure instead of `erpc serve`, as a command whose `{addr}`
    /// is replaced by a free loopback address (e.g. `-- bench-peers server --framework
    /// raw-conns --addr {addr}`).
    #[arg(last = true, value_name = "SERVER_CMD", requires = "idle")]
    pub(crate) server_cmd: Vec<String>,
    // The client's configuration, passed on to the `erpc serve` child: both ends run with it.
    #[command(flatten)]
    pub(crate) peer: PeerArgs,
}

/// One measurement, with exactly the fields of bench-peers' JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    framework: String,
    concurrency: usize,
    total: usize,
    errors: usize,
    elapsed_s: f64,
    throughput: f64,
    mean_us: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_cpu_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_cpu_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_us_per_call: Option<f64>,
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> Result<(), CliError> {
    // Checked before a server child is started, so a bad file is reported once, by this process.
    let config = args
        .peer
        .resolve("erpc bench", PeerConfig::default(), |loader| match args.network {
            Some(network) => loader.set("network", network_name(network), "--network"),
            None => loader,
        })?;
    run_with(args, config).map_err(CliError::Failed)
}

fn run_with(args: BenchArgs, config: PeerConfig) -> Result<(), String> {
    let proto = erpc::proto::by_name(&args.proto).ok_or_else(|| {
        format!(
            "unknown protocol {:?}; use one of {}",
            args.proto,
            erpc::proto::NAMES.join(", ")
        )
    })?;
    let codec = erpc::codec::by_name(&args.codec)
        .map(|c| c.id())
        .ok_or_else(|| format!("unknown codec {:?}", args.codec))?;
    if codec != CodecId::PROTOBUF {
        return Err("the benchmark message is protobuf: use --codec protobuf".into());
    }
    if let Some(sessions) = args.idle {
        if args.network.is_some_and(|n| n != Network::Tcp) {
            return Err("--idle opens TCP connections: use it without --network".into());
        }
        return crate::bench_idle::run(&args, sessions);
    }
    // Every session is a file descriptor here and in the server child (which inherits it).
    crate::bench_idle::raise_nofile(args.conns as u64 + 256)?;
    let remote = args.addr.clone().or_else(|| service_target(&args));
    let mut server = match &remote {
        Some(_) => None,
        None => Some(ServerChild::start(&args.proto, &args.peer, args.network)?),
    };
    let addr = match (&remote, &server) {
        (Some(addr), _) => addr.clone(),
        (None, Some(child)) => child.addr.clone(),
        (None, None) => unreachable!("a server child is started when no --addr is given"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut reports = Vec::new();
    if !args.json {
        println!(
            "erpc bench: {} calls of the 581-byte BenchmarkMessage to {addr} ({}, {} session(s))",
            args.total, args.proto, args.conns
        );
        println!(
            "{:>11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>13}",
            "concurrency", "mean", "median", "max", "min", "p99", "throughput"
        );
    }
    for &concurrency in &args.concurrency {
        let server_cpu_before = server.as_ref().and_then(|s| cpu_seconds(Some(s.child.id())));
        let client_cpu_before = cpu_seconds(None);
        let measured = runtime.block_on(measure(&addr, proto.clone(), &config, &args, concurrency))?;
        let client_cpu = cpu_seconds(None).zip(client_cpu_before).map(|(a, b)| a - b);
        let server_cpu = server
            .as_ref()
            .and_then(|s| cpu_seconds(Some(s.child.id())))
            .zip(server_cpu_before)
            .map(|(a, b)| a - b);
        let mut report = measured.report(&args.name, concurrency, args.total);
        if let (Some(c), Some(s)) = (client_cpu, server_cpu) {
            let calls = (args.total + concurrency * args.warmup) as f64;
            report.client_cpu_s = Some(round(c, 100.0));
            report.server_cpu_s = Some(round(s, 100.0));
            report.cpu_us_per_call = Some(round((c + s) / calls * 1e6, 10.0));
        }
        if args.json {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
        } else {
            println!(
                "{:>11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11}/s",
                concurrency,
                format_us(report.mean_us),
                format_us(report.p50_us),
                format_us(report.max_us),
                format_us(measured.min_us()),
                format_us(report.p99_us),
                report.throughput as u64
            );
        }
        if let Some(calls) = &measured.instance_calls {
            // On stderr with `--json`, which keeps stdout to one JSON line per measurement.
            if args.json {
                eprintln!("{calls}");
            } else {
                println!("{calls}");
            }
        }
        if measured.errors > 0 {
            // On stderr, so that `--json` output stays one JSON line per measurement.
            eprintln!(
                "c={concurrency}: {} of {} calls failed: {}",
                measured.errors,
                args.total,
                measured.failures.summary()
            );
        }
        reports.push(report);
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, crate::plot::svg(&reports_points(&reports)))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if !args.json {
            println!("plot written to {}", path.display());
        }
    }
    if let Some(server) = server.as_mut() {
        server.stop();
    }
    if reports.iter().any(|r| r.errors > 0) {
        return Err(format!(
            "{} calls failed (reasons above)",
            reports.iter().map(|r| r.errors).sum::<usize>()
        ));
    }
    Ok(())
}

/// `--target`, when given.
fn service_target(args: &BenchArgs) -> Option<String> {
    #[cfg(feature = "discovery")]
    return args.target.clone();
    #[cfg(not(feature = "discovery"))]
    {
        let _ = args;
        None
    }
}

fn reports_points(reports: &[Report]) -> Vec<crate::plot::Point> {
    reports
        .iter()
        .map(|r| crate::plot::Point {
            concurrency: r.concurrency,
            throughput: r.throughput,
            p99_us: r.p99_us,
        })
        .collect()
}

struct Measured {
    /// With `--target`: the calls each instance answered.
    instance_calls: Option<String>,
    latencies_ns: Vec<u64>,
    errors: usize,
    failures: Failures,
    elapsed: Duration,
}

impl Measured {
    fn min_us(&self) -> f64 {
        self.latencies_ns.first().map_or(0.0, |&ns| ns as f64 / 1e3)
    }

    fn report(&self, framework: &str, concurrency: usize, total: usize) -> Report {
        let lat = &self.latencies_ns;
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            let rank = ((p / 100.0) * lat.len() as f64).ceil() as usize;
            lat[rank.clamp(1, lat.len()) - 1] as f64 / 1e3
        };
        let mean = if lat.is_empty() {
            0.0
        } else {
            lat.iter().map(|&x| x as f64).sum::<f64>() / lat.len() as f64 / 1e3
        };
        let secs = self.elapsed.as_secs_f64();
        Report {
            framework: framework.to_string(),
            concurrency,
            total,
            errors: self.errors,
            elapsed_s: round(secs, 1e4),
            throughput: ((total - self.errors) as f64 / secs).round(),
            mean_us: round(mean, 100.0),
            p50_us: round(pct(50.0), 100.0),
            p99_us: round(pct(99.0), 100.0),
            p999_us: round(pct(99.9), 100.0),
            max_us: round(lat.last().map_or(0.0, |&x| x as f64 / 1e3), 100.0),
            client_cpu_s: None,
            server_cpu_s: None,
            cpu_us_per_call: None,
        }
    }
}

fn round(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

fn format_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.0}µs")
    }
}

/// One call: the reply must be the message with field1 "OK" and field2 100; otherwise why not.
/// What the workers call through: a session, or a pool (`--pool`).
#[derive(Clone)]
enum Via {
    Session(Session),
    Pool(Pool),
    /// A service's live instances, and the number of the next call (its hash key).
    #[cfg(feature = "discovery")]
    Service(erpc_discovery::ServiceClient, Arc<std::sync::atomic::AtomicU64>),
}

async fn call_once(via: &Via, args: &Protobuf<BenchmarkMessage>) -> Result<(), String> {
    let call = match via {
        Via::Session(session) => session.call::<_, Protobuf<BenchmarkMessage>>("Hello.Say", args),
        Via::Pool(pool) => pool.call::<_, Protobuf<BenchmarkMessage>>("Hello.Say", args),
        #[cfg(feature = "discovery")]
        Via::Service(service, next) => {
            let key = next.fetch_add(1, Ordering::Relaxed);
            let call = service
                .call::<_, Protobuf<BenchmarkMessage>>("Hello.Say", args)
                .codec(CodecId::PROTOBUF)
                .idempotent()
                .hash_key(key.to_le_bytes());
            return check_reply(call.await);
        }
    };
    check_reply(call.codec(CodecId::PROTOBUF).await)
}

fn check_reply(reply: Result<Protobuf<BenchmarkMessage>, erpc::Status>) -> Result<(), String> {
    match reply {
        Ok(Protobuf(reply)) if reply.field1 == "OK" && reply.field2 == 100 => Ok(()),
        Ok(Protobuf(reply)) => Err(format!(
            "wrong reply (field1 {:?}, field2 {}; expected \"OK\" and 100)",
            reply.field1, reply.field2
        )),
        Err(status) => Err(status.to_string()),
    }
}

/// Why calls failed, and how often: the first [`Failures::KEEP`] distinct reasons.
#[derive(Default)]
struct Failures {
    counts: Vec<(String, usize)>,
    other: usize,
}

impl Failures {
    const KEEP: usize = 5;

    fn add(&mut self, reason: String, times: usize) {
        if let Some(entry) = self.counts.iter_mut().find(|(r, _)| *r == reason) {
            entry.1 += times;
        } else if self.counts.len() < Self::KEEP {
            self.counts.push((reason, times));
        } else {
            self.other += times;
        }
    }

    fn merge(&mut self, other: Failures) {
        for (reason, times) in other.counts {
            self.add(reason, times);
        }
        self.other += other.other;
    }

    /// `3× code=408&msg=…; 1× wrong reply (…)`, most frequent first.
    fn summary(&self) -> String {
        let mut counts = self.counts.clone();
        counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n}× {r}")).collect();
        if self.other > 0 {
            parts.push(format!("{}× other reasons", self.other));
        }
        parts.join("; ")
    }
}

async fn measure(
    addr: &str,
    proto: Arc<dyn erpc::proto::Proto>,
    config: &PeerConfig,
    args: &BenchArgs,
    concurrency: usize,
) -> Result<Measured, String> {
    let total = args.total;
    let concurrency = concurrency.clamp(1, total.max(1));
    let mut config = config.clone();
    if config.redial_times == 0 {
        // A server that restarts gracefully (SIGUSR2) moves its clients to the new process;
        // only clients that redial can follow.
        config.redial_times = 3;
    }
    // A lost instance should fail its calls at once (and be dropped), not be redialed.
    #[cfg(feature = "discovery")]
    let config = match &args.target {
        Some(_) => crate::discovery::without_redial(config),
        None => config,
    };
    let mut client = Peer::builder().config(config.clone());
    if config.network == Network::Wss {
        // The server child's certificate is self-signed.
        client = client.tls_client(erpc::net::tls::dangerous_insecure_client_config());
    }
    let client = args
        .peer
        .client_plugins(client)
        .map_err(|e| match e {
            CliError::Usage(why) | CliError::Failed(why) => why,
            CliError::Status(status) => status.to_string(),
        })?
        .build()
        .map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    #[cfg(feature = "discovery")]
    if let Some(target) = &args.target {
        let service = crate::discovery::connect(&client, target, args.balance, args.pool)
            .await
            .map_err(|e| match e {
                CliError::Usage(why) | CliError::Failed(why) => why,
                CliError::Status(status) => status.to_string(),
            })?;
        targets.push(Via::Service(service, Arc::default()));
    }
    match args.pool {
        _ if !targets.is_empty() => {}
        Some(size) => targets.push(Via::Pool(Pool::with_proto(
            &client,
            addr,
            proto.clone(),
            PoolConfig {
                max_sessions: size,
                ..PoolConfig::default()
            },
        ))),
        None => {
            let sessions = tokio::spawn(dial_all(client.clone(), addr.to_string(), proto.clone(), args.conns))
                .await
                .map_err(|e| format!("dialing failed: {e}"))??;
            targets.extend(sessions.into_iter().map(Via::Session));
        }
    }
    let message = Arc::new(Protobuf(prepare_args()));
    let barrier = Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let quota = total / concurrency + usize::from(w < total % concurrency);
        let session = targets[w % targets.len()].clone();
        let (barrier, message, done, warmup) = (barrier.clone(), message.clone(), done.clone(), args.warmup);
        // Only the progress bar reads the count: `--json` runs skip the shared counter, so
        // they measure exactly what bench-peers' driver does.
        let count = args.draws_progress();
        workers.push(tokio::spawn(async move {
            for _ in 0..warmup {
                let _ = call_once(&session, &message).await;
            }
            barrier.wait().await;
            let mut latencies = Vec::with_capacity(quota);
            let mut errors = 0;
            let mut failures = Failures::default();
            for _ in 0..quota {
                let started = Instant::now();
                match call_once(&session, &message).await {
                    Ok(()) => latencies.push(started.elapsed().as_nanos() as u64),
                    Err(reason) => {
                        errors += 1;
                        failures.add(reason, 1);
                    }
                }
                if count {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            (latencies, errors, failures)
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let progress = args
        .draws_progress()
        .then(|| Progress::start(done.clone(), total, args.progress));
    let mut measured = Measured {
        instance_calls: None,
        latencies_ns: Vec::with_capacity(total),
        errors: 0,
        failures: Failures::default(),
        elapsed: Duration::ZERO,
    };
    for worker in workers {
        match worker.await {
            Ok((latencies, errors, failures)) => {
                measured.latencies_ns.extend(latencies);
                measured.errors += errors;
                measured.failures.merge(failures);
            }
            Err(e) => {
                measured.errors += 1;
                measured.failures.add(format!("a worker task failed: {e}"), 1);
            }
        }
    }
    measured.elapsed = started.elapsed();
    if let Some(p) = progress {
        p.finish();
    }
    measured.latencies_ns.sort_unstable();
    #[cfg(feature = "discovery")]
    if let Some(Via::Service(service, _)) = targets.first() {
        measured.instance_calls = Some(instance_calls(service));
        service.close().await;
    }
    client.close().await;
    Ok(measured)
}

/// Dials `count` sessions a few hundred at a time, as bench-peers' workers connect all at
/// once: one after another, each dial would park and wake the runtime's threads on its own.
/// Run as a task: joined from the thread that blocks on the runtime, every dial would wake
/// that thread (thousands of futex calls for 5,000 sessions, counted in the client's CPU).
async fn dial_all(
    client: Peer,
    addr: String,
    proto: Arc<dyn erpc::proto::Proto>,
    count: usize,
) -> Result<Vec<Session>, String> {
    const DIALING: usize = 256;
    let mut to_dial = count.max(1);
    let mut dialing = tokio::task::JoinSet::new();
    let mut sessions = Vec::with_capacity(to_dial);
    loop {
        while to_dial > 0 && dialing.len() < DIALING {
            to_dial -= 1;
            let (client, addr, proto) = (client.clone(), addr.clone(), proto.clone());
            dialing.spawn(async move {
                client
                    .dial_with(&addr, proto)
                    .await
                    .map_err(|s| format!("cannot dial {addr}: {s}"))
            });
        }
        let Some(dialed) = dialing.join_next().await else { break };
        sessions.push(dialed.map_err(|e| format!("a dial failed: {e}"))??);
    }
    Ok(sessions)
}

/// The calls each instance answered, one line each.
#[cfg(feature = "discovery")]
fn instance_calls(service: &erpc_discovery::ServiceClient) -> String {
    let lines: Vec<String> = service
        .stats()
        .iter()
        .map(|s| {
            let state = if s.live { "" } else { " (gone)" };
            format!(
                "  instance {} at {}: {} calls, {} connection failures{state}",
                s.id, s.addr, s.calls, s.failures
            )
        })
        .collect();
    format!("calls per instance:\n{}", lines.join("\n"))
}

/// When `bench` draws its progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Only when stderr is a terminal.
    Auto,
    /// Also when stderr is a pipe or a file.
    Always,
    /// Never.
    Never,
}

impl BenchArgs {
    fn draws_progress(&self) -> bool {
        !self.json && self.progress != ProgressMode::Never
    }
}

/// The progress bar on stderr, drawn by `indicatif`, which draws nothing when stderr is not
/// a terminal (unless `--progress always`). The workers only count into `done`; the bar reads
/// it five times a second.
struct Progress {
    bar: indicatif::ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(done: Arc<AtomicUsize>, total: usize, mode: ProgressMode) -> Progress {
        let target = match mode {
            ProgressMode::Always => indicatif::ProgressDrawTarget::term_like_with_hz(Box::new(StderrLine), 5),
            _ => indicatif::ProgressDrawTarget::stderr_with_hz(5),
        };
        let bar = indicatif::ProgressBar::with_draw_target(Some(total as u64), target).with_style(
            indicatif::ProgressStyle::with_template("[{bar:40}] {percent:>3}% {pos}/{len}")
                .expect("a valid template")
                .progress_chars("## "),
        );
        let ticker = tokio::spawn({
            let bar = bar.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tick.tick().await;
                    bar.set_position(done.load(Ordering::Relaxed).min(total) as u64);
                }
            }
        });
        Progress { bar, ticker }
    }

    /// Stops the bar and clears its line.
    fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

/// stderr as a one-line terminal whatever it is (`--progress always`): each update starts
/// with `\r` and overwrites the line; no cursor movement, which one bar never needs.
#[derive(Debug)]
struct StderrLine;

impl indicatif::TermLike for StderrLine {
    fn width(&self) -> u16 {
        80
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        writeln!(std::io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        write!(std::io::stderr(), "{s}")
    }
    fn clear_line(&self) -> std::io::Result<()> {
        write!(std::io::stderr(), "\r{:80}\r", "")
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The server as a child process: `erpc serve` on a free loopback port, stopped when its
/// stdin closes or when dropped.
pub(crate) struct ServerChild {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl ServerChild {
    /// Starts `erpc serve` with `peer`'s options.
    pub(crate) fn start(proto: &str, peer: &PeerArgs, network: Option<Network>) -> Result<ServerChild, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the erpc executable: {e}"))?;
        let listen = match network {
            Some(Network::Unix | Network::Unixpacket) => {
                let path = std::env::temp_dir().join(format!("erpc-bench-{}.sock", std::process::id()));
                let _ = std::fs::remove_file(&path);
                path.display().to_string()
            }
            _ => "127.0.0.1:0".to_string(),
        };
        let mut child = Command::new(exe)
            .args([
                "serve",
                "--listen",
                &listen,
                "--push-interval",
                "0",
                "--proto",
                proto,
                "--exit-on-stdin-eof",
            ])
            .args(peer.to_args())
            .args(
                network
                    .map(|n| ["--network".to_string(), network_name(n)])
                    .into_iter()
                    .flatten(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let stdout = child.stdout.take().ok_or("the server has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the server's address: {e}"))?;
        // `listening on ADDR (network, proto)`.
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or_else(|| format!("the server did not print its address (got {line:?})"))?
            .to_string();
        Ok(ServerChild { child, addr })
    }

    pub(crate) fn stop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// User+system CPU seconds of a process (`None` = this one), from `/proc`.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks of 1/100 s on every architecture it runs on today.
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::Failures;

    #[test]
    fn failures_keep_the_first_distinct_reasons_most_frequent_first() {
        let mut failures = Failures::default();
        failures.add("code=102".into(), 1);
        let mut other = Failures::default();
        other.add("code=408".into(), 3);
        other.add("code=102".into(), 1);
        failures.merge(other);
        for n in 0..6 {
            failures.add(format!("reason {n}"), 1);
        }
        assert_eq!(
            failures.summary(),
            "3× code=408; 2× code=102; 1× reason 0; 1× reason 1; 1× reason 2; 3× other reasons"
        );
    }
}
