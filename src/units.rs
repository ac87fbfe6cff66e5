//! Human-friendly units in the config file: byte sizes ("256MiB", "1GiB", "4096") and durations
//! ("10s", "500ms", "2m", "1h"). Both also accept a bare integer (bytes, milliseconds).
//! Invariant: parsing never overflows silently; out-of-range values are errors.

use serde::{de, Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// A size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// A duration with millisecond resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub u64);

impl Millis {
    pub fn get(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

/// Parses "123", "4k", "4KiB", "1.5GiB", "100GB". Decimal (k, M, G, T) and binary (Ki, Mi, Gi, Ti) prefixes,
/// an optional trailing "B".
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let mult: u64 = match unit.trim_end_matches(['B', 'b']) {
        "" => 1,
        "k" | "K" => 1_000,
        "M" | "m" => 1_000_000,
        "G" | "g" => 1_000_000_000,
        "T" | "t" => 1_000_000_000_000,
        "Ki" | "ki" | "KI" => 1 << 10,
        "Mi" | "mi" | "MI" => 1 << 20,
        "Gi" | "gi" | "GI" => 1 << 30,
        "Ti" | "ti" | "TI" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown size unit in {s:?} (use B, KiB, MiB, GiB, TiB, k, M, G, T)"
            ))
        }
    };
    if num.is_empty() {
        return Err(format!("no number in size {s:?}"));
    }
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad number in size {s:?}"))?;
    let bytes = v * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size {s:?} out of range"));
    }
    Ok(bytes as u64)
}

/// Parses "250ms", "10s", "2m", "1h", or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad number in duration {s:?}"))?;
    let mult = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("unknown duration unit in {s:?} (use ms, s, m, h)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("duration {s:?} out of range"))
}

struct SizeVisitor;
impl de::Visitor<'_> for SizeVisitor {
    type Value = ByteSize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a size such as 4096, \"64KiB\" or \"1GiB\"")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        u64::try_from(v)
            .map(ByteSize)
            .map_err(|_| E::custom("size must not be negative"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
        parse_size(v).map(ByteSize).map_err(E::custom)
    }
}
impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}

struct MillisVisitor;
impl de::Visitor<'_> for MillisVisitor {
    type Value = Millis;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"10s\", \"250ms\" or a number of milliseconds")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
        Ok(Millis(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
        u64::try_from(v)
            .map(Millis)
            .map_err(|_| E::custom("duration must not be negative"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
        parse_duration(v).map(Millis).map_err(E::custom)
    }
}
impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MillisVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5 MiB"), Ok(3 << 19));
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("10s"), Ok(10_000));
        assert_eq!(parse_duration("2m"), Ok(120_000));
        assert_eq!(parse_duration("7"), Ok(7));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1.5s").is_err());
    }
}
