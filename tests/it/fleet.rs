//! A test world of payers × two billing periods on the S3 server, which remembers
//! every delivery it made, and checks what a reader finds: each payer-period's staged
//! delivery (the folder its ledger names), the ledger, and every final table as delta-rs
//! reads it from outside.

use std::collections::BTreeMap;

use curflow::generate::GenerateReport;

use crate::delta_s3::{PAYERS, fleet_settings, python_on_s3, run_args};
use crate::s3_support::{
    bucket, client, endpoint, generate, ledger_keys, source_period, staged_period,
};

/// The billing periods a July run covers (`periods = 2`).
pub const PERIODS: [(i32, u32); 2] = [(2025, 7), (2025, 6)];

/// One payer-period's deliveries so far: each as its source listing (key → size) and the
/// generator's report.
type History = Vec<(BTreeMap<String, i64>, GenerateReport)>;

/// What delta-rs reads for one payer-month of one final table.
#[derive(Debug)]
pub struct Month {
    pub rows: usize,
    /// Distinct rows over every column: `rows` unless a row is there twice.
    pub distinct: usize,
    /// Distinct `processed_at`: 1 unless two runs' rows are mixed.
    pub runs: usize,
    pub unused_cost: f64,
}

/// Every final table of the warehouse bucket, by (table, payer, billing period); a table
/// not created yet reads as empty.
fn final_tables(ep: &str, warehouse: &str) -> BTreeMap<(String, String, String), Month> {
    let script = "import os, sys, deltalake, pyarrow.compute as pc\n\
        from deltalake.exceptions import TableNotFoundError\n\
        opts = {k: os.environ[k] for k in ('AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'AWS_ALLOW_HTTP')}\n\
        for name in ('ri_wastage_hourly', 'sp_wastage_hourly', 'commitment_reconciliation'):\n\
        \x20   try:\n\
        \x20       t = deltalake.DeltaTable(f's3://{sys.argv[1]}/warehouse/{name}', storage_options=opts).to_pyarrow_table()\n\
        \x20   except TableNotFoundError:\n\
        \x20       continue\n\
        \x20   for p, b in sorted(set(zip(t['payer_id'].to_pylist(), t['billing_period'].to_pylist()))):\n\
        \x20       s = t.filter(pc.and_(pc.equal(t['payer_id'], p), pc.equal(t['billing_period'], b)))\n\
        \x20       rows = list(zip(*(s[c].to_pylist() for c in s.column_names)))\n\
        \x20       cost = pc.sum(s['unused_cost']).as_py() if 'unused_cost' in s.column_names else 0.0\n\
        \x20       print(name, p, str(b).replace(' ', 'T'), s.num_rows, len(set(rows)), len(set(s['processed_at'].to_pylist())), repr(cost or 0.0), flush=True)\n\
        os._exit(0)";
    let out = python_on_s3(ep, script, &[warehouse]);
    out.lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let month = Month {
                rows: f[3].parse().unwrap(),
                distinct: f[4].parse().unwrap(),
                runs: f[5].parse().unwrap(),
                unused_cost: f[6].parse().unwrap(),
            };
            ((f[0].to_owned(), f[1].to_owned(), f[2].to_owned()), month)
        })
        .collect()
}

/// The test's world: payers (the first of [`PAYERS`]), each with its own source bucket,
/// and one staging and one warehouse bucket.
pub struct Fleet {
    pub ep: String,
    c: aws_sdk_s3::Client,
    /// Each payer's source bucket.
    pub sources: Vec<String>,
    /// The staging bucket.
    pub staging: String,
    warehouse: String,
    pub dir: tempfile::TempDir,
    pub config: String,
    /// Every delivery made, by (payer index, period).
    pub history: BTreeMap<(usize, (i32, u32)), History>,
}

