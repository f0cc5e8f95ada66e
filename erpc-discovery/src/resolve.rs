//! Resolution: a service's registered instances read from etcd, then followed by a watch from
//! the revision read. A watch that breaks (etcd restarted, unreachable, compacted past our
//! revision) is opened again after reading the whole set anew; meanwhile the client keeps the
//! set it last knew.

use std::collections::BTreeMap;
use std::sync::Weak;

use crate::DiscoveryError;
use crate::client::ClientInner;
use crate::etcd::api::{EVENT_DELETE, KeyValue};
use crate::etcd::{Etcd, prefix_end};
use crate::instance::{Instance, service_prefix};
use crate::register::Backoff;

/// Reads the registered set into `client`; the revision read at.
pub(crate) async fn initial(etcd: &Etcd, service: &str, client: &ClientInner) -> Result<i64, DiscoveryError> {
    let prefix = service_prefix(service);
    let listed = etcd.range(prefix.as_bytes(), &prefix_end(prefix.as_bytes()), 0).await?;
    let registered: BTreeMap<String, Instance> = listed
        .kvs
        .iter()
        .filter_map(|kv| read(&prefix, kv).and_then(|(id, instance)| Some((id, instance?))))
        .collect();
    client.set_registered(registered);
    Ok(listed.header.map_or(0, |h| h.revision))
}

/// Follows the service's keys from `revision` on, for as long as the client lives.
pub(crate) async fn watch(etcd: Etcd, service: String, client: Weak<ClientInner>, mut revision: i64) {
    let prefix = service_prefix(&service);
    let end = prefix_end(prefix.as_bytes());
    let mut backoff = Backoff::default();
    loop {
        let why = follow(&etcd, &prefix, &end, &client, revision, &mut backoff).await;
        if client.strong_count() == 0 {
            return;
        }
        tracing::warn!(%service, "the etcd watch stopped ({why}); reading the instances again");
        loop {
            backoff.wait().await;
            let Some(live) = client.upgrade() else { return };
            match initial(&etcd, &service, &live).await {
                Ok(read) => {
                    revision = read;
                    break;
                }
                Err(e) => tracing::warn!(%service, "{e}; keeping the instances last known"),
            }
        }
    }
}

/// One watch, until it fails (why) or the client is gone.
async fn follow(
    etcd: &Etcd,
    prefix: &str,
    end: &[u8],
    client: &Weak<ClientInner>,
    revision: i64,
    backoff: &mut Backoff,
) -> String {
    let mut events = match etcd.watch(prefix.as_bytes(), end, revision.saturating_add(1)).await {
        Ok(events) => events,
        Err(e) => return e.to_string(),
    };
    loop {
        let response = match events.message().await {
            Ok(Some(response)) => response,
            Ok(None) => return "etcd ended the watch".into(),
            Err(status) => return format!("the watch stream broke: {}", status.message()),
        };
        if response.canceled {
            return format!("etcd canceled the watch: {}", response.cancel_reason);
        }
        if response.compact_revision > 0 {
            return format!("etcd compacted past revision {revision}");
        }
        backoff.reset();
        if response.events.is_empty() {
            continue;
        }
        let changes = response
            .events
            .iter()
            .filter_map(|event| {
                let kv = event.kv.as_ref()?;
                if event.r#type == EVENT_DELETE {
                    let id = kv.key.strip_prefix(prefix.as_bytes())?;
                    return Some((String::from_utf8(id.to_vec()).ok()?, None));
                }
                read(prefix, kv)
            })
            .collect();
        let Some(live) = client.upgrade() else {
            return String::new();
        };
        live.apply(changes);
    }
}

/// The id and instance of a key read from etcd; `None` for a key that is not ours, an
/// instance of `None` for a value that is not an instance (logged: someone wrote garbage).
fn read(prefix: &str, kv: &KeyValue) -> Option<(String, Option<Instance>)> {
    let id = std::str::from_utf8(kv.key.strip_prefix(prefix.as_bytes())?).ok()?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    match Instance::from_value(&kv.value) {
        Ok(instance) => Some((id.to_string(), Some(instance))),
        Err(why) => {
            tracing::warn!(key = %String::from_utf8_lossy(&kv.key), "skipped: {why}");
            Some((id.to_string(), None))
        }
    }
}
