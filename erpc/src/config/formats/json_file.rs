//! JSON, with serde_json: values through serde; key lines by a scan that follows strings and
//! nesting (serde_json keeps no positions once it succeeds).

use figment::value::{Dict, Value};

use super::{Failure, KeyLines, top_level};

pub(super) fn parse(text: &str) -> Result<(Dict, KeyLines), Failure> {
    let values: Value = serde_json::from_str(text).map_err(|e| Failure::Syntax {
        line: Some(e.line()),
        reason: e.to_string(),
    })?;
    Ok((top_level(values)?, key_lines(text)))
}

/// The keys of the top-level object and of the objects directly under it.
fn key_lines(text: &str) -> KeyLines {
    let mut lines = KeyLines::new();
    // Objects and arrays open around the cursor: `Some(key)` for an object entered as the
    // value of a top-level key.
    let mut depth = 0usize;
    let mut parent: Option<String> = None;
    let mut line = 1;
    let mut chars = text.char_indices().peekable();
    let mut last_string: Option<(String, usize)> = None;
    while let Some((_, c)) = chars.next() {
        match c {
            '\n' => line += 1,
            '"' => {
                let start_line = line;
                let mut value = String::new();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => break,
                        '\n' => {
                            line += 1;
                            value.push(c);
                        }
                        _ => value.push(c),
                    }
                }
                last_string = Some((value, start_line));
                continue;
            }
            ':' => {
                if let Some((key, at)) = last_string.take() {
                    match depth {
                        1 => {
                            lines.insert((None, key.clone()), at);
                            parent = Some(key);
                        }
                        2 => {
                            lines.insert((parent.clone(), key), at);
                        }
                        _ => {}
                    }
                }
            }
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if !c.is_whitespace() && c != ':' {
            last_string = None;
        }
    }
    lines
}
