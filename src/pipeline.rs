//! The run: payers → billing periods → discover → plan → copy → warehouse → report.
//!
//! This is the only module that knows the order of the stages. Everything that can be
//! refused (an unknown payer, a bad source URL) is refused before the first byte moves.
//! A failure in one payer-period is recorded and the run goes on with the next; the final
//! [`RunReport`] decides the exit code.

use chrono::Utc;

use crate::payers::{self, PayerConfig, Selection};
use crate::report::{PeriodOutcome, PeriodReport, RunReport, SyncCounts};
use crate::settings::{Settings, WarehouseSettings};
use crate::storage::{Location, StorageError};
use crate::sync::{self, DeliveryState, Lease, Ledger};
use crate::task::{BillingPeriod, TaskInput};
use crate::warehouse::{
    AnalyticsOutcome, Embedded, Params, Snowflake, StagedPeriod, Warehouse, WarehouseError,
};

/// A run could not start: its input or configuration is wrong. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A task payer has no configuration.
    #[error(transparent)]
    NotConfigured(#[from] payers::NotConfigured),
    /// A configured URL cannot be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The warehouse cannot be opened or refused the credentials.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

impl SetupError {
    /// Whether the task or settings must change (exit 2), rather than the run having
    /// failed at run time (a service could not be reached: the fatal path, exit 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            // Opening a store is local (a URL, a region, the environment); nothing is
            // asked of a server before the first read.
            SetupError::NotConfigured(_) | SetupError::Storage(_) => true,
            SetupError::Warehouse(e) => !matches!(e, WarehouseError::Request(_)),
        }
    }
}

/// Whether to change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Synchronize and analyse.
    Run,
    /// Say what `Run` would do; change nothing.
    Plan,
    /// Synchronize only; the analytics are left for a later `Run`.
    Stage,
}

/// A payer ready to process: its configuration and opened source.
struct Source {
    config: PayerConfig,
    export: Location,
}

/// Runs (or plans) the task with these settings.
pub async fn run(
    task: &TaskInput,
    settings: &Settings,
    mode: Mode,
) -> Result<RunReport, SetupError> {
    match &settings.warehouse {
        WarehouseSettings::Embedded { dir, keep_replaced } => {
            let warehouse = Embedded::new(Location::open(dir, None)?).keep_replaced(*keep_replaced);
            run_with(&warehouse, task, settings, mode).await
        }
        WarehouseSettings::Snowflake(snowflake) => {
            let warehouse = Snowflake::connect(snowflake).await?;
            run_with(&warehouse, task, settings, mode).await
        }
    }
}

/// [`run`] with its warehouse opened.
async fn run_with<W: Warehouse>(
    warehouse: &W,
    task: &TaskInput,
    settings: &Settings,
    mode: Mode,
) -> Result<RunReport, SetupError> {
    let started_at = Utc::now();
    let configured = configured_payers(warehouse, settings).await?;
    let selections = payers::select(&task.payers, &configured)?;
    let mut sources = Vec::new();
    let mut inactive = Vec::new();
    for selection in selections {
        match selection {
            Selection::Process(config) => sources.push(open_source(config, settings).await?),
            Selection::Inactive(id) => inactive.push(id),
        }
    }
    let staging = Location::connect(
        &settings.staging,
        &settings.staging_access,
        &settings.transfer,
    )
    .await?;
    let mut periods = Vec::new();
    for source in &sources {
        let mut lease = None;
        for period in task.periods(settings.periods) {
            let payer = source.config.payer_id.clone();
            let started = std::time::Instant::now();
            let outcome = sync_period(
                source, period, &staging, warehouse, settings, mode, &mut lease,
            )
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%payer, %period, error = %error, "payer-period failed");
                PeriodOutcome::Failed {
                    error: error_chain(&*error),
                }
            });
            periods.push(PeriodReport {
                payer,
                period,
                outcome,
                duration: started.elapsed(),
            });
        }
        if let Some(lease) = lease
            && let Err(error) = lease.release().await
        {
            tracing::warn!(payer = %source.config.payer_id, error = %error, "could not release the lease; it expires by itself");
        }
    }
    Ok(RunReport {
        task: task.clone(),
        dry_run: mode == Mode::Plan,
        on_sql_error: settings.on_sql_error,
        inactive,
        periods,
        started_at,
        finished_at: Utc::now(),
        fatal: None,
    })
}

