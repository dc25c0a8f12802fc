//! Synthetic CUR 2.0 (AWS Data Exports) for one payer and one billing month, with a known
//! ground truth: the exact hourly RI and Savings Plans waste per commitment, hour and
//! application, computed from the generator's own model rather than from SQL. The same
//! month can be written in the legacy CUR layout instead (`legacy`), chosen by the
//! [`Layout`] value sync reads exports with.
//!
//! Used by `curflow demo`, by integration tests (which compare the analytics with the truth to
//! the cent) and by benchmarks (ten million rows with flat memory). The model is documented in
//! DESIGN.md §3 "Analytics"; `model` draws it, `truth` computes the answer, `lines` and
//! `batch` turn it into CUR rows hour by hour, `writer` streams them to Parquet.

mod batch;
mod catalog;
mod draw;
mod legacy;
mod lines;
mod model;
mod period;
mod rng;
mod schema;
mod truth;
mod truth_file;
mod usage;
mod writer;

use crate::warehouse::order_free_sum;
use std::sync::Arc;

use datafusion::arrow::error::ArrowError;
use datafusion::parquet::errors::ParquetError;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;

pub use legacy::write_legacy_status;
pub use truth::{Attribution, GroundTruth, RiTruthRow, SpTruthRow, UNALLOCATED, UNTAGGED};

use period::{Period, iso_ms};
use rng::Rng;

use crate::sync::Layout;

/// What to generate: one payer, one month, one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Payer account id (12 digits, validated by the caller); seeds the model with `seed`.
    pub payer_id: String,
    /// Year of the billing period.
    pub year: i32,
    /// Month of the billing period, 1–12.
    pub month: u32,
    /// Approximate number of CUR rows for the month. On-demand noise fills up to it; the
    /// commitment lines (a few thousand) are always written, so the result is never below
    /// them. Default 20,000.
    pub rows: u64,
    /// Seed of every random choice; the same options always give the same files and truth.
    /// Default 42.
    pub seed: u64,
    /// Sets of commitments (≥ 1), each 7 reservations and 3 Savings Plans of the same kinds
    /// as the first, with their own ARNs and use (see `draw::build`). Default 1.
    pub commitment_sets: u32,
    /// Delivery number (≥ 1), part of the data file names. A new delivery replaces the whole
    /// period, as AWS's refreshes do. Default 1.
    pub delivery: u32,
    /// Export name: the data files' prefix and the manifest's `reportName`. Default `cur2`.
    pub export_name: String,
    /// Maximum rows per Parquet file (≥ 1). Default 1,000,000.
    pub rows_per_file: u64,
    /// URL of the export root as users see it (`s3://bucket/prefix/cur2`,
    /// `file:///tmp/x/src/payer-1`), used for the manifest's `dataFiles`. When empty, the
    /// manifest lists the data files' object keys instead. Default empty.
    pub root_url: String,
    /// The layout to write: CUR 2.0, or the legacy CUR (Parquet) layout — the report named
    /// `export_name` under the root (see `legacy`), same rows and ground truth, tags as
    /// `resource_tags_user_<key>` columns. `Auto` names no layout and is refused.
    /// Default `Cur2`.
    pub layout: Layout,
}

