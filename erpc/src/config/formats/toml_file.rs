//! TOML, with the toml crate: values through serde, key lines from its spans.

use figment::value::{Dict, Value};
use toml::de::{DeTable, DeValue};

use super::{Failure, KeyLines, line_of, top_level};

pub(super) fn parse(text: &str) -> Result<(Dict, KeyLines), Failure> {
    let syntax = |e: toml::de::Error| Failure::Syntax {
        line: e.span().map(|span| line_of(text, span.start)),
        reason: e.message().trim().to_string(),
    };
    let document = DeTable::parse(text).map_err(syntax)?;
    let mut lines = KeyLines::new();
    for (key, value) in document.get_ref() {
        let key_name = key.get_ref().to_string();
        if let DeValue::Table(table) = value.get_ref() {
            for (inner, _) in table {
                lines.insert(
                    (Some(key_name.clone()), inner.get_ref().to_string()),
                    line_of(text, inner.span().start),
                );
            }
        }
        lines.insert((None, key_name), line_of(text, key.span().start));
    }
    let values: Value = toml::from_str(text).map_err(syntax)?;
    Ok((top_level(values)?, lines))
}
