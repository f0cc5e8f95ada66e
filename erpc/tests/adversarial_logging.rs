//! Logging that a client cannot turn against the server: the warnings its input causes are
//! limited per peer, and what is suppressed is counted in a summary line.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::within;
use erpc::{Peer, Router};
use tokio::sync::watch;

/// At most this many warnings caused by remote input per window (the limiter's burst and
/// window in `erpc/src/session/log.rs`).
const BURST: usize = 20;
const WINDOW: Duration = Duration::from_secs(10);

/// The log output; every write wakes whoever waits for a line.
#[derive(Clone)]
struct Captured(Arc<watch::Sender<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send_modify(|text| text.extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the log says so far: warnings about unhandled pushes, and the total of the summaries.
fn tally(text: &[u8]) -> (usize, u64) {
    let text = String::from_utf8_lossy(text);
    let warned = text.lines().filter(|l| l.contains("push not handled")).count();
    let suppressed = text
        .lines()
        .filter_map(|l| l.split("suppressed ").nth(1)?.split(' ').next()?.parse::<u64>().ok())
        .sum();
    (warned, suppressed)
}

#[tokio::test]
async fn a_push_flood_to_an_unknown_route_logs_a_few_warnings_and_a_count() {
    let log = Captured(Arc::new(watch::Sender::new(Vec::new())));
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The runtime has one thread, so every task of both peers logs here.
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut router = Router::new();
    router.call_at("/add", |nums: Vec<i64>| async move { Ok(nums.iter().sum::<i64>()) });
    let server = Peer::builder().router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let flooder = client.dial(&addr).await.unwrap();
    let other = client.dial(&addr).await.unwrap();

    const FLOOD: usize = 5000;
    let started = Instant::now();
    let flood = async {
        for i in 0..FLOOD {
            flooder.push("/nowhere", &i).await.unwrap();
        }
        // The server handles a session's messages in order, and a push to an unknown route at
        // once: when this call is answered, every push has been warned about or counted.
        flooder.call::<_, i64>("/add", &[1, 2]).await.unwrap()
    };
    let normal_call = async { other.call::<_, i64>("/add", &[1, 2, 3]).await.unwrap() };
    let (flooded, answer) = within("the flood and a normal call", async {
        tokio::join!(flood, normal_call)
    })
    .await;
    assert_eq!((flooded, answer), (3, 6));

    let (warned, _) = tally(&log.0.borrow());
    // A slow machine may have started a second window during the flood.
    let windows = (started.elapsed().as_secs() / WINDOW.as_secs()) as usize + 1;
    assert!(
        (1..=BURST * windows).contains(&warned),
        "{warned} warnings about {FLOOD} pushes in {windows} window(s)"
    );

    // The rest were counted; the count is logged when the window ends. Let the clock run to it.
    tokio::time::pause();
    let expected = (FLOOD - warned) as u64;
    let mut rx = log.0.subscribe();
    let summarised = tokio::time::timeout(WINDOW * 6, rx.wait_for(|text| tally(text).1 >= expected)).await;
    let text = String::from_utf8_lossy(&log.0.borrow()).into_owned();
    assert!(
        summarised.is_ok(),
        "no summary of {expected} suppressed warnings in:\n{text}"
    );
    assert_eq!(tally(text.as_bytes()), (warned, expected), "{text}");
    assert!(
        text.contains(&format!(
            "suppressed {expected} warnings caused by remote input in the last 10s"
        )) || windows > 1,
        "{text}"
    );
}