/// The payer configurations in force: the warehouse's payer table, then the settings
/// file for payers the table lacks. An unreadable table is logged and the file used alone,
/// as the seed fell back to its built-in configuration when Snowflake was unreachable;
/// refused credentials stop the run before anything is touched, as nothing could succeed.
async fn configured_payers<W: Warehouse>(
    warehouse: &W,
    settings: &Settings,
) -> Result<Vec<PayerConfig>, SetupError> {
    let mut configured = match warehouse.payer_configs().await {
        Ok(from_table) => from_table,
        Err(error @ WarehouseError::Credentials(_)) => return Err(error.into()),
        Err(error) => {
            tracing::warn!(error = %error, "payer table unreadable; using the settings file's payers");
            Vec::new()
        }
    };
    for from_file in &settings.payers {
        if !configured.iter().any(|c| c.payer_id == from_file.payer_id) {
            configured.push(from_file.clone());
        }
    }
    Ok(configured)
}

/// Opens a payer's source. When the entry came from the payer table and its source cannot
/// be reached, while the settings file has a different entry for the payer, the file's
/// entry is used instead and the reason logged (DESIGN.md §3). Without such an entry the
/// table's stands, and its periods fail with the store's error.
async fn open_source(config: PayerConfig, settings: &Settings) -> Result<Source, SetupError> {
    let connect = |c: &PayerConfig| {
        let (url, access) = (c.source_url(), c.access());
        async move { Location::connect(&url?, &access, &settings.transfer).await }
    };
    let fallback = settings
        .payers
        .iter()
        .find(|f| f.payer_id == config.payer_id && **f != config);
    let Some(fallback) = fallback else {
        let export = connect(&config).await?;
        return Ok(Source { config, export });
    };
    let unreachable = match connect(&config).await {
        Ok(export) => match export.probe().await {
            Ok(()) => return Ok(Source { config, export }),
            Err(e) => e,
        },
        Err(e) => e,
    };
    tracing::warn!(
        payer = %config.payer_id,
        table_source = %config.source,
        file_source = %fallback.source,
        reason = %error_chain(&unreachable),
        "the payer table's source is not reachable; using the settings file's entry for this payer"
    );
    let export = connect(fallback).await?;
    Ok(Source {
        config: fallback.clone(),
        export,
    })
}

/// The error and its causes on one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

type PeriodResult = Result<PeriodOutcome, Box<dyn std::error::Error + Send + Sync>>;

