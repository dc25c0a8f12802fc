//! Settings: one profile per environment, from a TOML file and `CURFLOW_*` variables.
//!
//! The task's `env` picks a profile (a top-level table of the file, e.g. `[prod]`). The
//! built-in `local` profile needs no file: staging and warehouse live under
//! `./curflow-data/`. Any key can be overridden by `CURFLOW_<KEY>` (nested keys with `__`).
//! Everything is validated here, once, before the run touches anything; later modules get
//! typed values and never re-check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::payers::PayerConfig;
use crate::secrets::SecretSetting;
use crate::storage::{Access, RetryPolicy, StoreUrl, Transfer};
use crate::warehouse::DEFAULT_KEEP_REPLACED;

/// The profile that exists without a settings file.
pub const LOCAL_PROFILE: &str = "local";
/// The settings file read when none is named and it exists in the current directory.
pub const DEFAULT_FILE: &str = "curflow.toml";
/// `CURFLOW_*` variables that are not settings keys.
const NOT_SETTINGS: &[&str] = &["CURFLOW_CONFIG", "CURFLOW_LOG", "CURFLOW_LOG_FORMAT"];

/// Why settings were refused. Messages name the file, profile or variable and the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The named settings file cannot be read.
    #[error(
        "cannot read settings file {path}: {source}; check the path given with --config or CURFLOW_CONFIG"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong shape.
    #[error("settings {origin}: {message}")]
    Parse {
        /// File and line, or the environment variables involved.
        origin: String,
        /// What the parser found.
        message: String,
    },
    /// The task's `env` names a profile that does not exist.
    #[error("env \"{env}\" has no settings profile: {hint}")]
    UnknownProfile {
        /// The requested profile.
        env: String,
        /// Which profiles exist, or where a file was looked for.
        hint: String,
    },
    /// A value parsed but is outside its contract.
    #[error("settings [{profile}] {key} = {value}: {reason}")]
    Invalid {
        /// The profile.
        profile: String,
        /// The key.
        key: String,
        /// The offending value.
        value: String,
        /// What is expected.
        reason: String,
    },
}

/// What to do when an analytics statement fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSqlError {
    /// Keep the staged copy, report the failure (metric, summary), exit 0 — the seed's behaviour.
    #[default]
    Warn,
    /// Treat a failed statement as a failed run (exit 1).
    Fail,
}

/// Which warehouse runs the analytics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseSettings {
    /// Apache DataFusion in-process; final tables as Parquet under `dir`.
    Embedded {
        /// Where the final tables live.
        dir: StoreUrl,
        /// How long files a run replaced in a final table stay before a later run deletes
        /// them (readers that started earlier, time travel).
        keep_replaced: Duration,
    },
    /// Snowflake over the SQL API; final tables in its database and schema.
    Snowflake(Box<crate::warehouse::snowflake::SnowflakeSettings>),
}

/// Where run metrics go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsKind {
    /// No metrics (the `local` default).
    #[default]
    None,
    /// CloudWatch `PutMetricData` calls.
    CloudWatch,
    /// CloudWatch Embedded Metric Format: JSON lines on stdout, no API call.
    Emf,
}

/// Run metrics, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Where they go.
    pub kind: MetricsKind,
    /// The CloudWatch namespace.
    pub namespace: String,
    /// The CloudWatch region; `None` for the environment's.
    pub region: Option<String>,
}

/// The end-of-run RabbitMQ notification, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// The broker's `amqp://` or `amqps://` URL (a secret when it holds a password).
    pub amqp_url: SecretSetting,
    /// The virtual host, replacing the URL's (the seed's per-env `VHOST_MAPPING`).
    pub vhost: Option<String>,
    /// The exchange published to (`""` is the broker's default exchange).
    pub exchange: String,
    /// The routing key.
    pub routing_key: String,
    /// Attempts after the first before giving up.
    pub retries: u32,
    /// The wait before the first retry; doubled on each later one, with jitter.
    pub backoff: Duration,
    /// The limit on one attempt (connect, publish, confirm).
    pub timeout: Duration,
    /// Whether an undeliverable notification makes the run exit 1.
    pub required: bool,
}

