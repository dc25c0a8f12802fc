//! Files of one delivery that differ in columns, or are not Parquet at all: unified by
//! name, or refused by name.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::support::{curflow, generate_july, one_payer_july, run};

pub const PAYER: &str = "671238551718";

/// Adds a file to July's delivery (data folder and manifest).
fn add_to_delivery(dir: &Path, name: &str, columns: Vec<(&str, ArrayRef)>) {
    let source = dir.join("source");
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let path = source.join("data/BILLING_PERIOD=2025-07").join(name);
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let manifest_path = source.join("metadata/BILLING_PERIOD=2025-07/cur2-Manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["dataFiles"]
        .as_array_mut()
        .unwrap()
        .push(format!("file://{}", path.display()).into());
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

pub fn run_july(dir: &Path, settings: &str) -> (Option<i32>, String) {
    let out = run(curflow(
        dir,
        &[
            "run", "--config", settings, "--year", "2025", "--month", "7", "--payer", PAYER,
        ],
    ));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs July, which must fail; the summary's line for the failed period.
fn failed_july(dir: &Path, settings: &str) -> String {
    let (code, summary) = run_july(dir, settings);
    assert_eq!(code, Some(1), "{summary}");
    summary
        .lines()
        .find(|l| l.contains("FAILED:"))
        .expect("a failed period")
        .to_owned()
}

/// The summary's "RI waste $… SP waste $…" line.
fn waste_line(summary: &str) -> String {
    summary
        .lines()
        .find(|l| l.contains("RI waste $"))
        .unwrap_or_else(|| panic!("no waste line in {summary}"))
        .to_owned()
}

/// A later file with a column AWS added, and without one the analytics do not read, is
/// unified with the others by name (a file without a column the analytics read is refused:
/// broken_source.rs).
#[test]
fn an_added_column_and_one_the_analytics_do_not_read_are_unified_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let settings = one_payer_july(dir.path(), PAYER);
    let (code, before) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0));
    // A Tax line: the first line of the delivery made one, with a column AWS added later
    // and without the line item's description.
    let first = dir
        .path()
        .join("source/data/BILLING_PERIOD=2025-07/cur2-001-00001.snappy.parquet");
    let line =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(std::fs::read(first).unwrap()))
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .slice(0, 1);
    let schema = line.schema();
    let mut columns: Vec<(&str, ArrayRef)> = schema
        .fields()
        .iter()
        .zip(line.columns())
        .filter(|(field, _)| field.name() != "line_item_line_item_description")
        .map(|(field, column)| match field.name().as_str() {
            "line_item_line_item_type" => (
                field.name().as_str(),
                Arc::new(StringArray::from(vec!["Tax"])) as ArrayRef,
            ),
            name => (name, Arc::clone(column)),
        })
        .collect();
    columns.push((
        "a_column_aws_added_later",
        Arc::new(StringArray::from(vec!["x"])),
    ));
    add_to_delivery(dir.path(), "cur2-001-00002.snappy.parquet", columns);
    let (code, after) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{after}");
    // The new delivery is staged whole, in a folder of its own.
    assert!(after.contains("2 files copied"), "{after}");
    assert_eq!(
        waste_line(&after),
        waste_line(&before),
        "a Tax line changes no waste"
    );
}

#[test]
fn a_type_conflict_names_the_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let settings = one_payer_july(dir.path(), PAYER);
    add_to_delivery(
        dir.path(),
        "cur2-001-00002.snappy.parquet",
        vec![
            (
                "bill_payer_account_id",
                Arc::new(StringArray::from(vec![PAYER])) as ArrayRef,
            ),
            (
                "line_item_usage_amount",
                Arc::new(StringArray::from(vec!["3.5"])),
            ),
        ],
    );
    let failed = failed_july(dir.path(), &settings);
    assert!(failed.contains("line_item_usage_amount"), "{failed}");
    assert!(failed.contains("cur2-001-00002.snappy.parquet"), "{failed}");
    assert!(failed.contains("cur2-001-00001.snappy.parquet"), "{failed}");
}

#[test]
fn a_corrupt_file_is_named_and_a_new_delivery_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let settings = one_payer_july(dir.path(), PAYER);
    let name = "cur2-001-00001.snappy.parquet";
    let file = dir
        .path()
        .join("source/data/BILLING_PERIOD=2025-07")
        .join(name);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    crate::support::write_july_manifest_last(&dir.path().join("source"));
    let failed = failed_july(dir.path(), &settings);
    assert!(
        failed.contains(name) && failed.contains("not readable Parquet"),
        "{failed}"
    );

    // AWS delivers the period again: the run stages it and the analytics succeed.
    let source = dir.path().join("source");
    generate_july(
        dir.path(),
        &source,
        PAYER,
        &["--rows", "3000", "--delivery", "2"],
    );
    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{summary}");
    assert!(summary.contains("RI waste $"), "{summary}");
}
