//! [`ConfigLoader`]: a [`PeerConfig`] from layers — the library's defaults, a program's own
//! defaults, files, the environment, flags — each one over the ones before, merged by figment,
//! which remembers which layer set each value ([`Explained`]).

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::value::{Dict, Value};
use serde::Serialize;

use super::formats::{self, Failure, Format};
use super::layer::{Layer, layer_index};
use super::origin::{FieldError, Origin};
use super::{ConfigError, PeerConfig, duration, env};

/// The largest configuration file read (a full one with comments is a few KiB).
const MAX_FILE_SIZE: u64 = 1 << 20;

/// Builds a [`PeerConfig`] from layers, later layers over earlier ones. The usual order is
/// the one of the `erpc` command: defaults, then a file, then the environment, then flags.
///
/// ```
/// # #[cfg(feature = "toml")] {
/// use erpc::config::{ConfigLoader, Format, Origin};
///
/// let explained = ConfigLoader::new()
///     .text(Format::Toml, "erpc.toml", "listen_port = 9090\ncall_timeout = \"20s\"\n", None)?
///     .env_vars([("ERPC_CALL_TIMEOUT".to_string(), "5s".to_string())])
///     .set("listen_port", 7070, "--port")
///     .explain()?;
/// assert_eq!(explained.config.call_timeout, std::time::Duration::from_secs(5));
/// assert_eq!(explained.config.listen_port, 7070);
/// assert_eq!(explained.origin("call_timeout"), Some(&Origin::Env("ERPC_CALL_TIMEOUT".into())));
/// assert_eq!(explained.origin("listen_port"), Some(&Origin::Flag("--port".into())));
/// assert_eq!(explained.origin("network"), Some(&Origin::Default));
/// # }
/// # Ok::<(), erpc::config::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConfigLoader {
    layers: Vec<Layer>,
}

/// A loaded configuration and where each of its values came from.
#[derive(Clone, Debug)]
pub struct Explained {
    /// The configuration.
    pub config: PeerConfig,
    /// Every key of [`PeerConfig::KEYS`], in that order, with the origin of its value.
    pub origins: Vec<(&'static str, Origin)>,
}

impl Explained {
    /// Where `key`'s value came from (`None` for a key `PeerConfig` does not have).
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.origins.iter().find(|(k, _)| *k == key).map(|(_, origin)| origin)
    }
}

impl Default for ConfigLoader {
    fn default() -> Self {
        ConfigLoader::new()
    }
}

impl ConfigLoader {
    /// A loader holding `PeerConfig::default()`.
    pub fn new() -> ConfigLoader {
        let defaults = Layer::new("default".into(), Origin::Default, as_dict(&PeerConfig::default()));
        ConfigLoader { layers: Vec::new() }.push(defaults)
    }

    fn push(mut self, mut layer: Layer) -> ConfigLoader {
        layer.index = self.layers.len();
        self.layers.push(layer);
        self
    }

    /// A program's own defaults over the library's (`erpc serve` closes idle sessions after 5
    /// minutes): the keys where `config` differs from `PeerConfig::default()`, reported as
    /// `"{program} default"`.
    pub fn preset(self, program: &str, config: &PeerConfig) -> ConfigLoader {
        let library = as_dict(&PeerConfig::default());
        let changed: Dict = as_dict(config)
            .into_iter()
            .filter(|(key, value)| library.get(key) != Some(value))
            .collect();
        self.push(Layer::new(
            format!("{program} default"),
            Origin::Preset(program.into()),
            changed,
        ))
    }

    /// The keys of a `.toml`, `.yaml`/`.yml`, `.json` or `.ini` file (the format by the
    /// extension). Syntax errors are reported here, with the line; unknown keys and bad values
    /// when loading.
    pub fn file(self, path: impl AsRef<Path>) -> Result<ConfigLoader, ConfigError> {
        self.read_file(path.as_ref(), None)
    }

    /// The keys of one top-level section of a file, as Go's config files have one section per
    /// struct (`cfg_srv:` in YAML, `[cfg_srv]` in TOML or INI, `"cfg_srv": {…}` in JSON).
    pub fn file_section(self, path: impl AsRef<Path>, section: &str) -> Result<ConfigLoader, ConfigError> {
        self.read_file(path.as_ref(), Some(section))
    }

