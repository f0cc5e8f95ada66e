//! All 24 plugin hooks fire, in Go's order (behaviour.md §10.3).

mod common;

use std::sync::{Arc, Mutex};

use common::Events;
use erpc::config::PeerConfig;
use erpc::message::Message;
use erpc::plugin::{HookResult, Plugin};
use erpc::router::{HandlerInfo, PushCtx};
use erpc::session::{PreSession, Session};
use erpc::{Peer, Router};
use futures_util::future::BoxFuture;

#[derive(Clone, Default)]
struct Trace(Events);

impl Trace {
    fn note(&self, hook: &str) -> HookResult {
        self.0.note(hook);
        Ok(())
    }
    fn take(&self) -> Vec<String> {
        self.0.take()
    }
    /// Waits until `n` hooks have run, then takes them.
    async fn take_when(&self, n: usize) -> Vec<String> {
        self.0.wait_len(n).await;
        self.take()
    }
}

impl Plugin for Trace {
    fn name(&self) -> &str {
        "trace"
    }
    fn pre_new_peer(&self, config: &mut PeerConfig) -> HookResult {
        config.print_detail = true;
        self.note("pre_new_peer")
    }
    fn post_new_peer(&self, _: &erpc::session::Sessions) -> HookResult {
        self.note("post_new_peer")
    }
    fn post_reg(&self, h: &HandlerInfo) -> HookResult {
        self.note(&format!("post_reg {}", h.name))
    }
    fn post_listen(&self, _: &str) -> HookResult {
        self.note("post_listen")
    }
    fn pre_dial(&self, _: &str, _: &str) -> HookResult {
        self.note("pre_dial")
    }
    fn post_dial<'a>(&'a self, _: &'a mut PreSession, _: bool) -> BoxFuture<'a, HookResult> {
        Box::pin(async move { self.note("post_dial") })
    }
    fn post_accept<'a>(&'a self, _: &'a mut PreSession) -> BoxFuture<'a, HookResult> {
        Box::pin(async move { self.note("post_accept") })
    }
    fn pre_write_call(&self, _: &Session, _: &mut Message) -> HookResult {
        self.note("pre_write_call")
    }
    fn post_write_call(&self, _: &Session, _: &Message) -> HookResult {
        self.note("post_write_call")
    }
    fn pre_write_reply(&self, _: &Session, _: &mut Message) -> HookResult {
        self.note("pre_write_reply")
    }
    fn post_write_reply(&self, _: &Session, _: &Message) -> HookResult {
        self.note("post_write_reply")
    }
    fn pre_write_push(&self, _: &Session, _: &mut Message) -> HookResult {
        self.note("pre_write_push")
    }
    fn post_write_push(&self, _: &Session, _: &Message) -> HookResult {
        self.note("post_write_push")
    }
    fn pre_read_header(&self, _: &Session) -> HookResult {
        Ok(()) // runs before every read attempt: checked separately below
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
    fn post_read_push_header(&self, _: &Session, _: &mut Message) -> HookResult {
        self.note("post_read_push_header")
    }
    fn pre_read_push_body(&self, _: &Session, _: &mut Message) -> HookResult {
        self.note("pre_read_push_body")
    }
    fn post_read_push_body(&self, _: &Session, _: &Message) -> HookResult {
        self.note("post_read_push_body")
    }
    fn post_read_reply_header(&self, _: &Session, _: &mut Message) -> HookResult {
        self.note("post_read_reply_header")
    }
    fn pre_read_reply_body(&self, _: &Session, _: &mut Message) -> HookResult {
        self.note("pre_read_reply_body")
    }
    fn post_read_reply_body(&self, _: &Session, msg: &Message) -> HookResult {
        assert_eq!(
            msg.service_method, "/echo",
            "hooks see the reply's service method restored"
        );
        self.note("post_read_reply_body")
    }
    fn post_disconnect(&self, _: &Session) -> HookResult {
        self.note("post_disconnect")
    }
}

/// Counts PreReadHeader calls.
#[derive(Clone, Default)]
struct HeaderCount(Arc<Mutex<usize>>);

impl Plugin for HeaderCount {
    fn name(&self) -> &str {
        "header-count"
    }
    fn pre_read_header(&self, _: &Session) -> HookResult {
        *self.0.lock().unwrap() += 1;
        Ok(())
    }
}

#[tokio::test]
async fn every_hook_fires_in_order() {
    let server_trace = Trace::default();
    let client_trace = Trace::default();
    let headers = HeaderCount::default();
    let mut router = Router::new();
    router.call_at("/echo", |s: String| async move { Ok(s) });
    router.push_at("/note", |_: PushCtx, _: String| async move { Ok(()) });
    let server = Peer::builder()
        .router(router)
        .plugin(server_trace.clone())
        .plugin(headers.clone())
        .build()
        .unwrap();
    assert!(server.config().print_detail, "pre_new_peer may change the config");
    let mut lifecycle = server_trace.take();
    lifecycle[1..3].sort(); // the order among routes is not specified
    assert_eq!(
        lifecycle,
        ["pre_new_peer", "post_reg /echo", "post_reg /note", "post_new_peer"]
    );
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    assert_eq!(server_trace.take(), ["post_listen"]);

    let client = Peer::builder().plugin(client_trace.clone()).build().unwrap();
    client_trace.take();
    let session = client.dial(&addr).await.unwrap();
    assert_eq!(client_trace.take(), ["pre_dial", "post_dial"]);

    let echoed: String = session.call("/echo", "hi").await.unwrap();
    assert_eq!(echoed, "hi");
    session.push("/note", "x").await.unwrap();
    // The post-write hooks, and the server's whole side, may still be running.
    assert_eq!(
        client_trace.take_when(7).await,
        [
            "pre_write_call",
            "post_write_call",
            "post_read_reply_header",
            "pre_read_reply_body",
            "post_read_reply_body",
            "pre_write_push",
            "post_write_push"
        ]
    );
    assert_eq!(
        server_trace.take_when(9).await,
        [
            "post_accept",
            "post_read_call_header",
            "pre_read_call_body",
            "post_read_call_body",
            "pre_write_reply",
            "post_write_reply",
            "post_read_push_header",
            "pre_read_push_body",
            "post_read_push_body"
        ]
    );
    assert!(
        *headers.0.lock().unwrap() >= 2,
        "pre_read_header runs before each message"
    );

    session.close().await;
    assert_eq!(client_trace.take_when(1).await, ["post_disconnect"]);
    assert_eq!(server_trace.take_when(1).await, ["post_disconnect"]);
}
