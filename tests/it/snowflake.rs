//! The Snowflake backend: `curflow run` against the SQL API fake (tests/it/snowflake_fake.rs)
//! with the staging on the S3 test server — the statements it sends, retries, polling,
//! partitions and failure paths — plus golden texts of every generated statement, their
//! parse by sqlparser's Snowflake dialect, and the Snowflake analytics run through fakesnow
//! on generator data against the ground truth.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use curflow::sync::Layout;
use curflow::task::{BillingPeriod, PayerId};
use curflow::warehouse::Params;
use curflow::warehouse::snowflake::{analytics_statements, ddl};

use crate::s3_support::{
    bucket, client, curflow_s3, endpoint, generate, list, staged_folder, task_args,
};
use crate::snowflake_fake::{Answer, FakeSnowflake};
use crate::support::run;

const PAYER: &str = "671238551718";

/// A fresh RSA key: (PKCS#8 PEM, public key DER). Generated per test, never stored.
fn key() -> (String, Vec<u8>) {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<String> = body
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let public = key.public_key().as_der().unwrap().as_ref().to_vec();
    (pem, public)
}

/// A source export on S3, an empty staging bucket, the fake (accepting `public`) with the
/// payer in its payer table, and a settings file whose only payer source is that table.
struct Setup {
    dir: tempfile::TempDir,
    fake: FakeSnowflake,
    config: String,
    endpoint: String,
    staging: String,
    /// The source bucket.
    source: String,
}

async fn setup(on_sql_error: &str, accepted_key: Option<Vec<u8>>) -> Setup {
    setup_layout(on_sql_error, accepted_key, Layout::Cur2, Scripted).await
}

/// Whether the fake answers from scripted rows or executes every statement in fakesnow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Statements {
    /// The payer table and the totals are scripted; nothing is executed.
    Scripted,
    /// Every statement runs in fakesnow; the payer table is filled there.
    Fakesnow,
}
use Statements::{Fakesnow, Scripted};

/// Where the fake keeps the final tables (the profile's database and schema).
const CONTEXT: (&str, &str) = ("FINOPS", "CUR");

/// [`setup`] with the payer's export written (and named in the payer table) in `layout`,
/// the statements answered by `engine`.
async fn setup_layout(
    on_sql_error: &str,
    accepted_key: Option<Vec<u8>>,
    layout: Layout,
    engine: Statements,
) -> Setup {
    let endpoint = endpoint();
    let s3 = client(&endpoint);
    let source = bucket(&s3, "sfsrc").await;
    let staging = bucket(&s3, "sfstage").await;
    if layout == Layout::Legacy {
        let mut options = curflow::generate::GenerateOptions::new(PAYER, 2025, 7);
        options.rows = 3_000;
        options.export_name = "legacy-cur".to_owned();
        options.root_url = format!("s3://{source}/cur2");
        options.layout = Layout::Legacy;
        curflow::generate::generate(
            crate::s3_support::store(&endpoint, &source),
            &object_store::path::Path::from("cur2"),
            &options,
        )
        .await
        .unwrap();
    } else {
        generate(&endpoint, &source, PAYER, (2025, 7), 1, 100_000).await;
    }
    let layout_name = if layout == Layout::Legacy {
        "legacy"
    } else {
        "cur2"
    };
    let dir = tempfile::tempdir().unwrap();
    let (pem, public) = key();
    let key_file = dir.path().join("snowflake_key.p8");
    std::fs::write(&key_file, pem).unwrap();
    let fake = FakeSnowflake::start("XY12345", "curflow", accepted_key.unwrap_or(public));
    if engine == Fakesnow {
        fake.execute_in_fakesnow(&endpoint);
        let insert = format!(
            "INSERT INTO aws_az_share.metadata.pro_refresh_config VALUES ('{PAYER}', 's3://{source}/cur2', '{layout_name}', TRUE, 'finops')"
        );
        fake.sql(
            CONTEXT,
            &[
                "CREATE DATABASE IF NOT EXISTS aws_az_share",
                "CREATE SCHEMA IF NOT EXISTS aws_az_share.metadata",
                "CREATE OR REPLACE TABLE aws_az_share.metadata.pro_refresh_config (payer_id VARCHAR, source VARCHAR, layout VARCHAR, active BOOLEAN, owner_team VARCHAR)",
                &insert,
            ],
        );
    } else {
        script_answers(&fake, &source, layout_name);
    }
    let config = dir.path().join("curflow.toml");
    // Unquoted identifiers in any case, as SQL takes them: the SQL API's fields are
    // case-sensitive, so curflow must send the names Snowflake stores (upper case).
    std::fs::write(
        &config,
        format!(
            "[dev]\nstaging = \"s3://{staging}/staging\"\nwarehouse = \"snowflake\"\nperiods = 1\non_sql_error = \"{on_sql_error}\"\n\
             [dev.snowflake]\naccount = \"xy12345.us-east-1\"\nuser = \"curflow\"\nrole = \"curflow\"\nwarehouse = \"curflow_wh\"\n\
             database = \"FinOps\"\nschema = \"cur\"\nbase_url = \"{}\"\nstorage_integration = \"CURFLOW_S3\"\n\
             private_key = {{ file = \"{}\" }}\n",
            fake.url,
            key_file.display()
        ),
    )
    .unwrap();
    Setup {
        config: config.display().to_string(),
        dir,
        fake,
        endpoint,
        staging,
        source,
    }
}

