//! The task a run is asked to do: which billing month, which payers, which profile.
//!
//! A task arrives as the seed's `TASK_INPUT_JSON` (an ECS container override) or as CLI
//! flags. Both end up as one validated [`TaskInput`]; nothing downstream sees raw input.
//! Every value that later reaches SQL or an object key (year, month, payer ids) is checked
//! here, so the renderer and the storage layout can trust them.

use std::fmt;

use serde_json::{Map, Value};

/// The earliest billing year accepted (AWS billing data does not predate it).
const MIN_YEAR: i32 = 2006;
/// The latest billing year accepted: a typo guard, not a prediction.
const MAX_YEAR: i32 = 2100;

/// Why a task input was refused. Each message names the field and the value.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The JSON text could not be parsed at all.
    #[error(
        "TASK_INPUT_JSON is not valid JSON ({0}); pass an object such as {{\"year\": 2025, \"month\": 7, \"payers\": [\"671238551718\"], \"env\": \"prod\"}}"
    )]
    Json(#[source] serde_json::Error),
    /// The JSON parsed but is not an object.
    #[error("TASK_INPUT_JSON must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// A required field is absent.
    #[error("task input: missing field \"{0}\"")]
    Missing(&'static str),
    /// A field that curflow does not know (a typo would otherwise be ignored silently),
    /// named with its control characters escaped: it comes from outside.
    #[error(
        "task input: unknown field {0:?}; known fields are year, month, payers, env, partnerId, module"
    )]
    Unknown(String),
    /// A field has a value outside its contract.
    #[error("task input: {field} = {value}: {reason}")]
    Invalid {
        /// The field as the user wrote it.
        field: &'static str,
        /// The offending value, rendered as JSON so quotes and injections show plainly.
        value: String,
        /// What is expected instead.
        reason: String,
    },
    /// Neither TASK_INPUT_JSON nor flags, or both.
    #[error("{0}")]
    Source(&'static str),
}

/// An AWS account id: exactly 12 ASCII digits.
///
/// This is the only way a payer id enters the program, so object keys
/// (`payer-<id>`) and SQL literals built from it are safe by construction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PayerId(String);

impl PayerId {
    /// Checks that `s` is a 12-digit AWS account id.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(
                "a payer must be a 12-digit AWS account id (digits only, leading zeros kept)"
                    .into(),
            )
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PayerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PayerId::parse(&s).map_err(|e| serde::de::Error::custom(format!("payer_id \"{s}\": {e}")))
    }
}

/// A billing month, e.g. 2025-07. Always valid (month 1–12, year in range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BillingPeriod {
    year: i32,
    month: u32,
}

impl BillingPeriod {
    /// Validates a year and a month.
    pub fn new(year: i64, month: i64) -> Result<Self, TaskError> {
        if !(i64::from(MIN_YEAR)..=i64::from(MAX_YEAR)).contains(&year) {
            return Err(TaskError::Invalid {
                field: "year",
                value: year.to_string(),
                reason: format!("must be a billing year between {MIN_YEAR} and {MAX_YEAR}"),
            });
        }
        if !(1..=12).contains(&month) {
            return Err(TaskError::Invalid {
                field: "month",
                value: month.to_string(),
                reason: "must be 1-12".into(),
            });
        }
        Ok(Self {
            year: year as i32,
            month: month as u32,
        })
    }

    /// The month it is now (UTC): what a scheduled run's task names.
    pub fn current() -> Self {
        use chrono::Datelike;
        let today = chrono::Utc::now().date_naive();
        Self {
            year: today.year(),
            month: today.month(),
        }
    }

