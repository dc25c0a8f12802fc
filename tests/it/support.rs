//! Running the binary and reading tables back, shared by the tests.

use std::path::Path;
use std::process::{Command, Output};

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;

/// The `curflow` binary, in `dir`, with no `CURFLOW_*`/`TASK_INPUT_JSON` from the caller.
pub fn curflow(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_curflow"));
    cmd.current_dir(dir).args(args).env("CURFLOW_LOG", "warn");
    for (key, _) in std::env::vars() {
        if key.starts_with("CURFLOW_") || key == "TASK_INPUT_JSON" {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs the command and returns its output, printing it when a test fails.
pub fn run(mut cmd: Command) -> Output {
    let out = cmd.output().expect("the curflow binary runs");
    eprintln!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A finished command's stdout, then its stderr, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a query and collects its result.
pub async fn query(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .expect("query plans")
        .collect()
        .await
        .expect("query runs")
}

/// The embedded warehouse's final tables under `dir`.
pub fn final_tables(dir: &Path) -> curflow::warehouse::Embedded {
    let url = curflow::storage::StoreUrl::parse(dir.to_str().expect("utf-8 path")).unwrap();
    curflow::warehouse::Embedded::new(curflow::storage::Location::local(&url).unwrap())
}

/// Reads a Delta table with delta-rs from Python (`TEST_PYTHON`, set by scripts/test) and
/// returns "<rows> <sum of unused_cost, 2 decimals>".
pub fn read_outside(table: &Path) -> String {
    let script = "import os, sys, deltalake, pyarrow.compute as pc\n\
                  t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table()\n\
                  print(t.num_rows, f\"{pc.sum(t['unused_cost']).as_py():.2f}\", flush=True)\n\
                  os._exit(0)";
    python(script, &[table.to_str().expect("utf-8 path")], &[])
}

/// Runs a Python script with delta-rs installed (`TEST_PYTHON`, set by scripts/test) with
/// `args` and extra environment `env`; its trimmed stdout. The reader scripts flush and
/// leave with `os._exit(0)`: deltalake 1.6 with pyarrow 26 aborts in about half of its
/// interpreter shutdowns ("terminate called without an active exception") after a
/// correct read, which would fail the test for the reader's sake.
pub fn python(script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let python = std::env::var("TEST_PYTHON")
        .expect("TEST_PYTHON is not set: run the tests with scripts/test, which installs the deltalake reader");
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `curflow generate` of `payer`'s July 2025 into the folder `out`, with `options`
/// (`--rows`, `--seed`, `--delivery`).
pub fn generate_july(dir: &Path, out: &Path, payer: &str, options: &[&str]) {
    let mut args = vec![
        "generate",
        "--out",
        out.to_str().unwrap(),
        "--payer",
        payer,
        "--year",
        "2025",
        "--month",
        "7",
    ];
    args.extend_from_slice(options);
    assert_eq!(run(curflow(dir, &args)).status.code(), Some(0), "generate");
}

/// Writes July's CUR 2.0 manifest under the export `source` again, unchanged, as AWS
/// writes a delivery's manifest after its data files: a test that changed a data file
/// in place makes the change a finished delivery, not a rewrite in progress.
pub fn write_july_manifest_last(source: &Path) {
    let path = source.join("metadata/BILLING_PERIOD=2025-07/cur2-Manifest.json");
    let bytes = std::fs::read(&path).expect("July's manifest");
    std::fs::write(&path, bytes).unwrap();
}

/// A one-payer setup in `dir`: a generated July (3,000 rows) under `source/`, and settings
/// (returned: their path) with staging and warehouse under `dir`.
pub fn one_payer_july(dir: &Path, payer: &str) -> String {
    let source = dir.join("source");
    generate_july(dir, &source, payer, &["--rows", "3000", "--seed", "7"]);
    one_payer_settings(dir, payer, &source)
}

/// Settings (returned: their path) for one payer whose source is `source`, one period a
/// run, with staging and warehouse under `dir`; superseded deliveries are deleted by the
/// run that supersedes them.
pub fn one_payer_settings(dir: &Path, payer: &str, source: &Path) -> String {
    let settings = dir.join("curflow.toml");
    std::fs::write(
        &settings,
        format!(
            "[local]\nstaging = \"{0}/staging\"\nwarehouse_dir = \"{0}/warehouse\"\nperiods = 1\nkeep_superseded = \"0s\"\n\
             [[local.payers]]\npayer_id = \"{payer}\"\nsource = \"{1}\"\n",
            dir.display(),
            source.display()
        ),
    )
    .unwrap();
    settings.display().to_string()
}

/// The dollar amount written right after `label` in `text` ("SP waste " → "$6,175.37"), as
/// printed.
pub fn amount<'a>(text: &'a str, label: &str) -> &'a str {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        + label.len();
    let rest = &text[at..];
    let end = rest
        .find(|c: char| !(c == '$' || c == ',' || c == '.' || c.is_ascii_digit()))
        .unwrap_or(rest.len());
    // A comma or full stop right after the amount ends the sentence, not the number.
    rest[..end].trim_end_matches([',', '.'])
}
