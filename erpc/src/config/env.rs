//! Environment variables as a configuration layer. The rule: `ERPC_` followed by the key in
//! capitals (`call_timeout` → `ERPC_CALL_TIMEOUT`, `listen_port` → `ERPC_LISTEN_PORT`); the
//! value is written as in a file (`5s`, `9090`, `true`). An empty variable counts as unset; an
//! `ERPC_` variable that names no key is refused, so a typo does not pass unnoticed.

use figment::value::{Dict, Value};

use super::PeerConfig;
use super::layer::Layer;
use super::origin::{FieldError, Origin};

/// The prefix of erpc's environment variables.
pub const ENV_PREFIX: &str = "ERPC_";

/// The environment variable that sets `key` (`call_timeout` → `ERPC_CALL_TIMEOUT`).
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

/// The layer of the `ERPC_` variables among `vars`.
pub(super) fn layer(vars: impl IntoIterator<Item = (String, String)>) -> Layer {
    let mut ours: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, value)| name.starts_with(ENV_PREFIX) && !value.is_empty())
        .collect();
    // Sorted, so that problems are told in the same order every time.
    ours.sort();
    let mut layer = Layer::new("environment".into(), Origin::Env(ENV_PREFIX.into()), Dict::new());
    for (name, value) in ours {
        let key = name[ENV_PREFIX.len()..].to_ascii_lowercase();
        if PeerConfig::KEYS.contains(&key.as_str()) && env_name(&key) == name {
            layer.values.insert(key.clone(), Value::from(value));
            layer.origins.insert(key, Origin::Env(name));
        } else {
            let names: Vec<String> = PeerConfig::KEYS.iter().map(|k| env_name(k)).collect();
            layer.problems.push(FieldError {
                origin: Origin::Env(name),
                field: key,
                reason: format!(
                    "no such key, so no such variable; the {ENV_PREFIX} variables are: {}",
                    names.join(", ")
                ),
            });
        }
    }
    layer
}