    fn read_file(self, path: &Path, section: Option<&str>) -> Result<ConfigLoader, ConfigError> {
        let name = path.display().to_string();
        let format = Format::from_path(path).ok_or_else(|| ConfigError::UnknownFormat(name.clone()))?;
        let io_error = |source| ConfigError::Io {
            path: name.clone(),
            source,
        };
        // Read one byte past the limit to tell a file at the limit from a larger one.
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_FILE_SIZE + 1).read_to_string(&mut text))
            .map_err(io_error)?;
        if text.len() as u64 > MAX_FILE_SIZE {
            return Err(ConfigError::Parse {
                path: Some(name),
                line: None,
                reason: format!("larger than {MAX_FILE_SIZE} bytes: not a peer configuration"),
            });
        }
        self.text(format, &name, &text, section)
    }

    /// The keys of `text` in `format`, named `name` in errors and origins (a file's path), or
    /// of its `section` when one is given.
    pub fn text(
        self,
        format: Format,
        name: &str,
        text: &str,
        section: Option<&str>,
    ) -> Result<ConfigLoader, ConfigError> {
        let parsed = formats::parse(format, text, section).map_err(|failure| match failure {
            Failure::Syntax { line, reason } => ConfigError::Parse {
                path: Some(name.into()),
                line,
                reason: format!("invalid {}: {reason}", format.name()),
            },
            Failure::NotAMapping => ConfigError::Parse {
                path: Some(name.into()),
                line: None,
                reason: "the document must be a mapping of PeerConfig keys".into(),
            },
            Failure::Disabled(feature) => ConfigError::Parse {
                path: Some(name.into()),
                line: None,
                reason: format!(
                    "reading {} needs erpc's `{feature}` feature: enable it, or use another format",
                    format.name()
                ),
            },
            Failure::NoSection | Failure::SectionNotATable => ConfigError::MissingSection {
                path: name.into(),
                section: section.unwrap_or_default().into(),
            },
        })?;
        let mut layer = Layer::new(
            format!("file {name}"),
            Origin::File {
                path: name.into(),
                line: None,
            },
            parsed.values,
        );
        for (key, line) in parsed.lines {
            layer.origins.insert(
                key,
                Origin::File {
                    path: name.into(),
                    line: Some(line),
                },
            );
        }
        layer.refuse_unknown_keys();
        Ok(self.push(layer))
    }

    /// The process's `ERPC_` environment variables (`ERPC_CALL_TIMEOUT=5s`): `ERPC_` and the
    /// key in capitals, the value written as in a file. Empty ones count as unset; one that
    /// names no key is an error when loading.
    pub fn env(self) -> ConfigLoader {
        let vars = std::env::vars_os().map(|(name, value)| {
            (
                name.to_string_lossy().into_owned(),
                value.to_string_lossy().into_owned(),
            )
        });
        self.env_vars(vars)
    }

    /// As [`env`](Self::env), from the given variables instead of the process's (tests,
    /// programs that keep their own environment).
    pub fn env_vars(self, vars: impl IntoIterator<Item = (String, String)>) -> ConfigLoader {
        self.push(env::layer(vars))
    }

    /// Sets `key` to `value` over everything before, reported as coming from `flag` (a
    /// command-line flag such as `--timeout`, or any name for an override in code). Values are
    /// written as in a file: durations as Go text (see [`set_duration`](Self::set_duration)),
    /// networks by name.
    pub fn set(self, key: &str, value: impl Serialize, flag: &str) -> ConfigLoader {
        let origin = Origin::Flag(flag.into());
        let mut layer = Layer::new(format!("flag {flag}"), origin.clone(), Dict::new());
        match Value::serialize(value) {
            Ok(value) => {
                layer.values.insert(key.into(), value);
                layer.refuse_unknown_keys();
            }
            Err(e) => layer.problems.push(FieldError {
                origin,
                field: key.into(),
                reason: format!("cannot be written as a configuration value: {e}"),
            }),
        }
        self.push(layer)
    }

    /// [`set`](Self::set) for a duration.
    pub fn set_duration(self, key: &str, value: Duration, flag: &str) -> ConfigLoader {
        self.set(key, duration::format(value), flag)
    }

    /// The configuration, checked with [`PeerConfig::validate`].
    pub fn load(&self) -> Result<PeerConfig, ConfigError> {
        self.explain().map(|explained| explained.config)
    }

    /// The configuration and where each value came from, checked with
    /// [`PeerConfig::validate`]; a refused value is reported with its origin.
    pub fn explain(&self) -> Result<Explained, ConfigError> {
        let explained = self.extract()?;
        explained
            .config
            .validate()
            .map_err(|e| refused_by_validate(e, &explained))?;
        Ok(explained)
    }

    /// The configuration without [`PeerConfig::validate`]: every key read and typed, nothing
    /// more.
    pub fn extract(&self) -> Result<Explained, ConfigError> {
        // Unknown keys and bad values are told together, so one run shows every problem.
        let mut problems: Vec<FieldError> = self.layers.iter().flat_map(|l| l.problems.clone()).collect();
        let figment = merged(self.layers.iter().cloned());
        let extracted = figment.extract_lossy::<PeerConfig>();
        if let Err(error) = &extracted {
            problems.extend(self.bad_values(error.clone()));
        }
        let config = match extracted {
            Ok(config) if problems.is_empty() => config,
            _ => return Err(ConfigError::Fields(problems)),
        };
        let origins = PeerConfig::KEYS
            .iter()
            .map(|&key| {
                let origin = figment
                    .find_metadata(key)
                    .and_then(layer_index)
                    .and_then(|index| self.layers.get(index))
                    .map_or(Origin::Default, |layer| layer.origin_of(key));
                (key, origin)
            })
            .collect();
        Ok(Explained { config, origins })
    }

    /// Every bad value, one key at a time (serde stops at the first), falling back on
    /// `first` if none shows alone.
    fn bad_values(&self, first: figment::Error) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for key in PeerConfig::KEYS {
            let layers = self
                .layers
                .iter()
                .filter(|layer| layer.values.contains_key(*key))
                .map(|layer| layer.only(key));
            if let Err(error) = merged(layers).extract_lossy::<PeerConfig>() {
                errors.extend(self.field_errors(error));
            }
        }
        if errors.is_empty() {
            errors = self.field_errors(first);
        }
        errors
    }

    fn field_errors(&self, error: figment::Error) -> Vec<FieldError> {
        error
            .into_iter()
            .map(|error| {
                let field = match error.path.join(".") {
                    path if path.is_empty() => "(the configuration)".to_string(),
                    path => path,
                };
                let origin = error
                    .metadata
                    .as_ref()
                    .and_then(layer_index)
                    .and_then(|index| self.layers.get(index))
                    .map_or(Origin::Default, |layer| layer.origin_of(&field));
                FieldError {
                    origin,
                    field,
                    reason: error.kind.to_string(),
                }
            })
            .collect()
    }
}

