//! The URL escaping shared by the status and meta query strings (wire.md §2.2, §2.3).
//!
//! Go eRPC escapes every byte outside `A-Za-z0-9*-._` as uppercase `%XX` and unescapes
//! leniently: a `%` not followed by two hex digits is kept literally and `+` means space.
//! Unlike Go, a `0xFF` after `%` is simply "not hex" here instead of a panic.

/// Appends `input` to `out`, escaping every byte outside the unreserved set.
pub(crate) fn escape_into(input: &[u8], out: &mut impl bytes::BufMut) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in input {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.put_u8(b);
        } else {
            out.put_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]);
        }
    }
}

/// Decodes `%XX` escapes and `+`; never fails.
pub(crate) fn unescape(input: &[u8]) -> Vec<u8> {
    // Most keys and values have nothing escaped: copy them whole.
    if memchr::memchr2(b'%', b'+', input).is_none() {
        return input.to_vec();
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => match (hex_value(input[i + 1]), hex_value(input[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'%' => {
                // A `%` within the last two bytes: Go emits the rest literally.
                out.extend_from_slice(&input[i..]);
                break;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits a query string into its raw `(key, value)` pieces, on `&` then the first `=`.
pub(crate) fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&b| b == b'&')
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (&piece[..eq], &piece[eq + 1..]),
            None => (piece, &piece[piece.len()..]),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> String {
        let mut out = Vec::new();
        escape_into(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_everything_outside_the_unreserved_set() {
        assert_eq!(esc(b"a&b=c+d \xC3\xA9/_.-*~"), "a%26b%3Dc%2Bd%20%C3%A9%2F_.-*%7E");
        assert_eq!(esc(b"line1\nline2"), "line1%0Aline2");
    }

    #[test]
    fn unescapes_leniently() {
        assert_eq!(unescape(b"a%20b+c"), b"a b c");
        assert_eq!(unescape(b"%4"), b"%4");
        assert_eq!(unescape(b"%zz"), b"%zz");
        assert_eq!(unescape(b"x%"), b"x%");
        assert_eq!(unescape(b"%41%4"), b"A%4");
        assert_eq!(unescape(b"%6f"), b"o");
    }

    #[test]
    fn ff_after_percent_is_not_hex_and_never_panics() {
        assert_eq!(unescape(b"%\xFF\xFF"), b"%\xFF\xFF");
        assert_eq!(unescape(b"%4\xFF"), b"%4\xFF");
        assert_eq!(unescape(b"%\xFFA"), b"%\xFFA");
    }
}