/// One profile's settings, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The profile name (the task's `env`).
    pub env: String,
    /// Where staged CUR files go: `<staging>/year=YYYY/month=M/payer-<id>/…`.
    pub staging: StoreUrl,
    /// The warehouse backend.
    pub warehouse: WarehouseSettings,
    /// How many objects are copied at once.
    pub concurrency: usize,
    /// How many billing periods a run covers: the task month and the ones before it.
    pub periods: u32,
    /// The cost allocation tag that names an application (CUR 2.0 `resource_tags` key).
    pub application_tag: String,
    /// What a failed analytics statement does to the run.
    pub on_sql_error: OnSqlError,
    /// Payers configured in the file (the warehouse's payer table takes precedence).
    pub payers: Vec<PayerConfig>,
    /// How the staging store is reached (region, role), independently of the payers.
    pub staging_access: Access,
    /// Copy parallelism, multipart cut-off and part size, retries.
    pub transfer: Transfer,
    /// How long a payer's lease lasts unless renewed (a crashed run blocks the next one
    /// for at most this long).
    pub lease_ttl: Duration,
    /// Run metrics.
    pub metrics: MetricsSettings,
    /// The end-of-run notification, if any.
    pub notify: Option<NotifySettings>,
}

impl Settings {
    /// Applies `--periods N` (the task month and the N-1 months before it), which overrides
    /// the profile's `periods`. N is at least 2: the flag reaches further back, it never
    /// drops the month before, which AWS restates after the month closes.
    pub fn with_periods(mut self, periods: Option<u32>) -> Result<Self, SettingsError> {
        if let Some(n) = periods {
            if !(2..=36).contains(&n) {
                return Err(SettingsError::Invalid {
                    profile: self.env.clone(),
                    key: "--periods".into(),
                    value: n.to_string(),
                    reason: "must be 2-36 (the task month, the month before it, and up to 34 more); omit it for the profile's default".into(),
                });
            }
            self.periods = n;
        }
        Ok(self)
    }
}

/// One profile as written in the file; every key optional, defaults applied in [`resolve`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    /// URL or directory of the staging store. Required except in `local`
    /// (default `./curflow-data/staging`).
    staging: Option<String>,
    /// `embedded` or `snowflake` (then `[<env>.snowflake]` and an `s3://` staging are
    /// required). Default: `embedded`.
    warehouse: Option<WarehouseKind>,
    /// `[<env>.snowflake]`: account, objects and credentials (see docs/snowflake.md).
    snowflake: Option<crate::warehouse::snowflake::SnowflakeProfile>,
    /// URL or directory of the embedded warehouse's final tables. Required except in
    /// `local` (default `./curflow-data/warehouse`).
    warehouse_dir: Option<String>,
    /// How long files a run replaced in a final table stay (`0s`, `12h`, `7d`), 0s-365d.
    /// Default: `7d`.
    keep_replaced: Option<String>,
    /// Objects copied in parallel, 1–1024. Default: 16.
    #[serde(default, deserialize_with = "lenient")]
    concurrency: Option<u64>,
    /// Billing periods per run (task month and earlier), 1–36. Default: 2.
    #[serde(default, deserialize_with = "lenient")]
    periods: Option<u64>,
    /// Tag key naming the application. Default: `user_application`.
    application_tag: Option<String>,
    /// `warn` or `fail`. Default: `warn`.
    on_sql_error: Option<OnSqlError>,
    /// Payer sources.
    #[serde(default)]
    payers: Vec<PayerConfig>,
    /// AWS region of the staging bucket. Default: the environment's.
    staging_region: Option<String>,
    /// A role (ARN) to assume for staging; when it differs from a payer's role, that payer's
    /// files are streamed through curflow instead of copied server-side. Default: none (the
    /// default credential chain).
    staging_role_arn: Option<String>,
    /// The external id `staging_role_arn`'s trust policy requires. Default: none.
    staging_external_id: Option<String>,
    /// Server-side copies of objects larger than this many MiB use parallel part copies
    /// (UploadPartCopy), 5-5120. Default: 512 (measured, see docs/benchmarks.md).
    #[serde(default, deserialize_with = "lenient")]
    multipart_threshold_mib: Option<u64>,
    /// Part size of multipart copies in MiB, 5-5120. Default: 128.
    #[serde(default, deserialize_with = "lenient")]
    part_size_mib: Option<u64>,
    /// Attempts per S3 request (exponential backoff with jitter between them), 1-50. Default: 10.
    #[serde(default, deserialize_with = "lenient")]
    s3_attempts: Option<u64>,
    /// Lifetime of a payer's lease (`30s`, `10m`), renewed while the run holds it, 1s-24h.
    /// Default: `10m`.
    lease_ttl: Option<String>,
    /// `[<env>.metrics]`. Default: no metrics.
    metrics: Option<MetricsProfile>,
    /// `[<env>.notify]`: a RabbitMQ message at the end of each run. Default: none.
    notify: Option<NotifyProfile>,
}