fn merged(layers: impl Iterator<Item = Layer>) -> Figment {
    layers.fold(Figment::new(), Figment::merge)
}

/// A configuration as figment values. `PeerConfig` serialises to a map of plain values, so
/// this cannot fail; an empty dict stands in if it ever did.
fn as_dict(config: &PeerConfig) -> Dict {
    match Value::serialize(config) {
        Ok(Value::Dict(_, dict)) => dict,
        _ => Dict::new(),
    }
}

/// A [`PeerConfig::validate`] error, told with the origin of the value at fault.
fn refused_by_validate(error: ConfigError, explained: &Explained) -> ConfigError {
    let (field, reason) = match &error {
        ConfigError::UnknownCodec(name) => (
            "default_body_codec",
            format!("{name:?} {}", super::unknown_codec_reason(name)),
        ),
        ConfigError::UnavailableNetwork(network) => {
            let name = Value::serialize(network)
                .ok()
                .and_then(Value::into_string)
                .unwrap_or_else(|| format!("{network:?}"));
            ("network", format!("{name:?} {}", network.unavailable_reason()))
        }
        ConfigError::Invalid { field, reason } => (*field, reason.clone()),
        _ => return error,
    };
    match explained.origin(field) {
        Some(origin) => ConfigError::Fields(vec![FieldError {
            origin: origin.clone(),
            field: field.into(),
            reason,
        }]),
        None => error,
    }
}
