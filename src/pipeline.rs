//! The run: payers → billing periods → stage (sync) → warehouse → report.
//!
//! This is the only module that knows the order of the stages. Everything that can be
//! refused (an unknown payer, a bad source URL) is refused before the first byte moves.
//! Payers run side by side (`payer_concurrency`), each its periods in order; as many
//! payer-periods are analysed at once as the warehouse takes. A failure in one
//! payer-period is recorded and the run goes on with the next; the final [`RunReport`], in
//! the task's order of payers, decides the exit code. A signal ([`Shutdown`]) stops the
//! run between payer-periods, or the one being staged at once; analytics that have
//! started finish, and those waiting their turn do not start.

use chrono::Utc;
use futures::StreamExt;

use crate::payers::{self, PayerConfig, Selection};
use crate::report::{PeriodOutcome, PeriodReport, RunReport};
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::storage::{Location, StorageError};
use crate::sync::{self, Intent, PayerSync, StageOutcome, StagingRules};
use crate::task::{BillingPeriod, PayerChoice, TaskInput};
use crate::warehouse::{
    self, AnalyticsOutcome, PayerTable, StagedPeriod, Warehouse, WarehouseError,
};

/// How long a stopped run waits for the aborts of the uploads it cut short.
const CLEANUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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

/// Runs (or plans) the task with these settings, until done or stopped by `shutdown`.
pub async fn run(
    task: &TaskInput,
    settings: &Settings,
    mode: Mode,
    shutdown: &Shutdown,
) -> Result<RunReport, SetupError> {
    let warehouse = warehouse::open(&settings.warehouse).await?;
    run_with(&warehouse, task, settings, mode, shutdown).await
}

/// [`run`] with its warehouse opened.
async fn run_with<W: Warehouse + PayerTable>(
    warehouse: &W,
    task: &TaskInput,
    settings: &Settings,
    mode: Mode,
    shutdown: &Shutdown,
) -> Result<RunReport, SetupError> {
    let started_at = Utc::now();
    let configured = configured_payers(warehouse, settings).await?;
    let selections = payers::select(&task.payers, &configured, &settings.env)?;
    // The report names the payers the run covered, also when the task asked for all.
    let resolved = TaskInput {
        payers: PayerChoice::Listed(selections.iter().map(|s| s.payer_id().clone()).collect()),
        ..task.clone()
    };
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
    let run = RunContext {
        warehouse,
        settings,
        mode,
        shutdown,
        staging,
        rules: settings.staging_rules(),
        periods: task.periods(settings.periods),
        analyses: tokio::sync::Semaphore::new(
            warehouse
                .analyses_at_once()
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ),
    };
    // Payers run side by side, each its periods in order. Whichever finishes first, the
    // reports keep the task's order of payers (summary, metrics, notification), and a
    // slow payer holds only its own place: `buffer_unordered`, then sorted.
    let mut by_payer: Vec<(usize, Vec<PeriodReport>)> = futures::stream::iter(sources.iter())
        .enumerate()
        .map(|(index, source)| {
            let run = &run;
            async move { (index, process_payer(run, source).await) }
        })
        .buffer_unordered(settings.payer_concurrency.max(1))
        .collect()
        .await;
    by_payer.sort_by_key(|(index, _)| *index);
    let periods = by_payer
        .into_iter()
        .flat_map(|(_, reports)| reports)
        .collect();
    // Uploads a signal cut short are aborted before the run reports.
    crate::storage::cleanup::finish(CLEANUP_WAIT).await;
    Ok(RunReport {
        task: resolved,
        dry_run: mode == Mode::Plan,
        on_sql_error: settings.on_sql_error,
        inactive,
        periods,
        started_at,
        finished_at: Utc::now(),
        fatal: None,
        interrupted: shutdown.signal(),
    })
}

/// The payer configurations in force: the warehouse's payer table, then the settings
/// file for payers the table lacks. An unreadable table is logged and the file used alone,
/// as the seed fell back to its built-in configuration when Snowflake was unreachable;
/// refused credentials stop the run before anything is touched, as nothing could succeed.
async fn configured_payers<W: PayerTable>(
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
    merge_file_payers(&mut configured, settings);
    Ok(configured)
}

