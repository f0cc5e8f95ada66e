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
    /// Call through a session pool of at most N sessions (as a pooled client would); with an
    /// etcd:// address, a pool of N per instance.
    #[arg(long, value_name = "N")]
    pool: Option<usize>,
    /// With an etcd:// address: the call may be sent again to another instance after a
    /// connection failure (only for calls safe to repeat).
    #[cfg(feature = "discovery")]
    #[arg(long)]
    idempotent: bool,
    /// Server address (`host:port`, or a socket path with --network unix), or
    /// `etcd://HOST:PORT/SERVICE`: a live instance of a service registered in etcd.
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
    /// With an etcd:// address: the push may be sent again to another instance after a
    /// connection failure.
    #[cfg(feature = "discovery")]
    #[arg(long)]
    idempotent: bool,
    /// Server address, or `etcd://HOST:PORT/SERVICE`: a live instance of a registered service.
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
    #[cfg(feature = "discovery")]
    if erpc_discovery::EtcdTarget::is_target(&args.addr) {
        return call_service(&args, config, codec, &body).await;
    }
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
    print_reply(reply, args.show_meta)
}

/// `erpc call etcd://HOST:PORT/SERVICE …`: through a client that balances over the service's
/// live instances.
#[cfg(feature = "discovery")]
async fn call_service(
    args: &CallArgs,
    config: erpc::PeerConfig,
    codec: erpc::CodecId,
    body: &Raw,
) -> Result<(), CliError> {
    let peer = args
        .connection
        .peer(crate::discovery::without_redial(config), Router::new())?;
    let service = crate::discovery::connect(&peer, &args.addr, erpc_discovery::Balance::RoundRobin, args.pool).await?;
    let mut call = service.call::<_, Raw>(&args.service_method, body).codec(codec);
    for (k, v) in &args.payload.meta {
        call = call.meta(k.clone(), v.clone());
    }
    if args.idempotent {
        call = call.idempotent();
    }
    let reply = call.reply().await;
    service.close().await;
    peer.close().await;
    print_reply(reply, args.show_meta)
}

fn print_reply(reply: Result<erpc::session::Reply<Raw>, erpc::Status>, show_meta: bool) -> Result<(), CliError> {
    let reply = reply.map_err(CliError::Status)?;
    if show_meta {
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
    #[cfg(feature = "discovery")]
    if erpc_discovery::EtcdTarget::is_target(&args.addr) {
        return push_service(&args, config, codec, &body).await;
    }
    let (peer, session) = args.connection.dial(config, &args.addr, Router::new()).await?;
    let mut push = session.push(&args.service_method, &body).codec(codec);
    for (k, v) in &args.payload.meta {
        push = push.meta(k.clone(), v.clone());
    }
    let pushed = push.await;
    peer.close().await;
    pushed.map_err(CliError::Status)
}

/// `erpc push etcd://HOST:PORT/SERVICE …`: to one live instance of the service.
#[cfg(feature = "discovery")]
async fn push_service(
    args: &PushArgs,
    config: erpc::PeerConfig,
    codec: erpc::CodecId,
    body: &Raw,
) -> Result<(), CliError> {
    let peer = args
        .connection
        .peer(crate::discovery::without_redial(config), Router::new())?;
    let service = crate::discovery::connect(&peer, &args.addr, erpc_discovery::Balance::RoundRobin, None).await?;
    let mut push = service.push(&args.service_method, body).codec(codec);
    for (k, v) in &args.payload.meta {
        push = push.meta(k.clone(), v.clone());
    }
    if args.idempotent {
        push = push.idempotent();
    }
    let pushed = push.await;
    service.close().await;
    peer.close().await;
    pushed.map_err(CliError::Status)
}
