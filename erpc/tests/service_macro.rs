//! `#[erpc::service]`: an impl block's methods become CALL and PUSH routes.

use std::sync::Mutex;

use erpc::router::{CallCtx, NameMapper, PushCtx};
use erpc::{Peer, Router, Status};

#[derive(Default)]
struct Math {
    notes: Mutex<Vec<String>>,
}

#[erpc::service]
impl Math {
    async fn add(&self, _ctx: CallCtx, nums: Vec<i64>) -> Result<i64, Status> {
        Ok(nums.iter().sum())
    }

    async fn say_hello(&self, ctx: CallCtx, name: String) -> Result<String, Status> {
        Ok(format!("hello {name} from {}", ctx.service_method()))
    }

    #[erpc(name = "Div")]
    async fn divide(&self, _ctx: CallCtx, pair: (i64, i64)) -> Result<i64, Status> {
        pair.0
            .checked_div(pair.1)
            .ok_or_else(|| Status::new(1001, "division by zero"))
    }

    async fn note(&self, _ctx: PushCtx, text: String) -> Result<(), Status> {
        self.notes.lock().unwrap().push(text);
        Ok(())
    }

    /// Not a handler: no context argument.
    fn helper(&self) -> usize {
        self.notes.lock().unwrap().len()
    }
}

#[test]
fn routes_follow_go_naming_under_both_mappers() {
    let mut http = Router::new();
    http.service(Math::default());
    let mut routes: Vec<_> = http.routes().map(str::to_string).collect();
    routes.sort();
    assert_eq!(routes, ["/math/add", "/math/div", "/math/note", "/math/say_hello"]);

    let mut rpc = Router::with_mapper(NameMapper::Rpc);
    rpc.group("v1").service(Math::default());
    let mut routes: Vec<_> = rpc.routes().map(str::to_string).collect();
    routes.sort();
    assert_eq!(
        routes,
        ["v1.Math.Add", "v1.Math.Div", "v1.Math.Note", "v1.Math.SayHello"]
    );
    assert_eq!(Math::default().helper(), 0);
}

#[tokio::test]
async fn service_methods_answer_calls() {
    let mut router = Router::new();
    router.service(Math::default());
    let server = Peer::builder().router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    assert_eq!(session.call::<_, i64>("/math/add", &[1, 2, 3]).await.unwrap(), 6);
    let hello: String = session.call("/math/say_hello", "ann").await.unwrap();
    assert_eq!(hello, "hello ann from /math/say_hello");
    assert_eq!(session.call::<_, i64>("/math/div", &(7, 2)).await.unwrap(), 3);
    assert_eq!(
        session.call::<_, i64>("/math/div", &(7, 0)).await.unwrap_err().code(),
        1001
    );
    session.push("/math/note", "n").await.unwrap();
}
