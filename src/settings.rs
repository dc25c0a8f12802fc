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

use serde::Deserialize;

use crate::payers::PayerConfig;
use crate::report::{
    MetricsProfile, MetricsSettings, NotifyProfile, NotifySettings, OnSqlError, resolve_metrics,
    resolve_notify,
};
use crate::retry::RetryPolicy;
use crate::storage::{Access, StoreUrl, Transfer, without_user_info};
use crate::sync::{StagingRules, Transfers};
use crate::values::{Refusal, duration_setting, lenient, refuse};
use crate::warehouse::snowflake::SnowflakeProfile;
use crate::warehouse::{WarehouseKind, WarehouseProfile, WarehouseSettings};

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
    /// A `CURFLOW_*` variable holds bytes that are not UTF-8 text.
    #[error("environment variable {var} is not UTF-8 text; set it to a UTF-8 value or unset it")]
    NotText {
        /// The variable's name.
        var: String,
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

/// One profile's settings, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The profile name (the task's `env`).
    pub env: String,
    /// Where staged CUR files go: `<staging>/year=YYYY/month=M/payer-<id>/…`.
    pub staging: StoreUrl,
    /// The warehouse backend.
    pub warehouse: WarehouseSettings,
    /// How many objects are copied at once for one payer-period.
    pub concurrency: usize,
    /// How many payers are processed at once.
    pub payer_concurrency: usize,
    /// How many objects are copied or deleted at once across all payers of a run.
    pub total_concurrency: usize,
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
    /// How long a staged delivery a newer one superseded stays, for readers that resolved
    /// it before the switch.
    pub keep_superseded: Duration,
    /// How long a period whose manifest is unchanged goes without a full comparison of the
    /// source with staging (zero: every run compares in full).
    pub verify_every: Duration,
    /// Run metrics.
    pub metrics: MetricsSettings,
    /// The end-of-run notification, if any.
    pub notify: Option<NotifySettings>,
}

impl Settings {
    /// Applies `--periods N` (the task month and the N-1 months before it), which overrides
    /// the profile's `periods`, checked as the profile's is.
    pub fn with_periods(mut self, periods: Option<u32>) -> Result<Self, SettingsError> {
        if let Some(n) = periods {
            if !PERIODS.contains(&u64::from(n)) {
                return Err(SettingsError::Invalid {
                    profile: self.env.clone(),
                    key: "--periods".into(),
                    value: n.to_string(),
                    reason: format!("{PERIODS_RULE}; omit it for the profile's `periods`"),
                });
            }
            self.periods = n;
        }
        Ok(self)
    }

    /// Applies `--verify`: this run compares every period in full, whatever the manifests
    /// say.
    pub fn with_verify(mut self, verify: bool) -> Self {
        if verify {
            self.verify_every = Duration::ZERO;
        }
        self
    }

    /// How each payer's staging session works. Call it once per run: the payers given
    /// clones of the one value share its run-wide transfer cap.
    pub fn staging_rules(&self) -> StagingRules {
        StagingRules {
            transfers: Transfers::new(self.concurrency, self.total_concurrency),
            lease_ttl: self.lease_ttl,
            keep_superseded: self.keep_superseded,
            verify_every: self.verify_every,
        }
    }
}

/// One profile as written in the file; every key optional, defaults applied in [`resolve`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    /// URL or directory of the staging store. Required except in `local`
    /// (default `./curflow-data/staging`).
    staging: Option<String>,
    /// `embedded` or `snowflake`; see [`WarehouseProfile`].
    warehouse: Option<WarehouseKind>,
    /// `[<env>.snowflake]`; see [`WarehouseProfile`].
    snowflake: Option<SnowflakeProfile>,
    /// URL or directory of the embedded warehouse's final tables. Required except in
    /// `local` (default `./curflow-data/warehouse`).
    warehouse_dir: Option<String>,
    /// See [`WarehouseProfile`].
    keep_replaced: Option<String>,
    /// See [`WarehouseProfile`].
    memory_limit: Option<String>,
    /// Objects copied in parallel for one payer-period, 1–1024. Default: 16.
    #[serde(default, deserialize_with = "lenient")]
    concurrency: Option<u64>,
    /// Payers processed at once, 1–256. Default: twice the CPUs, 2–16.
    #[serde(default, deserialize_with = "lenient")]
    payer_concurrency: Option<u64>,
    /// Objects copied or deleted at once across every payer of a run, 1–4096.
    /// Default: 64.
    #[serde(default, deserialize_with = "lenient")]
    total_concurrency: Option<u64>,
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
    /// Default: `60s`.
    lease_ttl: Option<String>,
    /// How long a staged delivery stays once a newer one superseded it (`0s`, `1h`), for
    /// readers that were reading it, at most 30d. Default: `1h`.
    keep_superseded: Option<String>,
    /// How long a period whose manifest is unchanged goes without a full comparison of the
    /// source with staging (`0s`: every run, `24h`), at most 365d. Default: `24h`.
    verify_every: Option<String>,
    /// `[<env>.metrics]` (see report/metrics/config.rs). Default: no metrics.
    metrics: Option<MetricsProfile>,
    /// `[<env>.notify]`: a RabbitMQ message at the end of each run (see
    /// report/notify/config.rs). Default: none.
    notify: Option<NotifyProfile>,
}

