//! A broken source never becomes confident numbers: an empty data file, or one without a
//! column the analytics read, in a delivery fails the period by name and publishes
//! nothing; an empty delivery (a manifest naming no data files) empties the period and
//! says so; and a source root that holds no export (a
//! mistyped URL, on local disk or S3) is an error for that payer, distinct from "no data
//! yet for this month" in a root that has other months; and a copy killed on local disk
//! leaves nothing in staging.

use std::path::Path;

use crate::s3_support::{S3World, generate, local_files, local_staged_folder};
use crate::schema_drift::{PAYER, run_july};
use crate::support::{
    curflow, final_tables, generate_july, one_payer_july, one_payer_settings, query, run,
    write_july_manifest_last,
};

/// The summary's line for July.
fn july_line(summary: &str) -> String {
    summary
        .lines()
        .find(|l| l.trim_start().starts_with("2025-07"))
        .unwrap_or_else(|| panic!("no July line in {summary}"))
        .to_owned()
}

/// Rows and Σ unused_cost (to the cent) of the payer's July in final table `table`.
async fn held(dir: &Path, table: &str) -> (i64, String) {
    let provider = final_tables(&dir.join("warehouse"))
        .final_table(table)
        .await
        .unwrap()
        .expect("the table exists");
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("t", provider).unwrap();
    let batches = query(
        &ctx,
        &format!(
            "SELECT count(*) AS n, CAST(round(COALESCE(sum(unused_cost), 0), 2) AS VARCHAR) AS c FROM t WHERE payer_id = '{PAYER}' AND billing_period = '2025-07'"
        ),
    )
    .await;
    let batch = &batches[0];
    let rows = batch
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    let cost = datafusion::arrow::compute::cast(
        batch.column(1),
        &datafusion::arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let cost = cost
        .as_any()
        .downcast_ref::<datafusion::arrow::array::StringArray>()
        .unwrap()
        .value(0)
        .to_owned();
    (rows, cost)
}

/// July's ledger.
fn july_ledger(dir: &Path) -> serde_json::Value {
    let ledger = dir.join(format!(
        "staging/_curflow/ledger/payer-{PAYER}/2025-07.json"
    ));
    serde_json::from_slice(&std::fs::read(ledger).expect("a ledger")).unwrap()
}

/// Whether July's ledger records that the analytics succeeded on the staged files.
fn july_analysed(dir: &Path) -> bool {
    !july_ledger(dir)["analytics_succeeded_at"].is_null()
}

/// July's manifest in the source under `dir`, and where it is.
fn july_manifest(dir: &Path) -> (std::path::PathBuf, serde_json::Value) {
    let path = dir.join("source/metadata/BILLING_PERIOD=2025-07/cur2-Manifest.json");
    let manifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (path, manifest)
}

/// AWS delivers July again (delivery 2, 3,000 rows in files of 500) into the source under
/// `dir`; the name of the first data file its manifest names, and where that file is.
async fn redeliver_july_in_files(dir: &Path) -> (String, std::path::PathBuf) {
    let source = dir.join("source");
    let mut options = curflow::generate::GenerateOptions::new(PAYER, 2025, 7);
    options.rows = 3_000;
    options.rows_per_file = 500;
    options.seed = 8;
    options.delivery = 2;
    options.root_url = format!("file://{}", source.display());
    let store = object_store::local::LocalFileSystem::new_with_prefix(&source).unwrap();
    let report = curflow::generate::generate(
        std::sync::Arc::new(store),
        &object_store::path::Path::from(""),
        &options,
    )
    .await
    .unwrap();
    assert!(report.files.len() > 1, "a delivery of several files");
    let (_, manifest) = july_manifest(dir);
    let named = manifest["dataFiles"][0].as_str().expect("a data file");
    let name = named.rsplit('/').next().unwrap().to_owned();
    let path = source.join("data/BILLING_PERIOD=2025-07").join(&name);
    (name, path)
}

/// The data files staged for July, as a reader finds them (none before a ledger exists).
fn staged_july(dir: &Path) -> Vec<String> {
    let staging = dir.join("staging");
    if !staging
        .join(format!("_curflow/ledger/payer-{PAYER}/2025-07.json"))
        .exists()
    {
        return Vec::new();
    }
    let staged = local_staged_folder(&staging, PAYER, "2025-07");
    let mut held: Vec<String> = std::fs::read_dir(&staged)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    held.sort();
    held
}

/// Runs July, then AWS delivers it again in several files and `spoil` spoils the first
/// one the manifest names: the run must fail the period (exit 1) and report no waste,
/// the final tables keep the first delivery's numbers exactly, and the ledger does not
/// mark the month analysed, so the next run tries again. The spoiled file's name and
/// July's summary line.
async fn a_spoiled_redelivery_is_refused(spoil: impl FnOnce(&Path)) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let settings = one_payer_july(dir.path(), PAYER);
    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{summary}");
    let ri_before = held(dir.path(), "ri_wastage_hourly").await;
    let sp_before = held(dir.path(), "sp_wastage_hourly").await;
    assert!(ri_before.0 > 0 && sp_before.0 > 0);

    let (name, file) = redeliver_july_in_files(dir.path()).await;
    spoil(&file);
    // As AWS does, the manifest is written after the data files, spoiled ones included.
    write_july_manifest_last(&dir.path().join("source"));

    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(1), "{summary}");
    assert!(
        !summary.contains("RI waste"),
        "no waste is reported: {summary}"
    );
    assert_eq!(held(dir.path(), "ri_wastage_hourly").await, ri_before);
    assert_eq!(held(dir.path(), "sp_wastage_hourly").await, sp_before);
    assert!(!july_analysed(dir.path()), "July is not marked analysed");
    (name, july_line(&summary))
}

