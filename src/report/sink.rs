//! The seam every destination of a run's report implements: the RabbitMQ notification,
//! CloudWatch metrics, EMF metrics and the text summary are each a [`Sink`].
//!
//! [`publish`] runs the sinks stage by stage, in the fixed order of [`Stage`]: the
//! notification first, then the metrics (which count an undeliverable notification as
//! `NotificationFailed`), then the summary on stdout. Each sink sees what the stages before
//! it achieved ([`Published`]). A sink's failure is logged, never raised: the run's result
//! is already decided, and the caller decides from [`Published`] whether an undeliverable
//! notification changes the exit code (`notify.required`).

use futures::future::BoxFuture;

use super::RunReport;

/// When a sink runs; sinks run in this order (sinks of one stage in the order given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The run notification: first, so that the metrics can count its failure.
    Notification,
    /// The run metrics.
    Metrics,
    /// The text summary: last, after any EMF lines on stdout.
    Summary,
}

/// Why a sink could not deliver the report: its own error (`NotifyError`, `MetricsError`),
/// which `publish` logs. Boxed, so that the seam knows no sink's error type.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// What [`Sink::send`] returns: a future of the delivery's result.
pub type SinkFuture<'a> = BoxFuture<'a, Result<(), SinkError>>;

/// A destination of the run's report.
pub trait Sink: Send + Sync {
    /// The stage the sink belongs to, which decides when it runs and what later sinks learn
    /// of its result.
    fn stage(&self) -> Stage;

    /// A short name for logs: `notification`, `cloudwatch`, `emf`, `summary`.
    fn name(&self) -> &'static str;

    /// Delivers `report` once. `earlier` is what the sinks before this one achieved (the
    /// metrics report a failed notification). Errors when the report did not reach the
    /// destination after the sink's own retries; the caller logs the error and goes on.
    fn send<'a>(&'a self, report: &'a RunReport, earlier: &'a Published) -> SinkFuture<'a>;
}

/// What one stage of sinks achieved.
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
    /// The metrics: `Failed` when any metrics sink failed.
    pub metrics: Delivery,
}

impl Published {
    /// Notes what a sink of `stage` achieved; a failure in a stage stays a failure.
    fn record(&mut self, stage: Stage, delivery: Delivery) {
        let slot = match stage {
            Stage::Notification => &mut self.notification,
            Stage::Metrics => &mut self.metrics,
            Stage::Summary => return,
        };
        if *slot != Delivery::Failed {
            *slot = delivery;
        }
    }
}

/// Sends `report` to every sink, stage by stage ([`Stage`]); failures are logged and
/// recorded in the answer, never raised.
pub async fn publish(report: &RunReport, sinks: &[Box<dyn Sink>]) -> Published {
    let mut order: Vec<&dyn Sink> = sinks.iter().map(AsRef::as_ref).collect();
    order.sort_by_key(|sink| sink.stage());
    let mut published = Published {
        notification: Delivery::NotConfigured,
        metrics: Delivery::NotConfigured,
    };
    for sink in order {
        let delivery = match sink.send(report, &published).await {
            Ok(()) => Delivery::Sent,
            Err(error) => {
                match sink.stage() {
                    Stage::Notification => {
                        tracing::error!(error = %error, "run notification not delivered; the summary and metrics still report the run");
                    }
                    Stage::Metrics => {
                        tracing::error!(error = %error, sink = sink.name(), "metrics not sent");
                    }
                    Stage::Summary => {
                        tracing::error!(error = %error, sink = sink.name(), "summary not printed");
                    }
                }
                Delivery::Failed
            }
        };
        published.record(sink.stage(), delivery);
    }
    published
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::FutureExt;

    use super::*;
    use crate::report::OnSqlError;
    use crate::task::{BillingPeriod, PayerChoice, TaskInput};

    /// A sink that notes what it saw, and fails when told to.
    struct Probe {
        stage: Stage,
        name: &'static str,
        fails: bool,
        seen: &'static Mutex<Vec<(&'static str, Published)>>,
    }

    impl Sink for Probe {
        fn stage(&self) -> Stage {
            self.stage
        }

        fn name(&self) -> &'static str {
            self.name
        }

        fn send<'a>(&'a self, _report: &'a RunReport, earlier: &'a Published) -> SinkFuture<'a> {
            async move {
                self.seen.lock().unwrap().push((self.name, *earlier));
                if self.fails {
                    return Err("refused".into());
                }
                Ok(())
            }
            .boxed()
        }
    }

    #[test]
    fn stages_run_in_order_and_later_ones_see_earlier_failures() {
        static SEEN: Mutex<Vec<(&str, Published)>> = Mutex::new(Vec::new());
        let probe = |stage, name, fails| -> Box<dyn Sink> {
            Box::new(Probe {
                stage,
                name,
                fails,
                seen: &SEEN,
            })
        };
        let sinks = [
            probe(Stage::Summary, "summary", false),
            probe(Stage::Metrics, "cloudwatch", true),
            probe(Stage::Notification, "notification", true),
            probe(Stage::Metrics, "emf", false),
        ];
        let now = chrono::Utc::now();
        let report = RunReport {
            task: TaskInput {
                period: BillingPeriod::new(2025, 7).unwrap(),
                payers: PayerChoice::Listed(Vec::new()),
                env: "ops".into(),
                partner_id: None,
                module: "analytics".into(),
            },
            dry_run: false,
            on_sql_error: OnSqlError::Warn,
            inactive: Vec::new(),
            periods: Vec::new(),
            started_at: now,
            finished_at: now,
            fatal: None,
            interrupted: None,
        };
        let published = futures::executor::block_on(publish(&report, &sinks));
        assert_eq!(
            published,
            Published {
                notification: Delivery::Failed,
                metrics: Delivery::Failed,
            }
        );
        let seen = SEEN.lock().unwrap();
        let names: Vec<&str> = seen.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["notification", "cloudwatch", "emf", "summary"]);
        assert_eq!(seen[0].1.notification, Delivery::NotConfigured);
        assert_eq!(seen[1].1.notification, Delivery::Failed);
        assert_eq!(seen[2].1.metrics, Delivery::Failed, "the failure stays");
        assert_eq!(seen[3].1.metrics, Delivery::Failed);
    }
}
