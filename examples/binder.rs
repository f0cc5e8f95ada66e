//! Validated arguments: a handler taking `Valid<T>` only runs when `T`'s garde rules hold;
//! otherwise the caller gets Go's `400 Invalid Parameter` naming the field. Meta binds into a
//! typed struct the same way.
//!
//! `cargo run -p erpc-examples --example binder`

use erpc::router::{CallCtx, Router, Valid};
use erpc::{Peer, Status};

#[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
struct Signup {
    #[garde(length(min = 1, max = 16))]
    name: String,
    #[garde(range(min = 13))]
    age: u32,
}

#[derive(serde::Deserialize)]
struct Client {
    #[serde(rename = "X-Client")]
    name: String,
}

async fn signup(ctx: CallCtx, Valid(form): Valid<Signup>) -> Result<String, Status> {
    let client: Client = ctx.bind_meta()?;
    Ok(format!("welcome {}, {} (from {})", form.name, form.age, client.name))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router.group("user").call("signup", signup);
    let server = Peer::builder().router(router).build()?;
    let addr = server.listen_on("127.0.0.1:0").await?;

    let client = Peer::builder().build()?;
    let session = client.dial(&addr).await?;
    for form in [
        Signup {
            name: "ann".into(),
            age: 30,
        },
        Signup {
            name: "tim".into(),
            age: 9,
        },
    ] {
        let answer = session
            .call::<_, String>("/user/signup", &form)
            .meta("X-Client", "the example")
            .await;
        match answer {
            Ok(text) => println!("{text}"),
            Err(status) => println!("refused: {status}"),
        }
    }

    client.close().await;
    server.close().await;
    Ok(())
}
