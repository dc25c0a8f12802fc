//! The legacy CUR (Parquet) layout against the local S3 server (moto): a period synced and
//! analysed matches the generator's ground truth, `auto` finds the layout, helper objects
//! are never staged, and a report whose status says UPDATING is left alone until READY.

use std::collections::BTreeMap;

use curflow::generate::{GenerateOptions, GenerateReport};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use object_store::path::Path;

use crate::demo::assert_tables_match_truth;
use crate::s3_support::{S3World, ledger_keys, list, sizes, staged_period, store, task_args};
use crate::support::final_tables;

const PAYER: &str = "671238551718";
/// The export root the settings helper points the payer at, and the report under it.
const ROOT: &str = "cur2";
const REPORT: &str = "legacy-cur";

/// Writes one legacy delivery of July 2025 under `s3://bucket/cur2`.
async fn generate_legacy(ep: &str, bucket: &str, rows: u64) -> GenerateReport {
    let mut options = GenerateOptions::new(PAYER, 2025, 7);
    options.rows = rows;
    options.rows_per_file = 1_000;
    options.export_name = REPORT.to_owned();
    options.root_url = format!("s3://{bucket}/{ROOT}");
    options.layout = curflow::sync::Layout::Legacy;
    curflow::generate::generate(store(ep, bucket), &Path::from(ROOT), &options)
        .await
        .unwrap()
}

/// The Parquet data files of the July delivery at the source.
async fn source_files(c: &aws_sdk_s3::Client, bucket: &str) -> BTreeMap<String, i64> {
    sizes(&list(c, bucket, &format!("{ROOT}/{REPORT}/year=2025/month=7")).await)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".parquet"))
        .collect()
}

async fn put(c: &aws_sdk_s3::Client, bucket: &str, key: &str) {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(b"not CUR data".to_vec().into())
        .send()
        .await
        .unwrap();
}

/// A source and a staging bucket, and settings reading the source with `layout`.
async fn setup(layout: &str) -> S3World {
    S3World::new(PAYER, "", &format!("layout = \"{layout}\"")).await
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_export_auto_detected_staged_and_matches_ground_truth() {
    let w = setup("auto").await;
    let report = generate_legacy(&w.ep, &w.source, 4_000).await;
    assert!(report.files.len() >= 3, "{:?}", report.files);
    // Objects AWS and users leave next to a legacy report that are not CUR data.
    for junk in [
        format!("{ROOT}/aws-programmatic-access-test-object"),
        format!("{ROOT}/{REPORT}/year=2025/month=7/aws-programmatic-access-test-object"),
        format!("{ROOT}/{REPORT}/year=2025/month=7/{REPORT}-create-table.sql"),
        format!("{ROOT}/{REPORT}/year=2025/month=7/{REPORT}-columns.csv"),
        format!("{ROOT}/{REPORT}/year=2025/month=7/notes.json"),
    ] {
        put(&w.c, &w.source, &junk).await;
    }

    let out = w.run(&w.july("run"));
    assert_eq!(out.status.code(), Some(0));
    let summary = stdout(&out);
    assert!(summary.contains("every commitment reconciles"), "{summary}");

    let src = source_files(&w.c, &w.source).await;
    assert_eq!(src.len(), report.files.len());
    let staged = staged_period(&w.c, &w.staging, PAYER, (2025, 7)).await;
    assert_eq!(
        staged, src,
        "staged July is exactly the report's data files"
    );
    assert_eq!(
        ledger_keys(&w.c, &w.staging, PAYER, "2025-07").await,
        src.keys().cloned().collect::<Vec<_>>()
    );
    let everything = list(&w.c, &w.staging, "staging/year=").await;
    assert!(
        everything.keys().all(|k| k.ends_with(".parquet")
            && !k.contains("cost_and_usage_data_status")
            && !k.contains("Manifest")),
        "only data files are staged: {everything:?}"
    );

    // The analytics over the legacy columns give the ground truth exactly.
    let ctx = SessionContext::new();
    let warehouse = final_tables(&w.dir.path().join("warehouse"));
    for (table, key) in [
        ("ri_wastage_hourly", &report.ground_truth[0]),
        ("sp_wastage_hourly", &report.ground_truth[1]),
    ] {
        let provider = warehouse.final_table(table).await.unwrap().unwrap();
        ctx.register_table(table, provider).unwrap();
        let got =
            w.c.get_object()
                .bucket(&w.source)
                .key(key)
                .send()
                .await
                .unwrap();
        let local = w.dir.path().join(format!("truth_{table}.parquet"));
        std::fs::write(&local, got.body.collect().await.unwrap().into_bytes()).unwrap();
        let truth = ctx
            .read_parquet(local.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap();
        ctx.register_table(format!("truth_{table}"), truth.into_view())
            .unwrap();
    }
    assert_tables_match_truth(&ctx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_report_updating_is_skipped_then_converges_when_ready() {
    let w = setup("legacy").await;
    generate_legacy(&w.ep, &w.source, 3_000).await;
    let args = w.july("run");
    assert_eq!(w.run(&args).status.code(), Some(0));
    let before = list(&w.c, &w.staging, "staging/").await;
    assert!(!before.is_empty());

    // AWS starts rewriting the report: status UPDATING, one data file already gone.
    let root = Path::from(ROOT);
    curflow::generate::write_legacy_status(&store(&w.ep, &w.source), &root, true)
        .await
        .unwrap();
    let first = source_files(&w.c, &w.source).await;
    let gone = first.keys().next().unwrap().clone();
    w.c.delete_object()
        .bucket(&w.source)
        .key(format!("{ROOT}/{REPORT}/year=2025/month=7/{gone}"))
        .send()
        .await
        .unwrap();
    for command in ["plan", "run"] {
        let out = w.run(&task_args(command, &w.config, PAYER, "2025", "7"));
        assert_eq!(out.status.code(), Some(0), "{command}");
        let summary = stdout(&out);
        let july = summary
            .lines()
            .find(|l| l.trim_start().starts_with("2025-07"))
            .unwrap_or_else(|| panic!("{command} reports July: {summary}"));
        assert!(
            july.contains("skipped") && july.contains("UPDATING"),
            "{command}: {july}"
        );
        assert!(july.contains("cost_and_usage_data_status"), "{july}");
    }
    assert_eq!(
        list(&w.c, &w.staging, "staging/").await,
        before,
        "nothing staged, deleted or rewritten while the report is UPDATING"
    );

    // The rewrite completes (a new delivery, then READY): the next run converges.
    generate_legacy(&w.ep, &w.source, 15_000).await;
    let out = w.run(&args);
    assert_eq!(out.status.code(), Some(0));
    assert!(!stdout(&out).contains("UPDATING"), "{}", stdout(&out));
    let src = source_files(&w.c, &w.source).await;
    assert_ne!(src, first, "the new delivery differs");
    assert_eq!(staged_period(&w.c, &w.staging, PAYER, (2025, 7)).await, src);
    assert_eq!(
        ledger_keys(&w.c, &w.staging, PAYER, "2025-07").await,
        src.keys().cloned().collect::<Vec<_>>()
    );
}
