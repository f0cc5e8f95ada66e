//! The file formats a [`PeerConfig`](super::PeerConfig) is read from (TOML, YAML, JSON, INI):
//! which one a file is in, and its text turned into figment values together with the line
//! each key is written on. One file per format, so each parser stays behind its own door.

mod ini_file;
mod json_file;
#[cfg(feature = "toml")]
mod toml_file;
#[cfg(feature = "yaml")]
mod yaml_file;

use std::collections::HashMap;
use std::path::Path;

use figment::value::{Dict, Value};

/// A configuration file format. TOML and YAML need erpc's `toml` and `yaml` features; the
/// variants exist in every build, so a file in a format left out fails with an error naming
/// the feature rather than as an unknown extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TOML (`.toml`).
    Toml,
    /// YAML (`.yaml`, `.yml`), the format of Go eRPC's cfgo files.
    Yaml,
    /// JSON (`.json`).
    Json,
    /// INI (`.ini`), as Go's `andeya/ini` reads and writes it.
    Ini,
}

impl Format {
    /// The format a file's extension names, if it names one.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "ini" => Some(Format::Ini),
            _ => None,
        }
    }

    /// The format's name, as error messages say it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Ini => "INI",
        }
    }

    /// The erpc feature this build lacks to read the format, if it lacks one.
    pub fn missing_feature(self) -> Option<&'static str> {
        match self {
            Format::Toml if !cfg!(feature = "toml") => Some("toml"),
            Format::Yaml if !cfg!(feature = "yaml") => Some("yaml"),
            _ => None,
        }
    }
}

/// Where keys are written: `(section, key)` to a line (1-based). `section` is `None` for the
/// document's top level, else the top-level key the entry sits under.
pub(super) type KeyLines = HashMap<(Option<String>, String), usize>;

/// Why a text could not be read.
#[derive(Debug)]
pub(super) enum Failure {
    /// Not valid in its format.
    Syntax { line: Option<usize>, reason: String },
    /// The document is not a mapping of keys (a list, a bare value).
    NotAMapping,
    /// The section asked for is not there.
    NoSection,
    /// The section asked for is a value, not a table of keys.
    SectionNotATable,
    /// This build cannot read the format: the erpc feature it needs.
    #[cfg_attr(all(feature = "toml", feature = "yaml"), allow(dead_code))]
    Disabled(&'static str),
}

/// A document's keys as figment values (of the section asked for), and where each is written.
pub(super) struct Parsed {
    pub(super) values: Dict,
    pub(super) lines: HashMap<String, usize>,
}

/// Reads `text` in `format`, keeping only `section`'s keys when one is named.
pub(super) fn parse(format: Format, text: &str, section: Option<&str>) -> Result<Parsed, Failure> {
    let (mut document, lines) = match format {
        #[cfg(feature = "toml")]
        Format::Toml => toml_file::parse(text)?,
        #[cfg(feature = "yaml")]
        Format::Yaml => yaml_file::parse(text)?,
        #[cfg(not(feature = "toml"))]
        Format::Toml => return Err(Failure::Disabled("toml")),
        #[cfg(not(feature = "yaml"))]
        Format::Yaml => return Err(Failure::Disabled("yaml")),
        Format::Json => json_file::parse(text)?,
        Format::Ini => ini_file::parse(text)?,
    };
    let values = match section {
        None => document,
        Some(name) => match document.remove(name) {
            Some(Value::Dict(_, values)) => values,
            // YAML's `cfg_srv:` with nothing under it.
            Some(Value::Empty(..)) => Dict::new(),
            Some(_) => return Err(Failure::SectionNotATable),
            None => return Err(Failure::NoSection),
        },
    };
    let lines = lines
        .into_iter()
        .filter(|((under, _), _)| under.as_deref() == section)
        .map(|((_, key), line)| (key, line))
        .collect();
    Ok(Parsed { values, lines })
}

/// The document's top-level value as a dict: a mapping, or nothing at all (an empty file).
fn top_level(value: Value) -> Result<Dict, Failure> {
    match value {
        Value::Dict(_, dict) => Ok(dict),
        Value::Empty(..) => Ok(Dict::new()),
        _ => Err(Failure::NotAMapping),
    }
}

/// The 1-based line of a byte offset.
#[cfg(feature = "toml")]
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
