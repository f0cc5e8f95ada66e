//! Shared test helpers: the Go-written vectors of `../shared/vectors/manifest.json`, and ways
//! for runtime tests to wait for events instead of sleeping.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use erpc::{CodecId, Message, MessageType, Meta, Status, XferPipe};
use serde_json::Value;
use tokio::sync::watch;

/// How long a test waits for something that should happen at once before it fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// Awaits `fut`, failing the test if it takes longer than [`WAIT`]: a wait for an event that
/// never comes fails instead of hanging.
pub async fn within<F: IntoFuture>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut.into_future())
        .await
        .unwrap_or_else(|_| panic!("waited {WAIT:?} for {what}"))
}

/// Polls `cond` until it holds, failing the test after `timeout`. Only for conditions that no
/// event announces: prefer a channel, a `Notify`, [`Events`] or `Session::closed`.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(timeout, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the condition did not hold within {timeout:?}"));
}

/// What happened (hooks run, handlers started…), in order. Whoever sees something happen
/// [`note`](Self::note)s it; a test waits until enough has happened.
#[derive(Clone)]
pub struct Events(Arc<watch::Sender<Vec<String>>>);

impl Default for Events {
    fn default() -> Self {
        Events(Arc::new(watch::Sender::new(Vec::new())))
    }
}

impl Events {
    /// Records one event and wakes whoever waits.
    pub fn note(&self, event: impl Into<String>) {
        self.0.send_modify(|events| events.push(event.into()));
    }

    /// The events so far, which are forgotten.
    pub fn take(&self) -> Vec<String> {
        self.0.send_replace(Vec::new())
    }

    /// The events so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    /// Waits (at most [`WAIT`]) until `n` events have been noted; returns all of them.
    pub async fn wait_len(&self, n: usize) -> Vec<String> {
        let mut rx = self.0.subscribe();
        match tokio::time::timeout(WAIT, rx.wait_for(|events| events.len() >= n)).await {
            Ok(events) => events.expect("the sender lives in self").clone(),
            Err(_) => panic!("waited {WAIT:?} for {n} events, saw {:?}", self.snapshot()),
        }
    }
}

/// A count a test can wait on: added to where something happens, awaited where the test needs
/// it to have happened enough times.
#[derive(Clone)]
pub struct Tally(Arc<watch::Sender<usize>>);

impl Default for Tally {
    fn default() -> Self {
        Tally(Arc::new(watch::Sender::new(0)))
    }
}

impl Tally {
    /// Counts one more and wakes whoever waits.
    pub fn add(&self) {
        self.0.send_modify(|n| *n += 1);
    }

    /// The count so far.
    pub fn get(&self) -> usize {
        *self.0.borrow()
    }

    /// Waits (at most [`WAIT`]) until the count reaches `n`.
    pub async fn reach(&self, n: usize) {
        let mut rx = self.0.subscribe();
        if tokio::time::timeout(WAIT, rx.wait_for(|&count| count >= n))
            .await
            .is_err()
        {
            panic!("waited {WAIT:?} for a count of {n}, saw {}", self.get());
        }
    }
}

/// One vector of the manifest.
pub struct Vector {
    /// `raw`, `json`, `pb`, `thrift` or `http`.
    pub proto: String,
    /// The case name, e.g. `call_add`.
    pub case: String,
    /// The frame Go wrote (empty when Go refused to pack).
    pub wire: Vec<u8>,
    /// The message that was packed.
    pub message: Message,
    /// Whether Go's own decoder read the frame back correctly.
    pub roundtrip_ok: bool,
    /// Go's error when it refused to pack the message.
    pub pack_error: Option<String>,
}

fn manifest() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors/manifest.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}; the shared/ folder must sit beside the project"));
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

/// Every vector of one protocol.
pub fn vectors(proto: &str) -> Vec<Vector> {
    let manifest = manifest();
    let vectors: Vec<Vector> = manifest["vectors"]
        .as_array()
        .expect("vectors is a list")
        .iter()
        .filter(|v| v["proto"] == proto)
        .map(|v| Vector {
            proto: proto.to_string(),
            case: v["case"].as_str().unwrap().to_string(),
            wire: v["wire_hex"]
                .as_str()
                .map(|h| hex::decode(h).unwrap())
                .unwrap_or_default(),
            message: message(&v["message"]),
            roundtrip_ok: v["roundtrip_ok"].as_bool().unwrap_or(true),
            pack_error: v["pack_error"].as_str().map(str::to_string),
        })
        .collect();
    assert!(!vectors.is_empty(), "no {proto} vectors in the manifest");
    vectors
}

/// The manifest's description of a message, as a [`Message`].
pub fn message(m: &Value) -> Message {
    let mtype = MessageType::from_u8(m["mtype"].as_u64().unwrap() as u8).unwrap();
    let meta: Meta = m["meta"]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|p| {
                    (
                        p["key"].as_str().unwrap().to_string(),
                        p["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let xfer: Vec<u8> = m["xfer_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u8)
        .collect();
    Message {
        seq: m["seq"].as_i64().unwrap() as i32,
        mtype,
        service_method: m["service_method"].as_str().unwrap().to_string(),
        status: Status::decode_query(m["status"]["query_string"].as_str().unwrap().as_bytes()),
        meta,
        body_codec: CodecId(m["body_codec_id"].as_u64().unwrap() as u8),
        body: hex::decode(m["body_hex"].as_str().unwrap()).unwrap().into(),
        xfer_pipe: XferPipe::from_ids(&xfer).unwrap(),
    }
}