impl Fleet {
    /// The world of the first `payers` of [`PAYERS`], with nothing delivered yet; runs
    /// hold a 1 s lease (a killed run's lease is soon taken over) until
    /// [`Self::production_lease`].
    pub async fn new(payers: usize) -> Self {
        let ep = endpoint();
        let c = client(&ep);
        let (staging, warehouse) = (bucket(&c, "stg").await, bucket(&c, "wh").await);
        let mut sources = Vec::new();
        for _ in 0..payers {
            sources.push(bucket(&c, "src").await);
        }
        let dir = tempfile::tempdir().unwrap();
        let config = fleet_settings(dir.path(), &staging, &warehouse, &sources);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replace("periods = 1\n", "periods = 2\n")).unwrap();
        Self {
            ep,
            c,
            sources,
            staging,
            warehouse,
            dir,
            config,
            history: BTreeMap::new(),
        }
    }

    /// Delivers (or restates) one payer-period at the source, and remembers it.
    pub async fn deliver(&mut self, payer: usize, period: (i32, u32)) {
        let history = self.history.entry((payer, period)).or_default();
        let delivery = history.len() as u32 + 1;
        let report = generate(
            &self.ep,
            &self.sources[payer],
            PAYERS[payer],
            period,
            delivery,
            400,
        )
        .await;
        let listing = source_period(&self.c, &self.sources[payer], &label(period)).await;
        history.push((listing, report));
    }

    /// Delivers every payer-period (again, once there is a delivery: a restatement).
    pub async fn deliver_all(&mut self) {
        for payer in 0..self.sources.len() {
            for period in PERIODS {
                self.deliver(payer, period).await;
            }
        }
    }

    /// Runs keep the production lease from now on: a 1 s lease leaves a renewal a few
    /// hundred milliseconds, which a loaded or faulty server can take (the fence then
    /// stops the run, as it should).
    pub fn production_lease(&self) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, text.replace("lease_ttl = \"1s\"\n", "")).unwrap();
    }

    /// Every final table as delta-rs reads it, by (table, payer, billing period).
    pub fn published(&self) -> BTreeMap<(String, String, String), Month> {
        final_tables(&self.ep, &self.warehouse)
    }

    /// The July run's arguments, every payer.
    pub fn args(&self) -> Vec<&str> {
        run_args(&self.config, &PAYERS[..self.sources.len()])
    }

    /// What a reader finds now: every payer-period's staged delivery and ledger are one
    /// delivery made so far, whole; every final table holds each payer-month from one run,
    /// no row twice, adding up to the truth of a delivery made so far.
    pub async fn check_readers(&self, when: &str) {
        for ((payer, period), history) in &self.history {
            let payer_id = PAYERS[*payer];
            let ledger = format!(
                "staging/_curflow/ledger/payer-{payer_id}/{}.json",
                label(*period)
            );
            let head = self
                .c
                .head_object()
                .bucket(&self.staging)
                .key(&ledger)
                .send()
                .await;
            if head.is_err() {
                continue; // not staged yet
            }
            let staged = staged_period(&self.c, &self.staging, payer_id, *period).await;
            assert!(
                history.iter().any(|(listing, _)| *listing == staged),
                "{when}: payer {payer_id} {}: a reader finds no one delivery: {staged:?}",
                label(*period)
            );
            assert_eq!(
                ledger_keys(&self.c, &self.staging, payer_id, &label(*period)).await,
                staged.keys().cloned().collect::<Vec<_>>(),
                "{when}: payer {payer_id} {}: the ledger",
                label(*period)
            );
        }
        for ((table, payer_id, billing_period), month) in final_tables(&self.ep, &self.warehouse) {
            let at = format!("{when}: {table} {payer_id} {billing_period}");
            assert_eq!(month.rows, month.distinct, "{at}: a row is there twice");
            assert_eq!(month.runs, 1, "{at}: rows of several runs");
            let payer = PAYERS.iter().position(|p| *p == payer_id).unwrap();
            let history = PERIODS
                .iter()
                .find(|p| billing_period.starts_with(&label(**p)))
                .and_then(|p| self.history.get(&(payer, *p)))
                .unwrap_or_else(|| panic!("{at}: a month never delivered"));
            let truth = |r: &GenerateReport| match table.as_str() {
                "ri_wastage_hourly" => Some(r.ri_unused_cost),
                "sp_wastage_hourly" => Some(r.sp_unused_cost),
                _ => None,
            };
            if let Some(truths) = history
                .iter()
                .map(|(_, r)| truth(r))
                .collect::<Option<Vec<f64>>>()
            {
                assert!(
                    truths.iter().any(|t| (t - month.unused_cost).abs() < 0.01),
                    "{at}: {} is no delivery's truth ({truths:?})",
                    month.unused_cost
                );
            }
        }
    }
    /// After a run that exited 0: every payer-period's staging and ledger are its latest
    /// delivery, and every final table holds it once, from one run, equal to the
    /// generator's truth to the cent.
    pub async fn check_converged(&self, when: &str) {
        let tables = final_tables(&self.ep, &self.warehouse);
        for ((payer, period), history) in &self.history {
            let payer_id = PAYERS[*payer];
            let at = format!("{when}: payer {payer_id} {}", label(*period));
            let (source, latest) = history.last().unwrap();
            let staged = staged_period(&self.c, &self.staging, payer_id, *period).await;
            assert_eq!(&staged, source, "{at}: staging is the latest delivery");
            assert_eq!(
                ledger_keys(&self.c, &self.staging, payer_id, &label(*period)).await,
                source.keys().cloned().collect::<Vec<_>>(),
                "{at}: the ledger"
            );
            for (table, truth) in [
                ("ri_wastage_hourly", latest.ri_unused_cost),
                ("sp_wastage_hourly", latest.sp_unused_cost),
            ] {
                let month = tables
                    .iter()
                    .find(|((t, p, b), _)| {
                        t == table && p == payer_id && b.starts_with(&label(*period))
                    })
                    .map(|(_, m)| m)
                    .unwrap_or_else(|| panic!("{at}: {table} does not hold the month"));
                assert!(
                    (month.unused_cost - truth).abs() < 0.01
                        && month.rows == month.distinct
                        && month.runs == 1,
                    "{at}: {table} {month:?} vs truth {truth}"
                );
            }
        }
    }
}

/// `(2025, 7)` → `2025-07`.
fn label((year, month): (i32, u32)) -> String {
    format!("{year}-{month:02}")
}

/// The next number of a seeded generator (a 64-bit LCG; the top bits are used).
pub fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}