/// The payer table's row and the analytics' totals, as scripted answers.
fn script_answers(fake: &FakeSnowflake, source: &str, layout_name: &str) {
    fake.answer(
        "FROM aws_az_share.metadata.pro_refresh_config",
        Answer::Rows(
            vec!["PAYER_ID", "SOURCE", "LAYOUT", "ACTIVE", "OWNER_TEAM"],
            vec![vec![
                Some(PAYER.into()),
                Some(format!("s3://{source}/cur2")),
                Some(layout_name.into()),
                Some("true".into()),
                Some("finops".into()),
            ]],
        ),
    );
    fake.answer(
        "SELECT 'ri' AS kind, COUNT(*)",
        Answer::Rows(
            vec!["KIND", "ROW_COUNT", "UNUSED_COST"],
            vec![
                vec![Some("ri".into()), Some("120".into()), Some("45.5".into())],
                vec![Some("sp".into()), Some("30".into()), Some("12.25".into())],
            ],
        ),
    );
    fake.answer(
        "FROM new_commitment_reconciliation WHERE",
        Answer::Rows(
            vec!["KIND", "COMMITMENT_ARN", "EXPECTED", "COMPUTED"],
            vec![vec![
                Some("ri".into()),
                Some("arn:aws:ec2:us-east-1:1:reserved-instances/r-1".into()),
                Some("10.0".into()),
                Some("9.5".into()),
            ]],
        ),
    );
}

impl Setup {
    fn run(&self) -> std::process::Output {
        run(curflow_s3(
            self.dir.path(),
            &self.endpoint,
            &task_args("run", &self.config, PAYER, "2025", "7"),
        ))
    }

    async fn staged_files(&self) -> usize {
        list(&client(&self.endpoint), &self.staging, "staging/year=")
            .await
            .len()
    }
}

/// The statements that register the staged July whose folder is at `stage_url`.
fn expected_register(stage_url: &str) -> Vec<String> {
    let mut expected = vec![
        "CREATE FILE FORMAT IF NOT EXISTS curflow_parquet TYPE = PARQUET".to_owned(),
        format!(
            "CREATE OR REPLACE STAGE curflow_stage_{PAYER}_2025_07 URL = '{stage_url}' STORAGE_INTEGRATION = CURFLOW_S3 FILE_FORMAT = (FORMAT_NAME = 'curflow_parquet')"
        ),
        format!(
            "CREATE OR REPLACE EXTERNAL TABLE cur_{PAYER}_2025_07 USING TEMPLATE (SELECT ARRAY_AGG(OBJECT_CONSTRUCT('COLUMN_NAME', COLUMN_NAME, 'TYPE', TYPE, 'NULLABLE', NULLABLE, 'EXPRESSION', EXPRESSION)) WITHIN GROUP (ORDER BY ORDER_ID) FROM TABLE(INFER_SCHEMA(LOCATION => '@curflow_stage_{PAYER}_2025_07/', FILE_FORMAT => 'curflow_parquet', IGNORE_CASE => TRUE))) LOCATION = @curflow_stage_{PAYER}_2025_07/ FILE_FORMAT = (FORMAT_NAME = 'curflow_parquet') AUTO_REFRESH = FALSE REFRESH_ON_CREATE = FALSE"
        ),
        format!("ALTER EXTERNAL TABLE cur_{PAYER}_2025_07 REFRESH"),
    ];
    expected.extend(expected_final_tables());
    expected
}

/// The view over a CUR 2.0 period: its `resource_tags` map in either shape.
fn expected_map_view() -> Vec<String> {
    vec![
        format!(
            "CREATE OR REPLACE TEMPORARY TABLE cur_tag_maps AS SELECT t.tags_text, OBJECT_AGG(f.value:key::VARCHAR, f.value:value) AS tags FROM (SELECT DISTINCT TO_JSON(resource_tags:key_value) AS tags_text FROM cur_{PAYER}_2025_07 WHERE IS_ARRAY(resource_tags:key_value)) t, LATERAL FLATTEN(input => PARSE_JSON(t.tags_text)) f GROUP BY t.tags_text"
        ),
        format!(
            "CREATE OR REPLACE TEMPORARY VIEW cur_line_items AS SELECT e.* EXCLUDE (resource_tags), COALESCE(m.tags, e.resource_tags) AS resource_tags FROM cur_{PAYER}_2025_07 e LEFT JOIN cur_tag_maps m ON m.tags_text = TO_JSON(e.resource_tags:key_value)"
        ),
    ]
}

