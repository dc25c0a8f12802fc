//! `[<env>.notify]`: the end-of-run RabbitMQ notification's settings, as written and
//! validated. settings.rs composes the profile and calls [`resolve_notify`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::tls::TrustedCa;
use crate::retry::RetryPolicy;
use crate::secrets::SecretSetting;
use crate::values::{Refusal, duration_setting, lenient, lenient_bool, refuse};

/// The longest wait between two attempts, however many retries are configured.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

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
    /// How publishing is retried: `retries` + 1 attempts, the first wait `backoff`, doubled
    /// on each later one up to 60 s, with jitter.
    pub retry: RetryPolicy,
    /// The limit on one attempt (connect, publish, confirm).
    pub timeout: Duration,
    /// Whether an undeliverable notification makes the run exit 1.
    pub required: bool,
    /// The CA an `amqps://` broker's certificate may be signed by, besides the system roots.
    pub ca: Option<TrustedCa>,
}

/// `[<env>.notify]` as written; defaults applied in [`resolve_notify`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifyProfile {
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
    /// First retry delay (`500ms`, `2s`, `1m`), doubled on each retry (at most 60 s) with
    /// jitter, 10ms-10m. Default: `1s`.
    backoff: Option<String>,
    /// Limit on one attempt, 1s-10m. Default: `10s`.
    timeout: Option<String>,
    /// Exit 1 when the notification cannot be delivered. Default: false.
    #[serde(default, deserialize_with = "lenient_bool")]
    required: Option<bool>,
    /// PEM file with the CA certificate(s) an `amqps://` broker's certificate may be signed
    /// by, trusted besides the system roots (a private CA, a self-signed broker). Read when
    /// the settings are validated. Default: the system roots only.
    ca_file: Option<PathBuf>,
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

/// Applies defaults and checks `[<env>.notify]`.
pub(crate) fn resolve_notify(n: NotifyProfile) -> Result<NotifySettings, Refusal> {
    if let SecretSetting::Plain(text) = &n.amqp_url {
        let mut url = url::Url::parse(text).ok().filter(|u| matches!(u.scheme(), "amqp" | "amqps")).ok_or_else(|| {
            refuse(
                "notify.amqp_url",
                "(not shown)",
                "must be an amqp:// or amqps:// URL, or name where it is kept: { secret = \"name\", key = \"field\" }, { env = \"VAR\" } or { file = \"/path\" }",
            )
        })?;
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
            return Err(refuse(
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
        let rule = format!(
            "must be a duration such as 500ms, 2s or 1m, from {:?} to {:?}",
            range.start(),
            range.end()
        );
        duration_setting(key, value.as_deref(), default(), range, &rule)
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
        return Err(refuse(
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
            return Err(refuse(
                key,
                &format!("\"{value}\""),
                "must be at most 255 bytes (AMQP short string)",
            ));
        }
    }
    let ca = n.ca_file.as_deref().map(TrustedCa::load).transpose()?;
    Ok(NotifySettings {
        amqp_url: n.amqp_url,
        vhost: n.vhost,
        exchange,
        routing_key,
        retry: RetryPolicy {
            max_attempts: retries as u32 + 1,
            initial_backoff: backoff,
            max_backoff: MAX_BACKOFF,
        },
        timeout,
        required: n.required.unwrap_or(false),
        ca,
    })
}
