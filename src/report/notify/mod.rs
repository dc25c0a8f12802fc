//! The end-of-run notification: one persistent JSON message to RabbitMQ, published with
//! publisher confirms, retried per the notification's
//! [`RetryPolicy`](crate::retry::RetryPolicy) (exponential backoff with jitter). Its
//! settings (`[<env>.notify]`) are in [`config`]; what an `amqps://` connection trusts is
//! in [`tls`].
//!
//! The body's schema is documented in `docs/notification.md`; [`notification_body`] is its
//! one implementation. Nothing here decides the exit code: the [`Notification`] sink says
//! whether the message was delivered and `main` applies the documented rule
//! (`notify.required`).

mod config;
mod tls;

use std::time::Duration;

use futures::FutureExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{
    BasicProperties, Confirmation, Connection, ConnectionProperties, DefaultConnectionBuilder,
    ExchangeKind,
};
use serde_json::{Value, json};

pub use config::NotifySettings;
pub(crate) use config::{NotifyProfile, resolve_notify};
pub use tls::TrustedCa;

use super::sink::{Published, Sink, SinkFuture, Stage};
use super::{PeriodOutcome, RunReport, Status, Totals, empty_delivery};
use crate::secrets::{Secret, SecretError};

/// The version of the body's layout; raised on any change a consumer could notice.
const SCHEMA_VERSION: u32 = 3;

/// The notification could not be delivered. Messages never hold the broker's credentials.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The broker URL could not be read from where the settings say it is.
    #[error("cannot read notify.amqp_url: {0}")]
    Secret(#[from] SecretError),
    /// The broker URL is not an AMQP URL.
    #[error(
        "notify.amqp_url is not a valid amqp:// or amqps:// URL (value not shown); check the secret's value"
    )]
    BadUrl,
    /// The broker's TLS certificate was refused: nothing was sent, and it is not retried,
    /// since waiting does not make a certificate trusted.
    #[error(
        "broker {host} presented a TLS certificate that is not trusted ({reason}); nothing was sent: set notify.ca_file to the CA certificate that signed it, or install that CA in the system trust store"
    )]
    UntrustedCertificate {
        /// The broker host and port.
        host: String,
        /// rustls' reason (`invalid peer certificate: UnknownIssuer`).
        reason: String,
    },
    /// Every attempt failed.
    #[error(
        "no confirmed delivery to exchange \"{exchange}\" (routing key \"{routing_key}\") on {host} after {attempts} attempt(s); last error: {last}"
    )]
    Undelivered {
        /// The broker host and port.
        host: String,
        /// The exchange.
        exchange: String,
        /// The routing key.
        routing_key: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error, credentials removed.
        last: String,
    },
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(
        "the broker returned the message as unroutable: bind a queue to the exchange with this routing key"
    )]
    Unroutable,
    #[error("the broker refused the message (nack)")]
    Nack,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The overall result as the notification names it: `success`, `partial` (some work done,
/// something failed), `failed` (nothing succeeded, or the run ended on a fatal error) or
/// `interrupted` (a signal stopped it before every payer-period was done).
fn verdict(report: &RunReport) -> &'static str {
    match report.status() {
        Status::Success => "success",
        Status::Interrupted(_) => "interrupted",
        Status::AnalyticsFailed => "partial",
        Status::Failed
            if report.fatal.is_none()
                && report
                    .periods
                    .iter()
                    .any(|p| !matches!(p.outcome, PeriodOutcome::Failed { .. })) =>
        {
            "partial"
        }
        Status::Failed => "failed",
    }
}