    /// Parses `YYYY-MM`, e.g. `2025-07`.
    pub fn parse(text: &str) -> Result<Self, TaskError> {
        let invalid = || TaskError::Invalid {
            field: "period",
            value: format!("\"{text}\""),
            reason: "must be a billing month as YYYY-MM, e.g. 2025-07".into(),
        };
        let (year, month) = text.split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(invalid());
        }
        Self::new(
            year.parse().map_err(|_| invalid())?,
            month.parse().map_err(|_| invalid())?,
        )
    }

    /// The calendar year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(self) -> u32 {
        self.month
    }

    /// The month before this one.
    pub fn previous(self) -> Self {
        if self.month == 1 {
            Self {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Self {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The month after this one.
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// This month and the `count - 1` months before it, newest first.
    pub fn with_previous(self, count: u32) -> Vec<Self> {
        std::iter::successors(Some(self), |p| Some(p.previous()))
            .take(count as usize)
            .collect()
    }

    /// Midnight UTC on the first day of the month.
    pub fn start(self) -> chrono::DateTime<chrono::Utc> {
        use chrono::TimeZone;
        chrono::Utc
            .with_ymd_and_hms(self.year, self.month, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    /// Midnight UTC on the first day of the next month (exclusive end).
    pub fn end(self) -> chrono::DateTime<chrono::Utc> {
        self.next().start()
    }
}

impl fmt::Display for BillingPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Which payers a task covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayerChoice {
    /// Every payer the profile configures (payer table and settings file), as a fixed
    /// schedule asks with `"payers": "all"` so that adding a payer needs no new schedule.
    All,
    /// These payers, in the order given, without duplicates.
    Listed(Vec<PayerId>),
}

impl PayerChoice {
    /// The word that asks for every configured payer, in JSON and as `--payer`.
    pub const ALL: &'static str = "all";

    /// The payers named; none for [`PayerChoice::All`], which only the payer
    /// configuration resolves (a run's report carries the resolved list).
    pub fn listed(&self) -> &[PayerId] {
        match self {
            PayerChoice::All => &[],
            PayerChoice::Listed(ids) => ids,
        }
    }
}

impl serde::Serialize for PayerChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PayerChoice::All => s.serialize_str(Self::ALL),
            PayerChoice::Listed(ids) => ids.serialize(s),
        }
    }
}

/// A validated task: everything a run needs to know about what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskInput {
    /// The task's billing month; the run also covers the month(s) before it.
    #[serde(serialize_with = "serialize_period")]
    pub period: BillingPeriod,
    /// Payers to process.
    pub payers: PayerChoice,
    /// The settings profile (`local`, `dev`, `prod`, …).
    pub env: String,
    /// The partner the run is for, passed through to the notification.
    #[serde(rename = "partnerId")]
    pub partner_id: Option<u64>,
    /// The seed's module selector; only `analytics` exists.
    pub module: String,
}

fn serialize_period<S: serde::Serializer>(p: &BillingPeriod, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string())
}

/// The modules a task may name. The seed only ever sent `analytics`.
const MODULES: &[&str] = &["analytics"];

/// Task fields given as CLI flags, before validation.
#[derive(Debug, Default, Clone)]
pub struct TaskFlags {
    /// `--year`
    pub year: Option<i64>,
    /// `--month`
    pub month: Option<i64>,
    /// `--period YYYY-MM`, instead of `--year` and `--month`
    pub period: Option<String>,
    /// `--payer`, repeatable
    pub payers: Vec<String>,
    /// `--env`; defaults to `local` when the task comes from flags
    pub env: Option<String>,
    /// `--partner-id`
    pub partner_id: Option<u64>,
}

impl TaskFlags {
    fn is_empty(&self) -> bool {
        self.year.is_none()
            && self.month.is_none()
            && self.period.is_none()
            && self.payers.is_empty()
            && self.env.is_none()
    }
}

impl TaskInput {
    /// Builds the task from `TASK_INPUT_JSON` (if set) or from flags — exactly one of them.
    pub fn from_sources(json: Option<&str>, flags: &TaskFlags) -> Result<Self, TaskError> {
        match (json, flags.is_empty()) {
            (Some(_), false) => Err(TaskError::Source(
                "task input given twice: unset TASK_INPUT_JSON or drop --year/--month/--period/--payer/--env",
            )),
            (Some(text), true) => Self::from_json(text),
            (None, false) => Self::from_flags(flags),
            (None, true) => Err(TaskError::Source(
                "no task: set TASK_INPUT_JSON or pass --payer (an account id, or all), and --period YYYY-MM for a month other than the current one",
            )),
        }
    }

