//! [`Meta`]: the ordered, repeatable key/value metadata of a message.
//!
//! Like HTTP headers, meta keeps insertion order and repeated keys, and looks keys up without
//! regard to ASCII case (so `author` finds the `Author` an HTTP peer sent). Keys keep the
//! spelling they were added with. Keys and values are bytes on the wire.

use bytes::{BufMut, Bytes};

use crate::escape;

/// Request meta naming the codec the caller wants the reply in (decimal codec id).
pub const ACCEPT_BODY_CODEC: &str = "X-Accept-Body-Codec";
/// Request meta carrying the original client address through proxies.
pub const REAL_IP: &str = "X-Real-IP";
/// Request meta carrying the caller's remaining timeout, in whole milliseconds (erpc's own;
/// Go peers ignore it). See `PeerConfig::send_deadline` and `PeerConfig::cancel_handlers`.
pub const TIMEOUT: &str = "X-Erpc-Timeout";

/// An ordered multimap of metadata, encoded as a query string on the wire.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pairs: Vec<(Bytes, Bytes)>,
}

impl Meta {
    /// Empty meta.
    pub const fn new() -> Self {
        Meta { pairs: Vec::new() }
    }

    /// Number of pairs, repeated keys counted each time.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The first value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<&[u8]> {
        let key = key.as_ref();
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_ref())
    }

    /// The first value of `key`, if it is UTF-8.
    pub fn get_str(&self, key: impl AsRef<[u8]>) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `key` (ASCII case ignored, as by [`get`](Self::get)), in order.
    pub fn get_all<'a>(&'a self, key: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_ref())
    }

    /// Appends a pair, keeping any earlier pair with the same key.
    pub fn add(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> &mut Self {
        self.pairs.push((key.into(), value.into()));
        self
    }

    /// Replaces the value of the first pair with this key, or appends a pair.
    pub fn set(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> &mut Self {
        let key = key.into();
        let value = value.into();
        match self.pairs.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(&key)) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((key, value)),
        }
        self
    }

    /// Removes every pair with this key (all of them, unlike Go's adjacent-pair quirk).
    pub fn remove(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref();
        self.pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// The pairs in order, as the shared buffers they are (cloning one copies nothing).
    pub fn pairs(&self) -> impl Iterator<Item = &(Bytes, Bytes)> {
        self.pairs.iter()
    }

    /// Removes every pair.
    pub fn clear(&mut self) {
        self.pairs.clear();
    }

    /// Appends the query form to `out`: `key=value` joined by `&`, `=value`
    /// omitted for empty values.
    pub fn encode_query_into(&self, out: &mut impl BufMut) {
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.put_u8(b'&');
            }
            escape::escape_into(key, out);
            if !value.is_empty() {
                out.put_u8(b'=');
                escape::escape_into(value, out);
            }
        }
    }

    /// The query form.
    pub fn encode_query(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_query_into(&mut out);
        out
    }

    /// Parses the query form; pieces with an empty key and value are skipped.
    /// Never fails, and keeps every pair: for input from the network, use
    /// [`decode_query_within`](Self::decode_query_within).
    pub fn decode_query(query: &[u8]) -> Meta {
        Meta::decode_query_within(query, usize::MAX).unwrap_or_default()
    }

    /// [`decode_query`](Self::decode_query) keeping at most `max_pairs` pairs: more is an
    /// error carrying the count reached (`max_pairs + 1`), found before anything more is kept.
    pub fn decode_query_within(query: &[u8], max_pairs: usize) -> Result<Meta, usize> {
        let mut meta = Meta::new();
        if query.is_empty() {
            return Ok(meta);
        }
        for (key, value) in escape::pairs(query) {
            if key.is_empty() && value.is_empty() {
                continue;
            }
            if meta.pairs.len() == max_pairs {
                return Err(max_pairs.saturating_add(1));
            }
            meta.pairs
                .push((escape::unescape(key).into(), escape::unescape(value).into()));
        }
        Ok(meta)
    }
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

impl<K: Into<Bytes>, V: Into<Bytes>> FromIterator<(K, V)> for Meta {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Meta {
            pairs: iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }
}

impl<K: Into<Bytes>, V: Into<Bytes>> Extend<(K, V)> for Meta {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        self.pairs.extend(iter.into_iter().map(|(k, v)| (k.into(), v.into())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(pairs: &[(&'static str, &'static str)]) -> String {
        let meta: Meta = pairs.iter().copied().collect();
        String::from_utf8(meta.encode_query()).unwrap()
    }

    #[test]
    fn encodes_every_example_of_the_spec() {
        assert_eq!(enc(&[("author", "andeya")]), "author=andeya");
        assert_eq!(enc(&[("k", "v1"), ("k", "v2")]), "k=v1&k=v2");
        assert_eq!(enc(&[("empty", "")]), "empty");
        assert_eq!(enc(&[("", "novalkey")]), "=novalkey");
        assert_eq!(enc(&[("sp ace", "a b&c=d/é+")]), "sp%20ace=a%20b%26c%3Dd%2F%C3%A9%2B");
        assert_eq!(enc(&[]), "");
    }

    #[test]
    fn decodes_the_spec_example() {
        let meta = Meta::decode_query(b"a=1&&b=2&c&=x&d=&a=3&%41=%4&e=%zz&f=+");
        let want: Meta = [
            ("a", "1"),
            ("b", "2"),
            ("c", ""),
            ("", "x"),
            ("d", ""),
            ("a", "3"),
            ("A", "%4"),
            ("e", "%zz"),
            ("f", " "),
        ]
        .into_iter()
        .collect();
        assert_eq!(meta, want);
    }

    #[test]
    fn lookups_follow_go() {
        let mut meta: Meta = [("x", "1"), ("x", "2"), ("y", "3")].into_iter().collect();
        assert_eq!(meta.get("x"), Some(&b"1"[..]));
        assert_eq!(meta.get_all(b"x").count(), 2);
        // Every lookup ignores ASCII case, as `get` always did.
        let values: Vec<&[u8]> = meta.get_all(b"X").collect();
        assert_eq!(values, [&b"1"[..], &b"2"[..]]);
        meta.set("x", "9");
        assert_eq!(String::from_utf8(meta.encode_query()).unwrap(), "x=9&x=2&y=3");
        meta.remove("x");
        assert_eq!(String::from_utf8(meta.encode_query()).unwrap(), "y=3");
        meta.set("z", "4");
        assert_eq!(meta.get_str("z"), Some("4"));
        // Keys are found whatever their ASCII case, and keep their spelling.
        meta.add("Author", "andeya");
        assert_eq!(meta.get_str("author"), Some("andeya"));
        meta.set("AUTHOR", "other");
        assert_eq!(String::from_utf8(meta.encode_query()).unwrap(), "y=3&z=4&Author=other");
    }

    #[test]
    fn hostile_input_never_panics() {
        let meta = Meta::decode_query(b"%\xFF\xFF=%\xFF&&&=&%");
        assert_eq!(meta.len(), 2);
    }
}
