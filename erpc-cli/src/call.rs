//! `erpc call` and `erpc push`: one message to a running server.

use clap::Args;
use erpc::{Pool, PoolConfig, Raw, Router};

use crate::CliError;
use crate::client::{Connection, Payload, codec_id, show_body};

/// Flags of `erpc call`.
#[derive(Args, Debug)]
pub struct CallArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    payload: Payload,
    /// Print the reply's meta, one `key: value` line each, on stderr.
    #[arg(long)]
    show_meta: bool,
    /// Call through a session pool of at most N sessions (as a pooled client would).
    #[arg(long, value_name = "N")]
    pool: Option<usize>,
    /// Server address (`host:port`, or a socket path with --network unix).
    addr: String,
    /// Route, e.g. `/math/add`.
    service_method: String,
    /// Body: JSON for the json codec, text for plain.
    body: Option<String>,
}

/// Flags of `erpc push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    payload: Payload,
    /// Server address.
    addr: String,
    /// Route, e.g. `/push/status`.
    service_method: String,
    /// Body: JSON for the json codec, text for plain.
    body: Option<String>,
}

/// Calls and prints the reply body on stdout.
pub async fn call(args: CallArgs) -> Result<(), CliError> {
    let config = args
        .connection
        .config("erpc call", |loader| args.payload.apply(loader))?;
    let codec = codec_id(&config.default_body_codec).map_err(CliError::Usage)?;
    let body = Raw(Payload::body(&config.default_body_codec, args.body.as_deref())?);
    // Kept alive until the call is done: a dropped peer closes its sessions.
    let (peer, target) = match args.pool {
        Some(size) => {
            let peer = args.connection.peer(config, Router::new())?;
            let pool = Pool::with_proto(
                &peer,
                args.addr.clone(),
                args.connection.proto()?,
                PoolConfig {
                    max_sessions: size,
                    ..PoolConfig::default()
                },
            );
            (peer, Target::Pool(pool))
        }
        None => {
            let (peer, session) = args.connection.dial(config, &args.addr, Router::new()).await?;
            (peer, Target::Session(session))
        }
    };
    // The reply is waited for as long as the config's call_timeout (`--timeout`).
    let call = match &target {
        Target::Session(session) => session.call::<_, Raw>(&args.service_method, &body),
        Target::Pool(pool) => pool.call::<_, Raw>(&args.service_method, &body),
    };
    let mut call = call.codec(codec);
    for (k, v) in &args.payload.meta {
        call = call.meta(k.clone(), v.clone());
    }
    let reply = call.reply().await;
    peer.close().await;
    let reply = reply.map_err(CliError::Status)?;
    if args.show_meta {
        for (k, v) in reply.meta.iter() {
            eprintln!("{}: {}", String::from_utf8_lossy(k), String::from_utf8_lossy(v));
        }
    }
    println!("{}", show_body(reply.codec, &reply.body.0));
    Ok(())
}

/// Where `erpc call` sends.
enum Target {
    Session(erpc::Session),
    Pool(Pool),
}

/// Pushes; succeeds once the message is written.
pub async fn push(args: PushArgs) -> Result<(), CliError> {
    let config = args
        .connection
        .config("erpc push", |loader| args.payload.apply(loader))?;
    let codec = codec_id(&config.default_body_codec).map_err(CliError::Usage)?;
    let body = Raw(Payload::body(&config.default_body_codec, args.body.as_deref())?);
    let (peer, session) = args.connection.dial(config, &args.addr, Router::new()).await?;
    let mut push = session.push(&args.service_method, &body).codec(codec);
    for (k, v) in &args.payload.meta {
        push = push.meta(k.clone(), v.clone());
    }
    let pushed = push.await;
    peer.close().await;
    pushed.map_err(CliError::Status)
}