fn expected_final_tables() -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS ri_wastage_hourly (payer_id VARCHAR NOT NULL, billing_period VARCHAR NOT NULL, usage_hour TIMESTAMP_NTZ NOT NULL, reservation_arn VARCHAR NOT NULL, owner_account_id VARCHAR, region VARCHAR, product_code VARCHAR, application VARCHAR NOT NULL, reserved_units FLOAT NOT NULL, used_units FLOAT NOT NULL, unused_units FLOAT NOT NULL, unused_cost FLOAT NOT NULL, attribution VARCHAR NOT NULL, processed_at TIMESTAMP_NTZ NOT NULL) CLUSTER BY (payer_id, billing_period)".to_owned(),
        "CREATE TABLE IF NOT EXISTS sp_wastage_hourly (payer_id VARCHAR NOT NULL, billing_period VARCHAR NOT NULL, usage_hour TIMESTAMP_NTZ NOT NULL, savings_plan_arn VARCHAR NOT NULL, owner_account_id VARCHAR, region VARCHAR, product_code VARCHAR, application VARCHAR NOT NULL, commitment FLOAT NOT NULL, used_commitment FLOAT NOT NULL, unused_commitment FLOAT NOT NULL, unused_cost FLOAT NOT NULL, attribution VARCHAR NOT NULL, processed_at TIMESTAMP_NTZ NOT NULL) CLUSTER BY (payer_id, billing_period)".to_owned(),
        "CREATE TABLE IF NOT EXISTS commitment_reconciliation (payer_id VARCHAR NOT NULL, billing_period VARCHAR NOT NULL, kind VARCHAR NOT NULL, commitment_arn VARCHAR NOT NULL, expected FLOAT NOT NULL, computed FLOAT NOT NULL, processed_at TIMESTAMP_NTZ NOT NULL) CLUSTER BY (payer_id, billing_period)".to_owned(),
    ]
}

fn expected_replace() -> Vec<String> {
    let predicate = format!("payer_id = '{PAYER}' AND billing_period = '2025-07'");
    vec![
        "ALTER SESSION SET TRANSACTION_ABORT_ON_ERROR = TRUE".to_owned(),
        "BEGIN TRANSACTION".to_owned(),
        format!("DELETE FROM ri_wastage_hourly WHERE {predicate}"),
        "INSERT INTO ri_wastage_hourly (payer_id, billing_period, usage_hour, reservation_arn, owner_account_id, region, product_code, application, reserved_units, used_units, unused_units, unused_cost, attribution, processed_at) SELECT payer_id, billing_period, usage_hour, reservation_arn, owner_account_id, region, product_code, application, reserved_units, used_units, unused_units, unused_cost, attribution, processed_at FROM new_ri_wastage_hourly".to_owned(),
        format!("DELETE FROM sp_wastage_hourly WHERE {predicate}"),
        "INSERT INTO sp_wastage_hourly (payer_id, billing_period, usage_hour, savings_plan_arn, owner_account_id, region, product_code, application, commitment, used_commitment, unused_commitment, unused_cost, attribution, processed_at) SELECT payer_id, billing_period, usage_hour, savings_plan_arn, owner_account_id, region, product_code, application, commitment, used_commitment, unused_commitment, unused_cost, attribution, processed_at FROM new_sp_wastage_hourly".to_owned(),
        format!("DELETE FROM commitment_reconciliation WHERE {predicate}"),
        "INSERT INTO commitment_reconciliation (payer_id, billing_period, kind, commitment_arn, expected, computed, processed_at) SELECT payer_id, billing_period, kind, commitment_arn, expected, computed, processed_at FROM new_commitment_reconciliation".to_owned(),
        "COMMIT".to_owned(),
    ]
}

fn expected_totals() -> Vec<String> {
    vec![
        "SELECT 'ri' AS kind, COUNT(*) AS row_count, COALESCE(SUM(unused_cost), 0) AS unused_cost FROM new_ri_wastage_hourly UNION ALL SELECT 'sp', COUNT(*), COALESCE(SUM(unused_cost), 0) FROM new_sp_wastage_hourly".to_owned(),
        "SELECT kind, commitment_arn, expected, computed FROM new_commitment_reconciliation WHERE ABS(expected - computed) >= 0.005 ORDER BY kind, commitment_arn".to_owned(),
    ]
}

fn params() -> Params {
    Params {
        period: BillingPeriod::new(2025, 7).unwrap(),
        payer: PayerId::parse(PAYER).unwrap(),
        application_tag: "user_application".into(),
    }
}

