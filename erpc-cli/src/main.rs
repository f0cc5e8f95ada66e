//! `erpc`: serve, call, push, watch and benchmark eRPC services from the command line.
//!
//! ```text
//! erpc demo                                   # a server and a client talking, in one process
//! erpc serve --listen 127.0.0.1:9090          # the demo service
//! erpc serve --config erpc.toml               # any PeerConfig key, from TOML, YAML, JSON or INI
//! ERPC_CALL_TIMEOUT=5s erpc call …             # or from ERPC_* variables; flags win over both
//! erpc config print --config erpc.toml        # the effective configuration, and where each value came from
//! erpc config check erpc.toml                 # every key known, every value valid
//! erpc call 127.0.0.1:9090 /math/add '[1,2,3]'
//! erpc serve --listen 127.0.0.1:0 --register etcd://127.0.0.1:2379/math   # found by name
//! erpc call etcd://127.0.0.1:2379/math /math/add '[1,2,3]'
//! erpc push 127.0.0.1:9090 /push/status '"hi"'
//! erpc watch 127.0.0.1:9090 --count 3
//! erpc bench -c 100,1000 -n 200000            # the seed's self test
//! erpc bench --idle 4000                      # server memory per idle session
//! ```

mod bench;
mod bench_idle;
mod bench_message;
mod call;
mod client;
mod config_cmd;
mod demo;
mod demo_service;
#[cfg(feature = "discovery")]
mod discovery;
mod logging;
mod peer_args;
mod plot;
mod serve;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Serve, call and benchmark eRPC services (wire-compatible with Go eRPC v7).
#[derive(Parser, Debug)]
#[command(name = "erpc", version, about)]
struct Cli {
    /// More logging: -v for info, -vv for debug (or set RUST_LOG).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a demo server and client in one process: calls, an error, a push.
    Demo(demo::DemoArgs),
    /// Serve the demo service until interrupted.
    Serve(serve::ServeArgs),
    /// Call a service method and print the reply body.
    Call(call::CallArgs),
    /// Push to a service method.
    Push(call::PushArgs),
    /// Print the pushes a server sends.
    Watch(watch::WatchArgs),
    /// Show the effective peer configuration and where each value came from, or check a file.
    Config(config_cmd::ConfigArgs),
    /// Benchmark `Hello.Say` with the seed's 581-byte protobuf message, or idle-session memory.
    #[command(after_help = BENCH_HELP)]
    Bench(bench::BenchArgs),
}

const BENCH_HELP: &str = "\
Examples:
  erpc bench -c 100,1000 -n 200000                   one multiplexed session, table
  erpc bench --json -c 1000 --conns 1000 --name erpc-conns
                                                     one session per worker, bench-peers' JSON line
  erpc bench --idle 4000                             erpc serve's RSS growth per idle session
  erpc bench --idle 4000 --json --name raw-conns -- bench-peers server --framework raw-conns --addr {addr}
                                                     the same for another server command

--idle N starts the server as a child process, reads its VmRSS (/proc/PID/status) once it has
settled, opens N TCP connections that never send a byte and keeps them open, waits until the
server holds N more descriptors (/proc/PID/fd) and its RSS has settled again, and prints the
growth in KiB, in total and per session; with --json one line:
  {\"framework\",\"idle_sessions\",\"rss_before_kib\",\"rss_after_kib\",\"kib_per_session\"}
The open-files limit is raised as far as needed (up to the hard limit) for both processes.";

/// How a command failed, and so its exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad flags or input (exit 2).
    Usage(String),
    /// The server answered with an error status (exit 1).
    Status(erpc::Status),
    /// Anything else that went wrong (exit 1).
    Failed(String),
}

fn main() -> ExitCode {
    // Sockets passed by a rebooting parent or by systemd (LISTEN_FDS…), taken before any
    // thread starts, since taking them removes the variables from the environment.
    #[cfg(unix)]
    // SAFETY: no other thread exists yet.
    let inherited = match unsafe { erpc::reboot::take_listen_env() } {
        Ok(sockets) => sockets,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse();
    let logs = logging::init(cli.verbose);
    #[cfg(unix)]
    if inherited > 0 {
        tracing::info!(sockets = inherited, "listening sockets inherited (LISTEN_FDS)");
    }

    let result = match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Config(args) => config_cmd::run(args),
        command => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(async move {
                match command {
                    Command::Demo(args) => demo::run(args).await,
                    Command::Serve(args) => serve::run(args).await,
                    Command::Call(args) => call::call(args).await,
                    Command::Push(args) => call::push(args).await,
                    Command::Watch(args) => watch::run(args).await,
                    Command::Bench(_) | Command::Config(_) => unreachable!("handled above"),
                }
            }),
            Err(e) => Err(CliError::Failed(format!("cannot start the async runtime: {e}"))),
        },
    };
    // The last log lines go before the error.
    drop(logs);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(CliError::Status(status)) => {
            eprintln!(
                "error: code={} msg={:?} cause={:?}",
                status.code().get(),
                status.msg(),
                status.cause().unwrap_or_default()
            );
            ExitCode::from(1)
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}