/// One payer-period: discover, plan, copy and delete, ledger, analytics, ledger again.
/// The payer's lease is taken (once per run, kept in `lease`) only when something is to
/// be written, and the period is planned again under it.
async fn sync_period<W: Warehouse>(
    source: &Source,
    period: BillingPeriod,
    staging: &Location,
    warehouse: &W,
    settings: &Settings,
    mode: Mode,
    lease: &mut Option<Lease>,
) -> PeriodResult {
    let payer = &source.config.payer_id;
    let discovered = sync::discover(&source.export, source.config.layout, period).await?;
    match &discovered.state {
        DeliveryState::Ready => {}
        DeliveryState::NoData => {
            return Ok(PeriodOutcome::Skipped {
                reason: format!(
                    "no data at {}",
                    source.export.url().join(&discovered.folder)
                ),
            });
        }
        DeliveryState::Incomplete { missing } => {
            tracing::warn!(%payer, %period, missing = missing.len(), "delivery in progress");
            return Ok(PeriodOutcome::Skipped {
                reason: format!(
                    "delivery in progress: the manifest names {} file(s) not yet present (first: {}); the next run stages it",
                    missing.len(),
                    missing.first().map(String::as_str).unwrap_or_default()
                ),
            });
        }
        DeliveryState::Updating { status } => {
            tracing::warn!(%payer, %period, %status, "legacy report still UPDATING");
            return Ok(PeriodOutcome::Skipped {
                reason: format!(
                    "the report is still being updated ({status} says UPDATING); the staged copy is kept and the next run stages it"
                ),
            });
        }
    }
    let source_folder = source.export.child(&discovered.folder);
    let staged = staging.child(&sync::staged_folder(payer, period));
    let staged_files = staged.list("").await?;
    let ledger = Ledger::read(staging, payer, period).await?;
    let plan = sync::plan(&discovered.files, &staged_files, ledger.as_ref());
    let analytics_done = ledger
        .as_ref()
        .is_some_and(|l| l.analytics_succeeded_at.is_some());
    if plan.is_empty() && (analytics_done || mode == Mode::Stage) {
        tracing::info!(%payer, %period, "Already synchronized");
        return Ok(PeriodOutcome::AlreadySynchronized);
    }
    let counts_of = |plan: &sync::Plan| SyncCounts {
        copied_files: plan.copies.len(),
        copied_bytes: plan.copy_bytes(),
        deleted_files: plan.deletes.len(),
        unchanged_files: plan.unchanged,
        unchanged_bytes: plan.unchanged_bytes,
    };
    if mode == Mode::Plan {
        return Ok(PeriodOutcome::Planned {
            counts: counts_of(&plan),
            analytics: true,
        });
    }
    let (ledger, plan) = if lease.is_none() {
        *lease = Some(Lease::acquire(staging, payer, settings.lease_ttl).await?);
        let staged_files = staged.list("").await?;
        let ledger = Ledger::read(staging, payer, period).await?;
        let plan = sync::plan(&discovered.files, &staged_files, ledger.as_ref());
        (ledger, plan)
    } else {
        (ledger, plan)
    };
    let mut counts = counts_of(&plan);
    let mut ledger = match ledger {
        Some(ledger) if plan.is_empty() => ledger,
        _ => {
            let copied = sync::copy_all(
                &source_folder,
                &staged,
                &plan.copies,
                settings.concurrency,
                payer,
                period,
            )
            .await?;
            let deleted = sync::delete_all(&staged, &plan.deletes, settings.concurrency).await?;
            counts.copied_files = copied.files;
            counts.copied_bytes = copied.bytes;
            counts.deleted_files = deleted.files;
            let ledger = Ledger {
                delivery: discovered.delivery.clone(),
                synced_at: Some(Utc::now()),
                analytics_succeeded_at: None,
                files: discovered
                    .files
                    .iter()
                    .map(|f| (f.key.clone(), sync::StagedFile::from(f)))
                    .collect(),
                ..Ledger::default()
            };
            ledger.write(staging, payer, period).await?;
            tracing::info!(%payer, %period, files = copied.files, bytes = copied.bytes, deleted = deleted.files, "staged");
            ledger
        }
    };
    if mode == Mode::Stage {
        return Ok(PeriodOutcome::Synchronized {
            counts,
            analytics: AnalyticsOutcome::default(),
        });
    }
    let table = warehouse
        .register_period(&StagedPeriod {
            payer: payer.clone(),
            period,
            location: staged,
        })
        .await?;
    let params = Params {
        period,
        payer: payer.clone(),
        application_tag: settings.application_tag.clone(),
    };
    let analytics = warehouse.run_analytics(&table, &params).await?;
    if analytics.failure().is_none() {
        ledger.analytics_succeeded_at = Some(Utc::now());
        ledger.write(staging, payer, period).await?;
    }
    Ok(PeriodOutcome::Synchronized { counts, analytics })
}
