//! Tower layers around handlers: `Router::layer` and `Group::layer`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use erpc::Code;
use erpc::router::{Request, Response};
use erpc::{Peer, Router, Session, Status};
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, mpsc};
use tower::{Layer, Service, ServiceBuilder};

async fn serve(router: Router) -> (Peer, Peer, Session) {
    let server = Peer::builder().router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    (server, client, session)
}

async fn add(nums: Vec<i64>) -> Result<i64, Status> {
    Ok(nums.iter().sum())
}

#[tokio::test]
async fn a_timeout_layer_answers_408_and_spares_fast_handlers() {
    let mut router = Router::new();
    router.call("add", add);
    router.call("hang", |_: ()| std::future::pending::<Result<(), Status>>());
    router.layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(50)));
    let (server, client, session) = serve(router).await;

    assert_eq!(session.call::<_, i64>("/add", &[1, 2]).await.unwrap(), 3);
    let late = session.call::<_, ()>("/hang", &()).await.unwrap_err();
    assert_eq!(late.code(), Code::HANDLE_TIMEOUT, "{late}");
    assert!(late.to_string().contains("timeout layer"), "{late}");
    client.close().await;
    server.close().await;
}

#[tokio::test]
async fn load_shedding_over_a_concurrency_limit_refuses_at_once_and_recovers() {
    let release = Arc::new(Notify::new());
    let (entered, mut busy) = mpsc::unbounded_channel();
    let mut router = Router::new();
    {
        let mut limited = router.group("limited");
        limited.layer(ServiceBuilder::new().load_shed().concurrency_limit(1));
        let release = release.clone();
        limited.call("slow", move |n: i64| {
            let (release, entered) = (release.clone(), entered.clone());
            async move {
                entered.send(()).ok();
                release.notified().await;
                Ok::<_, Status>(n)
            }
        });
    }
    router.call("free", add);
    let (server, client, session) = serve(router).await;

    let first = session.call::<_, i64>("/limited/slow", &1).start();
    busy.recv().await.unwrap();
    let shed = session.call::<_, i64>("/limited/slow", &2).await.unwrap_err();
    assert_eq!(shed.code(), 503, "{shed}");
    // Routes outside the group are not limited.
    assert_eq!(session.call::<_, i64>("/free", &[5]).await.unwrap(), 5);

    release.notify_one();
    assert_eq!(first.await.unwrap().body, 1);
    let again = session.call::<_, i64>("/limited/slow", &3).start();
    busy.recv().await.unwrap();
    release.notify_one();
    assert_eq!(again.await.unwrap().body, 3);
    client.close().await;
    server.close().await;
}

/// A user layer: refuses messages without a `token` meta, counts what it lets through.
#[derive(Clone)]
struct RequireToken {
    passed: Arc<AtomicUsize>,
}

impl<S> Layer<S> for RequireToken {
    type Service = TokenCheck<S>;
    fn layer(&self, inner: S) -> TokenCheck<S> {
        TokenCheck {
            inner,
            passed: self.passed.clone(),
        }
    }
}

#[derive(Clone)]
struct TokenCheck<S> {
    inner: S,
    passed: Arc<AtomicUsize>,
}

impl<S> Service<Request> for TokenCheck<S>
where
    S: Service<Request, Response = Response, Error = Status> + Send,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Status;
    type Future = BoxFuture<'static, Result<Response, Status>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.meta().get_str("token").is_none() {
            let refused = Status::new(401, format!("{} needs a token", request.service_method()));
            return Box::pin(std::future::ready(Err(refused)));
        }
        self.passed.fetch_add(1, Ordering::Relaxed);
        Box::pin(self.inner.call(request))
    }
}

#[tokio::test]
async fn a_user_layer_sees_calls_and_pushes_and_its_status_reaches_the_caller() {
    let passed = Arc::new(AtomicUsize::new(0));
    let (pushed, mut pushes) = mpsc::unbounded_channel();
    let mut router = Router::new();
    router.call("before", add);
    {
        let mut guarded = router.group("guarded");
        guarded.layer(RequireToken { passed: passed.clone() });
        guarded.call("add", add);
        guarded.push("note", move |text: String| {
            let pushed = pushed.clone();
            async move {
                pushed.send(text).ok();
                Ok(())
            }
        });
    }
    router.call("after", add);
    let (server, client, session) = serve(router).await;

    let refused = session.call::<_, i64>("/guarded/add", &[1]).await.unwrap_err();
    assert_eq!(
        (refused.code().get(), refused.msg()),
        (401, "/guarded/add needs a token")
    );
    let sum: i64 = session.call("/guarded/add", &[1, 2]).meta("token", "t").await.unwrap();
    assert_eq!(sum, 3);
    session.push("/guarded/note", "dropped").await.unwrap();
    session.push("/guarded/note", "kept").meta("token", "t").await.unwrap();
    assert_eq!(pushes.recv().await.unwrap(), "kept");
    // The group's layer wraps only the group's routes.
    assert_eq!(session.call::<_, i64>("/before", &[4]).await.unwrap(), 4);
    assert_eq!(session.call::<_, i64>("/after", &[5]).await.unwrap(), 5);
    assert_eq!(passed.load(Ordering::Relaxed), 2);
    client.close().await;
    server.close().await;
}

#[tokio::test]
async fn router_layers_wrap_the_routes_registered_before_them_and_stack() {
    let passed = Arc::new(AtomicUsize::new(0));
    let mut router = Router::new();
    router.call("early", add);
    router.layer(RequireToken { passed: passed.clone() });
    router.call("late", add);
    // A rate limit keeps its state in one place: behind a buffer, clones share it.
    router.layer(ServiceBuilder::new().buffer(16).rate_limit(100, Duration::from_secs(1)));
    let (server, client, session) = serve(router).await;

    assert_eq!(session.call::<_, i64>("/early", &[1]).await.unwrap_err().code(), 401);
    assert_eq!(
        session.call::<_, i64>("/early", &[1]).meta("token", "t").await.unwrap(),
        1
    );
    assert_eq!(session.call::<_, i64>("/late", &[2]).await.unwrap(), 2);
    assert_eq!(passed.load(Ordering::Relaxed), 1);
    client.close().await;
    server.close().await;
}
