//! The embedded warehouse's Delta tables on S3 (the local test server): several payers
//! written by concurrent runs, a run killed between writing a table's data files and
//! committing them, and a run killed between the commits of two tables. After each, an
//! engine outside curflow (delta-rs from Python) reads every payer-month exactly once.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::fault_proxy::{FaultProxy, Faults};
use crate::s3::ri_waste;
use curflow::generate::GenerateOptions;

use crate::s3_support::{bucket, client, curflow_s3, endpoint, generate, list, store};
use crate::support::{python, run};

pub const PAYERS: [&str; 3] = ["671238551718", "204857193650", "385920174463"];

/// A `dev` profile: staging in `staging`, final tables under `s3://<warehouse>/warehouse`,
/// each payer reading `s3://<its bucket>/cur2`; superseded deliveries go in the run that
/// supersedes them.
pub fn settings(dir: &Path, staging: &str, warehouse: &str, payers: &[(&str, &str)]) -> String {
    let mut text = format!(
        "[dev]\nstaging = \"s3://{staging}/staging\"\nwarehouse_dir = \"s3://{warehouse}/warehouse\"\n\
         periods = 1\nlease_ttl = \"1s\"\nkeep_superseded = \"0s\"\n"
    );
    for (payer, source) in payers {
        text.push_str(&format!(
            "[[dev.payers]]\npayer_id = \"{payer}\"\nsource = \"s3://{source}/cur2\"\n"
        ));
    }
    let path = dir.join("curflow.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

pub fn run_args<'a>(config: &'a str, payers: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run", "--config", config, "--env", "dev", "--year", "2025", "--month", "7",
    ];
    for payer in payers {
        args.extend(["--payer", payer]);
    }
    args
}

/// [`settings`] for the first of [`PAYERS`], one for each of `sources`, each reading its
/// bucket.
pub fn fleet_settings(dir: &Path, staging: &str, warehouse: &str, sources: &[String]) -> String {
    let payers: Vec<(&str, &str)> = PAYERS
        .iter()
        .copied()
        .zip(sources.iter().map(String::as_str))
        .collect();
    settings(dir, staging, warehouse, &payers)
}

/// [`python`] with the S3 server's endpoint and credentials in the environment, as
/// delta-rs reads them.
pub fn python_on_s3(ep: &str, script: &str, args: &[&str]) -> String {
    python(
        script,
        args,
        &[
            ("AWS_ENDPOINT_URL", ep),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
        ],
    )
}

/// What delta-rs (Python) reads in a final table, per payer.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    rows: usize,
    /// Distinct (period, hour, commitment, application, attribution): equal to `rows`
    /// when no row is there twice.
    keys: usize,
    unused_cost: f64,
}

pub fn read_outside(ep: &str, warehouse: &str, table: &str, arn: &str) -> BTreeMap<String, Read> {
    let script = "import os, sys, deltalake, pyarrow.compute as pc\n\
        opts = {k: os.environ[k] for k in ('AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'AWS_ALLOW_HTTP')}\n\
        t = deltalake.DeltaTable(sys.argv[1], storage_options=opts).to_pyarrow_table()\n\
        for p in sorted(set(t['payer_id'].to_pylist())):\n\
        \x20   s = t.filter(pc.equal(t['payer_id'], p))\n\
        \x20   keys = set(zip(*(s[c].to_pylist() for c in ('billing_period', 'usage_hour', sys.argv[2], 'application', 'attribution'))))\n\
        \x20   print(p, s.num_rows, len(keys), repr(pc.sum(s['unused_cost']).as_py()), flush=True)\n\
        os._exit(0)";
    let url = format!("s3://{warehouse}/warehouse/{table}");
    let out = python_on_s3(ep, script, &[&url, arn]);
    out.lines()
        .map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            (
                parts[0].to_owned(),
                Read {
                    rows: parts[1].parse().unwrap(),
                    keys: parts[2].parse().unwrap(),
                    unused_cost: parts[3].parse().unwrap(),
                },
            )
        })
        .collect()
}

