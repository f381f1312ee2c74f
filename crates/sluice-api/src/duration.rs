use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;
use std::str::FromStr;

/// A duration as Istio accepts it: Go/protobuf form such as `1.5s`, `100ms`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    pub input: String,
    /// A corrected spelling when the intent is clear (`3 seconds` → `3s`).
    pub suggestion: Option<String>,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration \"{}\": expected a number followed by a unit (ns, us, ms, s, m, h), such as 1.5s, 100ms or 1h",
            self.input
        )?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean \"{s}\"?")?;
        }
        Ok(())
    }
}

impl std::error::Error for DurationError {}

impl Duration {
    pub fn as_std(self) -> std::time::Duration {
        self.0
    }
    pub fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d.as_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}ns", d.as_nanos())
        }
    }
}

fn unit_nanos(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    })
}

fn word_unit(word: &str) -> Option<&'static str> {
    Some(match word.trim_end_matches('s') {
        "nanosecond" | "nano" => "ns",
        "microsecond" | "micro" => "us",
        "millisecond" | "milli" | "msec" => "ms",
        "second" | "sec" => "s",
        "minute" | "min" => "m",
        "hour" | "hr" => "h",
        _ => return None,
    })
}

fn suggest(input: &str) -> Option<String> {
    let t = input.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, rest) = t.split_at(split);
    if num.is_empty() {
        return None;
    }
    let unit = word_unit(&rest.trim().to_ascii_lowercase())?;
    Some(format!("{num}{unit}"))
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || DurationError {
            input: input.to_string(),
            suggestion: suggest(input),
        };
        let s = input.strip_prefix('+').unwrap_or(input);
        if s == "0" {
            return Ok(Duration::default());
        }
        if s.is_empty() || s.starts_with('-') {
            return Err(err());
        }
        let mut total = 0f64;
        let mut rest = s;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(err)?;
            let (num, tail) = rest.split_at(num_len);
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let value: f64 = num.parse().map_err(|_| err())?;
            total += value * unit_nanos(unit).ok_or_else(err)?;
            rest = tail;
        }
        if !total.is_finite() || total > u64::MAX as f64 {
            return Err(err());
        }
        Ok(Duration(std::time::Duration::from_nanos(
            total.round() as u64
        )))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 1.5s, 100ms or 1h")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u128 {
        s.parse::<Duration>().unwrap().0.as_millis()
    }

    #[test]
    fn parses_istio_forms() {
        assert_eq!(ms("1.5s"), 1500);
        assert_eq!(ms("100ms"), 100);
        assert_eq!(ms("1h"), 3_600_000);
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("0s"), 0);
        assert_eq!(ms("0"), 0);
    }

    #[test]
    fn rejects_and_suggests() {
        let e = "3 seconds".parse::<Duration>().unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("3s"));
        assert!("10".parse::<Duration>().is_err());
        assert!("-1s".parse::<Duration>().is_err());
        assert!("5x".parse::<Duration>().is_err());
        assert!("".parse::<Duration>().is_err());
        assert_eq!(
            "2 min"
                .parse::<Duration>()
                .unwrap_err()
                .suggestion
                .as_deref(),
            Some("2m")
        );
    }
}