/// The analytics statements as curflow sends them, after its view.
fn script_statements() -> Vec<String> {
    analytics_statements(&params()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_run_stages_registers_and_replaces_the_payer_month() {
    let setup = setup("warn", None).await;
    // Throttled twice, every statement answered 202 twice before its result, results one
    // row per partition: the run must retry, poll and page to get the totals right.
    setup.fake.throttle(&[429, 503]);
    setup.fake.run_async(2);
    setup.fake.partition_rows(1);
    let out = setup.run();
    assert_eq!(out.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("RI waste $45.50 (120 hourly rows), SP waste $12.25 (30 hourly rows)"),
        "{summary}"
    );
    assert!(
        summary.contains("does not reconcile: ri arn:aws:ec2:us-east-1:1:reserved-instances/r-1: fee lines $10.00, hourly rows $9.50"),
        "{summary}"
    );
    assert!(summary.contains("status: success"), "{summary}");
    assert!(setup.staged_files().await > 0, "the period was staged");

    let received = setup.fake.received();
    assert_eq!(received.len(), 3, "payer table, registration, analytics");
    // The throttled first request was resubmitted with the same request id, marked retry.
    assert!(received[0].retry, "{:?}", received[0]);
    assert!(!received[1].retry && !received[2].retry);
    let ids: std::collections::BTreeSet<&str> =
        received.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids.len(), 3, "a request id per request");
    assert_eq!(
        received[0].statements,
        vec!["SELECT * FROM aws_az_share.metadata.pro_refresh_config"]
    );
    for r in &received {
        assert_eq!(r.body["warehouse"], "CURFLOW_WH");
        assert_eq!(r.body["database"], "FINOPS");
        assert_eq!(r.body["schema"], "CUR");
        assert_eq!(r.body["role"], "CURFLOW");
    }
    let folder = staged_folder(&client(&setup.endpoint), &setup.staging, PAYER, "2025-07").await;
    assert_eq!(
        received[1].statements,
        expected_register(&format!("s3://{}/staging/{folder}/", setup.staging))
    );
    assert_eq!(
        received[1].body["parameters"]["MULTI_STATEMENT_COUNT"],
        received[1].statements.len().to_string()
    );
    let mut analytics = expected_map_view();
    analytics.extend(script_statements());
    analytics.extend(expected_replace());
    analytics.extend(expected_totals());
    assert_eq!(received[2].statements, analytics);
    assert_eq!(setup.fake.executed().len(), 1 + 7 + analytics.len());
    // Every request runs in UTC, with the context names as Snowflake stores them.
    for r in &received {
        assert_eq!(r.body["parameters"]["TIMEZONE"], "UTC", "{:?}", r.body);
    }

    // The ledger records the analytics: the next run sends nothing but the payer query.
    let again = setup.run();
    assert_eq!(again.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("Already synchronized"),
        "second run"
    );
    assert_eq!(setup.fake.received().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_refuses_a_wrong_or_expired_key_before_touching_anything() {
    let (_, other_public) = key();
    let wrong = setup("warn", Some(other_public)).await;
    let out = wrong.run();
    assert_eq!(
        out.status.code(),
        Some(2),
        "bad credentials are bad settings"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("Snowflake refused to sign in user curflow")
            && err.contains("RSA_PUBLIC_KEY_FP")
            && err.contains("SHA256:"),
        "{err}"
    );
    assert!(
        !err.contains("BEGIN PRIVATE KEY") && !err.contains("Bearer"),
        "{err}"
    );
    assert_eq!(wrong.staged_files().await, 0, "nothing staged");
    assert!(
        wrong.fake.auth_failures()[0].contains("signature"),
        "{:?}",
        wrong.fake.auth_failures()
    );

    let expired = setup("warn", None).await;
    expired.fake.skew_clock(2 * 3600);
    let out = expired.run();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("JWT token is expired"), "{err}");
    assert_eq!(expired.staged_files().await, 0, "nothing staged");
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_analytics_failure_follows_on_sql_error() {
    for (on_sql_error, code) in [("warn", 0), ("fail", 1)] {
        let setup = setup(on_sql_error, None).await;
        setup.fake.answer(
            "CREATE OR REPLACE TEMPORARY TABLE commitment_hours",
            Answer::Fail(
                "000904",
                "42000",
                "SQL compilation error: error line 12 at position 9 invalid identifier 'C.TOTAL_UNITS'",
            ),
        );
        let out = setup.run();
        assert_eq!(
            out.status.code(),
            Some(code),
            "on_sql_error = {on_sql_error}"
        );
        let summary = String::from_utf8_lossy(&out.stdout);
        // Snowflake reports a failed multi-statement request in its wrapper (100132,
        // P0000) naming where the statement starts: the summary names that statement and
        // its own error, without the wrapper's JavaScript trail.
        let statement = format!(
            "statement {} of {} in one request: CREATE OR REPLACE TEMPORARY TABLE commitment_hours",
            expected_map_view().len()
                + 1
                + script_statements()
                    .iter()
                    .position(
                        |s| s.starts_with("CREATE OR REPLACE TEMPORARY TABLE commitment_hours")
                    )
                    .unwrap(),
            expected_map_view().len()
                + script_statements().len()
                + expected_replace().len()
                + expected_totals().len()
        );
        assert!(
            summary.contains("analytics FAILED")
                && summary.contains(&statement)
                && summary.contains("invalid identifier 'C.TOTAL_UNITS'")
                && !summary.contains("SYSTEM$MULTISTMT"),
            "{summary}"
        );
        if on_sql_error == "warn" {
            assert!(
                summary.contains("copies done, analytics failed"),
                "{summary}"
            );
        }
        let executed = setup.fake.executed();
        assert!(
            executed
                .last()
                .unwrap()
                .starts_with("CREATE OR REPLACE TEMPORARY TABLE commitment_hours"),
            "execution stops at the failed statement"
        );
        assert!(
            !executed
                .iter()
                .any(|s| s.starts_with("DELETE") || s == "COMMIT"),
            "the final tables are untouched"
        );
        assert!(setup.staged_files().await > 0, "the copy still counts");
    }

    // A statement past the request's timeout: Snowflake cancels it and answers 408.
    let setup = setup("warn", None).await;
    setup
        .fake
        .answer("CREATE OR REPLACE TEMPORARY TABLE ri_use", Answer::TimeOut);
    let out = setup.run();
    assert_eq!(out.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("analytics FAILED") && summary.contains("timed out in Snowflake"),
        "{summary}"
    );
}

#[test]
fn snowflake_generated_statements_match_golden_and_parse() {
    use sqlparser::dialect::SnowflakeDialect;
    use sqlparser::parser::Parser;

    let objects = ddl::PeriodObjects::new(
        &PayerId::parse(PAYER).unwrap(),
        BillingPeriod::new(2025, 7).unwrap(),
    );
    let mut register = ddl::register_period(
        &objects,
        "s3://stage-bucket/staging/year=2025/month=7/payer-671238551718/",
        "CURFLOW_S3",
    );
    register.extend(ddl::create_final_tables());
    assert_eq!(
        register,
        expected_register("s3://stage-bucket/staging/year=2025/month=7/payer-671238551718/")
    );
    assert_eq!(
        ddl::replace_period(&params().payer, params().period),
        expected_replace()
    );
    assert_eq!(ddl::totals(), expected_totals());
    assert_eq!(
        ddl::cur_view(&objects, &ddl::Tags::Map),
        expected_map_view()
    );
    assert_eq!(
        ddl::cur_view(&objects, &ddl::Tags::None),
        [format!(
            "CREATE OR REPLACE TEMPORARY VIEW cur_line_items AS SELECT *, OBJECT_CONSTRUCT() AS resource_tags FROM cur_{PAYER}_2025_07"
        )]
    );
    assert_eq!(
        ddl::payer_table("aws_az_share.metadata.pro_refresh_config"),
        "SELECT * FROM aws_az_share.metadata.pro_refresh_config"
    );
    assert_eq!(
        ddl::last_processed(),
        "SELECT DATE_PART(EPOCH_MICROSECOND, MAX(processed_at)) AS processed_at FROM (SELECT processed_at FROM ri_wastage_hourly WHERE payer_id = ? UNION ALL SELECT processed_at FROM sp_wastage_hourly WHERE payer_id = ?)"
    );

    // Snowflake-only DDL that sqlparser's Snowflake dialect does not implement: listed, and
    // checked to still fail, so this list shrinks when sqlparser learns them.
    let unsupported = ["CREATE FILE FORMAT", "CREATE OR REPLACE EXTERNAL TABLE"];
    let mut all = register;
    all.extend(ddl::cur_view(&objects, &ddl::Tags::Map));
    all.extend(script_statements());
    all.extend(expected_replace());
    all.extend(expected_totals());
    all.push(ddl::payer_table("aws_az_share.metadata.pro_refresh_config"));
    all.push(ddl::last_processed());
    all.push(ddl::breakdown("ri_wastage_hourly", "reservation_arn"));
    all.push(ddl::breakdown("sp_wastage_hourly", "savings_plan_arn"));
    let mut parsed = 0;
    for statement in &all {
        let result = Parser::parse_sql(&SnowflakeDialect {}, statement);
        if unsupported.iter().any(|p| statement.starts_with(p)) {
            assert!(
                result.is_err(),
                "sqlparser now parses it, move it out of the list: {statement}"
            );
        } else {
            assert!(result.is_ok(), "{statement}\n{:?}", result.err());
            parsed += 1;
        }
    }
    assert_eq!(parsed, all.len() - unsupported.len());
}

/// A final table as fakesnow holds it, in the ground truth's schema: the columns of
/// `truth` read back with SQL (timestamps as epoch seconds), for DataFusion to compare.
fn final_table(
    setup: &Setup,
    table: &str,
    truth: &datafusion::arrow::datatypes::Schema,
) -> RecordBatch {
    use datafusion::arrow::array::{
        ArrayRef, Float64Array, StringArray, StringViewArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::DataType;
    let columns: Vec<String> = truth
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(..) => format!("DATE_PART(EPOCH_SECOND, {})", f.name()),
            _ => f.name().clone(),
        })
        .collect();
    let rows = setup.fake.sql(
        CONTEXT,
        &[&format!("SELECT {} FROM {table}", columns.join(", "))],
    )[0]
    .clone();
    let arrays: Vec<ArrayRef> = truth
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let cells = rows.iter().map(|r| r[i].as_deref());
            let array: ArrayRef = match f.data_type() {
                DataType::Float64 => Arc::new(
                    cells
                        .map(|c| c.map(|v| v.parse::<f64>().unwrap()))
                        .collect::<Float64Array>(),
                ),
                DataType::Timestamp(_, zone) => Arc::new(
                    cells
                        .map(|c| c.map(|v| (v.parse::<f64>().unwrap() * 1e6).round() as i64))
                        .collect::<TimestampMicrosecondArray>()
                        .with_timezone_opt(zone.clone()),
                ),
                DataType::Utf8View => Arc::new(cells.collect::<StringViewArray>()),
                _ => Arc::new(cells.collect::<StringArray>()),
            };
            array
        })
        .collect();
    RecordBatch::try_new(Arc::new(truth.clone()), arrays).unwrap()
}

