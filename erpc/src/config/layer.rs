//! [`Layer`]: one source of configuration (defaults, a file, the environment, a flag) as a
//! figment provider, with where each of its keys was written and the problems found while
//! reading it.

use std::collections::HashMap;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::PeerConfig;
use super::origin::{FieldError, Origin};

/// One source of keys. Its figment name starts with its index in the loader
/// (`"3: file erpc.toml"`), which is how a value's metadata leads back to the layer.
#[derive(Clone, Debug)]
pub(super) struct Layer {
    pub(super) index: usize,
    pub(super) description: String,
    pub(super) values: Dict,
    /// Per key, when it differs from `fallback` (a file's line, a variable's name).
    pub(super) origins: HashMap<String, Origin>,
    pub(super) fallback: Origin,
    /// Keys refused while reading the layer.
    pub(super) problems: Vec<FieldError>,
}

impl Layer {
    pub(super) fn new(description: String, fallback: Origin, values: Dict) -> Layer {
        Layer {
            index: 0,
            description,
            values,
            origins: HashMap::new(),
            fallback,
            problems: Vec::new(),
        }
    }

    /// Where this layer's `key` was written.
    pub(super) fn origin_of(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or_else(|| self.fallback.clone())
    }

    /// The same layer with only `key` (to find every bad value, one key at a time).
    pub(super) fn only(&self, key: &str) -> Layer {
        Layer {
            values: self
                .values
                .get(key)
                .map(|v| (key.to_string(), v.clone()))
                .into_iter()
                .collect(),
            problems: Vec::new(),
            ..self.clone()
        }
    }

    /// Moves the keys `PeerConfig` does not have from the values to the problems: a misspelt
    /// limit must not silently stay at its default.
    pub(super) fn refuse_unknown_keys(&mut self) {
        let unknown: Vec<String> = self
            .values
            .keys()
            .filter(|key| !PeerConfig::KEYS.contains(&key.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            let holds_a_table = matches!(self.values.remove(&key), Some(Value::Dict(..)));
            let reason = if holds_a_table {
                format!(
                    "unknown key, and it holds a table: if these are the peer's keys, select the section by name (ConfigLoader::file_section; erpc: --config-section {key}); the keys are: {}",
                    PeerConfig::KEYS.join(", ")
                )
            } else {
                format!("unknown key; the keys are: {}", PeerConfig::KEYS.join(", "))
            };
            self.problems.push(FieldError {
                origin: self.origin_of(&key),
                field: key,
                reason,
            });
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("{}: {}", self.index, self.description))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// The index of the layer a figment metadata names.
pub(super) fn layer_index(metadata: &Metadata) -> Option<usize> {
    metadata.name.split_once(':')?.0.parse().ok()
}