    /// Parses and validates the seed's JSON task input. Without `year` and `month` the
    /// task month is the current one (UTC), so a fixed schedule needs no edit each month;
    /// one of the two without the other is refused.
    pub fn from_json(text: &str) -> Result<Self, TaskError> {
        let value: Value = serde_json::from_str(text).map_err(TaskError::Json)?;
        let Value::Object(mut obj) = value else {
            return Err(TaskError::NotAnObject(json_kind(&value)));
        };
        let year = take_integer(&mut obj, "year")?;
        let month = take_integer(&mut obj, "month")?;
        let period = match (year, month) {
            (None, None) => BillingPeriod::current(),
            (Some(year), Some(month)) => BillingPeriod::new(year, month)?,
            (None, Some(_)) => return Err(TaskError::Missing("year")),
            (Some(_), None) => return Err(TaskError::Missing("month")),
        };
        let payers = match obj.remove("payers") {
            None => return Err(TaskError::Missing("payers")),
            Some(Value::String(word)) if word == PayerChoice::ALL => vec![word],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(TaskError::Invalid {
                        field: "payers",
                        value: other.to_string(),
                        reason: "each payer must be a string such as \"671238551718\"".into(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(TaskError::Invalid {
                    field: "payers",
                    value: other.to_string(),
                    reason: "must be a list of account ids, e.g. [\"671238551718\"], or \"all\""
                        .into(),
                });
            }
        };
        let env = match obj.remove("env") {
            None => return Err(TaskError::Missing("env")),
            Some(Value::String(s)) => s,
            Some(other) => return Err(invalid_env(&other.to_string())),
        };
        let partner_id = match obj.remove("partnerId") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(other) => {
                return Err(TaskError::Invalid {
                    field: "partnerId",
                    value: other.to_string(),
                    reason: "must be a non-negative integer".into(),
                });
            }
        };
        let module = match obj.remove("module") {
            None | Some(Value::Null) => MODULES[0].to_owned(),
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
        };
        if let Some(unknown) = obj.keys().next() {
            return Err(TaskError::Unknown(unknown.clone()));
        }
        Self::validated(period, payers, env, partner_id, module)
    }

    /// Validates a task given as flags; `env` defaults to `local` and the month to the
    /// current one.
    pub fn from_flags(flags: &TaskFlags) -> Result<Self, TaskError> {
        let period = match (&flags.period, flags.year, flags.month) {
            (Some(text), _, _) => BillingPeriod::parse(text)?,
            (None, None, None) => BillingPeriod::current(),
            (None, Some(year), Some(month)) => BillingPeriod::new(year, month)?,
            (None, None, Some(_)) => return Err(TaskError::Missing("year")),
            (None, Some(_), None) => return Err(TaskError::Missing("month")),
        };
        let env = flags.env.clone().unwrap_or_else(|| "local".into());
        Self::validated(
            period,
            flags.payers.clone(),
            env,
            flags.partner_id,
            MODULES[0].into(),
        )
    }

    fn validated(
        period: BillingPeriod,
        raw_payers: Vec<String>,
        env: String,
        partner_id: Option<u64>,
        module: String,
    ) -> Result<Self, TaskError> {
        let payers = payer_choice(raw_payers)?;
        if !is_profile_name(&env) {
            return Err(invalid_env(&Value::String(env).to_string()));
        }
        if !MODULES.contains(&module.as_str()) {
            return Err(TaskError::Invalid {
                field: "module",
                value: Value::String(module).to_string(),
                reason: format!("must be one of: {}", MODULES.join(", ")),
            });
        }
        Ok(Self {
            period,
            payers,
            env,
            partner_id,
            module,
        })
    }

    /// The billing periods a run covers: the task month and `count - 1` months before it.
    pub fn periods(&self, count: u32) -> Vec<BillingPeriod> {
        self.period.with_previous(count)
    }
}

/// The task's payers as given: `["all"]` alone, or account ids (duplicates dropped).
fn payer_choice(raw_payers: Vec<String>) -> Result<PayerChoice, TaskError> {
    if raw_payers.is_empty() {
        return Err(TaskError::Invalid {
            field: "payers",
            value: "[]".into(),
            reason: "list at least one payer account id, or ask for \"all\"".into(),
        });
    }
    if raw_payers.iter().any(|raw| raw == PayerChoice::ALL) {
        if raw_payers.len() > 1 {
            return Err(TaskError::Invalid {
                field: "payers",
                value: Value::from(raw_payers).to_string(),
                reason: "\"all\" stands alone: ask for all payers or list account ids, not both"
                    .into(),
            });
        }
        return Ok(PayerChoice::All);
    }
    let mut payers: Vec<PayerId> = Vec::with_capacity(raw_payers.len());
    for raw in &raw_payers {
        let id = PayerId::parse(raw).map_err(|reason| TaskError::Invalid {
            field: "payers",
            value: Value::String(raw.clone()).to_string(),
            reason,
        })?;
        if !payers.contains(&id) {
            payers.push(id);
        }
    }
    Ok(PayerChoice::Listed(payers))
}

/// Profile names are short identifiers; whether the profile exists is checked by settings.
fn is_profile_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn invalid_env(value: &str) -> TaskError {
    TaskError::Invalid {
        field: "env",
        value: value.to_owned(),
        reason: "must name a settings profile such as \"local\", \"dev\" or \"prod\"".into(),
    }
}

/// The integer `field` holds, or `None` when it is absent or null.
fn take_integer(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<i64>, TaskError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        // The seed's callers sometimes quote numbers; accept "7" but nothing looser.
        Some(Value::String(s)) if s.parse::<i64>().is_ok() => Ok(s.parse().ok()),
        Some(other) => Err(TaskError::Invalid {
            field,
            value: other.to_string(),
            reason: "must be an integer".into(),
        }),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        TaskInput::from_json(json).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_seed_example() {
        let t = TaskInput::from_json(
            r#"{"year": 2025, "month": 7, "payers": ["671238551718"], "partnerId": 1000218, "module": "analytics", "env": "prod"}"#,
        )
        .unwrap();
        assert_eq!(t.period.to_string(), "2025-07");
        assert_eq!(t.payers.listed()[0].as_str(), "671238551718");
        assert_eq!(t.partner_id, Some(1000218));
        assert_eq!(t.env, "prod");
    }

    #[test]
    fn names_field_and_value() {
        assert!(
            err(r#"{"year":2025,"month":13,"payers":["671238551718"],"env":"prod"}"#)
                .contains("month = 13")
        );
        assert!(
            err(r#"{"year":2025,"month":0,"payers":["671238551718"],"env":"prod"}"#)
                .contains("month = 0")
        );
        assert!(
            err(r#"{"month":1,"payers":["671238551718"],"env":"prod"}"#)
                .contains("missing field \"year\"")
        );
        assert!(err(r#"{"year":2025,"month":1,"payers":[],"env":"prod"}"#).contains("payers = []"));
        let injection =
            err(r#"{"year":2025,"month":1,"payers":["1'; DROP TABLE x;--"],"env":"prod"}"#);
        assert!(
            injection.contains(r#"payers = "1'; DROP TABLE x;--""#),
            "{injection}"
        );
        assert!(
            err(r#"{"year":2025,"month":1,"payers":["671238551718"],"env":"prod","mnoth":3}"#)
                .contains("unknown field \"mnoth\"")
        );
        assert!(err("{not json").contains("not valid JSON"));
    }

    /// A fixed schedule's input: no month (the current one, UTC) and every payer.
    #[test]
    fn a_schedule_names_no_month_and_all_payers() {
        let t = TaskInput::from_json(r#"{"payers": "all", "env": "prod"}"#).unwrap();
        assert_eq!(t.period, BillingPeriod::current());
        assert_eq!(t.payers, PayerChoice::All);
        assert!(
            err(r#"{"year": 2025, "payers": "all", "env": "prod"}"#)
                .contains("missing field \"month\"")
        );
        assert!(
            err(r#"{"payers": ["all", "671238551718"], "env": "prod"}"#)
                .contains("\"all\" stands alone")
        );
        assert!(err(r#"{"payers": "ALL", "env": "prod"}"#).contains(r#"payers = "ALL""#));
        let flags = TaskFlags {
            payers: vec!["all".into()],
            ..TaskFlags::default()
        };
        let t = TaskInput::from_flags(&flags).unwrap();
        assert_eq!(
            (t.period, t.payers),
            (BillingPeriod::current(), PayerChoice::All)
        );
    }

    #[test]
    fn periods_parse_strictly() {
        assert_eq!(
            BillingPeriod::parse("2025-07").unwrap().to_string(),
            "2025-07"
        );
        assert!(BillingPeriod::parse("2025-7").is_err());
        assert!(
            BillingPeriod::parse("2025-13")
                .unwrap_err()
                .to_string()
                .contains("month = 13")
        );
        assert!(
            BillingPeriod::parse("July")
                .unwrap_err()
                .to_string()
                .contains("YYYY-MM")
        );
    }

    #[test]
    fn periods_walk_back_across_years() {
        let p = BillingPeriod::new(2025, 1).unwrap();
        let got: Vec<String> = p.with_previous(3).iter().map(|p| p.to_string()).collect();
        assert_eq!(got, ["2025-01", "2024-12", "2024-11"]);
        assert_eq!(p.end().to_rfc3339(), "2025-02-01T00:00:00+00:00");
    }

    #[test]
    fn duplicate_payers_are_processed_once() {
        let flags = TaskFlags {
            year: Some(2025),
            month: Some(7),
            payers: vec!["671238551718".into(), "671238551718".into()],
            ..TaskFlags::default()
        };
        assert_eq!(
            TaskInput::from_flags(&flags).unwrap().payers.listed().len(),
            1
        );
    }

    #[test]
    fn a_period_flag_is_the_same_task_as_year_and_month() {
        let payers = vec!["671238551718".to_owned()];
        let by_parts = TaskFlags {
            year: Some(2025),
            month: Some(7),
            payers: payers.clone(),
            ..TaskFlags::default()
        };
        let by_period = TaskFlags {
            period: Some("2025-07".into()),
            payers,
            ..TaskFlags::default()
        };
        let (a, b) = (
            TaskInput::from_flags(&by_parts).unwrap(),
            TaskInput::from_flags(&by_period).unwrap(),
        );
        assert_eq!((a.period, a.payers), (b.period, b.payers));
        let bad = TaskFlags {
            period: Some("2025-7".into()),
            ..by_period
        };
        assert!(
            TaskInput::from_flags(&bad)
                .unwrap_err()
                .to_string()
                .contains("YYYY-MM")
        );
    }
}
