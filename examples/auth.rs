//! The auth plugins: the client presents a token before its session starts; the server checks
//! it, names the session after the user, and closes connections it refuses. The frames are Go
//! eRPC's, so either end can be a Go peer.
//!
//! `cargo run -p erpc-examples --example auth`

use erpc::plugin::{AuthInfo, Bearer, Checker};
use erpc::{CallCtx, CodecId, Peer, Router, Status};

fn bearer(token: &'static str) -> Bearer {
    Bearer::new(move || async move { Ok::<_, Status>(token) }).codec(CodecId::PLAIN)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let checker = Checker::new(|token: String, info: AuthInfo| async move {
        match token.as_str() {
            "ann-token" => {
                info.set_session_id("ann");
                Ok("pass")
            }
            _ => Err(Status::with_cause(403, "auth fail", "unknown token")),
        }
    })
    .codec(CodecId::PLAIN);
    let mut router = Router::new();
    router.call("whoami", |ctx: CallCtx, _: ()| async move {
        Ok::<_, Status>(ctx.session().id().to_string())
    });
    let server = Peer::builder().router(router).plugin(checker).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let ann = Peer::builder().plugin(bearer("ann-token")).build()?;
    let session = ann.dial(&addr).await?;
    println!(
        "ann is {:?} to the server",
        session.call::<_, String>("/whoami", &()).await?
    );

    let stranger = Peer::builder().plugin(bearer("guess")).build()?;
    match stranger.dial(&addr).await {
        Ok(_) => println!("the stranger got in"),
        Err(status) => println!("the stranger: {status}"),
    }

    ann.close().await;
    server.close().await;
    Ok(())
}
