//! The warehouse conformance suite (STYLE.md: one suite per trait, run against every
//! implementation): the checks of `Warehouse`, `WasteReader` and `PayerTable` are written
//! once, over `curflow::warehouse::Backend` as `warehouse::open` returns it, and run
//! against the embedded engine on local folders and against Snowflake — the SQL API fake
//! (tests/it/snowflake_fake.rs) executing every statement in fakesnow, with the staging on
//! the S3 test server.
//!
//! What each backend must do, checked against the generator's ground truth: a staged
//! payer-month, analysed, is held exactly once in the final tables with the truth's rows
//! and waste to the cent; a restated delivery analysed again replaces it (the new numbers,
//! never the old plus the new); `breakdown` gives the truth's totals, commitments and
//! applications; `last_processed` is None before, within the run after, and None for a
//! payer never analysed; `payer_configs` returns what the payer table holds.
//!
//! Only the fixture differs per backend: where a delivery is staged, how the payer table is
//! filled (`Embedded::save_payer`; Snowflake's owners insert rows), and an outside read of
//! a final table (DataFusion over the Delta table; SQL in the fake's database).

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use chrono::{DateTime, Utc};
use curflow::generate::{GenerateOptions, GroundTruth};
use curflow::payers::PayerConfig;
use curflow::storage::{Location, StoreUrl};
use curflow::sync::{Fence, Layout};
use curflow::task::{BillingPeriod, PayerId};
use curflow::warehouse::{
    Backend, Embedded, PayerTable, StagedPeriod, Warehouse, WarehouseSettings, WasteBreakdown,
    WasteReader, WasteTotals, tables,
};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::{Value, json};

use crate::s3_support::{bucket, client, endpoint, store};
use crate::snowflake_fake::FakeSnowflake;

const PAYER: &str = "671238551718";
/// A payer that is in the payer table but never analysed.
const OTHER_PAYER: &str = "204857193650";
const APPLICATION_TAG: &str = "user_application";
/// Seeds of the first delivery and of the restatement: different numbers, same month.
const FIRST_SEED: u64 = 11;
const RESTATED_SEED: u64 = 12;
/// Money agrees to the cent.
const CENT: f64 = 0.005;
/// Where the Snowflake profile keeps its final tables (and the fake its session).
const SNOWFLAKE_CONTEXT: (&str, &str) = ("FINOPS", "CUR");

