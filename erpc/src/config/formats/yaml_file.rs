//! YAML, with serde_yaml_ng: values through serde; key lines by reading the block layout
//! (the parser keeps no positions once it succeeds). A key written in flow style
//! (`{a: 1}`) gets no line.

use figment::value::{Dict, Value};

use super::{Failure, KeyLines, top_level};

/// Deeper flow nesting is refused before parsing: the YAML parser's time grows with the square
/// of the depth (a file of 50,000 `[` takes seconds), and its deserializer stops at 128 anyway.
const MAX_FLOW_DEPTH: usize = 128;

pub(super) fn parse(text: &str) -> Result<(Dict, KeyLines), Failure> {
    check_flow_depth(text)?;
    let values: Value = serde_yaml_ng::from_str(text).map_err(|e| Failure::Syntax {
        line: e.location().map(|l| l.line()),
        reason: e.to_string(),
    })?;
    Ok((top_level(values)?, key_lines(text)))
}

/// Refuses `[`/`{` nesting deeper than [`MAX_FLOW_DEPTH`], outside quotes and comments.
fn check_flow_depth(text: &str) -> Result<(), Failure> {
    let mut depth = 0usize;
    for (index, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') if previous.is_whitespace() => break,
                (None, '[' | '{') => depth += 1,
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_FLOW_DEPTH {
                return Err(Failure::Syntax {
                    line: Some(index + 1),
                    reason: format!("lists or maps nested deeper than {MAX_FLOW_DEPTH} levels"),
                });
            }
            previous = c;
        }
    }
    Ok(())
}

/// Keys at column 0 are top level; the first indented key under one fixes the indentation of
/// that section's keys.
fn key_lines(text: &str) -> KeyLines {
    let mut lines = KeyLines::new();
    let mut section: Option<(String, Option<usize>)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some(key) = block_key(trimmed) else { continue };
        if indent == 0 {
            lines.insert((None, key.clone()), index + 1);
            section = Some((key, None));
        } else if let Some((parent, section_indent)) = &mut section {
            let level = *section_indent.get_or_insert(indent);
            if indent == level {
                lines.insert((Some(parent.clone()), key), index + 1);
            }
        }
    }
    lines
}

/// The key of a `key: value` (or `key:`) line, unquoted.
fn block_key(line: &str) -> Option<String> {
    let colon = line.find(": ").or_else(|| line.strip_suffix(':').map(str::len))?;
    let key = line[..colon].trim();
    let key = key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .or_else(|| key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
        .unwrap_or(key);
    (!key.is_empty() && !key.starts_with(['-', '{', '['])).then(|| key.to_string())
}