fn default_concurrency() -> u64 {
    16
}
/// Payers spend most of a run waiting on their stores, so twice the CPUs keeps the
/// machine busy; the analytics of the embedded warehouse run one at a time anyway.
fn default_payer_concurrency() -> u64 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    (2 * cpus).clamp(2, 16)
}
fn default_total_concurrency() -> u64 {
    64
}
/// How many billing periods a run may cover, from the profile's `periods` and from
/// `--periods` alike: 1 is the task month alone (a restatement of the month before then
/// waits for a run whose task month it is), 2 (the default) adds the month before.
const PERIODS: std::ops::RangeInclusive<u64> = 1..=36;
const PERIODS_RULE: &str = "must be 1-36 (the task month and the months before it; 2, the default, covers the month before, which AWS restates after it closes)";

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
    Duration::from_secs(60)
}
fn default_keep_superseded() -> Duration {
    Duration::from_secs(3600)
}
fn default_verify_every() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// Where settings come from: an optional file and the process environment.
#[derive(Debug, Clone, Default)]
pub struct SettingsSource {
    /// A file named with `--config`/`CURFLOW_CONFIG`; it must exist.
    pub file: Option<PathBuf>,
    /// `CURFLOW_*` variables (all others are ignored).
    pub vars: Vec<(String, String)>,
    /// `CURFLOW_*` variables whose value is not UTF-8 text: [`SettingsSource::load`]
    /// refuses them by name.
    pub not_text: Vec<String>,
}