/// The final tables after `curflow run` through the SQL API fake executing in fakesnow,
/// against the generator's ground truth per commitment, hour and application to the cent.
/// The fake reads the staged files as a real external table does (tags in the
/// `{"key_value": […]}` shape, timestamps as local time of the session, whose default is
/// America/Los_Angeles) and reservation times are CUR's `…Z` text.
async fn assert_run_matches_truth(layout: Layout) {
    let setup = setup_layout("fail", None, layout, Fakesnow).await;
    let out = setup.run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let s3 = client(&setup.endpoint);
    let ctx = datafusion::prelude::SessionContext::new();
    for table in ["ri_wastage_hourly", "sp_wastage_hourly"] {
        let key = list(&s3, &setup.source, "")
            .await
            .into_keys()
            .find(|k| k.contains("ground-truth") && k.ends_with(&format!("/{table}.parquet")))
            .unwrap_or_else(|| panic!("the generator wrote the ground truth of {table}"));
        let bytes = crate::s3_support::get(&s3, &setup.source, &key).await;
        let file = setup.dir.path().join(format!("truth_{table}.parquet"));
        std::fs::write(&file, bytes).unwrap();
        let truth = ctx
            .read_parquet(
                file.display().to_string(),
                datafusion::prelude::ParquetReadOptions::default(),
            )
            .await
            .unwrap();
        let schema = truth.schema().as_arrow().clone();
        ctx.register_table(format!("truth_{table}"), truth.into_view())
            .unwrap();
        let ours = final_table(&setup, table, &schema);
        ctx.register_batch(table, ours).unwrap();
    }
    crate::demo::assert_tables_match_truth(&ctx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_analytics_in_fakesnow_match_ground_truth() {
    assert_run_matches_truth(Layout::Cur2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_analytics_of_a_legacy_report_in_fakesnow_match_ground_truth() {
    assert_run_matches_truth(Layout::Legacy).await;
}

/// (rows, Σ unused_cost) of the payer's July in each waste table, read in fakesnow.
fn held(setup: &Setup) -> Vec<(String, String)> {
    ["ri_wastage_hourly", "sp_wastage_hourly"]
        .iter()
        .map(|table| {
            let rows = setup.fake.sql(
                CONTEXT,
                &[&format!(
                    "SELECT COUNT(*), ROUND(SUM(unused_cost), 6) FROM {table} WHERE payer_id = '{PAYER}' AND billing_period = '2025-07'"
                )],
            );
            (
                rows[0][0][0].clone().unwrap_or_default(),
                rows[0][0][1].clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// A statement that fails after the `DELETE` of the replace (here the second table's
/// `INSERT`) aborts the whole transaction: every final table keeps the previous month.
/// (Snowflake's default, TRANSACTION_ABORT_ON_ERROR = FALSE, would keep the statements
/// before the failure: one table replaced, the next one emptied.)
#[tokio::test(flavor = "multi_thread")]
async fn snowflake_a_failure_inside_the_replace_leaves_the_previous_month() {
    let setup = setup_layout("warn", None, Layout::Cur2, Fakesnow).await;
    // Every first answer is lost: the resubmission (retry=true) must get the first one's
    // result instead of running the statements again, and the month is held once.
    setup.fake.lose_answers(3);
    assert_eq!(setup.run().status.code(), Some(0));
    let received = setup.fake.received();
    assert_eq!(received.len(), 6, "three requests, each resubmitted once");
    for pair in received.chunks(2) {
        assert_eq!(pair[0].request_id, pair[1].request_id);
        assert!(pair[0].ran && !pair[0].retry, "{:?}", pair[0].statements);
        assert!(pair[1].retry && !pair[1].ran, "{:?}", pair[1].statements);
    }
    let before = held(&setup);
    assert!(before.iter().all(|(rows, _)| rows != "0"), "{before:?}");

    generate(&setup.endpoint, &setup.source, PAYER, (2025, 7), 2, 100_000).await;
    setup.fake.answer(
        "INSERT INTO sp_wastage_hourly",
        Answer::Fail(
            "100071",
            "22000",
            "Failed to cast variant value \"x\" to FLOAT",
        ),
    );
    let out = setup.run();
    assert_eq!(out.status.code(), Some(0), "on_sql_error = warn");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("analytics FAILED") && summary.contains("INSERT INTO sp_wastage_hourly"),
        "{summary}"
    );
    assert_eq!(
        held(&setup),
        before,
        "the final tables still hold the first delivery"
    );
}

/// The statements after the `COMMIT` only read the totals: when one fails, the payer-month
/// is already replaced, and the run says so instead of "analytics failed".
#[tokio::test(flavor = "multi_thread")]
async fn snowflake_a_failure_after_the_commit_is_not_an_analytics_failure() {
    let setup = setup("warn", None).await;
    setup.fake.answer(
        "FROM new_commitment_reconciliation WHERE ABS",
        Answer::Fail(
            "000630",
            "57014",
            "Statement reached its statement or warehouse timeout",
        ),
    );
    let out = setup.run();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("replaced in the final tables (committed)")
            && text
                .contains("after the commit (SELECT kind, commitment_arn, expected, computed FROM")
            && !text.contains("analytics FAILED"),
        "{text}"
    );
}

/// A 429 on a status poll means the statement is still running ("Handling responses"):
/// more of them than the retry policy's attempts do not end the run. A poll answered in
/// a way that leaves the statement's end unknown cancels it.
#[tokio::test(flavor = "multi_thread")]
async fn snowflake_polls_through_throttling_and_cancels_what_it_abandons() {
    let setup = setup("warn", None).await;
    // The POST answers 202, then every poll 429 until the statement's second 202.
    setup.fake.run_async(2);
    setup.fake.throttle_polls(&[429; 10]);
    let out = setup.run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(setup.fake.cancelled().is_empty());

    let abandoned = setup_layout("warn", None, Layout::Cur2, Scripted).await;
    abandoned.fake.run_async(3);
    abandoned.fake.throttle_polls(&[400]);
    let out = abandoned.run();
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(
        abandoned.fake.cancelled().len(),
        1,
        "the statement whose poll failed is cancelled"
    );
}

/// Programmatic access tokens and OAuth tokens sign in with their token type; a token
/// the account does not know is refused (exit 2) without showing it.
#[tokio::test(flavor = "multi_thread")]
async fn snowflake_signs_in_with_a_programmatic_access_token_or_oauth() {
    for (auth, kind) in [("pat", "PROGRAMMATIC_ACCESS_TOKEN"), ("oauth", "OAUTH")] {
        let setup = setup("warn", None).await;
        let token = format!("{auth}-secret-token-value");
        setup.fake.issue_token(kind, &token);
        let config = std::fs::read_to_string(&setup.config).unwrap();
        let key_line = config
            .lines()
            .find(|l| l.starts_with("private_key"))
            .unwrap()
            .to_owned();
        std::fs::write(
            &setup.config,
            config.replace(
                &key_line,
                &format!("auth = \"{auth}\"\ntoken = {{ env = \"SF_TOKEN\" }}"),
            ),
        )
        .unwrap();
        let list = |value: &str| {
            let mut command = curflow_s3(
                setup.dir.path(),
                &setup.endpoint,
                &["payers", "list", "--config", &setup.config, "--env", "dev"],
            );
            command.env("SF_TOKEN", value);
            run(command)
        };
        let out = list(&token);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{auth}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(PAYER));
        let out = list("revoked-token");
        assert_eq!(out.status.code(), Some(2), "{auth}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refused to sign in") && !err.contains("revoked-token"),
            "{auth}: {err}"
        );
        assert!(
            setup.fake.auth_failures()[0].contains(kind),
            "{:?}",
            setup.fake.auth_failures()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_payers_list_reads_the_payer_table_and_add_is_refused() {
    let setup = setup("warn", None).await;
    setup.fake.answer(
        "SELECT DATE_PART(EPOCH_MICROSECOND, MAX(processed_at))",
        Answer::Rows(
            vec!["PROCESSED_AT"],
            vec![vec![Some("1754029800000000".into())]],
        ),
    );
    let payers = |action: &[&str]| {
        let mut args = vec!["payers", "--config", &setup.config, "--env", "dev"];
        args.extend_from_slice(action);
        run(curflow_s3(setup.dir.path(), &setup.endpoint, &args))
    };
    let out = payers(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{PAYER}  active"))
            && text.contains("(payer table)")
            && text.contains("last processed 2025-08-01 06:30:00 UTC"),
        "{text}"
    );
    let out = payers(&["add", "--payer", PAYER, "--source", "s3://elsewhere/cur2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("snowflake.payer_table"));
}

#[tokio::test(flavor = "multi_thread")]
async fn snowflake_report_reads_the_final_tables_with_bound_values() {
    let setup = setup("warn", None).await;
    let cell = |s: &str| Some(s.to_owned());
    let july_first = "1751328000"; // 2025-07-01 00:00 UTC
    setup.fake.answer(
        "SELECT 'commitment' AS grain, reservation_arn",
        Answer::Rows(
            vec!["GRAIN", "NAME", "HOUR", "COST"],
            vec![
                vec![cell("commitment"), cell("arn:ri-small"), None, cell("10.5")],
                vec![cell("commitment"), cell("arn:ri-big"), None, cell("30.25")],
                vec![cell("application"), cell("web"), None, cell("25.75")],
                vec![cell("application"), cell("(untagged)"), None, cell("15")],
                vec![cell("hour"), cell("web"), cell(july_first), cell("25.75")],
                vec![
                    cell("hour"),
                    cell("(untagged)"),
                    cell(july_first),
                    cell("15"),
                ],
            ],
        ),
    );
    setup.fake.answer(
        "SELECT 'commitment' AS grain, savings_plan_arn",
        Answer::Rows(
            vec!["GRAIN", "NAME", "HOUR", "COST"],
            vec![
                vec![cell("commitment"), cell("arn:sp-1"), None, cell("1234.5")],
                vec![cell("application"), cell("batch"), None, cell("1234.5")],
                vec![
                    cell("hour"),
                    cell("batch"),
                    cell(july_first),
                    cell("1234.5"),
                ],
            ],
        ),
    );
    let html = setup.dir.path().join("report.html");
    let args = [
        "report",
        "--config",
        &setup.config,
        "--env",
        "dev",
        "--payer",
        PAYER,
        "--period",
        "2025-07",
        "--html",
        html.to_str().unwrap(),
    ];
    let out = run(curflow_s3(setup.dir.path(), &setup.endpoint, &args));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("$1,275.25 (Reserved Instances $40.75, Savings Plans $1,234.50)"),
        "{text}"
    );
    let commitments: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("  ").last().filter(|a| a.starts_with("arn:")))
        .collect();
    assert_eq!(commitments, ["arn:sp-1", "arn:ri-big", "arn:ri-small"]);
    let top_application = text
        .lines()
        .skip_while(|l| !l.starts_with("Top applications"))
        .nth(1)
        .unwrap_or_default();
    assert!(top_application.contains("batch"), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 3, "three charts");

    // The payer and the period travel as bindings, never inside the statement text.
    let queries: Vec<_> = setup
        .fake
        .received()
        .into_iter()
        .filter(|r| {
            r.statements
                .iter()
                .any(|s| s.contains("'commitment' AS grain"))
        })
        .collect();
    assert_eq!(queries.len(), 2, "one query per final table");
    for query in queries {
        assert!(!query.statements[0].contains(PAYER));
        assert_eq!(query.body["bindings"]["1"]["value"], PAYER);
        assert_eq!(query.body["bindings"]["2"]["value"], "2025-07");
        assert_eq!(query.body["bindings"]["6"]["value"], "2025-07");
    }
}

/// A legacy report keeps tags as `resource_tags_user_<key>` columns: the view the analytics
/// read gathers the ones the staged files hold (read from their Parquet footers on S3) into
/// the `resource_tags` object, as the embedded engine maps them, so attribution finds the
/// application tag in Snowflake too.
#[tokio::test(flavor = "multi_thread")]
async fn snowflake_maps_a_legacy_reports_tag_columns_onto_resource_tags() {
    let setup = setup_layout("warn", None, Layout::Legacy, Scripted).await;
    let out = setup.run();
    assert_eq!(out.status.code(), Some(0));
    assert!(setup.staged_files().await > 0, "the period was staged");
    let received = setup.fake.received();
    let analytics = received.last().expect("an analytics request");
    assert_eq!(
        analytics.statements[0],
        format!(
            "CREATE OR REPLACE TEMPORARY VIEW cur_line_items AS SELECT *, OBJECT_CONSTRUCT(\
             'user_application', resource_tags_user_application::VARCHAR, \
             'user_environment', resource_tags_user_environment::VARCHAR, \
             'user_team', resource_tags_user_team::VARCHAR) AS resource_tags FROM cur_{PAYER}_2025_07"
        )
    );
    let script = script_statements();
    assert_eq!(analytics.statements[1..=script.len()], script[..]);
}
