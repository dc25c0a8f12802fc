//! The legacy Cost and Usage Report (Parquet) layout.
//!
//! AWS writes a legacy Parquet report (report versioning "overwrite", as the Athena
//! integration requires) under the export root `<prefix>/<report>` as:
//! - data: `<report>/year=YYYY/month=M/<report>-NNNNN.snappy.parquet`, rewritten whole on
//!   every refresh;
//! - a manifest per period: `YYYYMMDD-YYYYMMDD/<report>-Manifest.json` (first day of the
//!   month to first day of the next), whose `reportKeys` name the data files of the current
//!   delivery and whose `assemblyId` identifies it;
//! - `cost_and_usage_data_status/cost_and_usage_data_status.parquet`, one `status` column
//!   that says `UPDATING` while AWS rewrites the report and `READY` once it is done;
//! - helpers for Athena and Redshift (`crawler-cfn.yml`, `*.sql`, `*.json`), never staged.
//!
//! A report still `UPDATING` is skipped this run: its files may be half replaced. Tags are
//! one `resource_tags_user_<key>` column each instead of CUR 2.0's `resource_tags` map
//! ([`tag_columns`]).

use bytes::Bytes;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;

use super::{
    DeliveryState, DiscoverError, Layout, Listing, ManifestFile, Named, SourcePeriod, Stamp,
    TagColumn, is_data_file, latest_manifest, read_manifest,
};
use crate::storage::{Location, ObjectInfo};
use crate::task::BillingPeriod;

/// The folder holding the report-wide status file.
const STATUS_FOLDER: &str = "cost_and_usage_data_status";

/// What a tag column's name starts with; the rest is the tag's key in the map.
const TAG_COLUMN_PREFIX: &str = "resource_tags_";

/// The column families every legacy report file holds, whatever the payer's usage: the
/// line items themselves and the bill. The others (`product_*` per product attribute,
/// `reservation_*` with RIs, `savings_plan_*` with Savings Plans, one column per activated
/// tag) appear only when some line of the period has them.
const ALWAYS_WRITTEN: [&str; 2] = ["line_item_", "bill_"];

/// The parts of a legacy CUR manifest discovery needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    assembly_id: Option<String>,
    #[serde(default)]
    report_name: Option<String>,
    report_keys: Vec<String>,
}

/// `YYYYMMDD-YYYYMMDD`: the folder of a period's manifest.
fn manifest_folder(period: BillingPeriod) -> String {
    format!(
        "{}-{}",
        period.start().format("%Y%m%d"),
        period.end().format("%Y%m%d")
    )
}

/// True when `folder` (a top-level folder of an export root) belongs to a legacy report.
fn is_legacy_folder(folder: &str) -> bool {
    let date_range = folder.len() == 17
        && folder.as_bytes()[8] == b'-'
        && folder
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 8 || b.is_ascii_digit());
    folder == STATUS_FOLDER || date_range
}

/// True when an export root's top-level folders are a legacy report's: its status folder
/// or a period's manifest folder.
pub(super) fn recognises(top_level_folders: &[String]) -> bool {
    top_level_folders.iter().any(|f| is_legacy_folder(f))
}

/// The user tag columns (`resource_tags_user_<key>`, key `user_<key>`) of a table that has
/// no `resource_tags` map; none when it has the map.
pub(super) fn tag_columns(columns: &[String]) -> Vec<TagColumn> {
    if columns.iter().any(|c| c == "resource_tags") {
        return Vec::new();
    }
    columns
        .iter()
        .filter_map(|column| {
            let key = column.strip_prefix(TAG_COLUMN_PREFIX)?;
            key.starts_with("user_").then(|| TagColumn {
                column: column.clone(),
                key: key.to_owned(),
            })
        })
        .collect()
}

/// Whether every file of a legacy report holds `column`: it is of a family the report
/// always writes ([`ALWAYS_WRITTEN`]).
pub(super) fn always_has(column: &str) -> bool {
    ALWAYS_WRITTEN
        .iter()
        .any(|family| column.starts_with(family))
}

/// Whether a key is a period's manifest: only one directly in its folder, as with "create
/// new report versions" AWS also keeps older manifests in `<assemblyId>/` subfolders.
fn is_manifest(key: &str) -> bool {
    key.ends_with("-Manifest.json") && key.matches('/').count() == 1
}

/// The report's status files: the data files of its status folder.
async fn status_files(export: &Location) -> Result<Vec<ObjectInfo>, DiscoverError> {
    let mut files = export.list(STATUS_FOLDER).await?;
    files.retain(|f| is_data_file(&f.key));
    Ok(files)
}

