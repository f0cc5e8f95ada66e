//! Argument validation and meta binding (Go's binder, extensions.md §2): a `Valid<T>` argument
//! checked with garde, meta bound into a typed struct, and Go's `400 Invalid Parameter` status
//! naming the handler, the parameter and the reason when either fails.

use erpc::router::{CallCtx, Router, Valid};
use erpc::{Peer, Status};

#[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
struct Signup {
    #[garde(length(min = 1, max = 8))]
    name: String,
    #[garde(range(min = 13))]
    age: u32,
}

#[derive(serde::Deserialize, garde::Validate)]
struct Client {
    #[serde(rename = "X-Client-Version")]
    #[garde(range(min = 2))]
    version: u32,
    #[serde(rename = "tag", default)]
    #[garde(skip)]
    tags: Vec<String>,
}

async fn signup(ctx: CallCtx, Valid(form): Valid<Signup>) -> Result<String, Status> {
    let Valid(client): Valid<Client> = ctx.bind_meta()?;
    Ok(format!(
        "{} {} v{} {:?}",
        form.name, form.age, client.version, client.tags
    ))
}

async fn serve() -> (Peer, String) {
    let mut router = Router::new();
    router.group("user").call("signup", signup);
    let server = Peer::builder().router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    (server, addr)
}

#[tokio::test]
async fn valid_arguments_and_meta_reach_the_handler() {
    let (_server, addr) = serve().await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let form = Signup {
        name: "ann".into(),
        age: 30,
    };
    let reply: String = session
        .call("/user/signup", &form)
        .meta("X-Client-Version", "3")
        .meta("tag", "a")
        .meta("tag", "b")
        .await
        .unwrap();
    assert_eq!(reply, r#"ann 30 v3 ["a", "b"]"#);
}

#[tokio::test]
async fn invalid_arguments_and_meta_get_go_s_binder_status() {
    let (_server, addr) = serve().await;
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    let too_young = Signup {
        name: "tim".into(),
        age: 9,
    };
    let err = session
        .call::<_, String>("/user/signup", &too_young)
        .meta("X-Client-Version", "3")
        .await
        .unwrap_err();
    assert_eq!((err.code().get(), err.msg()), (400, "Invalid Parameter"));
    let cause: serde_json::Value = serde_json::from_str(err.cause().unwrap()).unwrap();
    assert_eq!(cause["handler"], "/user/signup");
    assert_eq!(cause["param"], "age");
    assert!(cause["reason"].as_str().unwrap().contains("13"), "{cause}");

    let ok_form = Signup {
        name: "ann".into(),
        age: 30,
    };
    for (meta, param) in [(None, "X-Client-Version"), (Some("abc"), ""), (Some("1"), "version")] {
        let mut call = session.call::<_, String>("/user/signup", &ok_form);
        if let Some(version) = meta {
            call = call.meta("X-Client-Version", version);
        }
        let err = call.await.unwrap_err();
        assert_eq!((err.code().get(), err.msg()), (400, "Invalid Parameter"), "{meta:?}");
        let cause: serde_json::Value = serde_json::from_str(err.cause().unwrap()).unwrap();
        if !param.is_empty() {
            assert_eq!(cause["param"], param, "{meta:?}: {cause}");
        }
        assert!(!cause["reason"].as_str().unwrap().is_empty());
    }
}