/// `[<env>.metrics]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsProfile {
    /// `none`, `cloudwatch` or `emf`. Default: `none`.
    kind: Option<MetricsKind>,
    /// CloudWatch namespace, 1-255 printable ASCII characters, not `AWS/…`. Default: `curflow`.
    namespace: Option<String>,
    /// CloudWatch region (`cloudwatch` only). Default: the environment's (`AWS_REGION`).
    region: Option<String>,
}

/// `[<env>.notify]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyProfile {
    /// The broker URL: `{ secret = "name", key = "field" }`, `{ env = "VAR" }`,
    /// `{ file = "/path" }`, or a plain `amqp://host` string when it holds no password.
    amqp_url: SecretSetting,
    /// Virtual host, replacing the URL's. Default: the URL's (`/` when it names none).
    vhost: Option<String>,
    /// Exchange to publish to; it must exist. Default: `""`, the default exchange.
    exchange: Option<String>,
    /// Routing key. Default: `curflow.run`.
    routing_key: Option<String>,
    /// Retries after the first attempt, 0-20. Default: 5.
    #[serde(default, deserialize_with = "lenient")]
    retries: Option<u64>,
    /// First retry delay (`500ms`, `2s`, `1m`), doubled on each retry with jitter, 10ms-10m.
    /// Default: `1s`.
    backoff: Option<String>,
    /// Limit on one attempt, 1s-10m. Default: `10s`.
    timeout: Option<String>,
    /// Exit 1 when the notification cannot be delivered. Default: false.
    #[serde(default, deserialize_with = "lenient_bool")]
    required: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WarehouseKind {
    Embedded,
    Snowflake,
}

fn default_concurrency() -> u64 {
    16
}
fn default_periods() -> u64 {
    2
}
fn default_application_tag() -> String {
    "user_application".into()
}
fn default_local_staging() -> String {
    "./curflow-data/staging".into()
}
fn default_local_warehouse_dir() -> String {
    "./curflow-data/warehouse".into()
}

