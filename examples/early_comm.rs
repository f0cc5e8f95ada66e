//! Talking before the session starts: a plugin's `post_dial` sends a greeting and waits for
//! the answer; the server's `post_accept` checks it. Refused clients never get a session.
//!
//! `cargo run -p erpc-examples --example early_comm`

use erpc::message::{Message, MessageType};
use erpc::plugin::{HookResult, Plugin};
use erpc::session::PreSession;
use erpc::{CodecId, Peer, Router, Status};
use futures_util::future::BoxFuture;

/// Client side: introduce ourselves with a password.
struct Hello(&'static str);

impl Plugin for Hello {
    fn name(&self) -> &str {
        "hello"
    }
    fn post_dial<'a>(&'a self, pre: &'a mut PreSession, _is_redial: bool) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            let greeting = Message::new(MessageType::AuthCall, pre.next_seq()).with_body(CodecId::PLAIN, self.0);
            pre.send(&greeting).await?;
            let answer = pre.receive().await?;
            println!("client: server answered {:?}", String::from_utf8_lossy(&answer.body));
            if answer.status.is_ok() {
                Ok(())
            } else {
                Err(answer.status)
            }
        })
    }
}

/// Server side: check the password, answer, and name the session after the client.
struct Door;

impl Plugin for Door {
    fn name(&self) -> &str {
        "door"
    }
    fn post_accept<'a>(&'a self, pre: &'a mut PreSession) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            let greeting = pre.receive().await?;
            let ok = greeting.body == "open sesame";
            let verdict = if ok {
                Status::OK
            } else {
                Status::with_cause(403, "Forbidden", "wrong password")
            };
            let answer = Message::new(MessageType::AuthReply, pre.next_seq())
                .with_body(CodecId::PLAIN, if ok { "welcome" } else { "go away" })
                .with_status(verdict.clone());
            pre.send(&answer).await?;
            if ok {
                pre.set_id("friend");
                Ok(())
            } else {
                Err(verdict)
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router.call("whoami", |ctx: erpc::CallCtx, _: ()| async move {
        Ok::<_, Status>(ctx.session().id().to_string())
    });
    let server = Peer::builder().router(router).plugin(Door).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let friend = Peer::builder().plugin(Hello("open sesame")).build()?;
    let session = friend.dial(&addr).await?;
    println!(
        "client: the server calls me {:?}",
        session.call::<_, String>("/whoami", &()).await?
    );

    let stranger = Peer::builder().plugin(Hello("let me in")).build()?;
    match stranger.dial(&addr).await {
        Ok(_) => println!("stranger got in?!"),
        Err(status) => println!("stranger: {status}"),
    }

    friend.close().await;
    server.close().await;
    Ok(())
}
