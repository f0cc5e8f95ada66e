//! Router, plugin and session features over real loopback sockets.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Events, within};

use erpc::Code;
use erpc::message::Message;
use erpc::plugin::{HookResult, IgnoreCase, Plugin};
use erpc::router::{CallCtx, NameMapper, PushCtx};
use erpc::session::Session;
use erpc::{CodecId, Peer, PeerConfig, Raw, Router, Status};

async fn pair(router: Router, server_config: PeerConfig, plugins: Vec<Recorder>) -> (Peer, Peer, Session) {
    let mut builder = Peer::builder().router(router).config(server_config);
    for p in plugins {
        builder = builder.plugin(p);
    }
    let server = builder.build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    (server, client, session)
}

/// Records the hooks it sees, in order.
#[derive(Clone)]
struct Recorder {
    name: &'static str,
    seen: Events,
}

impl Recorder {
    fn new(name: &'static str, seen: &Events) -> Self {
        Recorder {
            name,
            seen: seen.clone(),
        }
    }
    fn note(&self, hook: &str) -> HookResult {
        self.seen.note(format!("{}:{hook}", self.name));
        Ok(())
    }
}

impl Plugin for Recorder {
    fn name(&self) -> &str {
        self.name
    }
    fn post_read_call_header(&self, _: &Session, _: &mut Message) -> HookResult {
        self.note("post_read_call_header")
    }
    fn pre_read_call_body(&self, _: &Session, _: &mut Message) -> HookResult {
        self.note("pre_read_call_body")
    }
    fn post_read_call_body(&self, _: &Session, _: &Message) -> HookResult {
        self.note("post_read_call_body")
    }
    fn pre_write_reply(&self, _: &Session, _: &mut Message) -> HookResult {
        self.note("pre_write_reply")
    }
    fn post_write_reply(&self, _: &Session, _: &Message) -> HookResult {
        self.note("post_write_reply")
    }
}

#[tokio::test]
async fn hooks_run_in_go_order_peer_plugins_before_group_plugins() {
    let seen = Events::default();
    let mut router = Router::new();
    router
        .group("g")
        .plugin(Recorder::new("group", &seen))
        .call("echo", |s: String| async move { Ok(s) });
    let (_s, _c, session) = pair(router, PeerConfig::default(), vec![Recorder::new("peer", &seen)]).await;
    let out: String = session.call("/g/echo", "x").await.unwrap();
    assert_eq!(out, "x");
    // post_write_reply runs after the write, maybe after the reply is in: wait for all nine.
    assert_eq!(
        seen.wait_len(9).await,
        [
            "peer:post_read_call_header",
            "peer:pre_read_call_body",
            "group:pre_read_call_body",
            "peer:post_read_call_body",
            "group:post_read_call_body",
            "peer:pre_write_reply",
            "group:pre_write_reply",
            "peer:post_write_reply",
            "group:post_write_reply",
        ]
    );
}

struct Deny;

impl Plugin for Deny {
    fn name(&self) -> &str {
        "deny"
    }
    fn post_read_call_body(&self, _: &Session, msg: &Message) -> HookResult {
        if msg.meta.get_str("token") == Some("secret") {
            Ok(())
        } else {
            Err(Status::new(Code::UNAUTHORIZED, "Unauthorized"))
        }
    }
}

#[tokio::test]
async fn a_failing_hook_becomes_the_reply_and_skips_the_handler() {
    let mut router = Router::new();
    router
        .group("admin")
        .plugin(Deny)
        .call("ping", |_: ()| async move { Ok("pong".to_string()) });
    router.call("open", |_: ()| async move { Ok("open".to_string()) });
    let (_s, _c, session) = pair(router, PeerConfig::default(), vec![]).await;
    let err = session.call::<_, String>("/admin/ping", &()).await.unwrap_err();
    assert_eq!(err, Status::new(Code::UNAUTHORIZED, "Unauthorized"));
    let ok: String = session.call("/admin/ping", &()).meta("token", "secret").await.unwrap();
    assert_eq!(ok, "pong");
    // The group's plugin does not apply outside the group.
    assert_eq!(session.call::<_, String>("/open", &()).await.unwrap(), "open");
}

#[tokio::test]
async fn ignorecase_lowers_the_service_method() {
    let mut router = Router::new();
    router
        .group("math")
        .call("add", |n: Vec<i64>| async move { Ok(n.iter().sum::<i64>()) });
    let server = Peer::builder().router(router).plugin(IgnoreCase).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    assert_eq!(session.call::<_, i64>("/Math/ADD", &[1, 2]).await.unwrap(), 3);
}

#[tokio::test]
async fn unknown_routes_reach_the_fallbacks() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut router = Router::new();
    router.unknown_call(|ctx: CallCtx, body: Raw| async move {
        let n: Vec<i64> =
            erpc::DecodeBody::decode_body(ctx.body_codec(), body.0).map_err(|e| Status::bad_message(e.to_string()))?;
        Ok(format!("{} got {}", ctx.service_method(), n.len()))
    });
    router.unknown_push(move |ctx: PushCtx, _: Raw| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(ctx.service_method().to_string());
            Ok(())
        }
    });
    let (_s, _c, session) = pair(router, PeerConfig::default(), vec![]).await;
    let out: String = session.call("/any/thing", &[1, 2, 3]).await.unwrap();
    assert_eq!(out, "/any/thing got 3");
    session.push("/some/push", &1).await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), "/some/push");
}