/// The message body (schema in `docs/notification.md`).
pub(super) fn notification_body(report: &RunReport) -> Value {
    let task = &report.task;
    let totals = Totals::of(&report.periods);
    let periods: Vec<Value> = report
        .periods
        .iter()
        .map(|p| {
            let mut entry = json!({
                "payer_id": p.payer.as_str(),
                "billing_period": p.period.to_string(),
                "duration_seconds": p.duration.as_secs_f64(),
            });
            let fields = match &p.outcome {
                PeriodOutcome::AlreadySynchronized => json!({"outcome": "already_synchronized"}),
                PeriodOutcome::Planned { counts, empty } => json!({
                    "outcome": "planned",
                    "empty": empty,
                    "files_copied": counts.copied_files,
                    "bytes_copied": counts.copied_bytes,
                    "files_deleted": counts.deleted_files,
                }),
                PeriodOutcome::Synchronized { counts, analytics } => {
                    let analytics = match (analytics.failure(), &analytics.totals) {
                        (Some(failed), _) => json!({
                            "status": "failed",
                            "failed_statement": failed.name,
                            "error": failed.error,
                        }),
                        (None, Some(t)) => {
                            // `<kind>_unused_cost` per waste table: `ri_unused_cost`,
                            // `sp_unused_cost`.
                            let mut fields = serde_json::Map::new();
                            fields.insert("status".into(), json!("succeeded"));
                            for table in &t.tables {
                                fields.insert(
                                    format!("{}_unused_cost", table.kind),
                                    json!(table.unused_cost),
                                );
                            }
                            fields.insert(
                                "reconciliation_mismatches".into(),
                                json!(t.mismatches.len()),
                            );
                            Value::Object(fields)
                        }
                        (None, None) if analytics.statements.is_empty() => {
                            json!({"status": "not_run"})
                        }
                        (None, None) => json!({"status": "succeeded"}),
                    };
                    json!({
                        "outcome": "synchronized",
                        "files_copied": counts.copied_files,
                        "bytes_copied": counts.copied_bytes,
                        "files_deleted": counts.deleted_files,
                        "files_unchanged": counts.unchanged_files,
                        "analytics": analytics,
                    })
                }
                PeriodOutcome::Empty { counts } => json!({
                    "outcome": "empty",
                    "reason": empty_delivery(p.period),
                    "files_deleted": counts.deleted_files,
                }),
                PeriodOutcome::Skipped { reason } => {
                    json!({"outcome": "skipped", "reason": reason})
                }
                PeriodOutcome::Failed { error } => json!({"outcome": "failed", "error": error}),
                PeriodOutcome::Interrupted => json!({"outcome": "interrupted"}),
            };
            if let (Some(entry), Value::Object(fields)) = (entry.as_object_mut(), fields) {
                entry.extend(fields);
            }
            entry
        })
        .collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "curflow_version": env!("CARGO_PKG_VERSION"),
        "status": verdict(report),
        "task": {
            "year": task.period.year(),
            "month": task.period.month(),
            "payers": task.payers.listed().iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "partnerId": task.partner_id,
            "module": task.module,
            "env": task.env,
        },
        "started_at": report.started_at.to_rfc3339(),
        "finished_at": report.finished_at.to_rfc3339(),
        "duration_seconds": report.duration_seconds(),
        "totals": {
            "files_copied": totals.files_copied,
            "bytes_copied": totals.bytes_copied,
            "files_deleted": totals.files_deleted,
            "periods_synchronized": totals.periods_synchronized,
            "already_synchronized": totals.already_synchronized,
            "periods_skipped": totals.periods_skipped,
            "periods_failed": totals.periods_failed,
            "periods_interrupted": totals.periods_interrupted,
            "analytics_failed": totals.analytics_failed,
            "reconciliation_mismatches": totals.reconciliation_mismatches,
        },
        "periods": periods,
        "inactive_payers": report.inactive.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "error": report.fatal,
        "interrupted_by": report.interrupted.map(|s| s.name()),
    })
}

/// The notification as a sink: the first to run, so that the metrics can count a message
/// that was not delivered.
pub(super) struct Notification(pub(super) NotifySettings);

impl Sink for Notification {
    fn stage(&self) -> Stage {
        Stage::Notification
    }

    fn name(&self) -> &'static str {
        "notification"
    }

    /// Errors when the broker URL cannot be read or no attempt got a confirmed delivery.
    fn send<'a>(&'a self, report: &'a RunReport, _earlier: &'a Published) -> SinkFuture<'a> {
        async move { Ok(send(report, &self.0).await?) }.boxed()
    }
}

/// The broker URI the settings name (read from its secret), with the profile's vhost; what
/// to redact from errors; `host:port`.
async fn broker(settings: &NotifySettings) -> Result<(AMQPUri, Redaction, String), NotifyError> {
    let url = settings.amqp_url.read().await?;
    let mut uri: AMQPUri = url.expose().parse().map_err(|_| NotifyError::BadUrl)?;
    if let Some(vhost) = &settings.vhost {
        uri.vhost = vhost.clone();
    }
    let redaction = Redaction::of(url, uri.authority.userinfo.password.as_str());
    let host = format!("{}:{}", uri.authority.host, uri.authority.port);
    Ok((uri, redaction, host))
}

/// Every form the broker URL's secret can take in an error text: the URL itself, its
/// password as written in it (percent-encoded or not), decoded, and percent-encoded.
struct Redaction(Vec<Secret>);

impl Redaction {
    fn of(url: Secret, decoded_password: &str) -> Self {
        let written = url::Url::parse(url.expose())
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
            .unwrap_or_default();
        let mut forms: Vec<String> = vec![
            written,
            decoded_password.to_owned(),
            percent_encoded(decoded_password),
        ];
        forms.retain(|f| !f.is_empty());
        // The longest first, so that no form is left half-replaced by a shorter one; equal
        // forms side by side, so that each is kept once.
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        let mut secrets = vec![url];
        secrets.extend(forms.into_iter().map(Secret::new));
        Self(secrets)
    }

    /// `text` with every form replaced by `***`.
    fn apply(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_owned(), |text, secret| secret.redact(&text))
    }
}

