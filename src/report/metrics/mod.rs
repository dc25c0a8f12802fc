//! Run metrics, as two sinks that may run together: CloudWatch `PutMetricData`, and
//! CloudWatch Embedded Metric Format (EMF) lines on stdout, which the CloudWatch Logs agent
//! (and Fargate's awslogs driver) turns into metrics without an API call. Their settings
//! (`[<env>.metrics]`) are in [`config`].
//!
//! Every count is sent twice: with the dimension `Env` (the whole run) and with `Env` and
//! `PayerId` (one payer), because CloudWatch does not add up across dimensions. Run-level
//! metrics (`DurationSeconds`, `TaskCompleted`, `FatalError`, `NotificationFailed`) carry
//! `Env` only. The client is `aws-sdk-cloudwatch = "=1.99.0"`, the last release that speaks
//! the Query protocol: later ones speak RPCv2-CBOR, which moto's server (our test server)
//! and some VPC endpoints do not answer.

mod config;

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use futures::FutureExt;
use serde_json::{Value, json};

pub use config::{MetricsKind, MetricsSettings};
pub(crate) use config::{MetricsProfile, resolve_metrics};

use super::sink::{Delivery, Published, Sink, SinkFuture, Stage};
use super::{RunReport, Status, Totals};

/// PutMetricData accepts at most this many data points per call.
const MAX_DATA_PER_CALL: usize = 1000;

/// Metrics could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// CloudWatch refused or failed a PutMetricData call.
    #[error(
        "CloudWatch PutMetricData to namespace \"{namespace}\" failed: {message}; the task role needs cloudwatch:PutMetricData"
    )]
    CloudWatch {
        /// The namespace.
        namespace: String,
        /// The service's error.
        message: String,
    },
}

/// A metric's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Count,
    Bytes,
    Seconds,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Seconds => "Seconds",
        }
    }
}