fn default_multipart_threshold_mib() -> u64 {
    512
}
fn default_part_size_mib() -> u64 {
    128
}
fn default_s3_attempts() -> u64 {
    10
}
fn default_lease_ttl() -> Duration {
    Duration::from_secs(600)
}
fn default_namespace() -> String {
    "curflow".into()
}
fn default_routing_key() -> String {
    "curflow.run".into()
}
fn default_retries() -> u64 {
    5
}
fn default_backoff() -> Duration {
    Duration::from_secs(1)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `500ms`, `2s`, `1m`, `1h`, `7d` → a duration.
fn parse_duration(text: &str) -> Option<Duration> {
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
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    lenient_value(d, "true or false")
}

/// Numbers from the environment arrive as strings; accept both `16` and `"16"`.
fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
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

/// Where settings come from: an optional file and the process environment.
#[derive(Debug, Clone, Default)]
pub struct SettingsSource {
    /// A file named with `--config`/`CURFLOW_CONFIG`; it must exist.
    pub file: Option<PathBuf>,
    /// `CURFLOW_*` variables (all others are ignored).
    pub vars: Vec<(String, String)>,
}

impl SettingsSource {
    /// The file from `--config` (or `CURFLOW_CONFIG`) and the process environment.
    pub fn from_env(file: Option<PathBuf>) -> Self {
        let file = file.or_else(|| std::env::var_os("CURFLOW_CONFIG").map(PathBuf::from));
        Self {
            file,
            vars: std::env::vars()
                .filter(|(k, _)| k.starts_with("CURFLOW_"))
                .collect(),
        }
    }

    /// Loads and validates the profile named `env`.
    pub fn load(&self, env: &str) -> Result<Settings, SettingsError> {
        let (file, mut doc) = self.read_file()?;
        let origin = file.as_ref().map_or_else(
            || "(no settings file)".to_owned(),
            |p| p.display().to_string(),
        );
        let mut table = match doc.remove(env) {
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                return Err(SettingsError::Parse {
                    origin,
                    message: format!("[{env}] must be a table of settings"),
                });
            }
            None if env == LOCAL_PROFILE => toml::Table::new(),
            None => {
                let hint = match &file {
                    None => format!(
                        "no settings file found (looked for ./{DEFAULT_FILE}); pass --config or set CURFLOW_CONFIG, or use env \"local\""
                    ),
                    Some(p) => {
                        let names: Vec<&String> = doc.keys().collect();
                        format!(
                            "{} defines {}; add a [{env}] table or use one of those",
                            p.display(),
                            if names.is_empty() {
                                "no profiles".to_owned()
                            } else {
                                format!("{names:?}")
                            }
                        )
                    }
                };
                return Err(SettingsError::UnknownProfile {
                    env: env.to_owned(),
                    hint,
                });
            }
        };
        // Parse the file alone first so that an error is blamed on the right source.
        Profile::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
            SettingsError::Parse {
                origin: format!("{origin} [{env}]"),
                message: e.message().to_owned(),
            }
        })?;
        let overridden = self.apply_overrides(&mut table);
        let profile =
            Profile::deserialize(toml::Value::Table(table)).map_err(|e| SettingsError::Parse {
                origin: format!("from environment ({})", overridden.join(", ")),
                message: e.message().to_owned(),
            })?;
        resolve(env, profile)
    }

    fn read_file(&self) -> Result<(Option<PathBuf>, toml::Table), SettingsError> {
        let path = match &self.file {
            Some(p) => p.clone(),
            None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
            None => return Ok((None, toml::Table::new())),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| SettingsError::Unreadable {
            path: path.clone(),
            source,
        })?;
        let doc = text
            .parse::<toml::Table>()
            .map_err(|e| SettingsError::Parse {
                origin: match e.span() {
                    Some(span) => format!(
                        "{} line {}",
                        path.display(),
                        text[..span.start].matches('\n').count() + 1
                    ),
                    None => path.display().to_string(),
                },
                message: e.message().to_owned(),
            })?;
        Ok((Some(path), doc))
    }

    /// Writes `CURFLOW_A__B=v` into `table.a.b` as a string; returns the variable names used.
    fn apply_overrides(&self, table: &mut toml::Table) -> Vec<String> {
        let mut used = Vec::new();
        let vars: BTreeMap<&str, &str> = self
            .vars
            .iter()
            .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
            .filter_map(|(k, v)| Some((k.strip_prefix("CURFLOW_")?, v.as_str())))
            .collect();
        for (name, value) in vars {
            let key = name.to_ascii_lowercase();
            let parts: Vec<&str> = key.split("__").collect();
            set_nested(table, &parts, toml::Value::String(value.to_owned()));
            used.push(format!("CURFLOW_{name}"));
        }
        used
    }
}