#[tokio::test(flavor = "multi_thread")]
async fn conformance_embedded() {
    suite(Subject::embedded().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_snowflake() {
    suite(Subject::snowflake().await).await;
}

/// Every check, in the order a warehouse lives through them.
async fn suite(subject: Subject) {
    payer_table_holds_what_was_written(&subject).await;
    nothing_is_read_before_the_first_analysis(&subject).await;

    let first = subject.deliver(1, FIRST_SEED, 1).await;
    let (totals, during) = subject.analyse().await;
    the_run_reports_the_truth(&subject, &totals, &first);
    the_payer_month_is_held_once(&subject, &first).await;
    breakdown_matches_the_truth(&subject, &first).await;
    last_processed_is_the_run(&subject, during).await;

    // The restatement also brings a second set of commitments: twice the rows in every
    // intermediate and final table, and commitments the first delivery did not have.
    let restated = subject.deliver(2, RESTATED_SEED, 2).await;
    assert!(
        (restated.ri_cost - first.ri_cost).abs() > CENT
            && (restated.sp_cost - first.sp_cost).abs() > CENT,
        "the restatement must change the numbers for the checks to mean anything: RI {} → {}, SP {} → {}",
        first.ri_cost,
        restated.ri_cost,
        first.sp_cost,
        restated.sp_cost
    );
    let (totals, during) = subject.analyse().await;
    the_run_reports_the_truth(&subject, &totals, &restated);
    the_payer_month_is_held_once(&subject, &restated).await;
    breakdown_matches_the_truth(&subject, &restated).await;
    last_processed_is_the_run(&subject, during).await;

    an_empty_delivery_leaves_nothing_of_the_payer_month(&subject).await;
}

/// `clear_period` (an empty delivery) removes the payer-month from every waste table; the
/// breakdown then finds nothing.
async fn an_empty_delivery_leaves_nothing_of_the_payer_month(subject: &Subject) {
    let name = subject.name;
    subject
        .backend
        .clear_period(&subject.staged())
        .await
        .unwrap_or_else(|e| panic!("{name}: clear_period: {e}"));
    for (table, _) in tables::waste_tables() {
        assert_eq!(
            subject.held(table.name).await,
            (0, 0.0),
            "{name}: {} holds nothing of the payer-month",
            table.name
        );
    }
    let breakdown = subject.breakdown().await;
    assert!(
        breakdown.top_commitments.is_empty()
            && breakdown.ri_unused_cost == 0.0
            && breakdown.sp_unused_cost == 0.0,
        "{name}: nothing to break down: {breakdown:?}"
    );
}

/// The payer table's entries as a settings file would hold them; both backends store them
/// their own way and must give back the same configurations.
fn payer_entries() -> Vec<Value> {
    vec![
        json!({"payer_id": PAYER, "source": "s3://cur-exports/payer-a/cur2", "layout": "cur2", "active": true}),
        json!({
            "payer_id": OTHER_PAYER, "source": "s3://cur-exports/payer-b/legacy", "layout": "legacy",
            "region": "eu-west-1", "role_arn": "arn:aws:iam::204857193650:role/curflow-read",
            "external_id": "ext-42", "active": false,
        }),
    ]
}

async fn payer_table_holds_what_was_written(subject: &Subject) {
    let entries = payer_entries();
    subject.fill_payer_table(&entries).await;
    let by_id = |a: &PayerConfig, b: &PayerConfig| a.payer_id.as_str().cmp(b.payer_id.as_str());
    let mut expected: Vec<PayerConfig> = entries
        .iter()
        .map(|e| serde_json::from_value(e.clone()).unwrap())
        .collect();
    expected.sort_by(by_id);
    let mut got = subject
        .backend
        .payer_configs()
        .await
        .unwrap_or_else(|e| panic!("{}: payer_configs: {e}", subject.name));
    got.sort_by(by_id);
    assert_eq!(got, expected, "{}: payer_configs", subject.name);
}

async fn nothing_is_read_before_the_first_analysis(subject: &Subject) {
    let name = subject.name;
    assert_eq!(
        subject.backend.last_processed(&payer(PAYER)).await.unwrap(),
        None,
        "{name}: last_processed before any analysis"
    );
    let empty = subject.breakdown().await;
    assert!(
        empty.top_commitments.is_empty()
            && empty.applications.is_empty()
            && empty.hourly.is_empty()
            && empty.ri_unused_cost == 0.0
            && empty.sp_unused_cost == 0.0,
        "{name}: breakdown of a month never analysed: {empty:?}"
    );
}

fn the_run_reports_the_truth(subject: &Subject, totals: &WasteTotals, truth: &Truth) {
    let name = subject.name;
    let kinds: Vec<&str> = totals.tables.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, ["ri", "sp"], "{name}: totals per waste table");
    for total in &totals.tables {
        let (rows, cost) = truth.of(total.table);
        assert_eq!(
            total.rows, rows,
            "{name}: {} rows in the totals",
            total.table
        );
        assert_cents(
            total.unused_cost,
            cost,
            &format!("{name}: {} waste in the totals", total.table),
        );
    }
    assert!(
        totals.mismatches.is_empty(),
        "{name}: every commitment reconciles: {:?}",
        totals.mismatches
    );
}

async fn the_payer_month_is_held_once(subject: &Subject, truth: &Truth) {
    for (table, _) in tables::waste_tables() {
        let (rows, cost) = subject.held(table.name).await;
        let (truth_rows, truth_cost) = truth.of(table.name);
        // Held twice (old plus new, or the same delivery appended) would double the rows.
        assert_eq!(
            rows, truth_rows,
            "{}: {} rows held for the payer-month",
            subject.name, table.name
        );
        assert_cents(
            cost,
            truth_cost,
            &format!("{}: {} waste held", subject.name, table.name),
        );
    }
}

async fn breakdown_matches_the_truth(subject: &Subject, truth: &Truth) {
    let name = subject.name;
    let got = subject.breakdown().await;
    assert_eq!(got.hours, 744, "{name}: hours of July");
    assert_cents(
        got.ri_unused_cost,
        truth.ri_cost,
        &format!("{name}: RI total"),
    );
    assert_cents(
        got.sp_unused_cost,
        truth.sp_cost,
        &format!("{name}: SP total"),
    );
    assert_eq!(
        got.top_commitments.len(),
        truth.commitments.len().min(10),
        "{name}: top commitments"
    );
    let top = &got.top_commitments[0];
    let (truth_kind, truth_arn, truth_cost) = &truth.top_commitment;
    assert_eq!(
        (top.kind, top.arn.as_str()),
        (truth_kind.as_str(), truth_arn.as_str()),
        "{name}: the most wasteful commitment"
    );
    assert_cents(
        top.unused_cost,
        *truth_cost,
        &format!("{name}: top commitment"),
    );
    for commitment in &got.top_commitments {
        let cost = truth.commitments.get(&commitment.arn).unwrap_or_else(|| {
            panic!(
                "{name}: commitment {} is not in the delivery analysed",
                commitment.arn
            )
        });
        assert_cents(
            commitment.unused_cost,
            *cost,
            &format!("{name}: commitment {}", commitment.arn),
        );
    }
    let applications: BTreeMap<&str, (f64, f64)> = got
        .applications
        .iter()
        .map(|a| (a.application.as_str(), (a.ri_unused_cost, a.sp_unused_cost)))
        .collect();
    let names: Vec<&str> = applications.keys().copied().collect();
    let truth_names: Vec<&str> = truth.applications.keys().map(String::as_str).collect();
    assert_eq!(names, truth_names, "{name}: applications");
    for (application, (ri, sp)) in &truth.applications {
        let (got_ri, got_sp) = applications[application.as_str()];
        assert_cents(got_ri, *ri, &format!("{name}: RI waste of {application}"));
        assert_cents(got_sp, *sp, &format!("{name}: SP waste of {application}"));
    }
    let hourly: f64 = got.hourly.iter().map(|(_, _, cost)| cost).sum();
    assert_cents(
        hourly,
        truth.ri_cost + truth.sp_cost,
        &format!("{name}: hourly waste"),
    );
}

async fn last_processed_is_the_run(
    subject: &Subject,
    (started, ended): (DateTime<Utc>, DateTime<Utc>),
) {
    let name = subject.name;
    let at = subject
        .backend
        .last_processed(&payer(PAYER))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{name}: last_processed after an analysis"));
    // Timestamps are kept to the microsecond.
    let slack = chrono::Duration::milliseconds(1);
    assert!(
        at >= started - slack && at <= ended + slack,
        "{name}: last_processed {at} is not within the run ({started} – {ended})"
    );
    assert_eq!(
        subject
            .backend
            .last_processed(&payer(OTHER_PAYER))
            .await
            .unwrap(),
        None,
        "{name}: last_processed of a payer never analysed"
    );
}

fn assert_cents(got: f64, expected: f64, what: &str) {
    assert!(
        (got - expected).abs() < CENT,
        "{what}: {got:.4} where the ground truth says {expected:.4}"
    );
}

fn payer(id: &str) -> PayerId {
    PayerId::parse(id).unwrap()
}

fn july() -> BillingPeriod {
    BillingPeriod::new(2025, 7).unwrap()
}

/// The ground truth of one delivery, summed as the checks need it.
struct Truth {
    ri_rows: usize,
    ri_cost: f64,
    sp_rows: usize,
    sp_cost: f64,
    /// Waste per commitment ARN.
    commitments: BTreeMap<String, f64>,
    /// (kind, ARN, waste) of the most wasteful commitment (ties: the smaller ARN).
    top_commitment: (String, String, f64),
    /// (RI, SP) waste per application.
    applications: BTreeMap<String, (f64, f64)>,
}

impl Truth {
    fn new(truth: &GroundTruth) -> Self {
        let mut commitments: BTreeMap<String, (String, f64)> = BTreeMap::new();
        let mut applications: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for row in &truth.ri {
            commitments
                .entry(row.reservation_arn.clone())
                .or_insert(("ri".into(), 0.0))
                .1 += row.unused_cost;
            applications.entry(row.application.clone()).or_default().0 += row.unused_cost;
        }
        for row in &truth.sp {
            commitments
                .entry(row.savings_plan_arn.clone())
                .or_insert(("sp".into(), 0.0))
                .1 += row.unused_cost;
            applications.entry(row.application.clone()).or_default().1 += row.unused_cost;
        }
        let top_commitment = commitments
            .iter()
            .max_by(|(a_arn, (_, a)), (b_arn, (_, b))| {
                a.total_cmp(b).then_with(|| b_arn.cmp(a_arn))
            })
            .map(|(arn, (kind, cost))| (kind.clone(), arn.clone(), *cost))
            .expect("the delivery has commitments");
        Self {
            ri_rows: truth.ri.len(),
            ri_cost: truth.ri.iter().map(|r| r.unused_cost).sum(),
            sp_rows: truth.sp.len(),
            sp_cost: truth.sp.iter().map(|r| r.unused_cost).sum(),
            commitments: commitments
                .into_iter()
                .map(|(arn, (_, cost))| (arn, cost))
                .collect(),
            top_commitment,
            applications,
        }
    }

    /// (rows, waste) of waste table `table`.
    fn of(&self, table: &str) -> (usize, f64) {
        match table {
            tables::RI_WASTAGE => (self.ri_rows, self.ri_cost),
            tables::SP_WASTAGE => (self.sp_rows, self.sp_cost),
            other => panic!("no ground truth for {other}"),
        }
    }
}

/// One implementation under test, with what the checks need besides its traits.
struct Subject {
    name: &'static str,
    backend: Backend,
    /// The store the sources and the staging live in, and its URL (`s3://bucket`, or a
    /// local folder).
    store: Arc<dyn ObjectStore>,
    root_url: String,
    side: Side,
    _dir: tempfile::TempDir,
}

/// How the payer table is filled and the final tables read from outside the traits.
enum Side {
    Embedded(Box<Embedded>),
    Snowflake(FakeSnowflake),
}

impl Subject {
    /// The embedded warehouse, staging and final tables in a temporary folder.
    async fn embedded() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = dir.path().join("warehouse");
        // The Delta tables are created in folders that exist (as `curflow run` prepares them).
        for table in tables::FINAL_TABLES
            .iter()
            .map(|t| t.name)
            .chain([tables::PAYER_CONFIG])
        {
            std::fs::create_dir_all(warehouse.join(table)).unwrap();
        }
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let settings = WarehouseSettings::Embedded {
            dir: StoreUrl::parse(warehouse.to_str().unwrap()).unwrap(),
            keep_replaced: curflow::warehouse::DEFAULT_KEEP_REPLACED,
            memory_limit: curflow::warehouse::DEFAULT_MEMORY_LIMIT,
        };
        let backend = curflow::warehouse::open(&settings).await.unwrap();
        let writer = curflow::warehouse::payer_table_for_writing(&settings)
            .await
            .unwrap();
        Self {
            name: "embedded",
            backend,
            store: Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&data).unwrap()),
            root_url: StoreUrl::parse(data.to_str().unwrap()).unwrap().to_string(),
            side: Side::Embedded(Box::new(writer)),
            _dir: dir,
        }
    }

    /// Snowflake through the SQL API fake executing in fakesnow, staging on the S3 server,
    /// opened from a settings profile as `curflow` opens it.
    async fn snowflake() -> Self {
        let endpoint = endpoint();
        let staging = bucket(&client(&endpoint), "conform").await;
        let dir = tempfile::tempdir().unwrap();
        let (pem, public_key) = signing_key();
        let key_file = dir.path().join("snowflake_key.p8");
        std::fs::write(&key_file, pem).unwrap();
        let fake = FakeSnowflake::start("XY12345", "curflow", public_key);
        fake.execute_in_fakesnow(&endpoint);
        let (database, schema) = SNOWFLAKE_CONTEXT;
        let config = dir.path().join("curflow.toml");
        std::fs::write(
            &config,
            format!(
                "[dev]\nstaging = \"s3://{staging}/staging\"\nwarehouse = \"snowflake\"\n\
                 [dev.snowflake]\naccount = \"xy12345.us-east-1\"\nuser = \"curflow\"\n\
                 warehouse = \"CURFLOW_WH\"\ndatabase = \"{database}\"\nschema = \"{schema}\"\n\
                 base_url = \"{}\"\nstorage_integration = \"CURFLOW_S3\"\n\
                 private_key = {{ file = \"{}\" }}\n",
                fake.url,
                key_file.display()
            ),
        )
        .unwrap();
        let settings = curflow::settings::SettingsSource {
            file: Some(config),
            ..Default::default()
        }
        .load("dev")
        .unwrap_or_else(|e| panic!("the Snowflake profile: {e}"))
        .warehouse;
        let backend = curflow::warehouse::open(&settings).await.unwrap();
        Self {
            name: "snowflake",
            backend,
            store: store(&endpoint, &staging),
            root_url: format!("s3://{staging}"),
            side: Side::Snowflake(fake),
            _dir: dir,
        }
    }

    /// Generates delivery `delivery` of the payer's July with `seed` and `commitment_sets`
    /// sets of commitments, and stages it as sync does: the staged folder then holds exactly
    /// that delivery's data files. Returns its ground truth.
    async fn deliver(&self, delivery: u32, seed: u64, commitment_sets: u32) -> Truth {
        let mut options = GenerateOptions::new(PAYER, 2025, 7);
        options.rows = 3_000;
        options.rows_per_file = 1_500;
        options.seed = seed;
        options.commitment_sets = commitment_sets;
        options.delivery = delivery;
        let source = Path::from(format!("sources/payer-{PAYER}"));
        curflow::generate::generate(Arc::clone(&self.store), &source, &options)
            .await
            .unwrap();
        let staged = self.staged_prefix();
        for old in self.list(&staged).await {
            self.store.delete(&old).await.unwrap();
        }
        let data = source.clone().join("data").join("BILLING_PERIOD=2025-07");
        let files = self.list(&data).await;
        assert!(!files.is_empty(), "the generator wrote data files");
        for file in files {
            let bytes = self.store.get(&file).await.unwrap().bytes().await.unwrap();
            let name = file.filename().unwrap().to_owned();
            self.store
                .put(&staged.clone().join(name.as_str()), PutPayload::from(bytes))
                .await
                .unwrap();
        }
        Truth::new(&curflow::generate::ground_truth(&options))
    }

    fn staged_prefix(&self) -> Path {
        Path::from(format!("staging/year=2025/month=7/payer-{PAYER}"))
    }

    async fn list(&self, prefix: &Path) -> Vec<Path> {
        self.store
            .list(Some(prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .unwrap()
    }

    /// Registers the staged payer-month and runs the analytics on it; the totals, and the
    /// time the run took place in.
    async fn analyse(&self) -> (WasteTotals, (DateTime<Utc>, DateTime<Utc>)) {
        let staged = self.staged();
        let started = Utc::now();
        let table = self
            .backend
            .register_period(&staged)
            .await
            .unwrap_or_else(|e| panic!("{}: register_period: {e}", self.name));
        let outcome = self
            .backend
            .run_analytics(&table, APPLICATION_TAG)
            .await
            .unwrap_or_else(|e| panic!("{}: run_analytics: {e}", self.name));
        let ended = Utc::now();
        assert_eq!(outcome.failure(), None, "{}: analytics", self.name);
        let totals = outcome
            .totals
            .unwrap_or_else(|| panic!("{}: totals of a successful run", self.name));
        (totals, (started, ended))
    }

    /// The staged payer-month as the pipeline hands it to the warehouse.
    fn staged(&self) -> StagedPeriod {
        let url = StoreUrl::parse(&format!("{}/{}", self.root_url, self.staged_prefix())).unwrap();
        // The backends read the staged files themselves (Snowflake too, to inspect them):
        // on S3 through the test's store, which carries the test server's credentials.
        let location = match &self.side {
            Side::Embedded(_) => Location::local(&url).unwrap(),
            Side::Snowflake(_) => Location::over(&url, Arc::clone(&self.store)),
        };
        StagedPeriod {
            payer: payer(PAYER),
            period: july(),
            location,
            layout: Layout::Cur2,
            fence: Fence::none(),
        }
    }

    async fn breakdown(&self) -> WasteBreakdown {
        self.backend
            .breakdown(&payer(PAYER), july())
            .await
            .unwrap_or_else(|e| panic!("{}: breakdown: {e}", self.name))
    }

    /// Writes the payer table as its owner does.
    async fn fill_payer_table(&self, entries: &[Value]) {
        match &self.side {
            Side::Embedded(warehouse) => {
                for entry in entries {
                    warehouse.save_payer(&entry.to_string()).await.unwrap();
                }
            }
            Side::Snowflake(fake) => {
                let columns = [
                    "payer_id",
                    "source",
                    "layout",
                    "region",
                    "role_arn",
                    "external_id",
                    "active",
                ];
                let mut statements = vec![
                    "CREATE DATABASE IF NOT EXISTS aws_az_share".to_owned(),
                    "CREATE SCHEMA IF NOT EXISTS aws_az_share.metadata".to_owned(),
                    // The table has columns curflow does not read, as the production one does.
                    "CREATE OR REPLACE TABLE aws_az_share.metadata.pro_refresh_config (payer_id VARCHAR, source VARCHAR, layout VARCHAR, region VARCHAR, role_arn VARCHAR, external_id VARCHAR, active BOOLEAN, owner_team VARCHAR)".to_owned(),
                ];
                for entry in entries {
                    let values: Vec<String> = columns
                        .iter()
                        .map(|c| match &entry[c] {
                            Value::Null => "NULL".to_owned(),
                            Value::Bool(b) => b.to_string().to_uppercase(),
                            Value::String(s) => format!("'{}'", s.replace('\'', "''")),
                            other => panic!("{c}: {other}"),
                        })
                        .collect();
                    statements.push(format!(
                        "INSERT INTO aws_az_share.metadata.pro_refresh_config ({}, owner_team) VALUES ({}, 'finops')",
                        columns.join(", "),
                        values.join(", ")
                    ));
                }
                let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
                fake.sql(SNOWFLAKE_CONTEXT, &statements);
            }
        }
    }

    /// (rows, Σ unused_cost) that final table `table` holds for the payer's July, read
    /// from outside the traits.
    async fn held(&self, table: &str) -> (usize, f64) {
        let filter = format!("payer_id = '{PAYER}' AND billing_period = '2025-07'");
        match &self.side {
            Side::Embedded(warehouse) => {
                let provider = warehouse
                    .final_table(table)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("embedded: final table {table} exists"));
                let ctx = datafusion::prelude::SessionContext::new();
                ctx.register_table("held", provider).unwrap();
                let batches = crate::support::query(
                    &ctx,
                    &format!(
                        "SELECT count(*), coalesce(sum(unused_cost), 0) FROM held WHERE {filter}"
                    ),
                )
                .await;
                let rows = batches[0].column(0).as_primitive::<Int64Type>().value(0);
                let cost = batches[0].column(1).as_primitive::<Float64Type>().value(0);
                (usize::try_from(rows).unwrap(), cost)
            }
            Side::Snowflake(fake) => {
                let sql = format!(
                    "SELECT COUNT(*), COALESCE(SUM(unused_cost), 0) FROM {table} WHERE {filter}"
                );
                let result = fake.sql(SNOWFLAKE_CONTEXT, &[&sql]);
                let cell = |i: usize| result[0][0][i].clone().unwrap_or_default();
                (cell(0).parse().unwrap(), cell(1).parse().unwrap())
            }
        }
    }
}

/// A fresh RSA key pair for the fake's key-pair JWTs: (PKCS#8 PEM, SubjectPublicKeyInfo
/// DER). Made per test, never stored.
fn signing_key() -> (String, Vec<u8>) {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8: Pkcs8V1Der = pair.as_der().unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        pem.push_str(line);
        pem.push('\n');
        rest = tail;
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let public_key = pair.public_key().as_der().unwrap().as_ref().to_vec();
    (pem, public_key)
}
