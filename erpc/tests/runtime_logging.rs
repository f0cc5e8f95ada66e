//! Per-message logging: detail, timing and the slow-call warning.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::WAIT;
use erpc::{Peer, PeerConfig, Router};
use tokio::sync::watch;

/// The log output; every write wakes whoever waits for a line.
#[derive(Clone)]
struct Captured(Arc<watch::Sender<Vec<u8>>>);

impl Default for Captured {
    fn default() -> Self {
        Captured(Arc::new(watch::Sender::new(Vec::new())))
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send_modify(|text| text.extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }

    /// Waits (at most [`WAIT`]) until every needle is on one line of its own, and returns
    /// those lines, in the needles' order.
    async fn lines(&self, needles: &[&[&str]]) -> Vec<String> {
        let find = |text: &[u8]| -> Option<Vec<String>> {
            let text = String::from_utf8_lossy(text);
            needles
                .iter()
                .map(|needle| {
                    text.lines()
                        .find(|line| needle.iter().all(|part| line.contains(part)))
                        .map(str::to_string)
                })
                .collect()
        };
        let mut rx = self.0.subscribe();
        match tokio::time::timeout(WAIT, rx.wait_for(|text| find(text).is_some())).await {
            Ok(text) => find(&text.expect("the sender lives in self")).unwrap(),
            Err(_) => panic!("no line has all of {needles:?} in:\n{}", self.text()),
        }
    }
}

#[tokio::test]
async fn slow_calls_warn_and_detail_shows_meta_and_body() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut router = Router::new();
    router.call_at("/fast", |n: i64| async move { Ok(n) });
    router.call_at("/slow", |n: i64| async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Ok(n)
    });
    let config = PeerConfig {
        print_detail: true,
        count_time: true,
        slow_comet_duration: Duration::from_millis(10),
        ..PeerConfig::default()
    };
    let server = Peer::builder().config(config).router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();
    session
        .call::<_, i64>("/fast", &7)
        .meta("author", "andeya")
        .await
        .unwrap();
    session.call::<_, i64>("/slow", &8).await.unwrap();

    // The server logs a call once its reply is written, maybe after the reply is in.
    let lines = captured
        .lines(&[&["CALL<-", "\"/fast\""], &["CALL<-", "\"/slow\""]])
        .await;
    let (fast, slow) = (&lines[0], &lines[1]);
    assert!(fast.contains("DEBUG") && fast.contains("(fast)"), "{fast}");
    assert!(
        fast.contains(r#"\"meta\":\"author=andeya\""#) || fast.contains("author=andeya"),
        "{fast}"
    );
    assert!(slow.contains("WARN") && slow.contains("(slow)"), "{slow}");
    assert!(
        slow.contains("\"body\":\"8\""),
        "the body is shown with print_detail: {slow}"
    );
}
