//! How setting values are written, and refused: durations (`500ms` … `7d`), numbers and
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
    let Some(text) = text else {
        return Ok(default);
    };
    parse_duration(text)
        .filter(|d| range.contains(d))
        .ok_or_else(|| refuse(key, &format!("\"{text}\""), rule))
}

/// `500ms`, `2s`, `1m`, `1h`, `7d` → a duration.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(86_400).map(Duration::from_secs),
        _ => None,
    }
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