/// A delivery whose data file is empty (0 bytes, named by the manifest) used to be analysed
/// as if it held nothing: "RI waste $0.00 … every commitment reconciles", exit 0, the month
/// marked analysed. Now the period fails naming the file and publishes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_data_file_fails_the_period_and_publishes_nothing() {
    let (name, line) = a_spoiled_redelivery_is_refused(|file| {
        std::fs::write(file, b"").unwrap();
    })
    .await;
    assert!(
        line.contains("FAILED:") && line.contains(&name) && line.contains("empty (0 bytes)"),
        "{line}"
    );
}

/// A delivery whose data file lacks a column the analytics read (here the cost every
/// line item has) used to be analysed with that file's costs read as null: exit 0, other
/// numbers, the month marked analysed. Now the period fails naming the file and the
/// column, and publishes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_without_a_column_the_analytics_read_fails_the_period() {
    let (name, line) = a_spoiled_redelivery_is_refused(|file| {
        let bytes = bytes::Bytes::from(std::fs::read(file).unwrap());
        let reader =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes,
            )
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = reader
            .map(|batch| {
                let batch = batch.unwrap();
                let keep: Vec<usize> = (0..batch.num_columns())
                    .filter(|&i| batch.schema().field(i).name() != "line_item_unblended_cost")
                    .collect();
                batch.project(&keep).unwrap()
            })
            .collect();
        let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(file).unwrap(),
            batches[0].schema(),
            None,
        )
        .unwrap();
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        writer.close().unwrap();
    })
    .await;
    let reason = format!(
        ": {name} has no column line_item_unblended_cost, which the analytics read (its rows would read as null); check that the export includes every column docs/analytics.md lists; runs fail on this period until the delivery holds it"
    );
    assert!(
        line.starts_with(&format!(
            "  2025-07  FAILED: could not register staged CUR for payer {PAYER} period 2025-07 at "
        )) && line.ends_with(&reason),
        "{line}"
    );
}

