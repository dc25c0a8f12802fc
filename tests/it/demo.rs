//! The walking skeleton end to end: `curflow demo` on a clean folder matches the
//! generator's ground truth to the cent, and a second run (and `plan`) does nothing.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::s3_support::local_staged_folder;
use crate::support::{curflow, final_tables, generate_july, query, read_outside, run};

const PAYERS: [&str; 3] = ["671238551718", "204857193650", "385920174463"];

fn count(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// Compares a final table with the ground truth: same keys, numbers to the cent (money)
/// and to a millionth (units).
async fn assert_matches_truth(ctx: &SessionContext, table: &str, arn: &str, numbers: &[&str]) {
    let key = format!("payer_id, billing_period, usage_hour, {arn}, application, attribution");
    let truth_rows = count(&query(ctx, &format!("SELECT count(*) FROM truth_{table}")).await);
    let got_rows = count(&query(ctx, &format!("SELECT count(*) FROM {table}")).await);
    assert!(
        truth_rows > 1000,
        "{table}: ground truth has {truth_rows} rows"
    );
    assert_eq!(got_rows, truth_rows, "{table}: row count");
    let unmatched = count(
        &query(
            ctx,
            &format!(
                "SELECT count(*) FROM (SELECT {key} FROM truth_{table} EXCEPT SELECT {key} FROM {table})"
            ),
        )
        .await,
    );
    assert_eq!(
        unmatched, 0,
        "{table}: ground-truth rows without an output row"
    );
    let checks: Vec<String> = numbers
        .iter()
        .map(|n| {
            let tolerance = if *n == "unused_cost" {
                "0.005"
            } else {
                "0.000001"
            };
            format!("abs(t.{n} - o.{n}) >= {tolerance}")
        })
        .collect();
    let join: Vec<String> = key.split(", ").map(|k| format!("t.{k} = o.{k}")).collect();
    let wrong = count(
        &query(
            ctx,
            &format!(
                "SELECT count(*) FROM truth_{table} t JOIN {table} o ON {} WHERE {}",
                join.join(" AND "),
                checks.join(" OR ")
            ),
        )
        .await,
    );
    assert_eq!(
        wrong, 0,
        "{table}: rows whose numbers differ from the ground truth"
    );
}

/// Both final tables (`ri_wastage_hourly`, `sp_wastage_hourly`) against their ground truth
/// (`truth_<table>`), registered in `ctx`.
pub(crate) async fn assert_tables_match_truth(ctx: &SessionContext) {
    assert_matches_truth(
        ctx,
        "ri_wastage_hourly",
        "reservation_arn",
        &[
            "reserved_units",
            "used_units",
            "unused_units",
            "unused_cost",
        ],
    )
    .await;
    assert_matches_truth(
        ctx,
        "sp_wastage_hourly",
        "savings_plan_arn",
        &[
            "commitment",
            "used_commitment",
            "unused_commitment",
            "unused_cost",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_matches_ground_truth_and_reruns_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("curflow-data");
    let first = run(curflow(dir.path(), &["demo", "--rows", "6000"]));
    assert_eq!(first.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&first.stdout);
    let first_summary = summary.to_string();
    for payer in PAYERS {
        assert!(summary.contains(&format!("payer {payer}")), "{summary}");
    }
    assert_eq!(
        summary.matches("RI waste $").count(),
        6,
        "RI and SP totals per payer-period: {summary}"
    );
    assert_eq!(
        summary.matches("every commitment reconciles").count(),
        6,
        "{summary}"
    );
    assert!(summary.contains("status: success"));

    let ctx = tables_and_truth(&data).await;
    assert_tables_match_truth(&ctx).await;

    assert_reservation_classes(&ctx, &data).await;

    // Each attribution rule is exercised by the demo data.
    let kinds = query(
        &ctx,
        "SELECT count(DISTINCT attribution) FROM ri_wastage_hourly",
    )
    .await;
    assert_eq!(count(&kinds), 3, "hour, period and unallocated RI rows");

    // An engine outside curflow (delta-rs from Python) reads the same tables and totals.
    let ours = query(
        &ctx,
        "SELECT count(*), sum(unused_cost) FROM ri_wastage_hourly",
    )
    .await;
    let (rows, cost) = (
        count(&ours),
        ours[0].column(1).as_primitive::<Float64Type>().value(0),
    );
    let outside = read_outside(&data.join("warehouse").join("ri_wastage_hourly"));
    assert_eq!(
        outside,
        format!("{rows} {cost:.2}"),
        "deltalake (Python) reads what curflow wrote"
    );

    // Nothing new: a second demo copies nothing.
    let second = run(curflow(dir.path(), &["demo", "--rows", "6000"]));
    assert_eq!(second.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&second.stdout);
    assert_eq!(
        summary.matches("Already synchronized").count(),
        6,
        "{summary}"
    );
    assert!(!summary.contains("copied"), "{summary}");

    // `plan` and `run` with the demo's settings say the same.
    let settings = data.join("demo.toml");
    let mut args = vec![
        "--config",
        settings.to_str().unwrap(),
        "--year",
        "2025",
        "--month",
        "7",
    ];
    for payer in PAYERS {
        args.extend(["--payer", payer]);
    }
    for command in ["plan", "run"] {
        let mut all = vec![command];
        all.extend(&args);
        let out = run(curflow(dir.path(), &all));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .matches("Already synchronized")
                .count(),
            6
        );
    }

    // The waste report for one payer-month: text and a self-contained HTML file.
    let html = dir.path().join("report.html");
    let report = run(curflow(
        dir.path(),
        &[
            "report",
            "--config",
            settings.to_str().unwrap(),
            "--payer",
            PAYERS[1],
            "--period",
            "2025-07",
            "--html",
            html.to_str().unwrap(),
        ],
    ));
    assert_eq!(report.status.code(), Some(0));
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains("Top commitments:") && text.contains("Top applications:"),
        "{text}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 3, "three charts");
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("<script"),
        "self-contained"
    );
    let (ri, sp) = july_waste(&first_summary, PAYERS[1]);
    assert!(
        text.contains(&format!("(Reserved Instances {ri}, Savings Plans {sp})")),
        "the text report's totals are the run's: {text}"
    );
    assert!(
        page.contains(&format!("Reserved Instances {ri}")),
        "RI total {ri} as in the run's summary"
    );
    assert!(
        page.contains(&format!("Savings Plans {sp}")),
        "SP total {sp} as in the run's summary"
    );

    // A restatement: AWS re-delivers July for the first payer with different data and new
    // file names. The staged period and the final tables hold the new delivery only.
    let source = data.join(format!("sources/payer-{}/cur2", PAYERS[0]));
    let restated = ["--rows", "5000", "--seed", "99", "--delivery", "2"];
    generate_july(dir.path(), &source, PAYERS[0], &restated);
    let mut all = vec!["run"];
    all.extend(&args);
    let restated = run(curflow(dir.path(), &all));
    assert_eq!(restated.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&restated.stdout);
    // The superseded delivery stays an hour (`keep_superseded`) for readers still on it.
    assert!(
        summary.contains("1 file copied") && summary.contains("0 deleted"),
        "{summary}"
    );
    assert_eq!(
        summary.matches("Already synchronized").count(),
        5,
        "{summary}"
    );
    let staging = data.join("staging");
    let staged: Vec<String> = walk(&local_staged_folder(&staging, PAYERS[0], "2025-07"));
    assert_eq!(
        staged.len(),
        1,
        "readers see only the new delivery: {staged:?}"
    );
    let period = walk(&staging.join(format!("year=2025/month=7/payer-{}", PAYERS[0])));
    assert_eq!(period.len(), 2, "the superseded one is kept: {period:?}");
    assert!(
        staged[0].ends_with("cur2-002-00001.snappy.parquet"),
        "{staged:?}"
    );
    let ctx = tables_and_truth(&data).await;
    assert_matches_truth(
        &ctx,
        "ri_wastage_hourly",
        "reservation_arn",
        &["unused_units", "unused_cost"],
    )
    .await;
    assert_matches_truth(
        &ctx,
        "sp_wastage_hourly",
        "savings_plan_arn",
        &["unused_commitment", "unused_cost"],
    )
    .await;

    // Analysing the same data again (the ledger lost, so everything is re-copied and
    // re-analysed) leaves identical tables: each payer-month is replaced, never added.
    let before = totals(&data).await;
    std::fs::remove_dir_all(data.join("staging/_curflow/ledger")).unwrap();
    let again = run(curflow(dir.path(), &all));
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .matches("RI waste $")
            .count(),
        6
    );
    assert_eq!(totals(&data).await, before);
}

