//! The same synthetic month in the legacy Cost and Usage Report (Parquet) layout, so one
//! ground truth checks both layouts.
//!
//! What differs from CUR 2.0, as AWS writes a legacy Parquet report under
//! `<prefix>/<report>`: data under `<report>/year=YYYY/month=M/<report>-NNNNN.snappy.parquet`;
//! the manifest at `YYYYMMDD-YYYYMMDD/<report>-Manifest.json` naming the files in
//! `reportKeys`; `cost_and_usage_data_status/cost_and_usage_data_status.parquet` saying
//! `UPDATING` while the report is rewritten and `READY` after; `crawler-cfn.yml` for the
//! Athena integration; and no map columns: each tag is a `resource_tags_user_<key>` column.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;

use super::period::Period;
use super::{GenerateError, writer};

/// The tag keys the generator writes (`resource_tags` map keys), as legacy columns in
/// the order AWS sorts them.
const TAG_KEYS: [&str; 3] = ["user_application", "user_environment", "user_team"];

/// Folder of the report-wide status file.
const STATUS_DIR: &str = "cost_and_usage_data_status";

/// The legacy schema: the CUR 2.0 columns without the map columns, with one
/// `resource_tags_user_<key>` column per tag where `resource_tags` was.
pub(crate) fn schema(cur2: &SchemaRef) -> SchemaRef {
    let mut fields = Vec::with_capacity(cur2.fields().len() + TAG_KEYS.len());
    for field in cur2.fields() {
        if field.name() == "resource_tags" {
            fields.extend(
                TAG_KEYS
                    .iter()
                    .map(|k| Field::new(format!("resource_tags_{k}"), DataType::Utf8, true)),
            );
        } else if !matches!(field.data_type(), DataType::Map(..)) {
            fields.push(field.as_ref().clone());
        }
    }
    Arc::new(Schema::new(fields))
}

