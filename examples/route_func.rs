//! Every way to register handlers: plain functions with and without a context, closures,
//! groups with a plugin, a type's methods with `#[erpc::service]`, and fallbacks.
//!
//! `cargo run -p erpc-examples --example route_func`

use erpc::message::Message;
use erpc::plugin::{HookResult, Plugin};
use erpc::router::{CallCtx, PushCtx};
use erpc::session::Session;
use erpc::{Code, Peer, Raw, Router, Status};

/// A plain function with a context: reads request meta, sets reply meta.
async fn greet(ctx: CallCtx, name: String) -> Result<String, Status> {
    ctx.set_reply_meta("greeted-by", "route_func");
    Ok(format!("hello {name} (seq {}, from {})", ctx.seq(), ctx.remote_addr()))
}

/// A plain function without one.
async fn double(n: i64) -> Result<i64, Status> {
    Ok(n * 2)
}

/// A type whose methods become routes: `/calc/square` and `/calc/log` (a push).
struct Calc;

#[erpc::service]
impl Calc {
    async fn square(&self, _ctx: CallCtx, n: i64) -> Result<i64, Status> {
        Ok(n * n)
    }
    async fn log(&self, ctx: PushCtx, line: String) -> Result<(), Status> {
        println!("server: push {} says {line:?}", ctx.service_method());
        Ok(())
    }
}

/// A group plugin: only calls carrying meta `token: let-me-in` pass.
struct Guard;

impl Plugin for Guard {
    fn name(&self) -> &str {
        "guard"
    }
    fn post_read_call_body(&self, _: &Session, msg: &Message) -> HookResult {
        match msg.meta.get_str("token") {
            Some("let-me-in") => Ok(()),
            _ => Err(Status::new(Code::UNAUTHORIZED, "Unauthorized")),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router.call("greet", greet).call("double", double);
    router.call("triple", |n: i64| async move { Ok::<_, Status>(n * 3) });
    router.service(Calc);
    router
        .group("admin")
        .plugin(Guard)
        .call("secret", |_: ()| async move { Ok::<_, Status>("42".to_string()) });
    router.unknown_call(|ctx: CallCtx, body: Raw| async move {
        Ok::<_, Status>(format!("no route {} ({} bytes)", ctx.service_method(), body.0.len()))
    });
    let mut routes: Vec<_> = router.routes().map(str::to_string).collect();
    routes.sort();
    println!("routes: {routes:?}");

    let server = Peer::builder().router(router).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;
    let client = Peer::builder().build()?;
    let s = client.dial(&addr).await?;

    let reply = s.call::<_, String>("/greet", "ann").reply().await?;
    println!(
        "/greet -> {} (meta greeted-by={:?})",
        reply.body,
        reply.meta.get_str("greeted-by")
    );
    println!("/double 21 -> {}", s.call::<_, i64>("/double", &21).await?);
    println!("/triple 5 -> {}", s.call::<_, i64>("/triple", &5).await?);
    println!("/calc/square 12 -> {}", s.call::<_, i64>("/calc/square", &12).await?);
    s.push("/calc/log", "a line").await?;
    println!(
        "/admin/secret without token -> {}",
        s.call::<_, String>("/admin/secret", &()).await.unwrap_err()
    );
    println!(
        "/admin/secret with token -> {}",
        s.call::<_, String>("/admin/secret", &())
            .meta("token", "let-me-in")
            .await?
    );
    println!("/what/ever -> {}", s.call::<_, String>("/what/ever", &[1, 2, 3]).await?);

    client.close().await;
    server.close().await;
    Ok(())
}