/// Dimension names and values, e.g. `[("Env", "prod"), ("PayerId", "671238551718")]`.
type Dimensions = Vec<(&'static str, String)>;

/// One value with its dimensions.
#[derive(Debug, Clone, PartialEq)]
struct Datum {
    name: &'static str,
    value: f64,
    unit: Unit,
    dimensions: Dimensions,
}

/// The counts of `totals` as metrics with these dimensions.
fn count_data(totals: &Totals, dimensions: &[(&'static str, String)], out: &mut Vec<Datum>) {
    let counts = [
        ("FilesCopied", totals.files_copied as f64, Unit::Count),
        ("BytesCopied", totals.bytes_copied as f64, Unit::Bytes),
        ("FilesDeleted", totals.files_deleted as f64, Unit::Count),
        (
            "PeriodsSynchronized",
            totals.periods_synchronized as f64,
            Unit::Count,
        ),
        (
            "AlreadySynchronized",
            totals.already_synchronized as f64,
            Unit::Count,
        ),
        ("PeriodsFailed", totals.periods_failed as f64, Unit::Count),
        (
            "PeriodsInterrupted",
            totals.periods_interrupted as f64,
            Unit::Count,
        ),
        (
            "AnalyticsFailed",
            totals.analytics_failed as f64,
            Unit::Count,
        ),
        (
            "ReconciliationMismatches",
            totals.reconciliation_mismatches as f64,
            Unit::Count,
        ),
    ];
    out.extend(counts.into_iter().map(|(name, value, unit)| Datum {
        name,
        value,
        unit,
        dimensions: dimensions.to_vec(),
    }));
}

/// Every metric of the run.
fn data(report: &RunReport, notification_failed: bool) -> Vec<Datum> {
    let env = vec![("Env", report.task.env.clone())];
    let mut out = Vec::new();
    count_data(&Totals::of(&report.periods), &env, &mut out);
    let mut payers: BTreeMap<&str, Totals> = BTreeMap::new();
    for p in &report.periods {
        payers.entry(p.payer.as_str()).or_default().add(&p.outcome);
    }
    for (payer, totals) in payers {
        let dimensions = [env[0].clone(), ("PayerId", payer.to_owned())];
        count_data(&totals, &dimensions, &mut out);
    }
    let status = report.status();
    let failed = status == Status::Failed;
    let interrupted = matches!(status, Status::Interrupted(_));
    let run = [
        ("DurationSeconds", report.duration_seconds(), Unit::Seconds),
        (
            "TaskCompleted",
            if failed || interrupted { 0.0 } else { 1.0 },
            Unit::Count,
        ),
        (
            "TaskInterrupted",
            if interrupted { 1.0 } else { 0.0 },
            Unit::Count,
        ),
        ("FatalError", if failed { 1.0 } else { 0.0 }, Unit::Count),
        (
            "NotificationFailed",
            if notification_failed { 1.0 } else { 0.0 },
            Unit::Count,
        ),
    ];
    out.extend(run.into_iter().map(|(name, value, unit)| Datum {
        name,
        value,
        unit,
        dimensions: env.clone(),
    }));
    out
}

/// The metrics sinks `settings` name, in their order.
pub(super) fn sinks(settings: &MetricsSettings) -> Vec<Box<dyn Sink>> {
    settings
        .kinds
        .iter()
        .map(|kind| -> Box<dyn Sink> {
            match kind {
                MetricsKind::CloudWatch => Box::new(CloudWatch {
                    namespace: settings.namespace.clone(),
                    region: settings.region.clone(),
                }),
                MetricsKind::Emf => Box::new(Emf {
                    namespace: settings.namespace.clone(),
                }),
            }
        })
        .collect()
}

/// The metrics as `PutMetricData` calls.
struct CloudWatch {
    namespace: String,
    region: Option<String>,
}

impl Sink for CloudWatch {
    fn stage(&self) -> Stage {
        Stage::Metrics
    }

    fn name(&self) -> &'static str {
        "cloudwatch"
    }

    /// Errors when CloudWatch refuses or does not answer a call (after the SDK's retries).
    fn send<'a>(&'a self, report: &'a RunReport, earlier: &'a Published) -> SinkFuture<'a> {
        async move {
            let data = data(report, earlier.notification == Delivery::Failed);
            put_metric_data(
                &self.namespace,
                self.region.as_deref(),
                report.finished_at.timestamp(),
                &data,
            )
            .await?;
            Ok(())
        }
        .boxed()
    }
}

/// The metrics as EMF lines on stdout, one per dimension set.
struct Emf {
    namespace: String,
}

impl Sink for Emf {
    fn stage(&self) -> Stage {
        Stage::Metrics
    }

    fn name(&self) -> &'static str {
        "emf"
    }

    /// Never errors: the lines go to stdout.
    fn send<'a>(&'a self, report: &'a RunReport, earlier: &'a Published) -> SinkFuture<'a> {
        async move {
            let data = data(report, earlier.notification == Delivery::Failed);
            let timestamp = report.finished_at.timestamp_millis();
            for line in emf_lines(&self.namespace, timestamp, &data) {
                println!("{line}");
            }
            Ok(())
        }
        .boxed()
    }
}

/// One EMF object per dimension set (CloudWatch Embedded Metric Format specification:
/// `_aws.Timestamp` in epoch milliseconds, `_aws.CloudWatchMetrics[{Namespace, Dimensions,
/// Metrics}]`, values and dimension values as top-level members).
fn emf_lines(namespace: &str, timestamp_ms: i64, data: &[Datum]) -> Vec<Value> {
    let mut groups: Vec<(&Dimensions, Vec<&Datum>)> = Vec::new();
    for datum in data {
        match groups
            .iter_mut()
            .find(|(dims, _)| **dims == datum.dimensions)
        {
            Some((_, members)) => members.push(datum),
            None => groups.push((&datum.dimensions, vec![datum])),
        }
    }
    groups
        .into_iter()
        .map(|(dimensions, members)| {
            let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
            let metrics: Vec<Value> = members
                .iter()
                .map(|d| json!({"Name": d.name, "Unit": d.unit.name()}))
                .collect();
            let mut line = json!({
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [names], "Metrics": metrics}],
                },
            });
            if let Some(object) = line.as_object_mut() {
                for (name, value) in dimensions {
                    object.insert((*name).to_owned(), json!(value));
                }
                for d in members {
                    object.insert(d.name.to_owned(), json!(d.value));
                }
            }
            line
        })
        .collect()
}