impl SettingsSource {
    /// The file from `--config` (or `CURFLOW_CONFIG`) and the process environment. Any
    /// variable may hold bytes that are not UTF-8 (`std::env::vars` would panic on one):
    /// those outside `CURFLOW_*` are ignored like every other, ours are refused by `load`.
    pub fn from_env(file: Option<PathBuf>) -> Self {
        let file = file.or_else(|| std::env::var_os("CURFLOW_CONFIG").map(PathBuf::from));
        let mut source = Self {
            file,
            ..Self::default()
        };
        for (key, value) in std::env::vars_os() {
            let Some(key) = key.to_str().filter(|k| k.starts_with("CURFLOW_")) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => source.vars.push((key.to_owned(), value)),
                Err(_) => source.not_text.push(key.to_owned()),
            }
        }
        source
    }

    /// Loads and validates the profile named `env`.
    pub fn load(&self, env: &str) -> Result<Settings, SettingsError> {
        if let Some(var) = self.not_text.first() {
            return Err(SettingsError::NotText { var: var.clone() });
        }
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
        // The file may leave keys to the environment (a container's task definition sets
        // `CURFLOW_NOTIFY__AMQP_URL__ENV`, say), so only the two together must parse. When
        // they do not, the error is blamed on the file if the file alone fails the same way.
        let file_alone = parse_profile(table.clone()).err();
        let overridden = self.apply_overrides(&mut table);
        let profile = parse_profile(table).map_err(|message| {
            let origin = if file_alone.as_ref() == Some(&message) {
                format!("{origin} [{env}]")
            } else {
                format!("from environment ({})", overridden.join(", "))
            };
            SettingsError::Parse { origin, message }
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
/// A profile's table as [`Profile`], or the error naming the key it is about
/// (`concurrency: "many" is not a whole number`), which serde alone does not say.
fn parse_profile(table: toml::Table) -> Result<Profile, String> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().message().to_owned();
        match key.as_str() {
            "" | "." => message,
            _ => format!("{key}: {message}"),
        }
    })
}

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
    // A component's own section refuses a value with a `Refusal`; the profile is named here.
    let refused = |r: Refusal| invalid(&r.key, &r.value, &r.reason);
    let local = env == LOCAL_PROFILE;
    let url = |key: &str, value: Option<String>, default: fn() -> String| {
        let text = match value {
            Some(v) => v,
            None if local => default(),
            None => {
                return Err(refuse(
                    key,
                    "(missing)",
                    "required in this profile: a URL such as s3://bucket/prefix or a directory",
                ));
            }
        };
        StoreUrl::parse(&text).map_err(|e| {
            let shown = format!("\"{}\"", without_user_info(&text));
            refuse(key, &shown, &e.to_string())
        })
    };
    let staging = url("staging", p.staging, default_local_staging).map_err(refused)?;
    let warehouse = WarehouseProfile {
        kind: p.warehouse,
        snowflake: p.snowflake,
        dir: p.warehouse_dir,
        keep_replaced: p.keep_replaced,
        memory_limit: p.memory_limit,
    }
    .resolve(&staging, |dir| {
        url("warehouse_dir", dir, default_local_warehouse_dir)
    })
    .map_err(refused)?;
    // A whole number from 1 to `most`: things at once, or attempts.
    let count = |key: &str, value: Option<u64>, default: fn() -> u64, most: u64| {
        let v = value.unwrap_or_else(default);
        if (1..=most).contains(&v) {
            Ok(v as usize)
        } else {
            Err(invalid(key, &v.to_string(), &format!("must be 1-{most}")))
        }
    };
    let concurrency = count("concurrency", p.concurrency, default_concurrency, 1024)?;
    let payer_concurrency = count(
        "payer_concurrency",
        p.payer_concurrency,
        default_payer_concurrency,
        256,
    )?;
    let total_concurrency = count(
        "total_concurrency",
        p.total_concurrency,
        default_total_concurrency,
        4096,
    )?;
    let periods = p.periods.unwrap_or_else(default_periods);
    if !PERIODS.contains(&periods) {
        return Err(invalid("periods", &periods.to_string(), PERIODS_RULE));
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
    let attempts = count("s3_attempts", p.s3_attempts, default_s3_attempts, 50)?;
    let transfer = Transfer {
        concurrency,
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
    const DAY: u64 = 86_400;
    let lease_ttl = duration_setting(
        "lease_ttl",
        p.lease_ttl.as_deref(),
        default_lease_ttl(),
        Duration::from_secs(1)..=Duration::from_secs(DAY),
        "must be a duration such as 30s or 10m, from 1s to 24h",
    )
    .map_err(refused)?;
    let keep_superseded = duration_setting(
        "keep_superseded",
        p.keep_superseded.as_deref(),
        default_keep_superseded(),
        Duration::ZERO..=Duration::from_secs(30 * DAY),
        "must be a duration such as 0s, 15m or 1h, at most 30d",
    )
    .map_err(refused)?;
    let verify_every = duration_setting(
        "verify_every",
        p.verify_every.as_deref(),
        default_verify_every(),
        Duration::ZERO..=Duration::from_secs(365 * DAY),
        "must be a duration such as 0s, 6h or 24h, at most 365d",
    )
    .map_err(refused)?;
    let staging_access = Access {
        region: p.staging_region,
        role_arn: p.staging_role_arn,
        external_id: p.staging_external_id,
    };
    let metrics = resolve_metrics(p.metrics.unwrap_or_default()).map_err(refused)?;
    let notify = p.notify.map(resolve_notify).transpose().map_err(refused)?;
    Ok(Settings {
        env: env.to_owned(),
        staging,
        warehouse,
        concurrency,
        payer_concurrency,
        total_concurrency,
        periods: periods as u32,
        application_tag,
        on_sql_error: p.on_sql_error.unwrap_or_default(),
        payers: p.payers,
        staging_access,
        transfer,
        lease_ttl,
        keep_superseded,
        verify_every,
        metrics,
        notify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::parse_duration;
    use crate::warehouse::DEFAULT_KEEP_REPLACED;

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
            ..SettingsSource::default()
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
            ..SettingsSource::default()
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
    fn memory_limit_is_a_bounded_size_and_the_concurrencies_bounded_counts() {
        let memory = |text: &str| {
            let (_dir, src) = with_file(&format!("[local]\nmemory_limit = \"{text}\"\n"), &[]);
            src.load("local").map(|s| match s.warehouse {
                WarehouseSettings::Embedded { memory_limit, .. } => memory_limit,
                WarehouseSettings::Snowflake(_) => unreachable!("local is embedded"),
            })
        };
        assert_eq!(memory("512MiB").unwrap(), 512 << 20);
        assert_eq!(memory("4GiB").unwrap(), 4 << 30);
        for text in ["2GB", "1MiB", "2TiB", "lots"] {
            let err = memory(text).unwrap_err().to_string();
            assert!(err.contains("memory_limit") && err.contains(text), "{err}");
        }
        let local = SettingsSource::default().load("local").unwrap();
        match local.warehouse {
            WarehouseSettings::Embedded { memory_limit, .. } => assert_eq!(memory_limit, 2 << 30),
            WarehouseSettings::Snowflake(_) => unreachable!("local is embedded"),
        }
        assert!((2..=16).contains(&local.payer_concurrency));
        assert_eq!(local.total_concurrency, 64);
        for (key, refused) in [
            ("payer_concurrency", "0"),
            ("payer_concurrency", "257"),
            ("total_concurrency", "4097"),
        ] {
            let (_dir, src) = with_file(&format!("[local]\n{key} = {refused}\n"), &[]);
            let err = src.load("local").unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(refused), "{err}");
        }
    }

    #[test]
    fn keep_superseded_is_a_bounded_duration() {
        let local = SettingsSource::default().load("local").unwrap();
        assert_eq!(local.keep_superseded, Duration::from_secs(3600));
        let (_dir, src) = with_file("[local]\nkeep_superseded = \"0s\"\n", &[]);
        assert_eq!(src.load("local").unwrap().keep_superseded, Duration::ZERO);
        for text in ["31d", "-1s", "soon"] {
            let (_dir, src) = with_file(&format!("[local]\nkeep_superseded = \"{text}\"\n"), &[]);
            let err = src.load("local").unwrap_err().to_string();
            assert!(
                err.contains("keep_superseded") && err.contains(text),
                "{err}"
            );
        }
    }

    /// `periods` from the file and `--periods` follow one rule, 1-36, with one message.
    /// (The flag used to refuse 1, which the file took.)
    #[test]
    fn periods_follow_one_rule_from_the_file_and_the_flag() {
        for n in [1, 2, 36] {
            let (_dir, src) = with_file(&format!("[local]\nperiods = {n}\n"), &[]);
            assert_eq!(src.load("local").unwrap().periods, n);
            let flag = SettingsSource::default()
                .load("local")
                .unwrap()
                .with_periods(Some(n));
            assert_eq!(flag.unwrap().periods, n);
        }
        for n in [0, 37] {
            let (_dir, src) = with_file(&format!("[local]\nperiods = {n}\n"), &[]);
            let file = src.load("local").unwrap_err().to_string();
            let flag = SettingsSource::default()
                .load("local")
                .unwrap()
                .with_periods(Some(n))
                .unwrap_err()
                .to_string();
            assert!(
                file.contains(PERIODS_RULE) && flag.contains(PERIODS_RULE),
                "{file} / {flag}"
            );
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

    /// A container's settings file leaves the broker URL to its task definition: the file
    /// and the environment together make the profile (the file alone lacks `amqp_url`).
    #[test]
    fn the_environment_completes_what_the_file_leaves_out() {
        let file = "[local.notify]\nexchange = \"amq.topic\"\n";
        let (_d, src) = with_file(file, &[("CURFLOW_NOTIFY__AMQP_URL__ENV", "AMQP_URL")]);
        let notify = src.load("local").unwrap().notify.expect("notify");
        assert_eq!(notify.exchange, "amq.topic");
        let (_d, src) = with_file(file, &[]);
        let err = src.load("local").unwrap_err().to_string();
        assert!(
            err.contains("curflow.toml [local]") && err.contains("amqp_url"),
            "{err}"
        );
    }

    #[test]
    fn metrics_and_notify() {
        use crate::report::MetricsKind;
        use crate::secrets::SecretSetting;
        let s = SettingsSource::default().load("local").unwrap();
        assert!(s.metrics.kinds.is_empty());
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
        assert_eq!(s.metrics.kinds, [MetricsKind::Emf]);
        assert_eq!(s.metrics.namespace, "curflow");
        let n = s.notify.unwrap();
        assert_eq!(
            (
                n.retry.max_attempts - 1,
                n.retry.initial_backoff,
                n.required
            ),
            (2, Duration::from_millis(250), true)
        );
        assert_eq!(n.routing_key, "curflow.run");
        assert!(matches!(
            n.amqp_url,
            SecretSetting::Ref(crate::secrets::SecretRef::SecretsManager { .. })
        ));
        // A list arrives from the environment as one string.
        let (_d, src) = with_file(
            "[local.metrics]\nkinds = [\"emf\"]\n",
            &[("CURFLOW_METRICS__KINDS", "cloudwatch,emf")],
        );
        assert_eq!(
            src.load("local").unwrap().metrics.kinds,
            [MetricsKind::CloudWatch, MetricsKind::Emf]
        );
        let (_d, src) = with_file(
            "[local.metrics]\nkind = \"emf\"\n",
            &[("CURFLOW_METRICS__KINDS", "cloudwatch")],
        );
        let err = src.load("local").unwrap_err().to_string();
        assert!(
            err.contains("metrics.kind ") && err.contains("metrics.kinds"),
            "{err}"
        );
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
