//! [`Instance`]: what a registration stores in etcd for one listening address, and where.
//!
//! Keys are `erpc/services/SERVICE/LEASE-INDEX` (the registering process's lease id in hex and
//! the listener's index); the value is the instance as JSON, enough to dial it:
//! `{"network":"tcp","addr":"10.0.0.5:9090","proto":"raw"}`. Values come from etcd and are
//! read as untrusted input: size-capped, parsed, checked.

use erpc::config::Network;
use serde::{Deserialize, Serialize};

/// The prefix of every registration key.
pub const KEY_PREFIX: &str = "erpc/services/";

/// Longest value read as an instance; longer ones are skipped.
pub(crate) const MAX_VALUE_BYTES: usize = 4096;

/// One listening address of a server, as registered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instance {
    /// The transport to dial it with.
    pub network: Network,
    /// The address to dial (`host:port`, or a socket path).
    pub addr: String,
    /// The wire protocol it speaks (a name of `erpc::proto::by_name`).
    pub proto: String,
}

/// The key prefix of `service`'s instances (`erpc/services/SERVICE/`).
pub fn service_prefix(service: &str) -> String {
    format!("{KEY_PREFIX}{service}/")
}

/// The key of the `index`th address registered under `lease`.
pub(crate) fn instance_key(service: &str, lease: i64, index: usize) -> String {
    format!("{}{lease:016x}-{index}", service_prefix(service))
}

impl Instance {
    /// The value stored in etcd.
    pub(crate) fn to_value(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a value from etcd, or says why it is not an instance.
    pub(crate) fn from_value(value: &[u8]) -> Result<Instance, String> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "{} bytes, more than the {MAX_VALUE_BYTES} an instance may take",
                value.len()
            ));
        }
        let instance: Instance = serde_json::from_slice(value).map_err(|e| format!("not an instance: {e}"))?;
        if instance.addr.is_empty() {
            return Err("the address is empty".into());
        }
        if erpc::proto::by_name(&instance.proto).is_none() {
            return Err(format!("unknown protocol {:?}", instance.proto));
        }
        Ok(instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_round_trips_through_its_value() {
        let instance = Instance {
            network: Network::Tcp,
            addr: "127.0.0.1:9090".into(),
            proto: "raw".into(),
        };
        let value = instance.to_value();
        assert_eq!(
            String::from_utf8_lossy(&value),
            r#"{"network":"tcp","addr":"127.0.0.1:9090","proto":"raw"}"#
        );
        assert_eq!(Instance::from_value(&value).unwrap(), instance);
        assert_eq!(instance_key("math", 0x1f, 2), "erpc/services/math/000000000000001f-2");
    }

    #[test]
    fn hostile_values_are_refused_not_trusted() {
        assert!(
            Instance::from_value(&vec![b' '; MAX_VALUE_BYTES + 1])
                .unwrap_err()
                .contains("more than")
        );
        assert!(Instance::from_value(b"\xff\x00").is_err());
        assert!(Instance::from_value(br#"{"network":"tcp","addr":"","proto":"raw"}"#).is_err());
        assert!(Instance::from_value(br#"{"network":"tcp","addr":"a:1","proto":"nope"}"#).is_err());
        assert!(Instance::from_value(br#"{"network":"carrier-pigeon","addr":"a:1","proto":"raw"}"#).is_err());
    }
}
