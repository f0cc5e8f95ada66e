//! `erpc demo`: a real server and client in one process, talking over loopback TCP.

use std::time::Duration;

use clap::Args;
use erpc::codec::Protobuf;
use erpc::router::PushCtx;
use erpc::{Peer, PeerConfig, Router, Status};
use tokio::sync::mpsc;

use crate::bench_message::{BenchmarkMessage, prepare_args};
use crate::peer_args::{PeerArgs, network_name};
use crate::{CliError, demo_service};

/// Flags of `erpc demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    // The configuration of both peers (the server listens on its local_ip:listen_port).
    #[command(flatten)]
    peer: PeerArgs,
}

/// `erpc demo`'s defaults: both ends in this process, on loopback, the server on a free port
/// unless told otherwise.
pub fn defaults() -> PeerConfig {
    PeerConfig {
        local_ip: "127.0.0.1".into(),
        ..PeerConfig::default()
    }
}

/// Starts the demo service, calls it, waits for a push, and closes both ends.
pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::Failed(e.to_string());
    // Both ends in this process, on loopback, the server on a free port unless told otherwise.
    let config = args.peer.resolve("erpc demo", defaults(), |loader| loader)?;

    let server = args
        .peer
        .server_plugins(Peer::builder().config(config.clone()).router(demo_service::router()))?
        .build()
        .map_err(|e| failed(&e))?;
    let addr = server.listen().await.map_err(|e| failed(&e))?;
    println!(
        "server: listening on {addr} ({}, rawproto)",
        network_name(config.network)
    );
    let pusher = tokio::spawn(demo_service::push_status(server.clone(), Duration::from_millis(300)));

    let (pushes_tx, mut pushes) = mpsc::unbounded_channel();
    let mut client_routes = Router::new();
    client_routes.push_at(demo_service::PUSH_ROUTE, move |ctx: PushCtx, text: String| {
        let pushes_tx = pushes_tx.clone();
        async move {
            let _ = pushes_tx.send((ctx.service_method().to_string(), text));
            Ok::<_, Status>(())
        }
    });
    let client = args
        .peer
        .client_plugins(Peer::builder().config(config).router(client_routes))?
        .build()
        .map_err(|e| failed(&e))?;
    let session = client
        .dial(&addr)
        .await
        .map_err(|e| CliError::Status(e.into_status()))?;
    println!("client: connected to {addr} as {}", session.id());

    let reply = session
        .call::<_, i64>("/math/add", &[1, 2, 3, 4, 5])
        .meta("author", "andeya")
        .reply()
        .await
        .map_err(CliError::Status)?;
    let author = reply.meta.get_str("author").unwrap_or("-");
    println!(
        "client: CALL /math/add [1,2,3,4,5] -> {} (reply meta author={author})",
        reply.body
    );

    let echoed: String = session
        .call("/echo/parrot", "hello, erpc")
        .await
        .map_err(CliError::Status)?;
    println!("client: CALL /echo/parrot \"hello, erpc\" -> {echoed:?}");

    let err = session
        .call::<_, ()>("/err/custom", &())
        .await
        .expect_err("/err/custom always fails");
    println!(
        "client: CALL /err/custom -> error code={} msg={:?} cause={:?}",
        err.code().get(),
        err.msg(),
        err.cause().unwrap_or_default()
    );

    let Protobuf(said): Protobuf<BenchmarkMessage> = session
        .call("Hello.Say", &Protobuf(prepare_args()))
        .codec(erpc::CodecId::PROTOBUF)
        .await
        .map_err(CliError::Status)?;
    println!(
        "client: CALL Hello.Say <581-byte protobuf BenchmarkMessage> -> field1={:?} field2={}",
        said.field1, said.field2
    );

    let (route, text) = tokio::time::timeout(Duration::from_secs(5), pushes.recv())
        .await
        .ok()
        .flatten()
        .ok_or_else(|| CliError::Failed("no push arrived within 5 s".into()))?;
    println!("client: PUSH received {route} {text:?}");

    pusher.abort();
    client.close().await;
    server.close().await;
    println!("closed both peers; bye");
    Ok(())
}