/// `curflow check`: one ListMetrics call in the namespace, which proves CloudWatch is
/// reachable with the credentials. CloudWatch has no dry run of PutMetricData, so the
/// permission to send is not proven without sending; the line says so.
pub(crate) async fn reach(settings: &MetricsSettings) -> Result<String, String> {
    let client = client(settings.region.as_deref()).await;
    client
        .list_metrics()
        .namespace(&settings.namespace)
        .send()
        .await
        .map(|_| {
            format!(
                "CloudWatch: reachable, namespace \"{}\" listed (cloudwatch:PutMetricData cannot be tried without sending a metric)",
                settings.namespace
            )
        })
        .map_err(|e| {
            format!(
                "CloudWatch: {}; the task role needs cloudwatch:ListMetrics to be checked and cloudwatch:PutMetricData to send",
                aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
            )
        })
}

/// A CloudWatch client in `region` (`None`: the environment's), with the default chain.
async fn client(region: Option<&str>) -> aws_sdk_cloudwatch::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    aws_sdk_cloudwatch::Client::new(&loader.load().await)
}

/// PutMetricData to `namespace` in `region` (`None`: the environment's), in batches of the
/// API's limit.
async fn put_metric_data(
    namespace: &str,
    region: Option<&str>,
    timestamp: i64,
    data: &[Datum],
) -> Result<(), MetricsError> {
    let client = client(region).await;
    let data: Vec<MetricDatum> = data
        .iter()
        .map(|d| {
            let unit = match d.unit {
                Unit::Count => StandardUnit::Count,
                Unit::Bytes => StandardUnit::Bytes,
                Unit::Seconds => StandardUnit::Seconds,
            };
            let mut datum = MetricDatum::builder()
                .metric_name(d.name)
                .value(d.value)
                .unit(unit)
                .timestamp(AwsDateTime::from_secs(timestamp));
            for (name, value) in &d.dimensions {
                datum = datum.dimensions(Dimension::builder().name(*name).value(value).build());
            }
            datum.build()
        })
        .collect();
    for batch in data.chunks(MAX_DATA_PER_CALL) {
        client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| MetricsError::CloudWatch {
                namespace: namespace.to_owned(),
                message: aws_sdk_cloudwatch::error::DisplayErrorContext(&e).to_string(),
            })?;
    }
    tracing::info!(namespace = %namespace, metrics = data.len(), "metrics sent to CloudWatch");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_groups_by_dimension_set() {
        let datum = |name, dims: &[(&'static str, &str)]| Datum {
            name,
            value: 2.0,
            unit: Unit::Count,
            dimensions: dims.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        };
        let data = [
            datum("FilesCopied", &[("Env", "prod")]),
            datum(
                "FilesCopied",
                &[("Env", "prod"), ("PayerId", "671238551718")],
            ),
            datum("FatalError", &[("Env", "prod")]),
        ];
        let lines = emf_lines("curflow", 1_700_000_000_000, &data);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Env"]])
        );
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(lines[0]["FatalError"], json!(2.0));
        assert_eq!(lines[1]["PayerId"], json!("671238551718"));
        assert_eq!(lines[1]["_aws"]["Timestamp"], json!(1_700_000_000_000i64));
    }
}
