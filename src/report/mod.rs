//! What a run did, and the sinks that tell people about it.
//!
//! The pipeline fills one [`RunReport`]; every sink (the text summary, metrics, the
//! notification) reads it and nothing else, so they all tell the same story. [`publish`]
//! sends the metrics and the notification, once, after the run.

mod html;
mod metrics;
mod notify;
mod summary;

pub use html::render_html;
pub use metrics::MetricsError;
pub use notify::{NotifyError, notification_body};
pub(crate) use summary::dollars;
pub use summary::render_summary;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::settings::{OnSqlError, Settings};
use crate::task::{BillingPeriod, PayerId, TaskInput};
use crate::warehouse::AnalyticsOutcome;

/// File counts of a sync, planned or done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Files copied (or to copy).
    pub copied_files: usize,
    /// Bytes copied (or to copy).
    pub copied_bytes: u64,
    /// Stale staged files deleted (or to delete).
    pub deleted_files: usize,
    /// Files already staged and verified.
    pub unchanged_files: usize,
    /// Their bytes.
    pub unchanged_bytes: u64,
}

/// What happened to one payer-period.
#[derive(Debug, Clone, PartialEq)]
pub enum PeriodOutcome {
    /// Staged copy and analytics already match the source's delivery: nothing done.
    AlreadySynchronized,
    /// `plan` / `--dry-run`: what a run would do.
    Planned {
        /// The sync it would do.
        counts: SyncCounts,
        /// Whether it would (re)run the analytics.
        analytics: bool,
    },
    /// Synchronized, then analysed.
    Synchronized {
        /// The sync done.
        counts: SyncCounts,
        /// The analytics' outcome.
        analytics: AnalyticsOutcome,
    },
    /// Not staged this run, for a reason that needs no action (no data, delivery in progress).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Failed; the staged copy and final tables are as the previous run left them.
    Failed {
        /// The error chain, one line.
        error: String,
    },
}

/// One payer-period's line in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodReport {
    /// The payer.
    pub payer: PayerId,
    /// The billing period.
    pub period: BillingPeriod,
    /// What happened.
    pub outcome: PeriodOutcome,
    /// How long it took.
    pub duration: Duration,
}

/// Everything a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The task as validated.
    pub task: TaskInput,
    /// Whether this was a plan (nothing changed).
    pub dry_run: bool,
    /// The `on_sql_error` policy in force.
    pub on_sql_error: OnSqlError,
    /// Task payers configured as inactive, not processed.
    pub inactive: Vec<PayerId>,
    /// One entry per processed payer-period, in order.
    pub periods: Vec<PeriodReport>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Set when the run ended early on an unexpected error (the fatal path); `periods`
    /// then holds nothing.
    pub fatal: Option<String>,
}

/// The run's overall result, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything done (including "already synchronized" and skips that need no action).
    Success,
    /// Every copy done, but analytics failed somewhere and `on_sql_error = "warn"`.
    AnalyticsFailed,
    /// A payer-period failed, or analytics failed with `on_sql_error = "fail"`.
    Failed,
}

impl RunReport {
    /// The report of a run that ended on an unexpected error before it could report.
    pub fn fatal(
        task: TaskInput,
        settings: &Settings,
        started_at: DateTime<Utc>,
        error: String,
    ) -> Self {
        Self {
            task,
            dry_run: false,
            on_sql_error: settings.on_sql_error,
            inactive: Vec::new(),
            periods: Vec::new(),
            started_at,
            finished_at: Utc::now(),
            fatal: Some(error),
        }
    }

    /// The overall status.
    pub fn status(&self) -> Status {
        if self.fatal.is_some() {
            return Status::Failed;
        }
        let mut status = Status::Success;
        for p in &self.periods {
            match &p.outcome {
                PeriodOutcome::Failed { .. } => return Status::Failed,
                PeriodOutcome::Synchronized { analytics, .. } if analytics.failure().is_some() => {
                    if self.on_sql_error == OnSqlError::Fail {
                        return Status::Failed;
                    }
                    status = Status::AnalyticsFailed;
                }
                _ => {}
            }
        }
        status
    }
}

/// Counts over payer-periods, as metrics and the notification report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Files copied into staging.
    pub files_copied: usize,
    /// Their bytes.
    pub bytes_copied: u64,
    /// Stale staged files deleted.
    pub files_deleted: usize,
    /// Payer-periods synchronized and analysed this run.
    pub periods_synchronized: usize,
    /// Payer-periods found already synchronized.
    pub already_synchronized: usize,
    /// Payer-periods skipped (no data, delivery in progress).
    pub periods_skipped: usize,
    /// Payer-periods that failed.
    pub periods_failed: usize,
    /// Payer-periods whose analytics failed.
    pub analytics_failed: usize,
    /// Commitments whose hourly waste does not reconcile with their fee lines.
    pub reconciliation_mismatches: usize,
}

impl Totals {
    /// Adds one payer-period's outcome.
    pub fn add(&mut self, outcome: &PeriodOutcome) {
        match outcome {
            PeriodOutcome::AlreadySynchronized => self.already_synchronized += 1,
            PeriodOutcome::Planned { .. } => {}
            PeriodOutcome::Synchronized { counts, analytics } => {
                self.files_copied += counts.copied_files;
                self.bytes_copied += counts.copied_bytes;
                self.files_deleted += counts.deleted_files;
                self.periods_synchronized += 1;
                if analytics.failure().is_some() {
                    self.analytics_failed += 1;
                }
                self.reconciliation_mismatches +=
                    analytics.totals.as_ref().map_or(0, |t| t.mismatches.len());
            }
            PeriodOutcome::Skipped { .. } => self.periods_skipped += 1,
            PeriodOutcome::Failed { .. } => self.periods_failed += 1,
        }
    }

    /// The totals of these payer-periods.
    pub fn of<'a>(periods: impl IntoIterator<Item = &'a PeriodReport>) -> Self {
        let mut totals = Self::default();
        for p in periods {
            totals.add(&p.outcome);
        }
        totals
    }
}

/// What [`publish`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing configured to send.
    NotConfigured,
    /// Sent.
    Sent,
    /// Could not be sent; the failure was logged.
    Failed,
}

/// What [`publish`] did with the notification and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The RabbitMQ notification.
    pub notification: Delivery,
    /// The metrics.
    pub metrics: Delivery,
}

/// Sends the run's notification, then its metrics (which count an undeliverable
/// notification as `NotificationFailed`). Failures are logged, never raised: the run's
/// result is already decided, and the caller decides from [`Published`] whether an
/// undeliverable notification changes the exit code (`notify.required`).
pub async fn publish(report: &RunReport, settings: &Settings) -> Published {
    let notification = match &settings.notify {
        None => Delivery::NotConfigured,
        Some(notify) => match notify::send(report, notify).await {
            Ok(()) => Delivery::Sent,
            Err(error) => {
                tracing::error!(error = %error, "run notification not delivered; the summary and metrics still report the run");
                Delivery::Failed
            }
        },
    };
    let metrics =
        match metrics::send(report, &settings.metrics, notification == Delivery::Failed).await {
            Ok(false) => Delivery::NotConfigured,
            Ok(true) => Delivery::Sent,
            Err(error) => {
                tracing::error!(error = %error, "metrics not sent");
                Delivery::Failed
            }
        };
    Published {
        notification,
        metrics,
    }
}