/// Sets `table.a.b.c = value` for `path = [a, b, c]`, creating (or replacing non-table)
/// intermediate tables.
fn set_nested(table: &mut toml::Table, path: &[&str], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry((*first).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let Some(inner) = entry.as_table_mut() {
                set_nested(inner, rest, value);
            }
        }
    }
}

/// Applies defaults and checks every value's contract.
fn resolve(env: &str, p: Profile) -> Result<Settings, SettingsError> {
    let invalid = |key: &str, value: &str, reason: &str| SettingsError::Invalid {
        profile: env.to_owned(),
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let local = env == LOCAL_PROFILE;
    let url = |key: &str, value: Option<String>, default: fn() -> String| {
        let text = match value {
            Some(v) => v,
            None if local => default(),
            None => {
                return Err(invalid(
                    key,
                    "(missing)",
                    "required in this profile: a URL such as s3://bucket/prefix or a directory",
                ));
            }
        };
        StoreUrl::parse(&text).map_err(|e| invalid(key, &format!("\"{text}\""), &e.to_string()))
    };
    let staging = url("staging", p.staging, default_local_staging)?;
    let warehouse = match p.warehouse.unwrap_or(WarehouseKind::Embedded) {
        WarehouseKind::Embedded => WarehouseSettings::Embedded {
            dir: url(
                "warehouse_dir",
                p.warehouse_dir,
                default_local_warehouse_dir,
            )?,
            keep_replaced: match &p.keep_replaced {
                None => DEFAULT_KEEP_REPLACED,
                Some(text) => parse_duration(text)
                    .filter(|d| *d <= Duration::from_secs(365 * 86_400))
                    .ok_or_else(|| {
                        invalid(
                            "keep_replaced",
                            &format!("\"{text}\""),
                            "must be a duration such as 0s, 12h or 7d, at most 365d",
                        )
                    })?,
            },
        },
        WarehouseKind::Snowflake => {
            if !staging.as_str().starts_with("s3://") {
                return Err(invalid(
                    "staging",
                    &format!("\"{}\"", staging.as_str()),
                    "must be an s3:// URL when warehouse = \"snowflake\": Snowflake reads the staged files through an external stage",
                ));
            }
            let snowflake = p
                .snowflake
                .unwrap_or_default()
                .resolve()
                .map_err(|(key, value, reason)| invalid(&key, &value, &reason))?;
            WarehouseSettings::Snowflake(Box::new(snowflake))
        }
    };
    let concurrency = p.concurrency.unwrap_or_else(default_concurrency);
    if !(1..=1024).contains(&concurrency) {
        return Err(invalid(
            "concurrency",
            &concurrency.to_string(),
            "must be 1-1024",
        ));
    }
    let periods = p.periods.unwrap_or_else(default_periods);
    if !(1..=36).contains(&periods) {
        return Err(invalid(
            "periods",
            &periods.to_string(),
            "must be 1-36 (the task month and the months before it)",
        ));
    }
    let application_tag = p.application_tag.unwrap_or_else(default_application_tag);
    if application_tag.is_empty()
        || application_tag.len() > 128
        || !application_tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-'))
    {
        return Err(invalid(
            "application_tag",
            &format!("\"{application_tag}\""),
            "must be a tag key of letters, digits, _ : . - (as CUR writes it, e.g. user_application)",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for payer in &p.payers {
        if !seen.insert(payer.payer_id.clone()) {
            return Err(invalid(
                "payers",
                &format!("\"{}\"", payer.payer_id),
                "listed twice; keep one entry per payer",
            ));
        }
        payer.source_url().map_err(|e| {
            invalid(
                "payers.source",
                &format!("\"{}\"", payer.source),
                &e.to_string(),
            )
        })?;
    }
    let role = |key: &str, arn: &Option<String>| match arn {
        Some(a) if !(a.starts_with("arn:aws") && a.contains(":role/")) => Err(invalid(
            key,
            &format!("\"{a}\""),
            "must be an IAM role ARN such as arn:aws:iam::123456789012:role/curflow",
        )),
        _ => Ok(()),
    };
    role("staging_role_arn", &p.staging_role_arn)?;
    for payer in &p.payers {
        role("payers.role_arn", &payer.role_arn)?;
    }
    let mib = |key: &str, value: Option<u64>, default: fn() -> u64| {
        let v = value.unwrap_or_else(default);
        if (5..=5120).contains(&v) {
            Ok(v * 1024 * 1024)
        } else {
            Err(invalid(
                key,
                &v.to_string(),
                "must be 5-5120 (MiB; S3's part limits)",
            ))
        }
    };
    let attempts = p.s3_attempts.unwrap_or_else(default_s3_attempts);
    if !(1..=50).contains(&attempts) {
        return Err(invalid(
            "s3_attempts",
            &attempts.to_string(),
            "must be 1-50",
        ));
    }
    let transfer = Transfer {
        concurrency: concurrency as usize,
        multipart_threshold: mib(
            "multipart_threshold_mib",
            p.multipart_threshold_mib,
            default_multipart_threshold_mib,
        )?,
        part_size: mib("part_size_mib", p.part_size_mib, default_part_size_mib)?,
        retry: RetryPolicy {
            max_attempts: attempts as u32,
            ..RetryPolicy::default()
        },
    };
    let lease_ttl = match &p.lease_ttl {
        None => default_lease_ttl(),
        Some(text) => parse_duration(text)
            .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(d))
            .ok_or_else(|| {
                invalid(
                    "lease_ttl",
                    &format!("\"{text}\""),
                    "must be a duration such as 30s or 10m, from 1s to 24h",
                )
            })?,
    };
    let staging_access = Access {
        region: p.staging_region,
        role_arn: p.staging_role_arn,
        external_id: p.staging_external_id,
    };
    let metrics = resolve_metrics(p.metrics.unwrap_or_default(), &invalid)?;
    let notify = p.notify.map(|n| resolve_notify(n, &invalid)).transpose()?;
    Ok(Settings {
        env: env.to_owned(),
        staging,
        warehouse,
        concurrency: concurrency as usize,
        periods: periods as u32,
        application_tag,
        on_sql_error: p.on_sql_error.unwrap_or_default(),
        payers: p.payers,
        staging_access,
        transfer,
        lease_ttl,
        metrics,
        notify,
    })
}

type Invalid<'a> = &'a dyn Fn(&str, &str, &str) -> SettingsError;

fn resolve_metrics(m: MetricsProfile, invalid: Invalid) -> Result<MetricsSettings, SettingsError> {
    let namespace = m.namespace.unwrap_or_else(default_namespace);
    if namespace.is_empty()
        || namespace.len() > 255
        || namespace.starts_with("AWS/")
        || !namespace.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(invalid(
            "metrics.namespace",
            &format!("\"{namespace}\""),
            "must be 1-255 printable ASCII characters and not start with AWS/",
        ));
    }
    Ok(MetricsSettings {
        kind: m.kind.unwrap_or_default(),
        namespace,
        region: m.region,
    })
}

fn resolve_notify(n: NotifyProfile, invalid: Invalid) -> Result<NotifySettings, SettingsError> {
    if let SecretSetting::Plain(text) = &n.amqp_url {
        let mut url = url::Url::parse(text).ok().filter(|u| matches!(u.scheme(), "amqp" | "amqps")).ok_or_else(|| {
            invalid(
                "notify.amqp_url",
                "(not shown)",
                "must be an amqp:// or amqps:// URL, or name where it is kept: { secret = \"name\", key = \"field\" }, { env = \"VAR\" } or { file = \"/path\" }",
            )
        })?;
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
            return Err(invalid(
                "notify.amqp_url",
                &format!("\"{url}\""),
                "holds a password, and secrets are never written in settings: name where it is kept instead, { secret = \"name\", key = \"field\" } (AWS Secrets Manager), { env = \"VAR\" } or { file = \"/path\" }",
            ));
        }
    }
    let duration = |key: &str,
                    value: Option<String>,
                    default: fn() -> Duration,
                    range: std::ops::RangeInclusive<Duration>| {
        let Some(text) = value else {
            return Ok(default());
        };
        parse_duration(&text)
            .filter(|d| range.contains(d))
            .ok_or_else(|| {
                invalid(
                    key,
                    &format!("\"{text}\""),
                    &format!(
                        "must be a duration such as 500ms, 2s or 1m, from {:?} to {:?}",
                        range.start(),
                        range.end()
                    ),
                )
            })
    };
    let backoff = duration(
        "notify.backoff",
        n.backoff,
        default_backoff,
        Duration::from_millis(10)..=Duration::from_secs(600),
    )?;
    let timeout = duration(
        "notify.timeout",
        n.timeout,
        default_timeout,
        Duration::from_secs(1)..=Duration::from_secs(600),
    )?;
    let retries = n.retries.unwrap_or_else(default_retries);
    if retries > 20 {
        return Err(invalid(
            "notify.retries",
            &retries.to_string(),
            "must be 0-20",
        ));
    }
    let exchange = n.exchange.unwrap_or_default();
    let routing_key = n.routing_key.unwrap_or_else(default_routing_key);
    for (key, value) in [
        ("notify.exchange", &exchange),
        ("notify.routing_key", &routing_key),
    ] {
        if value.len() > 255 {
            return Err(invalid(
                key,
                &format!("\"{value}\""),
                "must be at most 255 bytes (AMQP short string)",
            ));
        }
    }
    Ok(NotifySettings {
        amqp_url: n.amqp_url,
        vhost: n.vhost,
        exchange,
        routing_key,
        retries: retries as u32,
        backoff,
        timeout,
        required: n.required.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str, vars: &[(&str, &str)]) -> (tempfile::TempDir, SettingsSource) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curflow.toml");
        std::fs::write(&path, text).unwrap();
        let source = SettingsSource {
            file: Some(path),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        (dir, source)
    }

    #[test]
    fn local_needs_no_file() {
        let s = SettingsSource::default().load("local").unwrap();
        assert!(s.staging.as_str().ends_with("/curflow-data/staging"));
        assert_eq!(s.concurrency, 16);
        assert_eq!(s.periods, 2);
        assert_eq!(s.on_sql_error, OnSqlError::Warn);
        let err = SettingsSource::default()
            .load("prod")
            .unwrap_err()
            .to_string();
        assert!(err.contains("env \"prod\""), "{err}");
    }

    /// The documented example is a valid settings file, and says what the defaults are.
    #[test]
    fn the_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("curflow.example.toml");
        let source = SettingsSource {
            file: Some(path),
            vars: Vec::new(),
        };
        for profile in ["local", "prod"] {
            let settings = source
                .load(profile)
                .unwrap_or_else(|e| panic!("[{profile}] of curflow.example.toml: {e}"));
            assert!(!settings.payers.is_empty(), "[{profile}]");
        }
        let local = source.load("local").unwrap();
        let WarehouseSettings::Embedded { keep_replaced, .. } = local.warehouse else {
            panic!("the example's local profile is embedded");
        };
        assert_eq!(keep_replaced, DEFAULT_KEEP_REPLACED);
    }

    #[test]
    fn keep_replaced_is_a_bounded_duration() {
        for (text, expected) in [
            ("0s", Some(0)),
            ("36h", Some(129_600)),
            ("2d", Some(172_800)),
        ] {
            let (_dir, src) = with_file(&format!("[local]\nkeep_replaced = \"{text}\"\n"), &[]);
            let keep = match src.load("local").unwrap().warehouse {
                WarehouseSettings::Embedded { keep_replaced, .. } => keep_replaced.as_secs(),
                WarehouseSettings::Snowflake(_) => unreachable!("local is embedded"),
            };
            assert_eq!(Some(keep), expected, "{text}");
        }
        for text in ["forever", "366d", "-1s"] {
            let (_dir, src) = with_file(&format!("[local]\nkeep_replaced = \"{text}\"\n"), &[]);
            let err = src.load("local").unwrap_err().to_string();
            assert!(err.contains("keep_replaced") && err.contains(text), "{err}");
        }
    }

    #[test]
    fn profiles_and_env_overrides() {
        let (_dir, src) = with_file(
            "[prod]\nstaging = \"s3://stage/cur\"\nwarehouse_dir = \"s3://wh/final\"\nconcurrency = 8\n\
             [[prod.payers]]\npayer_id = \"671238551718\"\nsource = \"s3://payer/cur/export\"\n",
            &[
                ("CURFLOW_CONCURRENCY", "32"),
                ("CURFLOW_ON_SQL_ERROR", "fail"),
                ("CURFLOW_LOG", "debug"),
            ],
        );
        let s = src.load("prod").unwrap();
        assert_eq!(s.concurrency, 32);
        assert_eq!(s.on_sql_error, OnSqlError::Fail);
        assert_eq!(s.staging.as_str(), "s3://stage/cur");
        assert_eq!(s.payers.len(), 1);
        let err = src.load("dev").unwrap_err().to_string();
        assert!(err.contains("[\"prod\"]"), "{err}");
    }

    #[test]
    fn errors_name_the_key_and_its_source() {
        let (_d, src) = with_file("[prod]\nstagin = \"s3://x\"\n", &[]);
        let err = src.load("prod").unwrap_err().to_string();
        assert!(
            err.contains("stagin") && err.contains("curflow.toml"),
            "{err}"
        );
        let (_d, src) = with_file("[local]\n", &[("CURFLOW_PERIODS", "many")]);
        let err = src.load("local").unwrap_err().to_string();
        assert!(
            err.contains("CURFLOW_PERIODS") && err.contains("many"),
            "{err}"
        );
        let (_d, src) = with_file("[local]\napplication_tag = \"x'; drop\"\n", &[]);
        assert!(
            src.load("local")
                .unwrap_err()
                .to_string()
                .contains("application_tag")
        );
        let (_d, src) = with_file("[local\n", &[]);
        assert!(
            src.load("local")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }

    #[test]
    fn metrics_and_notify() {
        let s = SettingsSource::default().load("local").unwrap();
        assert_eq!(s.metrics.kind, MetricsKind::None);
        assert!(s.notify.is_none());
        let (_d, src) = with_file(
            "[local.metrics]\nkind = \"cloudwatch\"\n[local.notify]\namqp_url = { secret = \"prod/amqp\", key = \"url\" }\nvhost = \"finops\"\n",
            &[
                ("CURFLOW_METRICS__KIND", "emf"),
                ("CURFLOW_NOTIFY__RETRIES", "2"),
                ("CURFLOW_NOTIFY__BACKOFF", "250ms"),
                ("CURFLOW_NOTIFY__REQUIRED", "true"),
            ],
        );
        let s = src.load("local").unwrap();
        assert_eq!(s.metrics.kind, MetricsKind::Emf);
        assert_eq!(s.metrics.namespace, "curflow");
        let n = s.notify.unwrap();
        assert_eq!(
            (n.retries, n.backoff, n.required),
            (2, Duration::from_millis(250), true)
        );
        assert_eq!(n.routing_key, "curflow.run");
        assert!(matches!(
            n.amqp_url,
            SecretSetting::Ref(crate::secrets::SecretRef::SecretsManager { .. })
        ));
    }

    #[test]
    fn an_inline_password_is_refused_without_echoing_it() {
        let (_d, src) = with_file(
            "[local.notify]\namqp_url = \"amqp://app:hunter2@mq.internal/prod\"\n",
            &[],
        );
        let err = src.load("local").unwrap_err().to_string();
        assert!(
            err.contains("notify.amqp_url") && err.contains("password") && !err.contains("hunter2"),
            "{err}"
        );
        let (_d, src) = with_file(
            "[local.notify]\namqp_url = \"amqp://mq.internal/prod\"\nbackoff = \"soon\"\n",
            &[],
        );
        assert!(
            src.load("local")
                .unwrap_err()
                .to_string()
                .contains("notify.backoff")
        );
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("10"), None);
    }
}
