//! Per-message logging: detail, timing and the slow-call warning.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use erpc::{Peer, PeerConfig, Router};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
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
    let session = Peer::builder().build().unwrap().dial(&addr).await.unwrap();
    session
        .call::<_, i64>("/fast", &7)
        .meta("author", "andeya")
        .await
        .unwrap();
    session.call::<_, i64>("/slow", &8).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let text = captured.text();
    let fast = text
        .lines()
        .find(|l| l.contains("CALL<-") && l.contains("\"/fast\""))
        .expect(&text);
    assert!(fast.contains("DEBUG") && fast.contains("(fast)"), "{fast}");
    assert!(
        fast.contains(r#"\"meta\":\"author=andeya\""#) || fast.contains("author=andeya"),
        "{fast}"
    );
    let slow = text
        .lines()
        .find(|l| l.contains("CALL<-") && l.contains("\"/slow\""))
        .expect(&text);
    assert!(slow.contains("WARN") && slow.contains("(slow)"), "{slow}");
    assert!(
        slow.contains("\"body\":\"8\""),
        "the body is shown with print_detail: {slow}"
    );
}
