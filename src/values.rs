//! How setting values are written, and refused: durations (`500ms` … `7d`), sizes
//! (`512MiB`, `2GiB`), numbers and
//! booleans that may arrive as text (every `CURFLOW_*` variable does), and the [`Refusal`]
//! a component's settings section returns for a value outside its contract.
//!
//! A leaf, so that each component (the warehouse, the report sinks) can validate its own
//! section while `settings` composes the profile from them: `settings` names the profile
//! in the error, the component names the key and says what is expected.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A value a component refused: which key, the value as it may be shown, and what is
/// expected. `settings` turns it into the profile's error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value}: {reason}")]
pub(crate) struct Refusal {
    /// The key, with its section (`metrics.kinds`, `snowflake.account`).
    pub(crate) key: String,
    /// The refused value, quoted, or `(missing)` / `(not shown)`.
    pub(crate) value: String,
    /// What is expected instead.
    pub(crate) reason: String,
}

/// `key = value` refused, because `reason`.
pub(crate) fn refuse(key: &str, value: &str, reason: &str) -> Refusal {
    Refusal {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The duration setting `key` as written (`text`), `default` when it is absent; refused,
/// with `rule` as the reason, when it does not parse or falls outside `range`.
pub(crate) fn duration_setting(
    key: &str,
    text: Option<&str>,
    default: Duration,
    range: std::ops::RangeInclusive<Duration>,
    rule: &str,
) -> Result<Duration, Refusal> {
    bounded(key, text, default, range, rule, parse_duration)
}

/// The size setting `key` as written (`text`), in bytes, `default` when it is absent;
/// refused, with `rule` as the reason, when it does not parse or falls outside `range`.
pub(crate) fn size_setting(
    key: &str,
    text: Option<&str>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    rule: &str,
) -> Result<u64, Refusal> {
    bounded(key, text, default, range, rule, parse_size)
}

/// `text` read by `parse` and kept within `range`; `default` when absent.
fn bounded<T: PartialOrd>(
    key: &str,
    text: Option<&str>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    rule: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, Refusal> {
    let Some(text) = text else {
        return Ok(default);
    };
    parse(text)
        .filter(|v| range.contains(v))
        .ok_or_else(|| refuse(key, &format!("\"{text}\""), rule))
}

/// `12h` → (12, "h"): a whole number and the unit after it.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit.trim()))
}

/// `500ms`, `2s`, `1m`, `1h`, `7d` → a duration.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let (n, unit) = number_and_unit(text)?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(86_400).map(Duration::from_secs),
        _ => None,
    }
}

/// `512MiB`, `2GiB`, `1TiB` (binary units, a whole number of them) → bytes. Decimal
/// units (`2GB`) are refused rather than guessed at: they differ by 7 % at that scale.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let (n, unit) = number_and_unit(text)?;
    let shift = match unit {
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        "TiB" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// Booleans from the environment arrive as strings; accept both `true` and `"true"`.
pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    lenient_value(d, "true or false")
}

/// Numbers from the environment arrive as strings; accept both `16` and `"16"`.
pub(crate) fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    lenient_value(d, "a whole number")
}

/// A `T` written as itself or as text (how `CURFLOW_*` variables arrive).
fn lenient_value<'de, D, T>(d: D, expected: &str) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + std::str::FromStr,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ValueOrText<T> {
        Value(T),
        Text(String),
    }
    match Option::<ValueOrText<T>>::deserialize(d)? {
        None => Ok(None),
        Some(ValueOrText::Value(v)) => Ok(Some(v)),
        Some(ValueOrText::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("\"{s}\" is not {expected}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_whole_binary_units() {
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size(" 2GiB "), Some(2 << 30));
        assert_eq!(parse_size("1 TiB"), Some(1 << 40));
        for refused in [
            "2GB",
            "2",
            "1.5GiB",
            "GiB",
            "-1GiB",
            "99999999999999TiB",
            "",
        ] {
            assert_eq!(parse_size(refused), None, "{refused}");
        }
    }
}