/// Each payer's month is in the table once and adds up to `expected` (the generator's
/// truth) to the cent.
pub fn assert_once(reads: &BTreeMap<String, Read>, expected: &[(&str, f64)], table: &str) {
    let payers: Vec<&str> = reads.keys().map(String::as_str).collect();
    let mut want: Vec<&str> = expected.iter().map(|(p, _)| *p).collect();
    want.sort_unstable();
    assert_eq!(payers, want, "{table}: payers");
    for (payer, cost) in expected {
        let read = &reads[*payer];
        assert!(read.rows > 0, "{table} {payer}: no rows");
        assert_eq!(read.rows, read.keys, "{table} {payer}: rows there twice");
        assert!(
            (read.unused_cost - cost).abs() < 0.01,
            "{table} {payer}: {} vs truth {cost}",
            read.unused_cost
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_delta_tables_take_concurrent_payers_and_are_read_outside() {
    let ep = endpoint();
    let c = client(&ep);
    let (staging, warehouse) = (bucket(&c, "stg").await, bucket(&c, "wh").await);
    let mut sources = Vec::new();
    let mut truth = Vec::new();
    for payer in PAYERS {
        let source = bucket(&c, "src").await;
        truth.push(generate(&ep, &source, payer, (2025, 7), 1, 1000).await);
        sources.push(source);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = fleet_settings(dir.path(), &staging, &warehouse, &sources);

    // Two runs at once, for different payers, into tables that do not exist yet: both
    // create and commit to the same three tables.
    let children: Vec<_> = PAYERS[..2]
        .iter()
        .map(|payer| {
            curflow_s3(dir.path(), &ep, &run_args(&config, &[payer]))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Then one run for all three: the first two are done already.
    let out = run(curflow_s3(dir.path(), &ep, &run_args(&config, &PAYERS)));
    assert!(out.status.success());
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        summary.matches("Already synchronized").count(),
        2,
        "{summary}"
    );

    let ri: Vec<(&str, f64)> = PAYERS
        .iter()
        .copied()
        .zip(truth.iter().map(|t| t.ri_unused_cost))
        .collect();
    let sp: Vec<(&str, f64)> = PAYERS
        .iter()
        .copied()
        .zip(truth.iter().map(|t| t.sp_unused_cost))
        .collect();
    let ri_table = "ri_wastage_hourly";
    assert_once(
        &read_outside(&ep, &warehouse, ri_table, "reservation_arn"),
        &ri,
        ri_table,
    );
    let sp_table = "sp_wastage_hourly";
    assert_once(
        &read_outside(&ep, &warehouse, sp_table, "savings_plan_arn"),
        &sp,
        sp_table,
    );
    // Partitioned as DESIGN.md says, in the warehouse bucket.
    let files = list(&c, &warehouse, "warehouse/ri_wastage_hourly").await;
    for payer in PAYERS {
        assert!(
            files.keys().any(|k| k
                .starts_with(&format!("payer_id={payer}/billing_period=2025-07/"))
                && k.ends_with(".parquet")),
            "{files:?}"
        );
    }
}

/// Runs July for `payer` through a proxy that kills the process the moment it sends the
/// commit of `table` (the PUT of its next `_delta_log/*.json`), so the commit never lands.
fn run_killed_at_commit(dir: &Path, ep: &str, config: &str, payer: &str, table: &str) {
    let pid = Arc::new(AtomicU32::new(0));
    // Counted here, before the kill: the proxy's own count is bumped after this hook
    // returns, which can be after the test has seen the process die.
    let commits_refused = Arc::new(AtomicU32::new(0));
    let commit = format!("/warehouse/{table}/_delta_log/");
    let refuse = {
        let (pid, commits_refused) = (Arc::clone(&pid), Arc::clone(&commits_refused));
        Arc::new(move |head: &str| {
            let hit = head.starts_with("PUT ") && head.contains(&commit);
            if hit {
                commits_refused.fetch_add(1, Ordering::SeqCst);
                let _ = Command::new("kill")
                    .args(["-9", &pid.load(Ordering::SeqCst).to_string()])
                    .status();
            }
            hit
        })
    };
    let proxy = FaultProxy::start(
        ep,
        Faults {
            refuse: Some(refuse),
            ..Faults::default()
        },
    );
    // The killed run's analytics scratch folder stays in TMPDIR: the test's folder.
    let child = curflow_s3(dir, &proxy.endpoint, &run_args(config, &[payer]))
        .env("TMPDIR", dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    pid.store(child.id(), Ordering::SeqCst);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        None,
        "killed at the commit of {table}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        commits_refused.load(Ordering::SeqCst),
        1,
        "one commit refused"
    );
    // The killed run's lease (1 s) expires before the next run.
    std::thread::sleep(Duration::from_millis(1500));
}

/// One payer's world with the final tables on S3: source, staging and warehouse buckets of
/// its own, and a [`settings`] file for them in a working folder.
pub struct OnePayer {
    /// The S3 server's endpoint.
    pub ep: String,
    /// A client of it.
    pub c: aws_sdk_s3::Client,
    /// The staging bucket.
    pub staging: String,
    /// The warehouse bucket (tables under `warehouse/`).
    pub warehouse: String,
    /// The source bucket (the export under `cur2/`).
    pub source: String,
    /// The payer, `PAYERS[0]`.
    pub payer: &'static str,
    /// The working folder.
    pub dir: tempfile::TempDir,
    /// The settings file's path.
    pub config: String,
}

impl OnePayer {
    pub async fn new() -> Self {
        let ep = endpoint();
        let c = client(&ep);
        let (staging, warehouse, source) = (
            bucket(&c, "stg").await,
            bucket(&c, "wh").await,
            bucket(&c, "src").await,
        );
        let payer = PAYERS[0];
        let dir = tempfile::tempdir().unwrap();
        let config = settings(dir.path(), &staging, &warehouse, &[(payer, &source)]);
        Self {
            ep,
            c,
            staging,
            warehouse,
            source,
            payer,
            dir,
            config,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_killed_between_data_files_and_commit_keeps_each_month_once() {
    let OnePayer {
        ep,
        c,
        staging: _,
        warehouse,
        source,
        payer,
        dir,
        config,
    } = OnePayer::new().await;
    let (ri, sp) = (
        ("ri_wastage_hourly", "reservation_arn"),
        ("sp_wastage_hourly", "savings_plan_arn"),
    );
    let read = |(table, arn): (&str, &str)| read_outside(&ep, &warehouse, table, arn);
    let data_files = async |table: &str| {
        list(
            &c,
            &warehouse,
            &format!("warehouse/{table}/payer_id={payer}/"),
        )
        .await
        .len()
    };

    let first = generate(&ep, &source, payer, (2025, 7), 1, 1000).await;
    let out = run(curflow_s3(dir.path(), &ep, &run_args(&config, &[payer])));
    assert!(out.status.success());
    let (ri_before, sp_before) = (read(ri), read(sp));
    assert_once(&ri_before, &[(payer, first.ri_unused_cost)], ri.0);
    assert_once(&sp_before, &[(payer, first.sp_unused_cost)], sp.0);

    // AWS restates July; the run staging it dies as it commits the new RI rows.
    let mut restated = GenerateOptions::new(payer, 2025, 7);
    restated.rows = 3_000;
    restated.rows_per_file = 1000;
    restated.delivery = 2;
    restated.seed = 99; // other usage, so other totals
    restated.root_url = format!("s3://{source}/cur2");
    let second = curflow::generate::generate(store(&ep, &source), &"cur2".into(), &restated)
        .await
        .unwrap();
    assert!((second.ri_unused_cost - first.ri_unused_cost).abs() > 0.01);
    let files_before = data_files(ri.0).await;
    run_killed_at_commit(dir.path(), &ep, &config, payer, ri.0);
    assert!(
        data_files(ri.0).await > files_before,
        "the new data files were written before the commit"
    );
    assert_eq!(read(ri), ri_before, "RI: the previous version, untouched");
    assert_eq!(read(sp), sp_before, "SP: the previous version, untouched");

    // The next run dies between the RI commit and the SP commit: each table still holds
    // the month once — RI the restated one, SP the previous one.
    run_killed_at_commit(dir.path(), &ep, &config, payer, sp.0);
    assert_once(&read(ri), &[(payer, second.ri_unused_cost)], ri.0);
    assert_eq!(read(sp), sp_before, "SP: the previous version, untouched");
    // A report of the month now would add up two runs: it is refused, saying why.
    let report = [
        "report", "--config", &config, "--env", "dev", "--payer", payer, "--period", "2025-07",
    ];
    let out = run(curflow_s3(dir.path(), &ep, &report));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not published whole") && stderr.contains("ri_wastage_hourly 20"),
        "{stderr}"
    );

    // AWS starts writing a third delivery: its manifest names a file not there yet, so
    // the next run cannot stage it. Analytics were never marked done for the staged
    // restatement, so that run analyses it again: both tables converge on it now, not
    // only once the third delivery is complete.
    let mut third = GenerateOptions::new(payer, 2025, 7);
    third.rows = 3_000;
    third.rows_per_file = 1000;
    third.delivery = 3;
    third.seed = 7;
    third.root_url = format!("s3://{source}/cur2");
    let third = curflow::generate::generate(store(&ep, &source), &"cur2".into(), &third)
        .await
        .unwrap();
    c.delete_object()
        .bucket(&source)
        .key(&third.files[0])
        .send()
        .await
        .unwrap();
    let out = run(curflow_s3(dir.path(), &ep, &run_args(&config, &[payer])));
    assert!(out.status.success());
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("staged copy up to date"), "{summary}");
    assert!((ri_waste(&summary) - second.ri_unused_cost).abs() < 0.01);
    assert_once(&read(ri), &[(payer, second.ri_unused_cost)], ri.0);
    assert_once(&read(sp), &[(payer, second.sp_unused_cost)], sp.0);
    let out = run(curflow_s3(dir.path(), &ep, &report));
    assert!(out.status.success(), "the month is whole again");
}
