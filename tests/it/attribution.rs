//! Each attribution rule of DESIGN.md §3 on a CUR small enough to compute by hand: the
//! generated July delivery's data file is replaced by a handful of lines written here, and
//! the final tables must hold exactly the rows and numbers worked out in each test.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, Float64Array, MapBuilder, MapFieldNames, RecordBatch, StringArray,
    StringBuilder, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::SessionContext;

use crate::schema_drift::{PAYER, run_july};
use crate::support::one_payer_july;
use crate::support::{final_tables, query};

const RI: &str = "arn:aws:ec2:us-east-1:111122223333:reserved-instances/ri-hand";
const SP: &str = "arn:aws:savingsplans::111122223333:savingsplan/sp-hand";

/// One CUR line; only the columns the analytics read.
#[derive(Clone, Default)]
struct Line {
    kind: &'static str,
    /// Hours after 10 July 2025 00:00 UTC (its `line_item_usage_start_date`).
    hour: u32,
    ri: bool,
    sp: bool,
    application: Option<&'static str>,
    usage: f64,
    normalized_usage: f64,
    /// RIFee: active from/until these hours (as `hour`), reserved units as CUR writes them.
    active: Option<(u32, u32)>,
    normalized_units: &'static str,
    reserved_units: &'static str,
    upfront: f64,
    recurring: f64,
    unused_upfront: f64,
    unused_recurring: f64,
    /// SavingsPlanRecurringFee / SavingsPlanCoveredUsage.
    commitment: f64,
    used_commitment: f64,
    effective_cost: f64,
}

/// `hour` hours after 10 July 2025 00:00 UTC, in milliseconds.
fn ms(hour: u32) -> i64 {
    let midnight = chrono::NaiveDate::from_ymd_opt(2025, 7, 10)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("10 July")
        .and_utc();
    (midnight + chrono::Duration::hours(i64::from(hour))).timestamp_millis()
}

/// The same instant as CUR writes reservation start and end times.
fn iso(hour: u32) -> String {
    chrono::DateTime::from_timestamp_millis(ms(hour))
        .expect("a valid instant")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Replaces July's generated data file with `lines` and runs July.
fn analyse(dir: &Path, lines: &[Line]) -> String {
    let settings = one_payer_july(dir, PAYER);
    let text = |f: &dyn Fn(&Line) -> Option<String>| -> ArrayRef {
        Arc::new(lines.iter().map(f).collect::<StringArray>())
    };
    let number = |f: &dyn Fn(&Line) -> f64| -> ArrayRef {
        Arc::new(lines.iter().map(|l| Some(f(l))).collect::<Float64Array>())
    };
    let names = MapFieldNames {
        entry: "key_value".into(),
        key: "key".into(),
        value: "value".into(),
    };
    let mut tags = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for line in lines {
        if let Some(app) = line.application {
            tags.keys().append_value("user_application");
            tags.values().append_value(app);
        }
        tags.append(true).unwrap();
    }
    let ri_arn = |l: &Line| l.ri.then(|| RI.to_owned());
    let fee = |l: &Line, v: &'static str| l.active.map(|_| v.to_owned());
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("bill_payer_account_id", text(&|_| Some(PAYER.into()))),
        ("line_item_line_item_type", text(&|l| Some(l.kind.into()))),
        (
            "line_item_usage_account_id",
            text(&|_| Some("111122223333".into())),
        ),
        ("product_region_code", text(&|_| Some("us-east-1".into()))),
        (
            "line_item_product_code",
            text(&|_| Some("AmazonEC2".into())),
        ),
        (
            "line_item_usage_start_date",
            Arc::new(TimestampMillisecondArray::from_iter_values(
                lines.iter().map(|l| ms(l.hour)),
            )),
        ),
        ("reservation_reservation_a_r_n", text(&ri_arn)),
        (
            "reservation_start_time",
            text(&|l| l.active.map(|(from, _)| iso(from))),
        ),
        (
            "reservation_end_time",
            text(&|l| l.active.map(|(_, until)| iso(until))),
        ),
        (
            "reservation_total_reserved_normalized_units",
            text(&|l| fee(l, l.normalized_units)),
        ),
        (
            "reservation_total_reserved_units",
            text(&|l| fee(l, l.reserved_units)),
        ),
        (
            "reservation_amortized_upfront_fee_for_billing_period",
            number(&|l| l.upfront),
        ),
        ("line_item_unblended_cost", number(&|l| l.recurring)),
        (
            "reservation_unused_amortized_upfront_fee_for_billing_period",
            number(&|l| l.unused_upfront),
        ),
        (
            "reservation_unused_recurring_fee",
            number(&|l| l.unused_recurring),
        ),
        ("line_item_usage_amount", number(&|l| l.usage)),
        (
            "line_item_normalized_usage_amount",
            number(&|l| l.normalized_usage),
        ),
        ("resource_tags", Arc::new(tags.finish())),
        (
            "savings_plan_savings_plan_a_r_n",
            text(&|l| l.sp.then(|| SP.to_owned())),
        ),
        (
            "savings_plan_total_commitment_to_date",
            number(&|l| l.commitment),
        ),
        (
            "savings_plan_used_commitment",
            number(&|l| l.used_commitment),
        ),
        (
            "savings_plan_savings_plan_effective_cost",
            number(&|l| l.effective_cost),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = dir.join("source/data/BILLING_PERIOD=2025-07/cur2-001-00001.snappy.parquet");
    assert!(file.exists(), "the generated data file to replace");
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&file).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    crate::support::write_july_manifest_last(&dir.join("source"));
    let (code, summary) = run_july(dir, &settings);
    assert_eq!(code, Some(0), "{summary}");
    assert!(summary.contains("every commitment reconciles"), "{summary}");
    summary
}

/// The rows of a final table as "HH application attribution | numbers…", ordered.
async fn rows(dir: &Path, table: &str, numbers: &str) -> Vec<(String, Vec<f64>)> {
    let ctx = SessionContext::new();
    let provider = final_tables(&dir.join("warehouse"))
        .final_table(table)
        .await
        .unwrap()
        .expect("the final table exists");
    ctx.register_table("t", provider).unwrap();
    let batches = query(
        &ctx,
        &format!(
            "SELECT concat(to_char(usage_hour, '%H'), ' ', application, ' ', attribution), {numbers} \
             FROM t ORDER BY usage_hour, application"
        ),
    )
    .await;
    let mut out = Vec::new();
    for batch in &batches {
        let keys = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8).unwrap();
        let keys = keys.as_string::<i32>();
        for i in 0..batch.num_rows() {
            let values = (1..batch.num_columns())
                .map(|c| batch.column(c).as_primitive::<Float64Type>().value(i))
                .collect();
            out.push((keys.value(i).to_owned(), values));
        }
    }
    out
}