/// A manifest naming no data files (AWS delivers empty months for new payers) used to
/// leave the previous delivery staged and its numbers in the final tables, the run saying
/// "no data". Now it is a delivery of nothing: `plan` says so, the run deletes the staged
/// files, removes July from the final tables, says so, exits 0 and marks the delivery
/// analysed, so the next run finds it already synchronized.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_manifest_empties_the_period() {
    let dir = tempfile::tempdir().unwrap();
    let settings = one_payer_july(dir.path(), PAYER);
    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{summary}");
    assert!(held(dir.path(), "ri_wastage_hourly").await.0 > 0);
    assert_eq!(staged_july(dir.path()), ["cur2-001-00001.snappy.parquet"]);

    // AWS delivers July again, empty; the earlier data files stay in the source folder.
    let (path, mut manifest) = july_manifest(dir.path());
    manifest["executionId"] = "empty-july".into();
    manifest["dataFiles"] = serde_json::json!([]);
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let out = run(curflow(
        dir.path(),
        &[
            "plan", "--config", &settings, "--year", "2025", "--month", "7", "--payer", PAYER,
        ],
    ));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        july_line(&String::from_utf8_lossy(&out.stdout)),
        format!(
            "  2025-07  empty delivery: the manifest names no data files; to delete 1, then 2025-07 to be cleared from the final tables"
        )
    );

    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(
        july_line(&summary),
        format!(
            "  2025-07  empty delivery: the manifest names no data files; the final tables hold nothing for 2025-07; 1 staged file deleted"
        )
    );
    assert!(summary.ends_with("status: success\n"), "{summary}");
    assert_eq!(staged_july(dir.path()), Vec::<String>::new());
    for table in ["ri_wastage_hourly", "sp_wastage_hourly"] {
        assert_eq!(held(dir.path(), table).await.0, 0, "{table}");
    }
    let ledger = july_ledger(dir.path());
    assert_eq!(ledger["delivery"], "empty-july");
    assert!(july_analysed(dir.path()), "the empty delivery is analysed");

    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(july_line(&summary), "  2025-07  Already synchronized");
}

/// A local source folder that does not exist used to read as "no data" (exit 0) on every
/// run; now `run` and `plan` fail the payer's period naming the URL and the likely causes.
#[test]
fn a_mistyped_local_source_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    generate_july(
        dir.path(),
        &dir.path().join("source"),
        PAYER,
        &["--rows", "3000"],
    );
    let typo = dir.path().join("sourse");
    let settings = one_payer_settings(dir.path(), PAYER, &typo);
    for command in ["run", "plan"] {
        let out = run(curflow(
            dir.path(),
            &[
                command, "--config", &settings, "--year", "2025", "--month", "7", "--payer", PAYER,
            ],
        ));
        let summary = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "{command}: {summary}");
        let line = july_line(&summary);
        assert!(
            line.contains("FAILED: no CUR export at file://")
                && line.contains("/sourse")
                && line.contains("typo"),
            "{command}: {line}"
        );
    }
}