/// `text` with every byte but the unreserved ones (RFC 3986: letters, digits, `-._~`)
/// percent-encoded, as a URL's userinfo may carry it.
fn percent_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `curflow check`: connects to the broker once and declares the exchange passively (it
/// must exist; nothing is created or published). Returns what was reached.
pub(crate) async fn reach(settings: &NotifySettings) -> Result<String, String> {
    let (uri, redaction, host) = broker(settings).await.map_err(|e| e.to_string())?;
    let attempt = async {
        let connection = connect(uri, settings).await?;
        let channel = connection.create_channel().await?;
        if !settings.exchange.is_empty() {
            let passive = ExchangeDeclareOptions {
                passive: true,
                ..ExchangeDeclareOptions::default()
            };
            channel
                .exchange_declare(
                    settings.exchange.as_str().into(),
                    ExchangeKind::Topic,
                    passive,
                    FieldTable::default(),
                )
                .await?;
        }
        let _ = connection.close(200, "checked".into()).await;
        Ok::<(), lapin::Error>(())
    };
    match tokio::time::timeout(settings.timeout, attempt).await {
        Ok(Ok(())) => Ok(format!(
            "broker {host}: connected, exchange \"{}\" exists",
            settings.exchange
        )),
        Ok(Err(e)) => Err(match tls::refused_certificate(&e) {
            Some(reason) => NotifyError::UntrustedCertificate { host, reason }.to_string(),
            None => format!(
                "broker {host}: {}; check notify.amqp_url, the user's permissions on the vhost, and that exchange \"{}\" exists",
                redaction.apply(&e.to_string()),
                settings.exchange
            ),
        }),
        Err(_) => Err(format!(
            "broker {host}: no answer within {:?}",
            settings.timeout
        )),
    }
}

/// Publishes the report's notification, retrying as configured.
async fn send(report: &RunReport, settings: &NotifySettings) -> Result<(), NotifyError> {
    let (uri, redaction, host) = broker(settings).await?;
    let body = notification_body(report).to_string();
    let attempts = settings.retry.max_attempts;
    let mut last = String::new();
    for attempt in 1..=attempts {
        let result = tokio::time::timeout(
            settings.timeout,
            publish_once(uri.clone(), settings, body.as_bytes()),
        )
        .await
        .unwrap_or(Err(AttemptError::Timeout(settings.timeout)));
        match result {
            Ok(()) => {
                tracing::info!(%host, exchange = %settings.exchange, routing_key = %settings.routing_key, attempt, "run notification delivered");
                return Ok(());
            }
            Err(AttemptError::Amqp(error))
                if let Some(reason) = tls::refused_certificate(&error) =>
            {
                return Err(NotifyError::UntrustedCertificate { host, reason });
            }
            Err(error) => last = redaction.apply(&error.to_string()),
        }
        if attempt < attempts {
            let wait = settings.retry.wait_before(attempt + 1);
            tracing::warn!(%host, attempt, of = attempts, error = %last, retry_in = ?wait, "run notification not delivered yet");
            tokio::time::sleep(wait).await;
        }
    }
    Err(NotifyError::Undelivered {
        host,
        exchange: settings.exchange.clone(),
        routing_key: settings.routing_key.clone(),
        attempts,
        last,
    })
}

/// A connection to the broker: TLS for an `amqps://` URI, verified as the settings say
/// (`amqp://` stays plaintext).
async fn connect(uri: AMQPUri, settings: &NotifySettings) -> Result<Connection, lapin::Error> {
    DefaultConnectionBuilder::new()?
        .with_uri(uri)
        .with_properties(ConnectionProperties::default())
        .with_tls_config(tls::tls_config(settings.ca.as_ref()))
        .connect()
        .await
}

/// One attempt: connect, enable confirms, publish persistently, wait for the broker's ack.
async fn publish_once(
    uri: AMQPUri,
    settings: &NotifySettings,
    body: &[u8],
) -> Result<(), AttemptError> {
    let connection = connect(uri, settings).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_app_id("curflow".into());
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirmation = channel
        .basic_publish(
            settings.exchange.as_str().into(),
            settings.routing_key.as_str().into(),
            options,
            body,
            properties,
        )
        .await?
        .await?;
    let result = match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(AttemptError::Unroutable),
        Confirmation::Nack(_) | Confirmation::NotRequested => Err(AttemptError::Nack),
    };
    // The message is confirmed (or refused) already; a failed close changes nothing.
    let _ = connection.close(200, "done".into()).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A password with characters a URL must encode reaches an error text in any of its
    /// forms (a library may quote the URL as written, or the password decoded or encoded
    /// again): each is redacted.
    #[test]
    fn every_form_of_the_password_is_redacted() {
        let url = "amqp://curflow:p%40ss%2Fw0rd%20x@broker.example:5671/%2f";
        let uri: AMQPUri = url.parse().unwrap();
        let decoded = uri.authority.userinfo.password.clone();
        assert_eq!(decoded, "p@ss/w0rd x");
        let redaction = Redaction::of(Secret::new(url), &decoded);
        for leak in [
            url,
            "p%40ss%2Fw0rd%20x",
            "p@ss/w0rd x",
            "amqp://curflow:p%40ss%2Fw0rd%20x@broker.example:5671",
        ] {
            let text = format!("connection refused ({leak})");
            let redacted = redaction.apply(&text);
            assert!(
                !redacted.contains("w0rd"),
                "{leak:?} is left in {redacted:?}"
            );
        }
        assert_eq!(
            Redaction::of(Secret::new("amqp://u:plain@h/"), "plain").apply("bad plain"),
            "bad ***"
        );
    }
}
