//! Durations as Go writes them (`100ms`, `1.5s`, `2h45m`), for serde and for flags.
//!
//! A duration in a config file or variable is Go's text form or an integer of nanoseconds
//! (a number, or a string of digits as INI files and environment variables carry it, which
//! Go's ini loader reads the same way). Negative values read as zero, as Go treats any
//! duration ≤ 0 as "none".

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Serialises as Go prints durations: `0s`, `100ms`, `1.5s`, `2h45m0s`.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// Reads a Go duration string or a number of nanoseconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(GoDuration)
}

struct GoDuration;

impl Visitor<'_> for GoDuration {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as 100ms, 1.5s or 2h45m, or an integer of nanoseconds")
    }

    fn visit_u64<E: de::Error>(self, nanos: u64) -> Result<Duration, E> {
        Ok(Duration::from_nanos(nanos))
    }

    fn visit_i64<E: de::Error>(self, nanos: i64) -> Result<Duration, E> {
        Ok(Duration::from_nanos(nanos.max(0).unsigned_abs()))
    }

    fn visit_f64<E: de::Error>(self, nanos: f64) -> Result<Duration, E> {
        if nanos.is_nan() {
            return Err(E::custom("invalid duration NaN"));
        }
        Ok(Duration::from_nanos(nanos.clamp(0.0, u64::MAX as f64) as u64))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        let digits = text.trim();
        let unsigned = digits.strip_prefix('-').unwrap_or(digits);
        if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
            if digits.starts_with('-') {
                return Ok(Duration::ZERO);
            }
            return digits
                .parse()
                .map(Duration::from_nanos)
                .map_err(|_| E::custom(format!("invalid duration {text:?}: too many nanoseconds")));
        }
        parse(text).map_err(E::custom)
    }
}

/// `Option<Duration>` in the same forms; absent or null is `None`.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises `Some` as a duration string and `None` as nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super")] Duration);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}

/// Parses Go's duration syntax: `300ms`, `1.5h`, `2h45m`, `-1s` (negative reads as 0).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("invalid duration {text:?}: use forms like 100ms, 1.5s or 2h45m");
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| bad())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += number * nanos_per_unit;
        rest = &rest[unit_end..];
    }
    if negative || !total.is_finite() {
        return Ok(Duration::ZERO);
    }
    Ok(Duration::from_nanos(total.round().min(u64::MAX as f64) as u64))
}

/// Formats like Go's `Duration.String`.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    let trim = |x: f64| {
        let s = format!("{x:.9}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim(nanos as f64 / 1e3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim(nanos as f64 / 1e6));
    }
    let secs = d.as_secs();
    let (h, m, s) = (
        secs / 3600,
        secs / 60 % 60,
        (secs % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9,
    );
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim(s)));
    out
}
