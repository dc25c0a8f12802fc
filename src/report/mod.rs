//! What a run did, and the sinks that tell people about it.
//!
//! The pipeline fills one [`RunReport`]; every [`Sink`] (the RabbitMQ notification,
//! CloudWatch and EMF metrics, the text summary) reads it and nothing else, so they all
//! tell the same story. [`sinks`] builds the ones a profile configures, each from its own
//! settings section (`metrics`, `notify`), and [`publish`] sends the report to them once,
//! after the run, in the fixed order of [`Stage`].

mod html;
mod metrics;
mod notify;
mod sink;
mod summary;

pub use html::render_html;
pub use metrics::{MetricsError, MetricsKind, MetricsSettings};
pub(crate) use metrics::{MetricsProfile, reach as reach_cloudwatch, resolve_metrics};
pub use notify::{NotifyError, NotifySettings, TrustedCa};
pub(crate) use notify::{NotifyProfile, reach as reach_broker, resolve_notify};
pub use sink::{Delivery, Published, Sink, SinkError, SinkFuture, Stage, publish};
pub use summary::{dollars, human_bytes, one_line, render_summary};

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::shutdown::Signal;
use crate::sync::SyncCounts;
use crate::task::{BillingPeriod, PayerId, TaskInput};
use crate::warehouse::AnalyticsOutcome;

/// What a failed analytics statement does to the run (the profile's `on_sql_error`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSqlError {
    /// Keep the staged copy, report the failure (metric, summary), exit 0 — the seed's behaviour.
    #[default]
    Warn,
    /// Treat a failed statement as a failed run (exit 1).
    Fail,
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
        /// Whether the delivery is empty, so that a run would clear the period from the
        /// final tables instead of running the analytics.
        empty: bool,
    },
    /// The delivery is empty (its manifest names no data files): the staged copy mirrors
    /// it, holding nothing, and the final tables hold nothing for the period.
    Empty {
        /// The sync done: the previous delivery's staged files deleted.
        counts: SyncCounts,
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
    /// Not done: a signal stopped the run before this payer-period started, or while it
    /// was being staged. The final tables are as the previous run left them; the staged
    /// copy may hold part of the new delivery's files; the next run finishes it.
    Interrupted,
}

/// What the summary and the notification say of an empty delivery of `period`, so that
/// nobody reads its zero waste as a month of perfect use.
pub(crate) fn empty_delivery(period: BillingPeriod) -> String {
    format!(
        "empty delivery: the manifest names no data files; the final tables hold nothing for {period}"
    )
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
    /// The signal that stopped the run before it finished, if one did.
    pub interrupted: Option<Signal>,
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
    /// A signal stopped the run before every payer-period was done.
    Interrupted(Signal),
}

impl RunReport {
    /// The report of a run that ended on an unexpected error before it could report.
    pub fn fatal(
        task: TaskInput,
        on_sql_error: OnSqlError,
        started_at: DateTime<Utc>,
        error: String,
    ) -> Self {
        Self {
            task,
            dry_run: false,
            on_sql_error,
            inactive: Vec::new(),
            periods: Vec::new(),
            started_at,
            finished_at: Utc::now(),
            fatal: Some(error),
            interrupted: None,
        }
    }

    /// The run's wall-clock time in seconds.
    pub fn duration_seconds(&self) -> f64 {
        (self.finished_at - self.started_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64()
    }

    /// The overall status.
    pub fn status(&self) -> Status {
        if self.fatal.is_some() {
            return Status::Failed;
        }
        if let Some(signal) = self.interrupted {
            return Status::Interrupted(signal);
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
    /// Payer-periods a signal left undone.
    pub periods_interrupted: usize,
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
            PeriodOutcome::Empty { counts } => {
                self.files_deleted += counts.deleted_files;
                self.periods_synchronized += 1;
            }
            PeriodOutcome::Skipped { .. } => self.periods_skipped += 1,
            PeriodOutcome::Failed { .. } => self.periods_failed += 1,
            PeriodOutcome::Interrupted => self.periods_interrupted += 1,
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

/// The sinks a profile's `[<env>.notify]` and `[<env>.metrics]` configure for a run, in
/// their order: the notification (when set), each metrics kind, then the summary.
pub fn sinks(
    metrics: &MetricsSettings,
    notify: Option<&NotifySettings>,
    output: Output,
) -> Vec<Box<dyn Sink>> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(notify) = notify {
        sinks.push(Box::new(notify::Notification(notify.clone())));
    }
    sinks.extend(metrics::sinks(metrics));
    sinks.push(Box::new(summary::Summary(output)));
    sinks
}

/// The sinks of a plan: the summary only, since a plan publishes nothing.
pub fn plan_sinks(output: Output) -> Vec<Box<dyn Sink>> {
    vec![Box::new(summary::Summary(output))]
}

/// What `run`, `plan`, `report` and `check` print on stdout (logs always go to stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON document: for `run` and `plan` the notification's versioned body
    /// (docs/notification.md), for `report` the breakdown (docs/analytics.md).
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SettingsSource;

    /// An empty delivery says so on its summary line and in the notification, with the
    /// staged files it deleted, and counts as a success.
    #[test]
    fn an_empty_delivery_is_said_to_be_empty() {
        let task = TaskInput::from_json(
            r#"{"year": 2025, "month": 7, "payers": ["671238551718"], "env": "local"}"#,
        )
        .unwrap();
        let mut report = RunReport::fatal(task, OnSqlError::Warn, Utc::now(), String::new());
        report.fatal = None;
        report.periods.push(PeriodReport {
            payer: report.task.payers.listed()[0].clone(),
            period: report.task.period,
            outcome: PeriodOutcome::Empty {
                counts: SyncCounts {
                    deleted_files: 6,
                    ..SyncCounts::default()
                },
            },
            duration: Duration::ZERO,
        });
        assert_eq!(report.status(), Status::Success);
        let summary = summary::render_summary(&report);
        assert!(
            summary.contains("\n  2025-07  empty delivery: the manifest names no data files; the final tables hold nothing for 2025-07; 6 staged files deleted\n"),
            "{summary}"
        );
        let body = notify::notification_body(&report);
        assert_eq!(body["status"], "success");
        assert_eq!(body["periods"][0]["outcome"], "empty", "{body}");
        assert_eq!(
            body["periods"][0]["reason"],
            "empty delivery: the manifest names no data files; the final tables hold nothing for 2025-07"
        );
        assert_eq!(body["periods"][0]["files_deleted"], 6);
        assert_eq!(body["totals"]["files_deleted"], 6);
        assert_eq!(body["totals"]["periods_synchronized"], 1);
    }

    #[test]
    fn a_profile_gets_its_metrics_kinds_between_notification_and_summary() {
        let names = |sinks: &[Box<dyn Sink>]| sinks.iter().map(|s| s.name()).collect::<Vec<_>>();
        let mut settings = SettingsSource::default().load("local").unwrap();
        assert_eq!(
            names(&sinks(&settings.metrics, None, Output::Text)),
            ["summary"]
        );
        settings.metrics.kinds = vec![MetricsKind::CloudWatch, MetricsKind::Emf];
        assert_eq!(
            names(&sinks(&settings.metrics, None, Output::Json)),
            ["cloudwatch", "emf", "summary"]
        );
        assert_eq!(names(&plan_sinks(Output::Text)), ["summary"]);
    }
}