/// `batch` (CUR 2.0 columns) in the legacy `schema`: tags moved from the map to their
/// columns, the other map columns dropped.
pub(crate) fn convert(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let tags = batch
        .column_by_name("resource_tags")
        .ok_or_else(|| ArrowError::SchemaError("no resource_tags column".into()))?
        .as_map();
    let keys = tags.keys().as_string::<i32>();
    let values = tags.values().as_string::<i32>();
    let tag_column = |key: &str| -> ArrayRef {
        let column: StringArray = (0..tags.len())
            .map(|row| {
                if tags.is_null(row) {
                    return None;
                }
                let offsets = tags.value_offsets();
                let (from, to) = (offsets[row] as usize, offsets[row + 1] as usize);
                (from..to)
                    .find(|&i| keys.value(i) == key)
                    .filter(|&i| values.is_valid(i))
                    .map(|i| values.value(i))
            })
            .collect();
        Arc::new(column)
    };
    let columns = schema
        .fields()
        .iter()
        .map(|field| match field.name().strip_prefix("resource_tags_") {
            Some(key) => Ok(tag_column(key)),
            None => batch
                .column_by_name(field.name())
                .cloned()
                .ok_or_else(|| ArrowError::SchemaError(format!("no {} column", field.name()))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// `<root>/<report>/year=YYYY/month=M`: the period's data folder.
pub(crate) fn data_dir(root: &Path, report: &str, period: &Period) -> Path {
    root.clone()
        .join(report)
        .join(format!("year={}", period.year).as_str())
        .join(format!("month={}", period.month).as_str())
}

/// The legacy manifest, as AWS writes it for a Parquet report.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    assembly_id: &'a str,
    account: &'a str,
    columns: Vec<ManifestColumn<'a>>,
    charset: &'static str,
    compression: &'static str,
    content_type: &'static str,
    report_id: String,
    report_name: &'a str,
    billing_period: ManifestPeriod,
    bucket: &'a str,
    report_keys: Vec<String>,
    additional_artifact_keys: Vec<String>,
}

#[derive(Serialize)]
struct ManifestColumn<'a> {
    category: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    data_type: &'static str,
}

#[derive(Serialize)]
struct ManifestPeriod {
    start: String,
    end: String,
}

/// `YYYYMMDD` of a UTC instant, and the manifest's `YYYYMMDDTHHMMSS.000Z`.
fn day(ms: i64, format: &str) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

/// What one delivery's manifest describes.
pub(crate) struct Delivery<'a> {
    pub(crate) period: &'a Period,
    pub(crate) report: &'a str,
    pub(crate) payer: &'a str,
    pub(crate) assembly_id: &'a str,
    pub(crate) schema: &'a SchemaRef,
    /// `s3://bucket/prefix/report` as users see the root, or empty for a local root.
    pub(crate) root_url: &'a str,
    /// File names of the delivery's data files.
    pub(crate) files: Vec<&'a str>,
}

/// Writes the period's manifest under `root`; returns its key.
pub(crate) async fn write_manifest(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    delivery: &Delivery<'_>,
) -> Result<Path, GenerateError> {
    let period = delivery.period;
    let key = root
        .clone()
        .join(
            format!(
                "{}-{}",
                day(period.start_ms, "%Y%m%d"),
                day(period.end_ms, "%Y%m%d")
            )
            .as_str(),
        )
        .join(format!("{}-Manifest.json", delivery.report).as_str());
    // `reportKeys` are object keys in the report's bucket: the URL's path, or the store's
    // keys for a local root.
    let (bucket, key_root) = match delivery.root_url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').unwrap_or((rest, "")),
        None => ("", root.as_ref()),
    };
    let key_root = key_root.trim_matches('/');
    let data = data_dir(&Path::from(key_root), delivery.report, period);
    let columns = delivery
        .schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().as_str();
            let (category, _) = name.split_once('_').unwrap_or((name, ""));
            ManifestColumn {
                category,
                name,
                data_type: match f.data_type() {
                    DataType::Float64 => "OptionalBigDecimal",
                    DataType::Timestamp(..) => "DateTime",
                    _ => "OptionalString",
                },
            }
        })
        .collect();
    let manifest = Manifest {
        assembly_id: delivery.assembly_id,
        account: delivery.payer,
        columns,
        charset: "UTF-8",
        compression: "Parquet",
        content_type: "application/Parquet",
        report_id: format!("{}-{}", delivery.payer, delivery.report),
        report_name: delivery.report,
        billing_period: ManifestPeriod {
            start: day(period.start_ms, "%Y%m%dT%H%M%S%.3fZ"),
            end: day(period.end_ms, "%Y%m%dT%H%M%S%.3fZ"),
        },
        bucket,
        report_keys: delivery
            .files
            .iter()
            .map(|name| data.clone().join(*name).to_string())
            .collect(),
        additional_artifact_keys: Vec::new(),
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(|source| GenerateError::Manifest {
        key: key.to_string(),
        source,
    })?;
    put(store, &key, body).await?;
    let crawler = root.clone().join("crawler-cfn.yml");
    put(
        store,
        &crawler,
        b"# Athena integration (not CUR data)\nAWSTemplateFormatVersion: 2010-09-09\n".to_vec(),
    )
    .await?;
    Ok(key)
}

async fn put(store: &Arc<dyn ObjectStore>, key: &Path, body: Vec<u8>) -> Result<(), GenerateError> {
    store
        .put(key, PutPayload::from(body))
        .await
        .map(drop)
        .map_err(|source| GenerateError::Put {
            key: key.to_string(),
            source,
        })
}

/// Writes the report-wide status file under `root`: `UPDATING` (AWS is rewriting the
/// report, readers must wait) or `READY`.
pub async fn write_legacy_status(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    updating: bool,
) -> Result<(), GenerateError> {
    let key = root
        .clone()
        .join(STATUS_DIR)
        .join(format!("{STATUS_DIR}.parquet").as_str());
    let schema = Arc::new(Schema::new(vec![Field::new(
        "status",
        DataType::Utf8,
        true,
    )]));
    let status = if updating { "UPDATING" } else { "READY" };
    let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![status]))])
        .map_err(|source| GenerateError::Write {
            key: key.to_string(),
            source: source.into(),
        })?;
    writer::write_file(store, &key, &batch).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::schema::cur_schema;

    #[test]
    fn tags_become_columns() {
        let legacy = schema(&cur_schema());
        let names: Vec<&str> = legacy.fields().iter().map(|f| f.name().as_str()).collect();
        assert!(names.contains(&"resource_tags_user_application"));
        assert!(names.contains(&"line_item_usage_amount"));
        assert!(
            !names
                .iter()
                .any(|n| *n == "resource_tags" || *n == "product")
        );
        assert!(
            legacy
                .fields()
                .iter()
                .all(|f| !matches!(f.data_type(), DataType::Map(..)))
        );
    }
}