/// Client-side plugin that records the transfer pipe of each reply.
#[derive(Clone, Default)]
struct ReplyPipes(Arc<Mutex<Vec<Vec<u8>>>>);

impl Plugin for ReplyPipes {
    fn name(&self) -> &str {
        "reply-pipes"
    }
    fn post_read_reply_header(&self, _: &Session, msg: &mut Message) -> HookResult {
        self.0.lock().unwrap().push(msg.xfer_pipe.ids().to_vec());
        Ok(())
    }
}

#[tokio::test]
async fn the_reply_codec_follows_x_accept_body_codec_and_filters_are_mirrored() {
    let mut router = Router::new();
    router.call_at("/num", |n: i64| async move { Ok(n * 2) });
    router.call_at("/forced", |ctx: CallCtx, n: i64| async move {
        ctx.set_reply_codec(CodecId::PLAIN);
        Ok(n)
    });
    let server = Peer::builder().router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let pipes = ReplyPipes::default();
    let client = Peer::builder().plugin(pipes.clone()).build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let reply = session
        .call::<_, i64>("/num", &21)
        .accept(CodecId::PLAIN)
        .reply()
        .await
        .unwrap();
    assert_eq!((reply.body, reply.codec), (42, CodecId::PLAIN));
    let reply = session.call::<_, i64>("/forced", &7).reply().await.unwrap();
    assert_eq!((reply.body, reply.codec), (7, CodecId::PLAIN));
    let doubled: i64 = session.call("/num", &5).xfer(b'g').xfer(b'm').await.unwrap();
    assert_eq!(doubled, 10);
    assert_eq!(
        pipes.0.lock().unwrap().last().unwrap(),
        b"gm",
        "the reply mirrors the call's filters"
    );
    let err = session.call::<_, i64>("/num", &5).xfer(b'?').await.unwrap_err();
    assert_eq!(
        err.code(),
        Code::WRITE_FAILED,
        "an unregistered filter is refused before sending"
    );
}

#[tokio::test]
async fn session_age_closes_the_session_even_when_busy() {
    let mut router = Router::new();
    router.call_at("/ping", |_: ()| async move { Ok(()) });
    let age = Duration::from_millis(300);
    let config = PeerConfig {
        default_session_age: age,
        ..PeerConfig::default()
    };
    let born = Instant::now();
    let (_s, _c, session) = pair(router, config, vec![]).await;
    session.call::<_, ()>("/ping", &()).await.unwrap();
    // Busy: calls keep coming until the server ends the session at its age.
    let err = within("the session age to end the session", async {
        loop {
            if let Err(status) = session.call::<_, ()>("/ping", &()).await {
                break status;
            }
        }
    })
    .await;
    assert_eq!(err.code(), Code::CONN_CLOSED);
    let lived = born.elapsed();
    assert!(lived >= age, "the session ended after {lived:?}, before its age");
    within("the client session to close", session.closed()).await;
    let err = session.call::<_, ()>("/ping", &()).await.unwrap_err();
    assert_eq!(err.code(), Code::CONN_CLOSED);
}

#[tokio::test]
async fn context_age_answers_slow_handlers_with_408() {
    let mut router = Router::new();
    router.call_at("/slow", |_: ()| async move {
        std::future::pending::<()>().await; // never answers: only the context age can
        Ok(())
    });
    let config = PeerConfig {
        default_context_age: Duration::from_millis(100),
        ..PeerConfig::default()
    };
    let (_s, _c, session) = pair(router, config, vec![]).await;
    let err = within("the context age", session.call::<_, ()>("/slow", &()).into_future())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::HANDLE_TIMEOUT);
}

#[tokio::test]
async fn set_id_kicks_out_an_older_session_with_that_id_and_storage_is_shared() {
    let mut router = Router::new();
    router.call_at("/login", |ctx: CallCtx, user: String| async move {
        ctx.session().set_id(user.clone());
        ctx.storage().insert("user", user);
        Ok(())
    });
    router.call_at("/whoami", |ctx: CallCtx, _: ()| async move {
        ctx.storage()
            .get::<String>("user")
            .ok_or_else(|| Status::new(1001, "not logged in"))
    });
    let server = Peer::builder().router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let first = client.dial(&addr).await.unwrap();
    let second = client.dial(&addr).await.unwrap();
    first.call::<_, ()>("/login", "ann").await.unwrap();
    assert_eq!(first.call::<_, String>("/whoami", &()).await.unwrap(), "ann");
    assert!(server.session("ann").is_some());
    second.call::<_, ()>("/login", "ann").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), first.closed())
        .await
        .expect("the older session is closed");
    assert_eq!(server.count_sessions(), 1);
    assert_eq!(second.call::<_, String>("/whoami", &()).await.unwrap(), "ann");
}

#[tokio::test]
async fn the_rpc_mapper_names_routes_like_go() {
    let mut router = Router::with_mapper(NameMapper::Rpc);
    router.group("Home").call("Test", |_: ()| async move { Ok(1) });
    assert!(router.routes().any(|r| r == "Home.Test"));
    let (_s, _c, session) = pair(router, PeerConfig::default(), vec![]).await;
    assert_eq!(session.call::<_, i32>("Home.Test", &()).await.unwrap(), 1);
}
