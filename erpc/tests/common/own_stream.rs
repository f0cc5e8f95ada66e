//! What the tests of the networks that run their own stream over UDP (QUIC, KCP) share: the
//! router both ends use, a server and a client for a network's config, and the scenarios each
//! such network must carry the same way.
#![allow(dead_code)]

use std::future::IntoFuture;

use erpc::router::{CallCtx, PushCtx};
use erpc::{Peer, PeerBuilder, PeerConfig, Raw, Router, Session, Status};

use crate::common::{Events, within};

/// `/math/add`, `/math/fail` (an error status), `/echo/raw` (bytes back), `/slow/wait` (answers
/// once its session is closing; noted when it starts), and `/push/status` noting what it
/// receives.
pub fn router(pushes: Events) -> Router {
    let mut router = Router::new();
    router.call_at(
        "/math/add",
        |nums: Vec<i64>| async move { Ok(nums.iter().sum::<i64>()) },
    );
    router.call_at("/math/fail", |_: Vec<i64>| async move {
        Err::<i64, _>(Status::with_cause(4001, "no such sum", "negative"))
    });
    router.call_at("/echo/raw", |body: Raw| async move { Ok(body) });
    let started = pushes.clone();
    router.call_at("/slow/wait", move |ctx: CallCtx, n: i64| {
        let started = started.clone();
        async move {
            started.note("slow call started");
            ctx.session().closed().await;
            Ok(n)
        }
    });
    router.push_at("/push/status", move |_: PushCtx, text: String| {
        let pushes = pushes.clone();
        async move {
            pushes.note(text);
            Ok::<_, Status>(())
        }
    });
    router
}

/// A server with `config` and [`router`] listening on `addr`: the peer, its address, and the
/// events its routes note.
pub async fn server_with(builder: PeerBuilder, config: PeerConfig, addr: &str) -> (Peer, String, Events) {
    let pushes = Events::default();
    let server = builder.config(config).router(router(pushes.clone())).build().unwrap();
    let bound = server.listen_on(addr).await.unwrap();
    (server, bound, pushes)
}

/// A client with `config` whose router notes the pushes it gets in `pushes`.
pub fn client(config: PeerConfig, pushes: &Events) -> Peer {
    Peer::builder()
        .config(config)
        .router(router(pushes.clone()))
        .build()
        .unwrap()
}

/// `/math/add` with `nums`, which must answer.
pub async fn add(session: &Session, nums: &[i64]) -> i64 {
    within("call", session.call("/math/add", &nums).into_future())
        .await
        .unwrap()
}

/// An error status and a 1 MiB body, both ways unchanged.
pub async fn an_error_and_a_large_body(session: &Session) {
    let err = within("failing call", session.call::<_, i64>("/math/fail", &[1]).into_future())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code().get(), err.msg(), err.cause()),
        (4001, "no such sum", Some("negative"))
    );
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let back: Raw = within(
        "1 MiB echo",
        session.call("/echo/raw", &Raw(big.clone().into())).into_future(),
    )
    .await
    .unwrap();
    assert_eq!(back.0.len(), big.len());
    assert!(back.0 == big, "the 1 MiB body comes back unchanged");
}

/// A push from the client, then a broadcast from the server back.
pub async fn pushes_go_both_ways(config: PeerConfig) {
    let (server, addr, server_pushes) = server_with(Peer::builder(), config.clone(), "127.0.0.1:0").await;
    let client_pushes = Events::default();
    let client = client(config, &client_pushes);
    let session = within("dial", client.dial(&addr)).await.unwrap();
    within("push", session.push("/push/status", "from client").into_future())
        .await
        .unwrap();
    assert_eq!(within("push arrives", server_pushes.wait_len(1)).await, ["from client"]);

    let broadcast = within("broadcast", server.broadcast("/push/status", "from server")).await;
    assert_eq!(broadcast.failed.len(), 0, "{broadcast:?}");
    assert_eq!(within("push back", client_pushes.wait_len(1)).await, ["from server"]);
}

/// A server's graceful close lets a running handler answer; returns the client's session.
pub async fn a_running_handler_answers_a_graceful_close(config: PeerConfig) -> (Peer, Session, String) {
    let (server, addr, events) = server_with(Peer::builder(), config.clone(), "127.0.0.1:0").await;
    let client = client(config, &Events::default());
    let session = within("dial", client.dial(&addr)).await.unwrap();
    let waiting = tokio::spawn({
        let session = session.clone();
        async move { session.call::<_, i64>("/slow/wait", &7).await }
    });
    within("the handler starts", events.wait_len(1)).await;
    within("server close", server.close()).await;
    assert_eq!(within("reply", waiting).await.unwrap().unwrap(), 7);
    (client, session, addr)
}

/// Three dials from one client are three sessions, on both ends.
pub async fn each_dialed_session_has_an_address_of_its_own(config: PeerConfig) {
    let (server, addr, _) = server_with(Peer::builder(), config.clone(), "127.0.0.1:0").await;
    let client = client(config, &Events::default());
    let mut ids = Vec::new();
    for _ in 0..3 {
        let session = within("dial", client.dial(&addr)).await.unwrap();
        add(&session, &[1]).await;
        ids.push(session.id().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(client.count_sessions(), 3);
    assert_eq!(server.count_sessions(), 3);
}

/// Calls (and pushes, where the protocol has them) in every protocol Go runs over a stream.
pub async fn every_protocol_runs(config: PeerConfig) {
    for name in ["raw", "json", "pb", "http", "thrift"] {
        let proto = erpc::proto::by_name(name).unwrap();
        let (_server, addr, pushes) =
            server_with(Peer::builder().proto(proto.clone()), config.clone(), "127.0.0.1:0").await;
        let client = Peer::builder().config(config.clone()).proto(proto).build().unwrap();
        let session = within("dial", client.dial(&addr)).await.unwrap();
        let sum: i64 = within(name, session.call("/math/add", &[20, 22]).into_future())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sum, 42, "{name}");
        if name != "http" {
            // httproto carries calls and replies only.
            within(name, session.push("/push/status", name).into_future())
                .await
                .unwrap();
            assert_eq!(within("push arrives", pushes.wait_len(1)).await, [name]);
        }
    }
}

/// Notes every PreDial: the first dial, then each redial's start.
pub struct DialStarts(pub Events);

impl erpc::plugin::Plugin for DialStarts {
    fn name(&self) -> &str {
        "dial-starts"
    }
    fn pre_dial(&self, _: &str, remote_addr: &str) -> erpc::plugin::HookResult {
        self.0.note(remote_addr);
        Ok(())
    }
}
