//! The URL escaping shared by the status and meta query strings.
//!
//! Go eRPC escapes every byte outside `A-Za-z0-9*-._` as uppercase `%XX` (space is `%20`,
//! `~` is `%7E`) and unescapes leniently: a `%` not followed by two hex digits is kept
//! literally and `+` means space. Unlike Go, a `0xFF` after `%` is simply "not hex" here
//! instead of a panic. The byte work is `percent-encoding`'s; this module holds Go's rules.
//!
//! Neither `url::form_urlencoded` (space → `+`) nor Go's `url.QueryEscape` (keeps `~`,
//! escapes `*`) is this set, hence the custom [`AsciiSet`].

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};

/// Every byte Go eRPC escapes: all but ASCII letters, digits and `*` `-` `.` `_`.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_');

/// Appends `input` to `out`, escaping every byte outside the unreserved set. Allocates
/// nothing: runs of unreserved bytes are copied whole.
pub(crate) fn escape_into(input: &[u8], out: &mut impl bytes::BufMut) {
    for piece in percent_encode(input, ESCAPED) {
        out.put_slice(piece.as_bytes());
    }
}

/// Decodes `%XX` escapes and `+`; never fails.
pub(crate) fn unescape(input: &[u8]) -> Vec<u8> {
    // Most keys and values have nothing escaped: copy them whole.
    if memchr::memchr2(b'%', b'+', input).is_none() {
        return input.to_vec();
    }
    // Go: a `%` within the last two bytes is emitted literally with everything after it
    // (a `+` there stays `+`). `%` is not a hex digit, so no escape before it reaches it.
    let tail = input.len().saturating_sub(2);
    let literal_from = memchr::memchr(b'%', &input[tail..]).map_or(input.len(), |p| tail + p);
    let (decoded, literal) = input.split_at(literal_from);
    let mut out = Vec::with_capacity(input.len());
    // `+` is not a hex digit either, so splitting on it never cuts a valid escape.
    for (i, piece) in decoded.split(|&b| b == b'+').enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend(percent_decode(piece));
    }
    out.extend_from_slice(literal);
    out
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
    use proptest::prelude::*;

    fn esc(s: &[u8]) -> String {
        let mut out = Vec::new();
        escape_into(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// wire.md §2.3's url_unescape, written as the spec states it, byte by byte (with 0xFF
    /// read as not hex).
    fn spec_unescape(input: &[u8]) -> Vec<u8> {
        fn hex(b: u8) -> Option<u8> {
            (b as char).to_digit(16).map(|d| d as u8)
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            match input[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < input.len() => match (hex(input[i + 1]), hex(input[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b'%' => {
                    out.extend_from_slice(&input[i..]);
                    break;
                }
                b => out.push(b),
            }
            i += 1;
        }
        out
    }

    #[test]
    fn escapes_everything_outside_the_unreserved_set() {
        assert_eq!(esc(b"a&b=c+d \xC3\xA9/_.-*~"), "a%26b%3Dc%2Bd%20%C3%A9%2F_.-*%7E");
        assert_eq!(esc(b"line1\nline2"), "line1%0Aline2");
        assert_eq!(esc(b""), "");
    }

    #[test]
    fn every_byte_escapes_as_go_erpc_does() {
        for b in 0..=255u8 {
            let kept = b.is_ascii_alphanumeric() || b"*-._".contains(&b);
            let want = if kept {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            };
            assert_eq!(esc(&[b]), want, "byte {b:#04x}");
            assert_eq!(unescape(want.as_bytes()), [b], "byte {b:#04x}");
            // Lower-case hex decodes too.
            assert_eq!(unescape(format!("%{b:02x}").as_bytes()), [b], "byte {b:#04x}");
        }
    }

    #[test]
    fn unescapes_leniently() {
        assert_eq!(unescape(b"a%20b+c"), b"a b c");
        assert_eq!(unescape(b"%4"), b"%4");
        assert_eq!(unescape(b"%zz"), b"%zz");
        assert_eq!(unescape(b"x%"), b"x%");
        assert_eq!(unescape(b"%41%4"), b"A%4");
        assert_eq!(unescape(b"%6f"), b"o");
        assert_eq!(unescape(b"%2B+"), b"+ ");
        // A `%` in the last two bytes keeps the rest literally, `+` included.
        assert_eq!(unescape(b"a+%+"), b"a %+");
        assert_eq!(unescape(b"+%"), b" %");
        assert_eq!(unescape(b"%4%"), b"%4%");
        assert_eq!(unescape(b"%a+b"), b"%a b");
    }

    #[test]
    fn ff_after_percent_is_not_hex_and_never_panics() {
        assert_eq!(unescape(b"%\xFF\xFF"), b"%\xFF\xFF");
        assert_eq!(unescape(b"%4\xFF"), b"%4\xFF");
        assert_eq!(unescape(b"%\xFFA"), b"%\xFFA");
    }

    proptest! {
        #[test]
        fn escaping_round_trips(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut escaped = Vec::new();
            escape_into(&input, &mut escaped);
            prop_assert!(escaped.iter().all(|b| b.is_ascii_alphanumeric() || b"*-._%".contains(b)));
            prop_assert_eq!(unescape(&escaped), input);
        }

        #[test]
        fn unescaping_follows_the_spec(
            input in proptest::collection::vec(
                prop_oneof![Just(b'%'), Just(b'+'), Just(b'a'), Just(b'F'), Just(b'4'), Just(b'z'), Just(0xFF), any::<u8>()],
                0..24,
            )
        ) {
            prop_assert_eq!(unescape(&input), spec_unescape(&input));
        }
    }
}