/// On S3: an export root with nothing under it fails the period naming the URL; the same
/// root once it holds June (and not yet July) says July has no data and exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn an_s3_root_without_an_export_is_told_from_a_month_without_data() {
    let world = S3World::new(PAYER, "periods = 1", "").await;
    let out = world.run(&world.july("run"));
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{summary}");
    let line = july_line(&summary);
    assert!(
        line.contains(&format!(
            "FAILED: no CUR export at s3://{}/cur2",
            world.source
        )),
        "{line}"
    );
    let out = world.run(&world.july("plan"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no CUR export at"));

    generate(&world.ep, &world.source, PAYER, (2025, 6), 1, 100_000).await;
    let out = world.run(&world.july("run"));
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{summary}");
    let line = july_line(&summary);
    assert!(line.contains("skipped: no data at"), "{line}");
}

/// A copy killed on local disk leaves `<file>#<n>` in the staged folder, which no listing
/// shows: it used to stay there for good. The next run that stages the period removes it,
/// and the staged folder holds exactly the delivery's files.
#[test]
fn a_killed_local_copy_leaves_nothing_in_staging() {
    let dir = tempfile::tempdir().unwrap();
    let settings = one_payer_july(dir.path(), PAYER);
    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{summary}");
    // A new delivery, and what a run killed while copying it would have left.
    let source = dir.path().join("source");
    generate_july(
        dir.path(),
        &source,
        PAYER,
        &["--rows", "3000", "--seed", "8", "--delivery", "2"],
    );
    let period = dir
        .path()
        .join(format!("staging/year=2025/month=7/payer-{PAYER}"));
    // The killed run was copying into the new delivery's folder (its name does not matter).
    let killed = period.join("delivery-0123456789abcdef");
    std::fs::create_dir_all(&killed).unwrap();
    std::fs::write(killed.join("cur2-002-00001.snappy.parquet#3"), b"PAR1 half").unwrap();

    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{summary}");
    let held = staged_july(dir.path());
    let current = local_staged_folder(&dir.path().join("staging"), PAYER, "2025-07");
    let on_disk: Vec<String> = local_files(&period).into_keys().collect();
    let expected: Vec<String> = held
        .iter()
        .map(|name| format!("{}/{name}", current.file_name().unwrap().to_str().unwrap()))
        .collect();
    assert_eq!(
        on_disk, expected,
        "nothing else is left in the period folder"
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(source.join("metadata/BILLING_PERIOD=2025-07/cur2-Manifest.json")).unwrap(),
    )
    .unwrap();
    let mut delivered: Vec<String> = manifest["dataFiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().rsplit('/').next().unwrap().to_owned())
        .collect();
    delivered.sort();
    assert_eq!(
        held, delivered,
        "the staged folder mirrors the delivery exactly"
    );
}

/// An export that overwrites (the same file names in every delivery) caught while AWS
/// rewrites it: a file the manifest names is newer than the manifest. It used to be
/// copied, staging and publishing a mix of two deliveries. Now a run trusts the unchanged
/// manifest, and a full comparison skips the period saying why; either way the staged copy
/// and final tables stay the previous delivery's, and the delivery is staged once its
/// manifest is written.
#[tokio::test(flavor = "multi_thread")]
async fn an_overwrite_in_progress_is_not_staged() {
    let dir = tempfile::tempdir().unwrap();
    let settings = one_payer_july(dir.path(), PAYER);
    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{summary}");
    let ri_before = held(dir.path(), "ri_wastage_hourly").await;
    let staged = local_staged_folder(&dir.path().join("staging"), PAYER, "2025-07")
        .join(&staged_july(dir.path())[0]);
    let staged_before = std::fs::read(&staged).unwrap();

    // AWS rewrites the file in place with other usage (another seed, same name).
    let other = dir.path().join("other");
    generate_july(
        dir.path(),
        &other,
        PAYER,
        &["--rows", "3000", "--seed", "8"],
    );
    let (_, manifest) = july_manifest(dir.path());
    let named = manifest["dataFiles"][0].as_str().unwrap();
    let name = named.rsplit('/').next().unwrap();
    let data = "data/BILLING_PERIOD=2025-07";
    std::fs::copy(
        other.join(data).join(name),
        dir.path().join("source").join(data).join(name),
    )
    .expect("the other delivery has the same file name");

    // The manifest is still the previous delivery's: a run trusts it and changes nothing.
    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{summary}");
    assert!(
        july_line(&summary).contains("Already synchronized"),
        "{summary}"
    );
    // A full comparison (--verify, or once verify_every has passed) sees the rewrite.
    let args = [
        "run", "--config", &settings, "--period", "2025-07", "--payer", PAYER,
    ];
    let out = run(curflow(dir.path(), &[&args[..], &["--verify"]].concat()));
    let (code, summary) = (out.status.code(), String::from_utf8_lossy(&out.stdout));
    assert_eq!(code, Some(0), "{summary}");
    let line = july_line(&summary);
    assert!(
        line.contains("delivery being rewritten") && line.contains(name),
        "{line}"
    );
    assert_eq!(
        std::fs::read(&staged).unwrap(),
        staged_before,
        "staging untouched"
    );
    assert_eq!(held(dir.path(), "ri_wastage_hourly").await, ri_before);

    // AWS finishes: the manifest comes last, and the rewritten delivery is staged.
    write_july_manifest_last(&dir.path().join("source"));
    let (code, summary) = run_july(dir.path(), &settings);
    assert_eq!(code, Some(0), "{summary}");
    assert!(july_line(&summary).contains("1 file copied"), "{summary}");
    assert_ne!(held(dir.path(), "ri_wastage_hourly").await, ri_before);
}
