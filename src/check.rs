//! `curflow check`: before the first scheduled run, reach everything a run needs, with the
//! permissions it needs, and say per thing whether it works — changing nothing a run reads.
//!
//! - the warehouse: opened (a Snowflake key read and a session made), its payer table read
//!   (for Snowflake, that is one statement run);
//! - each payer: its source reached as the payer's principal (its role assumed), the root
//!   listed and the manifest of the newest month with data read, of the task month (the
//!   current one unless given) and the one before — what `plan` does, without a lease;
//! - staging: a conditional write, a read and a delete of a probe object under
//!   `_curflow/check/`, the permissions the lease and the ledger need;
//! - the notification's broker: its URL read (Secrets Manager, env or file; never printed),
//!   a connection made, the exchange declared passively;
//! - CloudWatch, when the profile sends metrics there: one ListMetrics call.

use crate::payers::PayerConfig;
use crate::pipeline;
use crate::report::{self, MetricsKind};
use crate::settings::Settings;
use crate::storage::{Location, StorageError};
use crate::sync::{Intent, PayerSync, StageOutcome};
use crate::task::BillingPeriod;
use crate::warehouse::{self, PayerTable};

/// One check's result: what was checked, and `Ok(what worked)` or `Err(what failed and
/// what to grant or fix)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    /// The thing checked: `warehouse`, `payer 671238551718`, `staging`, `notify`, `metrics`.
    pub subject: String,
    /// What worked, or what failed.
    pub result: Result<String, String>,
}

impl CheckLine {
    fn new(subject: impl Into<String>, result: Result<String, String>) -> Self {
        Self {
            subject: subject.into(),
            result,
        }
    }
}

/// Runs every check the settings call for, in a fixed order: warehouse, payers, staging,
/// notify, metrics.
pub async fn run(settings: &Settings, period: BillingPeriod) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    let (warehouse_line, configured) = warehouse_and_payers(settings).await;
    lines.push(warehouse_line);
    let staging = Location::connect(
        &settings.staging,
        &settings.staging_access,
        &settings.transfer,
    )
    .await;
    for config in &configured {
        let subject = format!("payer {}", config.payer_id);
        let result = match &staging {
            Ok(staging) => source(settings, config, staging, period).await,
            Err(e) => Err(format!("staging cannot be opened: {e}")),
        };
        lines.push(CheckLine::new(subject, result));
    }
    let staging_result = match &staging {
        Ok(staging) => probe(staging).await,
        Err(e) => Err(e.to_string()),
    };
    lines.push(CheckLine::new("staging", staging_result));
    if let Some(notify) = &settings.notify {
        lines.push(CheckLine::new("notify", report::reach_broker(notify).await));
    }
    if settings.metrics.kinds.contains(&MetricsKind::CloudWatch) {
        lines.push(CheckLine::new(
            "metrics",
            report::reach_cloudwatch(&settings.metrics).await,
        ));
    }
    lines
}

/// The warehouse's line, and the payers a run would process: the payer table's entries
/// and the settings file's (as a run merges them).
async fn warehouse_and_payers(settings: &Settings) -> (CheckLine, Vec<PayerConfig>) {
    let read = async {
        let backend = warehouse::open(&settings.warehouse).await?;
        backend.payer_configs().await
    };
    let (result, mut configured) = match read.await {
        Ok(from_table) => (
            Ok(format!(
                "opened, payer table read ({} entries)",
                from_table.len()
            )),
            from_table,
        ),
        Err(e) => (Err(pipeline::error_chain(&e)), Vec::new()),
    };
    pipeline::merge_file_payers(&mut configured, settings);
    (CheckLine::new("warehouse", result), configured)
}

/// A payer's source, as `plan` reads it for `period` and the month before.
async fn source(
    settings: &Settings,
    config: &PayerConfig,
    staging: &Location,
    period: BillingPeriod,
) -> Result<String, String> {
    if !config.active {
        return Ok("inactive: not checked".into());
    }
    let url = config.source_url().map_err(|e| e.to_string())?;
    let export = Location::connect(&url, &config.access(), &settings.transfer)
        .await
        .map_err(|e| e.to_string())?;
    let mut sync = PayerSync::new(
        config.payer_id.clone(),
        export,
        config.layout,
        staging.clone(),
        settings.staging_rules(),
    );
    let mut said = Vec::new();
    for period in period.with_previous(2) {
        let outcome = sync
            .stage(period, Intent::Plan)
            .await
            .map_err(|e| format!("{url}: {}", pipeline::error_chain(&e)))?;
        match outcome {
            StageOutcome::NotReady { reason } => said.push(format!("{period}: {reason}")),
            StageOutcome::AlreadySynchronized
            | StageOutcome::Planned { .. }
            | StageOutcome::Staged(_) => {
                return Ok(format!(
                    "{url} listed, {period}'s manifest read{}",
                    if config.role_arn.is_some() {
                        " (as its role)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    Ok(format!(
        "{url} listed, no recent delivery yet ({})",
        said.join("; ")
    ))
}

/// A conditional write, a read and a delete of a probe object, as the lease and the ledger
/// need them.
async fn probe(staging: &Location) -> Result<String, String> {
    let key = format!(
        "_curflow/check/probe-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let failed = |what: &str, e: StorageError| {
        format!(
            "{what} failed: {e}; staging needs s3:PutObject, s3:GetObject and s3:DeleteObject under _curflow/ (conditional writes included)"
        )
    };
    let created = staging
        .write_if(&key, b"curflow check".to_vec(), None)
        .await
        .map_err(|e| failed("conditional write", e))?;
    if !created {
        return Err(format!("{key} exists already; run check again"));
    }
    let read = staging.read(&key).await.map_err(|e| failed("read", e))?;
    staging
        .delete(&key)
        .await
        .map_err(|e| failed("delete", e))?;
    match read.as_deref() {
        Some(b"curflow check") => Ok(format!(
            "{}: conditional write, read and delete under _curflow/",
            staging.url()
        )),
        _ => Err(format!("{key} did not read back as written")),
    }
}