impl GenerateOptions {
    /// Options for `payer_id` and `year-month` with the defaults documented on each field.
    pub fn new(payer_id: impl Into<String>, year: i32, month: u32) -> Self {
        Self {
            payer_id: payer_id.into(),
            year,
            month,
            rows: 20_000,
            seed: 42,
            commitment_sets: 1,
            delivery: 1,
            export_name: "cur2".to_owned(),
            rows_per_file: 1_000_000,
            root_url: String::new(),
            layout: Layout::Cur2,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateReport {
    /// Object keys of the data files, in part order.
    pub files: Vec<String>,
    /// Object key of the manifest.
    pub manifest: String,
    /// Object keys of the ground-truth files (`ri_wastage_hourly`, `sp_wastage_hourly`).
    pub ground_truth: Vec<String>,
    /// CUR rows in the data files.
    pub rows: u64,
    /// Bytes of the data files.
    pub bytes: u64,
    /// Σ unused RI cost over the period (what the `RIFee` lines report as unused), USD.
    pub ri_unused_cost: f64,
    /// Σ unused Savings Plans commitment over the period, USD.
    pub sp_unused_cost: f64,
    /// Number of commitments (reservations plus Savings Plans).
    pub commitments: usize,
}

/// Why [`generate`] failed; each variant names the object or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The options cannot describe a delivery (the caller's validation should prevent this).
    #[error("invalid generate options: {what}")]
    InvalidOptions {
        /// What is wrong.
        what: String,
    },
    /// Listing the previous delivery failed.
    #[error("could not list {prefix} to remove the previous delivery: {source}")]
    List {
        /// Folder being listed.
        prefix: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// Deleting a file of the previous delivery failed.
    #[error("could not delete {key} (a file of the previous delivery): {source}")]
    Delete {
        /// Object key.
        key: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// Building the rows of one hour failed.
    #[error("could not build the CUR rows of {period} hour {hour}: {source}")]
    Encode {
        /// `YYYY-MM`.
        period: String,
        /// Hour of the month, from 0.
        hour: u32,
        /// Arrow's error.
        source: ArrowError,
    },
    /// Writing a Parquet file failed.
    #[error("could not write Parquet file {key}: {source}")]
    Write {
        /// Object key.
        key: String,
        /// The Parquet writer's (or the store's) error.
        source: ParquetError,
    },
    /// Writing the manifest failed.
    #[error("could not write manifest {key}: {source}")]
    Put {
        /// Object key.
        key: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The manifest could not be serialized.
    #[error("could not encode manifest {key}: {source}")]
    Manifest {
        /// Object key.
        key: String,
        /// serde_json's error.
        source: serde_json::Error,
    },
}

/// The CUR 2.0 manifest, as AWS writes it next to each delivery.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    execution_id: String,
    report_name: &'a str,
    billing_period: BillingPeriod,
    data_files: Vec<String>,
    delivery_number: u32,
}

#[derive(Serialize)]
struct BillingPeriod {
    start: String,
    end: String,
}

/// Writes one delivery of synthetic CUR 2.0 under `root` in `store`, then its manifest, then
/// the ground truth.
///
/// Order matters to readers, as with AWS: the previous delivery's data files under
/// `data/BILLING_PERIOD=YYYY-MM/` are deleted first, the new data files are streamed hour by
/// hour (memory stays flat for ten million rows), the manifest naming them is written last,
/// and `ground-truth/BILLING_PERIOD=YYYY-MM/` (outside `data/`, so never staged) follows.
/// With `Layout::Legacy` the same rows go to the legacy layout, bracketed by the status file:
/// `UPDATING` before the old files are removed, `READY` after the manifest.
pub async fn generate(
    store: Arc<dyn ObjectStore>,
    root: &Path,
    opts: &GenerateOptions,
) -> Result<GenerateReport, GenerateError> {
    let period = validate(opts)?;
    let label = period.label();
    let partition = format!("BILLING_PERIOD={label}");
    let model = draw::build(&opts.payer_id, period, opts.seed, opts.commitment_sets);
    let truth = truth::compute(&model);
    let is_legacy = opts.layout == Layout::Legacy;

    let data_dir = if is_legacy {
        // AWS marks the whole report UPDATING while it rewrites a period.
        write_legacy_status(&store, root, true).await?;
        legacy::data_dir(root, &opts.export_name, &period)
    } else {
        root.clone().join("data").join(partition.as_str())
    };
    remove_previous(&store, &data_dir).await?;

    let plan = lines::Plan::new(&model, &truth, opts.rows);
    let encoder = batch::Encoder::new(&model, opts.delivery);
    // A legacy report keeps its file names from one delivery to the next (it overwrites).
    let (prefix, schema) = if is_legacy {
        (opts.export_name.clone(), legacy::schema(&encoder.schema()))
    } else {
        (
            format!("{}-{:03}", opts.export_name, opts.delivery),
            encoder.schema(),
        )
    };
    let mut files = writer::DataFiles::new(
        Arc::clone(&store),
        data_dir,
        prefix,
        opts.rows_per_file,
        Arc::clone(&schema),
    );
    let mut hour_lines = Vec::new();
    let mut seq = 0u64;
    for hour in 0..period.hours() {
        hour_lines.clear();
        plan.hour(hour, &mut hour_lines);
        for chunk in hour_lines.chunks(writer::ROW_GROUP_ROWS) {
            let batch = encoder
                .encode(chunk, seq)
                .and_then(|batch| {
                    if is_legacy {
                        legacy::convert(&batch, &schema)
                    } else {
                        Ok(batch)
                    }
                })
                .map_err(|source| GenerateError::Encode {
                    period: label.clone(),
                    hour,
                    source,
                })?;
            seq += chunk.len() as u64;
            files.write(&batch).await?;
        }
    }
    let written = files.finish().await?;
    let execution_id =
        draw::uuid_like(&mut Rng::derive(model.base, &[8, u64::from(opts.delivery)]));

    let manifest_key = if is_legacy {
        let delivery = legacy::Delivery {
            period: &period,
            report: &opts.export_name,
            payer: &opts.payer_id,
            assembly_id: &execution_id,
            schema: &schema,
            root_url: &opts.root_url,
            files: written.iter().map(|w| w.name.as_str()).collect(),
        };
        let key = legacy::write_manifest(&store, root, &delivery).await?;
        write_legacy_status(&store, root, false).await?;
        key
    } else {
        write_manifest(&store, root, opts, &period, &written, execution_id).await?
    };

    let truth_dir = root.clone().join("ground-truth").join(partition.as_str());
    let ri_key = truth_dir.clone().join("ri_wastage_hourly.parquet");
    let sp_key = truth_dir.join("sp_wastage_hourly.parquet");
    let ri_batch = truth_file::ri_batch(&truth.rows.ri).map_err(|source| GenerateError::Write {
        key: ri_key.to_string(),
        source: source.into(),
    })?;
    writer::write_file(&store, &ri_key, &ri_batch).await?;
    let sp_batch = truth_file::sp_batch(&truth.rows.sp).map_err(|source| GenerateError::Write {
        key: sp_key.to_string(),
        source: source.into(),
    })?;
    writer::write_file(&store, &sp_key, &sp_batch).await?;

    let report = GenerateReport {
        files: written.iter().map(|w| w.key.to_string()).collect(),
        manifest: manifest_key.to_string(),
        ground_truth: vec![ri_key.to_string(), sp_key.to_string()],
        rows: written.iter().map(|w| w.rows).sum(),
        bytes: written.iter().map(|w| w.bytes).sum(),
        // Summed as the run sums the final tables' rows, so that both print the same cents.
        ri_unused_cost: order_free_sum(truth.rows.ri.iter().map(|r| r.unused_cost)),
        sp_unused_cost: order_free_sum(truth.rows.sp.iter().map(|r| r.unused_cost)),
        commitments: model.reservations.len() + model.savings_plans.len(),
    };
    tracing::info!(
        payer = %opts.payer_id,
        period = %label,
        delivery = opts.delivery,
        files = report.files.len(),
        rows = report.rows,
        bytes = report.bytes,
        "generated synthetic CUR"
    );
    Ok(report)
}

/// Writes the CUR 2.0 manifest naming `written` under `metadata/BILLING_PERIOD=YYYY-MM/`;
/// returns its key.
async fn write_manifest(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    opts: &GenerateOptions,
    period: &Period,
    written: &[writer::Written],
    execution_id: String,
) -> Result<Path, GenerateError> {
    let partition = format!("BILLING_PERIOD={}", period.label());
    let manifest_key = root
        .clone()
        .join("metadata")
        .join(partition.as_str())
        .join(format!("{}-Manifest.json", opts.export_name).as_str());
    let url_root = opts.root_url.trim_end_matches('/');
    let data_files = written
        .iter()
        .map(|w| {
            if url_root.is_empty() {
                w.key.to_string()
            } else {
                format!("{url_root}/data/{partition}/{}", w.name)
            }
        })
        .collect();
    let manifest = Manifest {
        execution_id,
        report_name: &opts.export_name,
        billing_period: BillingPeriod {
            start: iso_ms(period.start_ms),
            end: iso_ms(period.end_ms),
        },
        data_files,
        delivery_number: opts.delivery,
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(|source| GenerateError::Manifest {
        key: manifest_key.to_string(),
        source,
    })?;
    store
        .put(&manifest_key, PutPayload::from(body))
        .await
        .map_err(|source| GenerateError::Put {
            key: manifest_key.to_string(),
            source,
        })?;
    Ok(manifest_key)
}

/// The ground truth [`generate`] writes for `opts`, without writing anything; for tests that
/// want it in memory. Depends only on the payer, period and seed (not on rows or delivery).
/// An invalid period (which the caller's validation rejects) yields an empty truth.
pub fn ground_truth(opts: &GenerateOptions) -> GroundTruth {
    match Period::new(opts.year, opts.month) {
        Some(period) => {
            truth::compute(&draw::build(
                &opts.payer_id,
                period,
                opts.seed,
                opts.commitment_sets,
            ))
            .rows
        }
        None => GroundTruth::default(),
    }
}

fn validate(opts: &GenerateOptions) -> Result<Period, GenerateError> {
    let invalid = |what: String| Err(GenerateError::InvalidOptions { what });
    if opts.delivery == 0 {
        return invalid("delivery must be 1 or more".to_owned());
    }
    if opts.rows_per_file == 0 {
        return invalid("rows_per_file must be 1 or more".to_owned());
    }
    if opts.commitment_sets == 0 {
        return invalid("commitment_sets must be 1 or more".to_owned());
    }
    if opts.layout == Layout::Auto {
        return invalid("layout auto names no layout to write: choose cur2 or legacy".to_owned());
    }
    if opts.export_name.is_empty() || opts.export_name.contains('/') {
        return invalid(format!(
            "export name {:?} must be a non-empty name without '/'",
            opts.export_name
        ));
    }
    match Period::new(opts.year, opts.month) {
        Some(period) => Ok(period),
        None => invalid(format!(
            "{}-{} is not a billing month",
            opts.year, opts.month
        )),
    }
}

/// Deletes every object of the previous delivery under `dir`: a delivery replaces the whole
/// period, and a stale file left next to the new ones would count cost twice.
async fn remove_previous(store: &Arc<dyn ObjectStore>, dir: &Path) -> Result<(), GenerateError> {
    let previous: Vec<Path> = store
        .list(Some(dir))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|source| GenerateError::List {
            prefix: dir.to_string(),
            source,
        })?;
    for key in previous {
        match store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => {
                return Err(GenerateError::Delete {
                    key: key.to_string(),
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