/// Same keys in the same order, every number within a billionth.
fn assert_rows(got: &[(String, Vec<f64>)], want: &[(&str, &[f64])]) {
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    let want_keys: Vec<&str> = want.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, want_keys, "rows");
    for ((key, values), (_, expected)) in got.iter().zip(want) {
        assert_eq!(values.len(), expected.len(), "{key}");
        for (v, e) in values.iter().zip(*expected) {
            assert!(
                (v - e).abs() < 1e-9,
                "{key}: got {values:?}, want {expected:?}"
            );
        }
    }
}

const RI_NUMBERS: &str = "reserved_units, used_units, unused_units, unused_cost";
const SP_NUMBERS: &str = "commitment, used_commitment, unused_commitment, unused_cost";

/// `hour`: waste in an hour with use is shared by that hour's use, untagged use included.
#[tokio::test(flavor = "multi_thread")]
async fn hour_rule_shares_an_hours_waste_by_that_hours_use() {
    let dir = tempfile::tempdir().unwrap();
    // An RI that is not size-flexible, active 10:00–11:00 only: 1 unit for $3.
    let fee = Line {
        kind: "RIFee",
        ri: true,
        active: Some((10, 11)),
        normalized_units: "0",
        reserved_units: "1",
        upfront: 2.0,
        recurring: 1.0,
        unused_upfront: 1.0,
        unused_recurring: 0.5,
        ..Line::default()
    };
    let used = |application, usage| Line {
        kind: "DiscountedUsage",
        hour: 10,
        ri: true,
        application,
        usage,
        normalized_usage: 99.0, // ignored: the RI is not size-flexible
        ..Line::default()
    };
    // A Savings Plan hour: $2 committed, $1.50 used by web ($1.20) and batch ($0.30).
    let sp_fee = Line {
        kind: "SavingsPlanRecurringFee",
        hour: 10,
        sp: true,
        commitment: 2.0,
        used_commitment: 1.5,
        ..Line::default()
    };
    let covered = |application, effective_cost| Line {
        kind: "SavingsPlanCoveredUsage",
        hour: 10,
        sp: true,
        application,
        effective_cost,
        ..Line::default()
    };
    analyse(
        dir.path(),
        &[
            fee,
            used(Some("web"), 0.1),
            used(Some("batch"), 0.3),
            used(None, 0.1),
            sp_fee,
            covered(Some("web"), 1.2),
            covered(Some("batch"), 0.3),
        ],
    );
    // 0.5 of 1 unit used: 0.5 unused at $3 a unit, shared 0.3 : 0.1 : 0.1.
    assert_rows(
        &rows(dir.path(), "ri_wastage_hourly", RI_NUMBERS).await,
        &[
            ("10 (untagged) hour", &[0.2, 0.1, 0.1, 0.3]),
            ("10 batch hour", &[0.6, 0.3, 0.3, 0.9]),
            ("10 web hour", &[0.2, 0.1, 0.1, 0.3]),
        ],
    );
    // $0.50 unused, shared 1.2 : 0.3.
    assert_rows(
        &rows(dir.path(), "sp_wastage_hourly", SP_NUMBERS).await,
        &[
            ("10 batch hour", &[0.4, 0.3, 0.1, 0.1]),
            ("10 web hour", &[1.6, 1.2, 0.4, 0.4]),
        ],
    );
}