/// The payer's July RI and SP waste as the run summary printed them ("$1,234.56").
fn july_waste(summary: &str, payer: &str) -> (String, String) {
    let block = summary
        .split(&format!("payer {payer}"))
        .nth(1)
        .expect("payer block");
    let line = block
        .lines()
        .find(|l| l.contains("RI waste $"))
        .expect("July waste line");
    let amount = |label: &str| {
        line.split(label)
            .nth(1)
            .and_then(|a| a.split_whitespace().next())
            .expect("amount")
            .to_owned()
    };
    (amount("RI waste "), amount("SP waste "))
}

/// A session with the final tables (through Delta) and every ground truth file registered.
async fn tables_and_truth(data: &std::path::Path) -> SessionContext {
    tables_and_truth_in(&data.join("warehouse"), &data.join("sources"), 6).await
}

/// [`tables_and_truth`] for the final tables under `warehouse` and the `payer_periods`
/// ground truth files under `sources`.
pub(crate) async fn tables_and_truth_in(
    warehouse: &std::path::Path,
    sources: &std::path::Path,
    payer_periods: usize,
) -> SessionContext {
    let ctx = SessionContext::new();
    let warehouse = final_tables(warehouse);
    for table in ["ri_wastage_hourly", "sp_wastage_hourly"] {
        let provider = warehouse
            .final_table(table)
            .await
            .unwrap()
            .expect("final table exists");
        ctx.register_table(table, provider).unwrap();
        let files: Vec<String> = walk(sources)
            .into_iter()
            .filter(|p| p.ends_with(&format!("{table}.parquet")) && p.contains("ground-truth"))
            .collect();
        assert_eq!(
            files.len(),
            payer_periods,
            "one ground truth per payer-period"
        );
        let df = ctx
            .read_parquet(files, ParquetReadOptions::default())
            .await
            .unwrap();
        ctx.register_table(format!("truth_{table}"), df.into_view())
            .unwrap();
    }
    ctx
}

