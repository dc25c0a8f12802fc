//! Files a run replaces in the final tables stay for `keep_replaced` (a week by default),
//! and a later run deletes them; the tables read as the latest delivery throughout.

use std::path::Path;

use crate::demo::{assert_tables_match_truth, tables_and_truth_in};
use crate::support::{curflow, generate_july, one_payer_july, run};

const PAYER: &str = "671238551718";
const TABLES: [&str; 3] = [
    "ri_wastage_hourly",
    "sp_wastage_hourly",
    "commitment_reconciliation",
];

/// Parquet files under a table's folder, referenced by its log or not.
fn files_on_disk(table: &Path) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .map(|path| match path.is_dir() {
                true => walk(&path),
                false => usize::from(path.extension().is_some_and(|e| e == "parquet")),
            })
            .sum()
    }
    walk(table)
}

/// Data files the table's latest version is made of.
async fn files_in_table(table: &Path) -> usize {
    let url = url::Url::from_directory_path(table).unwrap();
    let table = deltalake::open_table(url).await.unwrap();
    table.get_file_uris().unwrap().count()
}

/// Runs July, restates it (delivery 2) and runs again, with `keep_replaced` if given;
/// returns the working folder after checking the tables hold the restatement exactly.
async fn restated_twice(keep_replaced: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let settings = one_payer_july(dir.path(), PAYER);
    if let Some(keep) = keep_replaced {
        let text = std::fs::read_to_string(&settings).unwrap();
        let keep = format!("periods = 1\nkeep_replaced = \"{keep}\"\n");
        std::fs::write(&settings, text.replacen("periods = 1\n", &keep, 1)).unwrap();
    }
    let july = [
        "run", "--config", &settings, "--year", "2025", "--month", "7", "--payer", PAYER,
    ];
    assert_eq!(run(curflow(dir.path(), &july)).status.code(), Some(0));
    let source = dir.path().join("source");
    let restated = ["--rows", "4000", "--seed", "99", "--delivery", "2"];
    generate_july(dir.path(), &source, PAYER, &restated);
    let out = run(curflow(dir.path(), &july));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 deleted"));
    let ctx = tables_and_truth_in(&dir.path().join("warehouse"), &source, 1).await;
    assert_tables_match_truth(&ctx).await;
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn replaced_files_stay_a_week_by_default() {
    let dir = restated_twice(None).await;
    for table in TABLES {
        let folder = dir.path().join("warehouse").join(table);
        assert!(
            files_on_disk(&folder) > files_in_table(&folder).await,
            "{table}: the files of the first run are kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replaced_files_are_deleted_once_keep_replaced_has_passed() {
    let dir = restated_twice(Some("0s")).await;
    for table in TABLES {
        let folder = dir.path().join("warehouse").join(table);
        assert_eq!(
            files_on_disk(&folder),
            files_in_table(&folder).await,
            "{table}: only the latest version's files are left"
        );
    }
}