/// `period`: waste in an hour without use is shared by each application's use over the
/// whole period; a size-flexible RI is measured in normalized units.
#[tokio::test(flavor = "multi_thread")]
async fn period_rule_shares_an_idle_hours_waste_by_the_periods_use() {
    let dir = tempfile::tempdir().unwrap();
    // Size-flexible, active 10:00–13:00: 24 normalized units (8 an hour) for $12.
    let fee = Line {
        kind: "RIFee",
        ri: true,
        active: Some((10, 13)),
        normalized_units: "24",
        reserved_units: "3",
        upfront: 12.0,
        unused_upfront: 8.0,
        ..Line::default()
    };
    let used = |hour, application, normalized_usage| Line {
        kind: "DiscountedUsage",
        hour,
        ri: true,
        application,
        usage: 0.5, // ignored: the RI is size-flexible
        normalized_usage,
        ..Line::default()
    };
    analyse(
        dir.path(),
        &[
            fee,
            used(10, Some("web"), 6.0),
            used(11, Some("batch"), 2.0),
        ],
    );
    // $0.50 a normalized unit. 10:00 web leaves 2 unused, 11:00 batch 6; 12:00 is idle:
    // its 8 units go 6 : 2 to web and batch, as they used the RI over the period.
    assert_rows(
        &rows(dir.path(), "ri_wastage_hourly", RI_NUMBERS).await,
        &[
            ("10 web hour", &[8.0, 6.0, 2.0, 1.0]),
            ("11 batch hour", &[8.0, 2.0, 6.0, 3.0]),
            ("12 batch period", &[2.0, 0.0, 2.0, 1.0]),
            ("12 web period", &[6.0, 0.0, 6.0, 3.0]),
        ],
    );
}

/// `unallocated`: a commitment nobody used in the period has one `(unallocated)` row an hour.
#[tokio::test(flavor = "multi_thread")]
async fn unallocated_rule_for_commitments_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let fee = Line {
        kind: "RIFee",
        ri: true,
        active: Some((22, 24)),
        normalized_units: "",
        reserved_units: "2",
        recurring: 5.0,
        unused_recurring: 5.0,
        ..Line::default()
    };
    let sp_fee = |hour| Line {
        kind: "SavingsPlanRecurringFee",
        hour,
        sp: true,
        commitment: 1.25,
        ..Line::default()
    };
    let summary = analyse(dir.path(), &[fee, sp_fee(3), sp_fee(4)]);
    assert!(summary.contains("RI waste $5.00"), "{summary}");
    assert!(summary.contains("SP waste $2.50"), "{summary}");
    assert_rows(
        &rows(dir.path(), "ri_wastage_hourly", RI_NUMBERS).await,
        &[
            ("22 (unallocated) unallocated", &[1.0, 0.0, 1.0, 2.5]),
            ("23 (unallocated) unallocated", &[1.0, 0.0, 1.0, 2.5]),
        ],
    );
    assert_rows(
        &rows(dir.path(), "sp_wastage_hourly", SP_NUMBERS).await,
        &[
            ("03 (unallocated) unallocated", &[1.25, 0.0, 1.25, 1.25]),
            ("04 (unallocated) unallocated", &[1.25, 0.0, 1.25, 1.25]),
        ],
    );
}
