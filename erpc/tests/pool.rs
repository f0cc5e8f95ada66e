//! The session pool: calls and pushes with a session's API spread over at most `max_sessions`
//! sessions, least busy first; `100 Wrong Connection` at once when no session can be had;
//! unhealthy and idle sessions dropped; close waits for the calls in flight.

mod common;

use std::sync::Arc;
use std::time::Duration;

use erpc::Code;
use erpc::{Peer, Pool, PoolConfig, PushCtx, Router, Status};
use tokio::sync::Semaphore;

use common::{Tally, wait_until, within};

struct Server {
    peer: Peer,
    addr: String,
    pushes: Tally,
    /// Holds `/slow` handlers until released.
    gate: Arc<Semaphore>,
    /// A permit per `/slow` handler started.
    started: Arc<Semaphore>,
}

async fn server() -> Server {
    let pushes = Tally::default();
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(Semaphore::new(0));
    let mut router = Router::new();
    router.call_at("/add", |nums: Vec<i64>| async move {
        Ok::<_, Status>(nums.iter().sum::<i64>())
    });
    let (g, s) = (gate.clone(), started.clone());
    router.call_at("/slow", move |n: i64| {
        let (gate, started) = (g.clone(), s.clone());
        async move {
            started.add_permits(1);
            let _permit = gate.acquire().await;
            Ok::<_, Status>(n)
        }
    });
    let p = pushes.clone();
    router.push_at("/note", move |_: PushCtx, _: String| {
        let pushes = p.clone();
        async move {
            pushes.add();
            Ok::<_, Status>(())
        }
    });
    let peer = Peer::builder().router(router).build().unwrap();
    let addr = peer.listen_on("127.0.0.1:0").await.unwrap();
    Server {
        peer,
        addr,
        pushes,
        gate,
        started,
    }
}

#[tokio::test]
async fn many_callers_share_at_most_max_sessions() {
    let server = server().await;
    let client = Peer::builder().build().unwrap();
    let pool = Pool::new(
        &client,
        &server.addr,
        PoolConfig {
            max_sessions: 4,
            ..PoolConfig::default()
        },
    );
    // 8 calls held by the server at once: the pool grows to its 4 sessions, then shares them.
    let held: Vec<_> = (0..8).map(|i| pool.call::<_, i64>("/slow", &i).start()).collect();
    within("8 slow calls to start", server.started.acquire_many(8))
        .await
        .unwrap()
        .forget();
    assert_eq!(pool.stats().sessions, 4);
    assert_eq!(server.peer.count_sessions(), 4);
    assert_eq!(pool.stats().in_flight, 8);
    assert_eq!(
        (pool.stats().min_load, pool.stats().max_load),
        (2, 2),
        "least busy first"
    );
    server.gate.add_permits(8);
    for (i, call) in held.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().body, i as i64);
    }
    // The same API as a session: meta, timeouts, pushes.
    let sum: i64 = pool
        .call("/add", &[1, 2, 3])
        .meta("author", "ann")
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(sum, 6);
    pool.push("/note", &"hi").await.unwrap();
    server.pushes.reach(1).await;
    assert_eq!(server.pushes.get(), 1, "one push, handled once");
    assert_eq!(pool.stats().created, 4, "idle sessions were reused");
}

#[tokio::test]
async fn a_pool_that_cannot_dial_says_wrong_connection_at_once() {
    let client = Peer::builder().build().unwrap();
    // A port nothing listens on.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let pool = Pool::new(&client, addr, PoolConfig::default());
    let err = within("the failed call", pool.call::<_, i64>("/add", &[1]).into_future())
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.msg()), (Code::WRONG_CONN, "Wrong Connection"), "{err}");
    let err = within("the failed push", pool.push("/note", &"x").into_future())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::WRONG_CONN);
}

#[tokio::test]
async fn unhealthy_sessions_are_replaced() {
    let server = server().await;
    let client = Peer::builder().build().unwrap();
    let pool = Pool::new(&client, &server.addr, PoolConfig::default());
    let first = pool.hire().await.unwrap();
    let _: i64 = pool.call("/add", &[1]).await.unwrap();
    // The server drops every session; the pool's session sees it close.
    for session in server.peer.sessions() {
        session.close().await;
    }
    within("the pool's session to close", first.closed()).await;
    let sum: i64 = pool.call("/add", &[2, 2]).await.unwrap();
    assert_eq!(sum, 4);
    assert_eq!(pool.stats().sessions, 1);
    assert_eq!(pool.stats().created, 2);
}

#[tokio::test]
async fn idle_sessions_are_closed_by_the_sweep() {
    let server = server().await;
    let client = Peer::builder().build().unwrap();
    let pool = Pool::new(
        &client,
        &server.addr,
        PoolConfig {
            max_idle: Duration::from_millis(200),
            ..PoolConfig::default()
        },
    );
    let session = pool.hire().await.unwrap();
    let _: i64 = pool.call("/add", &[1]).await.unwrap();
    within("the idle session to be closed", session.closed()).await;
    wait_until(common::WAIT, || pool.stats().sessions == 0).await;
}

#[tokio::test]
async fn close_waits_for_calls_in_flight_then_refuses() {
    let server = server().await;
    let client = Peer::builder().build().unwrap();
    let pool = Pool::new(&client, &server.addr, PoolConfig::default());
    let slow = pool.call::<_, i64>("/slow", &7).start();
    within("the slow call to start", server.started.acquire())
        .await
        .unwrap()
        .forget();
    let closing = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.close().await })
    };
    // Closing: new calls are refused at once…
    wait_until(common::WAIT, || pool.stats().sessions == 0).await;
    let err = pool.call::<_, i64>("/add", &[1]).await.unwrap_err();
    assert_eq!(err.code(), Code::WRONG_CONN);
    // …and the call in flight still gets its answer before the close completes.
    server.gate.add_permits(1);
    assert_eq!(slow.await.unwrap().body, 7);
    within("the close", closing).await.unwrap();
}