/// Adds the settings file's payers that `configured` (the payer table's) lacks.
pub(crate) fn merge_file_payers(configured: &mut Vec<PayerConfig>, settings: &Settings) {
    for from_file in &settings.payers {
        if !configured.iter().any(|c| c.payer_id == from_file.payer_id) {
            configured.push(from_file.clone());
        }
    }
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
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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

/// A payer-period failed; the staged copy and final tables are as the previous run left
/// them. Each variant's message is its source's.
#[derive(Debug, thiserror::Error)]
enum PeriodError {
    /// Staging failed.
    #[error(transparent)]
    Sync(#[from] sync::Error),
    /// Registering or analysing the staged period failed.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

/// What every payer-period of a run shares: the warehouse, the settings, the mode, what
/// stops it, the staging store with its rules (and their run-wide transfer cap), and the
/// billing periods each payer covers.
struct RunContext<'a, W: ?Sized> {
    warehouse: &'a W,
    settings: &'a Settings,
    mode: Mode,
    shutdown: &'a Shutdown,
    staging: Location,
    rules: StagingRules,
    periods: Vec<BillingPeriod>,
    /// Turns to analyse: [`Warehouse::analyses_at_once`] of them.
    analyses: tokio::sync::Semaphore,
}

/// One payer's periods, in order, each isolated: a failed period is reported and the next
/// one goes on. The payer's lease is released at the end.
async fn process_payer<W: Warehouse + ?Sized>(
    run: &RunContext<'_, W>,
    source: &Source,
) -> Vec<PeriodReport> {
    let payer = &source.config.payer_id;
    let mut payer_sync = PayerSync::new(
        payer.clone(),
        source.export.clone(),
        source.config.layout,
        run.staging.clone(),
        run.rules.clone(),
    );
    let mut reports = Vec::new();
    for &period in &run.periods {
        let started = std::time::Instant::now();
        let outcome = match run.shutdown.signal() {
            Some(_) => PeriodOutcome::Interrupted,
            None => process_period(run, &mut payer_sync, period)
                .await
                .unwrap_or_else(|error| {
                    tracing::error!(%payer, %period, error = %error, "payer-period failed");
                    PeriodOutcome::Failed {
                        error: error_chain(&error),
                    }
                }),
        };
        reports.push(PeriodReport {
            payer: payer.clone(),
            period,
            outcome,
            duration: started.elapsed(),
        });
    }
    payer_sync.release().await;
    reports
}

/// One payer-period: sync stages it, the warehouse analyses what was staged (or, for an
/// empty delivery, clears the period from the final tables), and sync records that the
/// analytics succeeded.
async fn process_period<W: Warehouse + ?Sized>(
    run: &RunContext<'_, W>,
    payer: &mut PayerSync,
    period: BillingPeriod,
) -> Result<PeriodOutcome, PeriodError> {
    let intent = match run.mode {
        Mode::Run => Intent::Analyse,
        Mode::Plan => Intent::Plan,
        Mode::Stage => Intent::Stage,
    };
    // Staging stops at once on a signal: its copies are dropped (a multipart upload in
    // flight is aborted) and the ledger is not written, so the next run redoes them.
    let staged = tokio::select! {
        staged = payer.stage(period, intent) => staged?,
        signal = run.shutdown.requested() => {
            tracing::warn!(%period, signal = signal.name(), "staging stopped");
            return Ok(PeriodOutcome::Interrupted);
        }
    };
    let mut delivery = match staged {
        StageOutcome::NotReady { reason } => return Ok(PeriodOutcome::Skipped { reason }),
        StageOutcome::AlreadySynchronized => return Ok(PeriodOutcome::AlreadySynchronized),
        StageOutcome::Planned { counts, empty } => {
            return Ok(PeriodOutcome::Planned { counts, empty });
        }
        StageOutcome::Staged(delivery) => delivery,
    };
    if run.mode == Mode::Stage {
        return Ok(PeriodOutcome::Synchronized {
            counts: delivery.counts,
            analytics: AnalyticsOutcome::default(),
        });
    }
    let staged = StagedPeriod {
        payer: delivery.payer.clone(),
        period: delivery.period,
        location: delivery.location.clone(),
        layout: delivery.layout,
        fence: delivery.fence.clone(),
    };
    // Its turn at the warehouse; the semaphore is never closed. From here on the period
    // is published whole or not at all: a signal that came while it was staged or waited
    // for its turn stops it before the warehouse is touched, and one that comes later
    // lets it finish.
    let _turn = run.analyses.acquire().await;
    if run.shutdown.signal().is_some() {
        return Ok(PeriodOutcome::Interrupted);
    }
    if delivery.is_empty() {
        // An empty month is published as such: the previous delivery's numbers go.
        run.warehouse.clear_period(&staged).await?;
        delivery.mark_analysed().await?;
        return Ok(PeriodOutcome::Empty {
            counts: delivery.counts,
        });
    }
    let table = run.warehouse.register_period(&staged).await?;
    let analytics = run
        .warehouse
        .run_analytics(&table, &run.settings.application_tag)
        .await?;
    if analytics.failure().is_none() {
        delivery.mark_analysed().await?;
    }
    Ok(PeriodOutcome::Synchronized {
        counts: delivery.counts,
        analytics,
    })
}
