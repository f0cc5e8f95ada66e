//! `#[erpc::service]` on a trait: a typed server and client from one definition, on the same
//! routes a Go peer (or an untyped caller) uses.

use std::time::Duration;

use erpc::router::NameMapper;
use erpc::{Peer, Pool, PoolConfig, Router, Status};
use tokio::sync::mpsc;

/// The context is recognised by its type, whatever it is called here.
type Ctx = erpc::CallCtx;

#[erpc::service]
pub trait Math {
    /// Adds the numbers.
    async fn add(&self, nums: Vec<i64>) -> Result<i64, Status>;

    /// Says hello, with the caller's `lang` meta if any.
    async fn say_hello(&self, ctx: Ctx, name: String) -> Result<String, Status>;

    #[erpc(name = "Div")]
    async fn divide(&self, pair: (i64, i64)) -> Result<i64, Status>;

    /// Waits as long as asked (milliseconds).
    async fn wait(&self, millis: u64) -> Result<u64, Status> {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(millis)
    }

    #[erpc(push)]
    async fn note(&self, text: String) -> Result<(), Status>;

    async fn log(&self, ctx: erpc::PushCtx, text: String) -> Result<(), Status>;
}

struct Calculator {
    notes: mpsc::UnboundedSender<String>,
}

impl Math for Calculator {
    async fn add(&self, nums: Vec<i64>) -> Result<i64, Status> {
        Ok(nums.iter().sum())
    }

    async fn say_hello(&self, ctx: Ctx, name: String) -> Result<String, Status> {
        let greeting = match ctx.meta_str("lang") {
            Some("fr") => "bonjour",
            _ => "hello",
        };
        Ok(format!("{greeting} {name} from {}", ctx.service_method()))
    }

    async fn divide(&self, (a, b): (i64, i64)) -> Result<i64, Status> {
        a.checked_div(b).ok_or_else(|| Status::new(1001, "division by zero"))
    }

    async fn note(&self, text: String) -> Result<(), Status> {
        self.notes.send(format!("note {text}")).ok();
        Ok(())
    }

    async fn log(&self, ctx: erpc::PushCtx, text: String) -> Result<(), Status> {
        self.notes.send(format!("{} {text}", ctx.service_method())).ok();
        Ok(())
    }
}

fn calculator() -> (MathServer<Calculator>, mpsc::UnboundedReceiver<String>) {
    let (notes, received) = mpsc::unbounded_channel();
    (MathServer::new(Calculator { notes }), received)
}

#[test]
fn the_server_registers_gos_routes_under_both_mappers() {
    let mut http = Router::new();
    http.service(calculator().0);
    let mut routes: Vec<_> = http.routes().collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            "/math/add",
            "/math/div",
            "/math/log",
            "/math/note",
            "/math/say_hello",
            "/math/wait"
        ]
    );

    let mut rpc = Router::with_mapper(NameMapper::Rpc);
    rpc.group("v1").service(calculator().0);
    let mut routes: Vec<_> = rpc.routes().collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            "v1.Math.Add",
            "v1.Math.Div",
            "v1.Math.Log",
            "v1.Math.Note",
            "v1.Math.SayHello",
            "v1.Math.Wait"
        ]
    );
}

async fn serve(router: Router) -> (Peer, Peer, erpc::Session) {
    let server = Peer::builder().router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    (server, client, session)
}

#[tokio::test]
async fn the_typed_client_calls_and_pushes_with_checked_types() {
    let (service, mut notes) = calculator();
    let mut router = Router::new();
    router.service(service);
    let (server, client, session) = serve(router).await;
    let math = MathClient::new(session.clone());

    let sum: i64 = math.add(vec![1, 2, 3]).await.unwrap();
    assert_eq!(sum, 6);
    assert_eq!(math.divide((7, 2)).await.unwrap(), 3);
    let error = math.divide((7, 0)).await.unwrap_err();
    assert_eq!((error.code().get(), error.msg()), (1001, "division by zero"));

    // Per-call options are the untyped builder's.
    let hello = math.say_hello("ann".into()).meta("lang", "fr").await.unwrap();
    assert_eq!(hello, "bonjour ann from /math/say_hello");
    let late = math.wait(5_000).timeout(Duration::from_millis(50)).await.unwrap_err();
    assert_eq!(late.code(), erpc::status::Code::HANDLE_TIMEOUT);
    let reply = math.add(vec![4]).reply().await.unwrap();
    assert_eq!(reply.body, 4);

    math.note("one".into()).await.unwrap();
    assert_eq!(notes.recv().await.unwrap(), "note one");
    math.log("two".into()).await.unwrap();
    assert_eq!(notes.recv().await.unwrap(), "/math/log two");

    // An untyped caller (a Go peer, say) reaches the same routes by name.
    let sum: i64 = session.call("/math/add", &[10, 20]).await.unwrap();
    assert_eq!(sum, 30);

    client.close().await;
    server.close().await;
}

#[tokio::test]
async fn the_client_follows_the_servers_mapper_and_groups_and_runs_over_a_pool() {
    let mut router = Router::with_mapper(NameMapper::Rpc);
    router.group("v1").group("calc").service(calculator().0);
    let (server, client, session) = serve(router).await;

    let math = MathClient::with_routes(session.clone(), NameMapper::Rpc, &["v1", "calc"]);
    assert_eq!(math.add(vec![2, 2]).await.unwrap(), 4);
    let wrong = MathClient::new(session.clone());
    assert_eq!(
        wrong.add(vec![2, 2]).await.unwrap_err().code(),
        erpc::status::Code::NOT_FOUND
    );

    let addr = session.remote_addr().to_string();
    let pool = Pool::new(&client, &addr, PoolConfig::default());
    let pooled = MathClient::with_routes(pool.clone(), NameMapper::Rpc, &["v1", "calc"]);
    let calls = (0..8i64).map(|i| {
        let pooled = pooled.clone();
        async move { pooled.add(vec![i, i]).await }
    });
    let sums: Vec<i64> = futures_util::future::try_join_all(calls).await.unwrap();
    assert_eq!(sums, (0..8).map(|i| 2 * i).collect::<Vec<_>>());

    pool.close().await;
    client.close().await;
    server.close().await;
}

/// Generated code names the erpc crate as the attribute says (for a re-export); a renamed
/// dependency is found in `Cargo.toml` without it.
mod through_a_reexport {
    pub mod framework {
        pub use erpc as rpc;
    }

    #[erpc::service(crate = "framework::rpc")]
    pub trait Echo {
        async fn echo(&self, text: String) -> Result<String, framework::rpc::Status>;
    }

    struct Parrot;

    impl Echo for Parrot {
        async fn echo(&self, text: String) -> Result<String, framework::rpc::Status> {
            Ok(text)
        }
    }

    #[tokio::test]
    async fn a_service_names_erpc_through_the_path_it_is_given() {
        let mut router = erpc::Router::new();
        router.service(EchoServer::new(Parrot));
        let (server, client, session) = super::serve(router).await;
        assert_eq!(EchoClient::new(session).echo("hi".into()).await.unwrap(), "hi");
        client.close().await;
        server.close().await;
    }
}
