//! Metrics through the `metrics` facade. One test per binary: it installs the global recorder.

use erpc::{Peer, Router, Status};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

fn find<'a>(
    snapshot: &'a [(
        CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    snapshot.iter().find_map(|(key, _, _, value)| {
        let key_labels: Vec<(&str, &str)> = key.key().labels().map(|l| (l.key(), l.value())).collect();
        (key.key().name() == name && labels.iter().all(|l| key_labels.contains(l))).then_some(value)
    })
}

#[tokio::test]
async fn calls_pushes_errors_sessions_and_bytes_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let (pushed, mut pushes) = tokio::sync::mpsc::unbounded_channel();
    let mut router = Router::new();
    router.call("add", |nums: Vec<i64>| async move {
        Ok::<_, Status>(nums.iter().sum::<i64>())
    });
    router.call("fail", |_: ()| async move { Err::<(), _>(Status::new(1001, "no")) });
    router.push("note", move |text: String| {
        let pushed = pushed.clone();
        async move {
            pushed.send(text).ok();
            Ok(())
        }
    });
    let server = Peer::builder().router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();

    for i in 0..5i64 {
        assert_eq!(session.call::<_, i64>("/add", &[i]).await.unwrap(), i);
    }
    session.call::<_, ()>("/fail", &()).await.unwrap_err();
    session.call::<_, ()>("/nowhere/a", &()).await.unwrap_err();
    session.call::<_, ()>("/nowhere/b", &()).await.unwrap_err();
    session.push("/note", "n").await.unwrap();
    pushes.recv().await.unwrap();

    let snapshot = snapshotter.snapshot().into_vec();
    let counter = |name: &str, labels: &[(&str, &str)]| match find(&snapshot, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?}"),
    };
    assert_eq!(counter("erpc_calls_total", &[("route", "/add")]), 5);
    assert_eq!(counter("erpc_calls_total", &[("route", "/fail")]), 1);
    assert_eq!(
        counter("erpc_call_errors_total", &[("route", "/fail"), ("code", "1001")]),
        1
    );
    // Unknown routes are counted under one label value, whatever the caller sent.
    assert_eq!(counter("erpc_calls_total", &[("route", "<unknown>")]), 2);
    assert_eq!(
        counter("erpc_call_errors_total", &[("route", "<unknown>"), ("code", "404")]),
        2
    );
    assert!(
        !snapshot
            .iter()
            .any(|(k, ..)| k.key().labels().any(|l| l.value().starts_with("/nowhere"))),
        "a remote peer created label values"
    );
    assert_eq!(counter("erpc_pushes_total", &[("route", "/note")]), 1);
    assert_eq!(counter("erpc_client_calls_total", &[]), 8);
    assert_eq!(counter("erpc_client_call_errors_total", &[("code", "404")]), 2);
    assert!(counter("erpc_bytes_received_total", &[]) > 0);
    assert!(counter("erpc_bytes_sent_total", &[]) > 0);
    match find(&snapshot, "erpc_call_duration_seconds", &[("route", "/add")]) {
        Some(DebugValue::Histogram(samples)) => assert_eq!(samples.len(), 5),
        other => panic!("duration histogram: {other:?}"),
    }
    // Two peers in this process, one session each.
    match find(&snapshot, "erpc_sessions_open", &[]) {
        Some(DebugValue::Gauge(open)) => assert!(open.into_inner() >= 1.0, "{open:?}"),
        other => panic!("sessions gauge: {other:?}"),
    }
    assert!(
        snapshot
            .iter()
            .any(|(k, ..)| k.kind() == MetricKind::Gauge && k.key().name() == "erpc_queued_bytes")
    );

    client.close().await;
    server.close().await;
}
