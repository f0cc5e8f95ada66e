//! GOAWAY (`session::goaway`): a server session that closes gracefully first asks its client to
//! move. A client with redial on moves to a new connection and no call is lost to the close; a
//! client that cannot move (no redial, a Go peer, a peer that never answers) delays the close by
//! no more than the shutdown timeout.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Tally, wait_until, within};
use erpc::{Peer, PeerConfig, Router};

fn echo_server(shutdown_timeout: Duration) -> Peer {
    let mut router = Router::new();
    router.call_at("/echo", |n: u64| async move {
        // Some calls are still running when a close comes.
        if n.is_multiple_of(7) {
            tokio::task::yield_now().await;
        }
        Ok(n)
    });
    Peer::builder()
        .config(PeerConfig {
            shutdown_timeout,
            ..PeerConfig::default()
        })
        .router(router)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_crossing_a_graceful_close_all_succeed_with_redial_on() {
    let server = echo_server(Duration::from_secs(10));
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder()
        .config(PeerConfig {
            redial_times: 3,
            redial_interval: Duration::from_millis(20),
            ..PeerConfig::default()
        })
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Tally::default();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..32u64 {
        let (session, stop, answered, failures) = (session.clone(), stop.clone(), answered.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(Ordering::Acquire) {
                match session.call::<_, u64>("/echo", &n).await {
                    Ok(got) => {
                        assert_eq!(got, n);
                        answered.add();
                    }
                    Err(status) => failures.lock().unwrap().push(status.to_string()),
                }
                n += 32;
            }
        }));
    }

    let mut ids = vec![session.local_addr()];
    for round in 0..3 {
        answered.reach(answered.get() + 300).await;
        let sessions = server.sessions();
        assert_eq!(sessions.len(), 1, "round {round}: one session to close");
        // The close returns once the client has moved and closed the old connection.
        within("the server session's close", sessions[0].close()).await;
        wait_until(common::WAIT, || {
            server.count_sessions() == 1 && !ids.contains(&session.local_addr())
        })
        .await;
        ids.push(session.local_addr());
    }
    answered.reach(answered.get() + 300).await;
    stop.store(true, Ordering::Release);
    for worker in workers {
        within("a worker", worker).await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} calls failed across the closes: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(ids.len(), 4, "the client moved once per close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_redial_does_not_hold_the_close() {
    // The shutdown timeout is long: the close must not wait for it.
    let server = echo_server(Duration::from_secs(30));
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap(); // redial_times = 0, answers GOAWAY with 404 as Go does
    let session = client.dial(&addr).await.unwrap();
    let echoed: u64 = session.call("/echo", &5u64).await.unwrap();
    assert_eq!(echoed, 5);
    within(
        "the close (a client that does not move is not waited for)",
        server.close(),
    )
    .await;
    within("the client session to close", session.closed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_holds_the_close_only_up_to_the_shutdown_timeout() {
    let server = echo_server(Duration::from_millis(500));
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    // Connected, reads what comes, never writes a byte (never answers the question).
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    wait_until(common::WAIT, || server.count_sessions() == 1).await;
    let session = server.sessions().pop().unwrap();
    let started = tokio::time::Instant::now();
    let closing = tokio::spawn(async move { session.close().await });
    // The question arrives: a CALL to the reserved route.
    let mut got = Vec::new();
    within("the GOAWAY question", async {
        while !String::from_utf8_lossy(&got).contains(erpc::session::goaway::ROUTE) {
            let mut chunk = [0u8; 256];
            let n = tokio::io::AsyncReadExt::read(&mut silent, &mut chunk).await.unwrap();
            assert!(n > 0, "the connection ended before the question");
            got.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    within("the close", closing).await.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the close took {took:?} with a 500 ms shutdown timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_shutting_down_for_good_does_not_ask_redialing_clients_to_move() {
    // Nobody would take their new connection: asking would only make them dial in vain while
    // the close waits. The shutdown timeout is long: the close must not wait for it.
    let server = echo_server(Duration::from_secs(30));
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder()
        .config(PeerConfig {
            redial_times: -1,
            redial_interval: Duration::from_millis(20),
            ..PeerConfig::default()
        })
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();
    let echoed: u64 = session.call("/echo", &5u64).await.unwrap();
    assert_eq!(echoed, 5);
    within("the close of a peer that stopped listening", server.close()).await;
    client.close().await;
}