/// The rows matched to the ground truth above cover every kind of reservation: size-flexible
/// and not (normalized units `"0"` or null), and terms that start or end inside the month;
/// no reservation has a row outside its term.
async fn assert_reservation_classes(ctx: &SessionContext, data: &std::path::Path) {
    let staged: Vec<String> = walk(&data.join("staging"))
        .into_iter()
        .filter(|p| p.ends_with(".parquet"))
        .collect();
    let cur = ctx
        .read_parquet(staged, ParquetReadOptions::default())
        .await
        .unwrap();
    ctx.register_table("staged_cur", cur.into_view()).unwrap();
    let classes = query(
        ctx,
        "WITH fee AS (
           SELECT DISTINCT reservation_reservation_a_r_n AS arn,
                  CASE WHEN TRY_CAST(reservation_total_reserved_normalized_units AS DOUBLE) > 0 THEN 'flexible'
                       WHEN reservation_total_reserved_normalized_units IS NULL THEN 'null'
                       ELSE 'zero' END AS sizing,
                  to_unixtime(reservation_start_time) AS term_start,
                  to_unixtime(reservation_end_time) AS term_end,
                  to_unixtime(bill_billing_period_start_date) AS period_start,
                  to_unixtime(bill_billing_period_end_date) AS period_end
           FROM staged_cur WHERE line_item_line_item_type = 'RIFee')
         SELECT concat(f.sizing,
                       CASE WHEN f.term_start > f.period_start THEN ' starts inside' ELSE '' END,
                       CASE WHEN f.term_end < f.period_end THEN ' ends inside' ELSE '' END),
                count(*),
                sum(CASE WHEN to_unixtime(o.usage_hour) < f.term_start
                           OR to_unixtime(o.usage_hour) >= f.term_end THEN 1 ELSE 0 END)
         FROM ri_wastage_hourly o
         JOIN fee f ON o.reservation_arn = f.arn
          AND to_unixtime(o.usage_hour) >= f.period_start AND to_unixtime(o.usage_hour) < f.period_end
         GROUP BY 1 ORDER BY 1",
    )
    .await;
    let mut seen = Vec::new();
    for batch in &classes {
        let names = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let names = names.as_string::<i32>();
        let (rows, outside) = (
            batch.column(1).as_primitive::<Int64Type>(),
            batch.column(2).as_primitive::<Int64Type>(),
        );
        for i in 0..batch.num_rows() {
            assert!(rows.value(i) > 0);
            assert_eq!(
                outside.value(i),
                0,
                "{}: rows outside the term",
                names.value(i)
            );
            seen.push(names.value(i).to_owned());
        }
    }
    for class in [
        "flexible",
        "flexible starts inside",
        "flexible ends inside",
        "zero",
        "null",
    ] {
        assert!(
            seen.iter().any(|s| s == class),
            "no {class} reservation in the matched rows: {seen:?}"
        );
    }
}

/// Row count and Σ unused_cost of both final tables.
async fn totals(data: &std::path::Path) -> Vec<String> {
    let ctx = tables_and_truth(data).await;
    let mut out = Vec::new();
    for table in ["ri_wastage_hourly", "sp_wastage_hourly"] {
        let got = query(
            &ctx,
            &format!("SELECT count(*), sum(unused_cost) FROM {table}"),
        )
        .await;
        out.push(format!(
            "{table} {} {:.6}",
            count(&got),
            got[0].column(1).as_primitive::<Float64Type>().value(0)
        ));
    }
    out
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}
