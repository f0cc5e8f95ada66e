//! Tracing spans around handled and outgoing calls and pushes: a handler's own logs carry the
//! call's fields, and the span records how the call ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use erpc::{Peer, Router, Status};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span's name and fields as recorded so far.
#[derive(Clone, Debug, Default)]
struct SpanSeen {
    name: String,
    fields: HashMap<String, String>,
}

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// An event's message and the spans it happened in, innermost first.
type EventSeen = (String, Vec<SpanSeen>);

/// Records every span (by id) and, for every event, the spans it happened in.
#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<HashMap<u64, SpanSeen>>>,
    closed: Arc<Mutex<Vec<SpanSeen>>>,
    events: Arc<Mutex<Vec<EventSeen>>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let seen = SpanSeen {
            name: attrs.metadata().name().to_string(),
            fields: fields.0,
        };
        self.spans.lock().unwrap().insert(id.into_u64(), seen);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(seen) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            seen.fields.extend(fields.0);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        let spans = self.spans.lock().unwrap();
        let scope = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .filter_map(|span| spans.get(&span.id().into_u64()).cloned())
                    .collect()
            })
            .unwrap_or_default();
        self.events.lock().unwrap().push((message, scope));
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(seen) = self.spans.lock().unwrap().remove(&id.into_u64()) {
            self.closed.lock().unwrap().push(seen);
        }
    }
}

#[tokio::test]
async fn handlers_log_inside_a_span_that_records_the_outcome() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone()).with(
        tracing_subscriber::filter::Targets::new()
            .with_target("erpc::call", tracing::Level::DEBUG)
            .with_target("erpc::push", tracing::Level::DEBUG)
            .with_target("erpc::client", tracing::Level::DEBUG)
            .with_target("observe_spans", tracing::Level::INFO),
    );
    // A current-thread runtime: the server, the client and the handlers all run here.
    let _default = tracing::subscriber::set_default(subscriber);

    let (pushed, mut pushes) = tokio::sync::mpsc::unbounded_channel();
    let mut router = Router::new();
    router.group("math").call("add", |nums: Vec<i64>| async move {
        tracing::info!("adding {} numbers", nums.len());
        Ok::<_, Status>(nums.iter().sum::<i64>())
    });
    router.call("fail", |_: ()| async move {
        tokio::task::yield_now().await; // finishes on a later poll: the spawned path
        Err::<(), _>(Status::new(1001, "no"))
    });
    router.push("note", move |text: String| {
        let pushed = pushed.clone();
        async move {
            tracing::info!("noted");
            pushed.send(text).ok();
            Ok(())
        }
    });
    let server = Peer::builder().router(router).build().unwrap();
    let addr = server.listen_on("127.0.0.1:0").await.unwrap();
    let client = Peer::builder().build().unwrap();
    let session = client.dial(&addr).await.unwrap();

    let sum: i64 = session.call("/math/add", &[1, 2, 3]).await.unwrap();
    assert_eq!(sum, 6);
    assert_eq!(session.call::<_, ()>("/fail", &()).await.unwrap_err().code(), 1001);
    session.push("/note", "n").await.unwrap();
    pushes.recv().await.unwrap();

    let events = recorder.events.lock().unwrap().clone();
    let (_, scope) = events
        .iter()
        .find(|(message, _)| message == "adding 3 numbers")
        .expect("the handler's log line");
    let call = scope
        .iter()
        .find(|s| s.name == "call")
        .expect("the handler ran in the call span");
    assert_eq!(call.fields["service_method"], "/math/add");
    assert_eq!(call.fields["seq"], "1");
    assert!(call.fields.contains_key("session") && call.fields.contains_key("remote"));
    let (_, scope) = events
        .iter()
        .find(|(m, _)| m == "noted")
        .expect("the push handler's log line");
    assert!(
        scope
            .iter()
            .any(|s| s.name == "push" && s.fields["service_method"] == "/note")
    );

    client.close().await;
    server.close().await;
    let closed = recorder.closed.lock().unwrap().clone();
    let handled = |method: &str| {
        closed
            .iter()
            .find(|s| {
                s.name == "call"
                    && s.fields.get("service_method").is_some_and(|m| m == method)
                    && s.fields.contains_key("seq")
            })
            .unwrap_or_else(|| panic!("no closed server span for {method}: {closed:?}"))
            .clone()
    };
    assert_eq!(handled("/math/add").fields["code"], "0");
    assert!(handled("/math/add").fields.contains_key("duration_us"));
    assert_eq!(handled("/fail").fields["code"], "1001");
    // The client's span for its own call.
    assert!(
        closed.iter().any(|s| s.name == "call"
            && !s.fields.contains_key("seq")
            && s.fields["service_method"] == "/fail"
            && s.fields["code"] == "1001"),
        "{closed:?}"
    );
}
