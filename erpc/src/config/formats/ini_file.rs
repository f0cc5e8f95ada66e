//! INI as Go's `andeya/ini` writes it (`SyncINI`/`ReflectFrom`): `key = value` lines, keys
//! at the top (before any `[section]`, or under `[DEFAULT]`) or in named sections, `;` and `#`
//! comments. Parsed with rust-ini; each raw value is then read with Go's rules (backquoted
//! values verbatim, otherwise cut at an inline `#` or `;`, then one pair of surrounding quotes
//! removed). Every value is text: numbers, booleans and durations are read from it when the
//! field is filled.

use figment::value::{Dict, Value};
use ini::{Ini, ParseOption};

use super::{Failure, KeyLines};

/// The section Go's ini library keeps top-level keys in, when a file names it.
const GO_DEFAULT_SECTION: &str = "DEFAULT";

pub(super) fn parse(text: &str) -> Result<(Dict, KeyLines), Failure> {
    let options = ParseOption {
        // Go's quoting rules are applied below, on the raw text.
        enabled_quote: false,
        // Go keeps backslashes (a Windows path stays as written).
        enabled_escape: false,
        ..ParseOption::default()
    };
    let document = Ini::load_from_str_opt(text, options).map_err(|e| Failure::Syntax {
        line: Some(e.line),
        reason: e.msg.to_string(),
    })?;
    let mut top = Dict::new();
    for (section, properties) in &document {
        let entries = properties
            .iter()
            .map(|(key, raw)| (key.to_string(), Value::from(go_value(raw))));
        match section {
            None | Some(GO_DEFAULT_SECTION) => top.extend(entries),
            Some(name) => {
                let dict: Dict = entries.collect();
                top.insert(name.to_string(), Value::from(dict));
            }
        }
    }
    Ok((top, key_lines(text)))
}

/// A raw value as Go's ini reads it.
fn go_value(raw: &str) -> String {
    let value = raw.trim();
    for quote in ["`", "\"\"\""] {
        if let Some(inner) = value.strip_prefix(quote)
            && let Some(end) = inner.rfind(quote)
        {
            return inner[..end].to_string();
        }
    }
    let value = match value.find(['#', ';']) {
        Some(comment) => value[..comment].trim_end(),
        None => value,
    };
    for quote in ['"', '\''] {
        if value.len() >= 2
            && let Some(inner) = value.strip_prefix(quote).and_then(|v| v.strip_suffix(quote))
        {
            return inner.to_string();
        }
    }
    value.to_string()
}

/// The line of each `key = value` (or `key: value`), by section.
fn key_lines(text: &str) -> KeyLines {
    let mut lines = KeyLines::new();
    let mut section: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split_once(']')) {
            let name = name.0.trim();
            section = (name != GO_DEFAULT_SECTION).then(|| name.to_string());
            if let Some(name) = &section {
                lines.insert((None, name.clone()), index + 1);
            }
            continue;
        }
        if let Some(end) = line.find(['=', ':']) {
            let key = line[..end].trim().trim_matches('`').to_string();
            lines.insert((section.clone(), key), index + 1);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::go_value;

    #[test]
    fn values_are_read_with_gos_rules() {
        for (raw, want) in [
            ("100ms", "100ms"),
            ("  tcp  ", "tcp"),
            ("9090 ; the port", "9090"),
            ("9090# the port", "9090"),
            ("`/a;b#c`", "/a;b#c"),
            ("\"\"\"x;y\"\"\"", "x;y"),
            ("\"quoted\"", "quoted"),
            ("'single'", "single"),
            ("C:\\path", "C:\\path"),
            ("\"", "\""),
            ("", ""),
        ] {
            assert_eq!(go_value(raw), want, "{raw:?}");
        }
    }
}