/// The period's [`Stamp`]: its manifest's key and ETag and the status files', from two
/// listings.
pub(super) async fn stamp(
    export: &Location,
    period: BillingPeriod,
) -> Result<Option<Stamp>, DiscoverError> {
    let Some(manifest) = latest_manifest(export, &manifest_folder(period), is_manifest).await?
    else {
        return Ok(None);
    };
    Ok(Some(
        Stamp::of(&manifest).with(&status_files(export).await?),
    ))
}

/// Lists one billing period of a legacy report and checks it against the report's status
/// and the period's manifest.
pub(super) async fn discover(
    export: &Location,
    period: BillingPeriod,
) -> Result<SourcePeriod, DiscoverError> {
    let status = status_files(export).await?;
    let updating = report_updating(export, &status).await?;
    let manifest: Option<(ManifestFile, Manifest)> =
        read_manifest(export, &manifest_folder(period), is_manifest).await?;
    if let Some((
        file,
        Manifest {
            report_name: Some(name),
            ..
        },
    )) = &manifest
        && !is_report_name(name)
    {
        return Err(DiscoverError::Manifest {
            url: file.url.clone(),
            reason: format!(
                "its reportName {name:?} is not a report name (1-256 of A-Z a-z 0-9 ! - _ . * ' ( ), as AWS names reports)"
            ),
        });
    }
    // AWS nests the data under a folder named after the report; without a manifest the
    // root's own name (`<prefix>/<report>`) is the best guess.
    let report = manifest
        .as_ref()
        .and_then(|(_, m)| m.report_name.clone())
        .or_else(|| {
            export
                .url()
                .as_str()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let partition = format!("year={}/month={}", period.year(), period.month());
    let listing = Listing::read(export, period, Layout::Legacy, &report, partition).await?;
    let mut found = listing.against(
        export,
        manifest.map(|(file, m)| Named {
            manifest: file,
            files: m.report_keys,
            delivery: m.assembly_id,
        }),
    )?;
    found.stamp = found.stamp.map(|s| s.with(&status));
    if updating {
        found.state = DeliveryState::Updating {
            status: export.url().join(STATUS_FOLDER).to_string(),
        };
    }
    Ok(found)
}

/// Whether `name` can be a report's name, and so the folder its data is under: what AWS
/// allows (up to 256 of `A-Z a-z 0-9 ! - _ . * ' ( )`), and not `.` or `..`.
fn is_report_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!-_.*'()".contains(&b))
}

/// True when any of the report's `status` files says `UPDATING`.
async fn report_updating(export: &Location, status: &[ObjectInfo]) -> Result<bool, DiscoverError> {
    for file in status {
        let bytes = export.read(&file.key).await?.unwrap_or_default();
        let statuses = statuses(bytes).map_err(|reason| DiscoverError::Status {
            url: export.url().join(&file.key).to_string(),
            reason,
        })?;
        if statuses.iter().any(|s| s.eq_ignore_ascii_case("UPDATING")) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The values of the `status` column of a status Parquet file.
fn statuses(bytes: Bytes) -> Result<Vec<String>, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let column = batch
            .column_by_name("status")
            .ok_or_else(|| "it has no status column".to_owned())?;
        let text = cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
        out.extend(text.as_string::<i32>().iter().flatten().map(str::to_owned));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::parquet::arrow::ArrowWriter;

    use super::*;
    use crate::storage::StoreUrl;

    fn period() -> BillingPeriod {
        BillingPeriod::new(2025, 7).unwrap()
    }

    fn status_file(status: &str) -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "status",
            DataType::Utf8,
            true,
        )]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(StringArray::from(vec![status]))],
        )
        .unwrap();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        out
    }

    async fn report(files: &[&str]) -> (tempfile::TempDir, Location) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cur").join("legacy-cur");
        let loc = Location::local(&StoreUrl::parse(root.to_str().unwrap()).unwrap()).unwrap();
        for f in files {
            loc.write(f, b"PAR1".to_vec()).await.unwrap();
        }
        (dir, loc)
    }

    const MANIFEST: &str = "20250701-20250801/legacy-cur-Manifest.json";

    async fn set_status(loc: &Location, bytes: Vec<u8>) {
        let key = format!("{STATUS_FOLDER}/cost_and_usage_data_status.parquet");
        loc.write(&key, bytes).await.unwrap();
    }

    #[test]
    fn folder_names() {
        assert_eq!(manifest_folder(period()), "20250701-20250801");
        assert_eq!(
            manifest_folder(BillingPeriod::new(2025, 12).unwrap()),
            "20251201-20260101"
        );
        assert!(is_legacy_folder("20250701-20250801"));
        assert!(is_legacy_folder(STATUS_FOLDER));
        assert!(!is_legacy_folder("data"));
        assert!(!is_legacy_folder("2025070-120250801"));
    }

    #[tokio::test]
    async fn manifest_names_the_delivery_and_helpers_are_ignored() {
        let (_d, loc) = report(&[
            "legacy-cur/year=2025/month=7/legacy-cur-00001.snappy.parquet",
            "legacy-cur/year=2025/month=7/legacy-cur-00002.snappy.parquet",
            "legacy-cur/year=2025/month=7/aws-programmatic-access-test-object",
            "legacy-cur/year=2025/month=12/legacy-cur-00001.snappy.parquet",
            "crawler-cfn.yml",
            "20250701-20250801/a1b2/legacy-cur-Manifest.json",
        ])
        .await;
        loc.write(MANIFEST, br#"{"assemblyId":"a2","reportName":"legacy-cur","reportKeys":["cur/legacy-cur/legacy-cur/year=2025/month=7/legacy-cur-00001.snappy.parquet"]}"#.to_vec())
            .await
            .unwrap();
        set_status(&loc, status_file("READY")).await;
        let got = discover(&loc, period()).await.unwrap();
        assert_eq!(got.state, DeliveryState::Ready);
        assert_eq!(got.layout, Layout::Legacy);
        assert_eq!(got.folder, "legacy-cur/year=2025/month=7");
        assert_eq!(got.delivery.as_deref(), Some("a2"));
        let keys: Vec<&str> = got.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["legacy-cur-00001.snappy.parquet"]);
    }

    #[tokio::test]
    async fn updating_status_holds_the_period_back() {
        let (_d, loc) =
            report(&["legacy-cur/year=2025/month=7/legacy-cur-00001.snappy.parquet"]).await;
        set_status(&loc, status_file("UPDATING")).await;
        let got = discover(&loc, period()).await.unwrap();
        assert!(
            matches!(&got.state, DeliveryState::Updating { status } if status.ends_with("cost_and_usage_data_status")),
            "{:?}",
            got.state
        );
        set_status(&loc, b"not parquet".to_vec()).await;
        let err = discover(&loc, period()).await.unwrap_err().to_string();
        assert!(err.contains("cost_and_usage_data_status.parquet"), "{err}");
    }

    /// A manifest whose `reportName` cannot be the folder the data is under (empty, a path,
    /// `..`, characters AWS does not allow) is refused, naming it; before, an empty one
    /// silently found no data in the period, and others pointed elsewhere.
    #[tokio::test]
    async fn a_report_name_that_is_not_one_is_refused() {
        let (_d, loc) =
            report(&["legacy-cur/year=2025/month=7/legacy-cur-00001.snappy.parquet"]).await;
        for name in ["", "..", "legacy-cur/../x", "cur\u{e9}", "a b"] {
            let manifest = serde_json::json!({
                "reportName": name,
                "reportKeys": ["p/legacy-cur/legacy-cur/year=2025/month=7/legacy-cur-00001.snappy.parquet"],
            });
            loc.write(MANIFEST, manifest.to_string().into_bytes())
                .await
                .unwrap();
            let err = discover(&loc, period())
                .await
                .map(|p| format!("{:?}", p.files))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("reportName") && err.contains(MANIFEST),
                "{name:?}: {err}"
            );
        }
        assert!(is_report_name("legacy-cur") && is_report_name("My.Report_(2)*!'"));
    }

    #[tokio::test]
    async fn missing_report_keys_mean_a_delivery_in_progress() {
        let (_d, loc) =
            report(&["legacy-cur/year=2025/month=7/legacy-cur-00001.snappy.parquet"]).await;
        loc.write(MANIFEST, br#"{"reportName":"legacy-cur","reportKeys":["p/legacy-cur/legacy-cur/year=2025/month=7/legacy-cur-00001.snappy.parquet","p/legacy-cur/legacy-cur/year=2025/month=7/legacy-cur-00002.snappy.parquet"]}"#.to_vec())
            .await
            .unwrap();
        let got = discover(&loc, period()).await.unwrap();
        assert_eq!(
            got.state,
            DeliveryState::Incomplete {
                missing: vec!["legacy-cur-00002.snappy.parquet".into()]
            }
        );
    }
}
