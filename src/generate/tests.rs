//! Tests of the generator as a whole: determinism, option checks, and a round trip through
//! real files read back with DataFusion (schema, manifest, reconciliation, redelivery).

use std::collections::BTreeSet;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Float64Type;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use object_store::local::LocalFileSystem;

use super::*;

const PAYER: &str = "123456789012";

fn options() -> GenerateOptions {
    let mut opts = GenerateOptions::new(PAYER, 2025, 7);
    opts.seed = 5;
    opts
}

#[test]
fn same_options_give_the_same_truth_and_another_seed_does_not() {
    let a = ground_truth(&options());
    assert!(!a.ri.is_empty() && !a.sp.is_empty());
    assert_eq!(a, ground_truth(&options()));
    let mut other = options();
    other.rows = 123;
    other.delivery = 9;
    assert_eq!(
        a,
        ground_truth(&other),
        "rows and delivery do not change the truth"
    );
    other.seed = 6;
    assert_ne!(a, ground_truth(&other));
    let mut payer = options();
    payer.payer_id = "210987654321".to_owned();
    assert_ne!(a, ground_truth(&payer));
}

#[tokio::test]
async fn bad_options_are_refused_before_anything_is_touched() {
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    for change in [
        |o: &mut GenerateOptions| o.delivery = 0,
        |o: &mut GenerateOptions| o.rows_per_file = 0,
        |o: &mut GenerateOptions| o.month = 13,
        |o: &mut GenerateOptions| o.export_name = "a/b".to_owned(),
        |o: &mut GenerateOptions| o.layout = Layout::Auto,
    ] {
        let mut opts = options();
        change(&mut opts);
        let err = generate(Arc::clone(&store), &Path::from("x"), &opts)
            .await
            .unwrap_err();
        assert!(matches!(err, GenerateError::InvalidOptions { .. }), "{err}");
    }
    assert_eq!(
        ground_truth(&GenerateOptions::new(PAYER, 2025, 0)),
        GroundTruth::default()
    );
}

#[tokio::test]
async fn same_options_write_byte_identical_files() {
    let mut opts = options();
    opts.rows = 10_000;
    let root = Path::from("cur2");
    let mut contents = Vec::new();
    for _ in 0..2 {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let report = generate(Arc::clone(&store), &root, &opts).await.unwrap();
        let mut bytes = Vec::new();
        for key in report
            .files
            .iter()
            .chain([&report.manifest])
            .chain(&report.ground_truth)
        {
            let key = Path::from(key.as_str());
            bytes.push(store.get(&key).await.unwrap().bytes().await.unwrap());
        }
        contents.push(bytes);
    }
    assert_eq!(contents[0], contents[1]);
}

async fn query_f64(ctx: &SessionContext, sql: &str) -> Vec<f64> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        let col = datafusion::arrow::compute::cast(b.column(0), &DataType::Float64).unwrap();
        let col = col.as_primitive::<Float64Type>();
        out.extend((0..col.len()).map(|i| {
            if col.is_null(i) {
                f64::NAN
            } else {
                col.value(i)
            }
        }));
    }
    out
}

use datafusion::arrow::datatypes::DataType;

#[tokio::test]
async fn generate_writes_readable_files_a_manifest_and_replaces_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let root = Path::from("src/payer-1/cur2");
    let mut opts = options();
    opts.rows = 12_000;
    opts.rows_per_file = 5_000;
    opts.root_url = format!("file://{}/src/payer-1/cur2/", dir.path().display());
    let report = generate(Arc::clone(&store), &root, &opts).await.unwrap();
    assert_eq!(
        report.rows, opts.rows,
        "noise fills exactly up to the requested rows"
    );
    assert_eq!(report.files.len(), 3);
    assert_eq!(
        report.files[0],
        "src/payer-1/cur2/data/BILLING_PERIOD=2025-07/cur2-001-00001.snappy.parquet"
    );
    assert_eq!(report.commitments, 10);

    // Manifest: names exactly the files written, as URLs under root_url.
    let manifest_key =
        Path::from("src/payer-1/cur2/metadata/BILLING_PERIOD=2025-07/cur2-Manifest.json");
    assert_eq!(report.manifest, manifest_key.to_string());
    let manifest: serde_json::Value = serde_json::from_slice(
        &store
            .get(&manifest_key)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let urls: Vec<String> = report
        .files
        .iter()
        .map(|k| format!("file://{}/{k}", dir.path().display()))
        .collect();
    assert_eq!(manifest["dataFiles"], serde_json::json!(urls));
    assert_eq!(manifest["deliveryNumber"], 1);
    assert_eq!(manifest["reportName"], "cur2");
    assert_eq!(
        manifest["billingPeriod"]["start"],
        "2025-07-01T00:00:00.000Z"
    );
    assert_eq!(manifest["billingPeriod"]["end"], "2025-08-01T00:00:00.000Z");
    assert_eq!(manifest["executionId"].as_str().unwrap().len(), 36);

    // DataFusion reads the files back with the CUR 2.0 schema.
    let config = SessionConfig::new().set_bool(
        "datafusion.execution.parquet.schema_force_view_types",
        false,
    );
    let ctx = SessionContext::new_with_config(config);
    let data = dir
        .path()
        .join("src/payer-1/cur2/data/BILLING_PERIOD=2025-07/");
    let data = format!("{}/", data.display());
    ctx.register_parquet("cur", &data, ParquetReadOptions::default())
        .await
        .unwrap();
    let rows = query_f64(&ctx, "SELECT count(*) FROM cur").await;
    assert_eq!(rows, vec![report.rows as f64]);
    let df_schema = ctx.table("cur").await.unwrap().schema().as_arrow().clone();
    let expected = schema::cur_schema();
    assert_eq!(df_schema.fields().len(), 125);
    for (got, want) in df_schema.fields().iter().zip(expected.fields()) {
        assert_eq!(
            (got.name(), got.data_type()),
            (want.name(), want.data_type())
        );
    }

    // The files encode the truth: every RI's reported unused fee is what its capacity and
    // its use (normalized or not, as the RIFee line says) leave unused.
    let reconciled = query_f64(
        &ctx,
        "WITH fee AS (
           SELECT reservation_reservation_a_r_n AS arn,
             CASE WHEN CAST(reservation_total_reserved_normalized_units AS DOUBLE) > 0
               THEN CAST(reservation_total_reserved_normalized_units AS DOUBLE)
               ELSE CAST(reservation_total_reserved_units AS DOUBLE) END AS total,
             CAST(reservation_total_reserved_normalized_units AS DOUBLE) > 0 AS flexible,
             reservation_amortized_upfront_fee_for_billing_period + line_item_unblended_cost AS fees,
             reservation_unused_amortized_upfront_fee_for_billing_period
               + reservation_unused_recurring_fee AS reported
           FROM cur WHERE line_item_line_item_type = 'RIFee'),
         used AS (
           SELECT reservation_reservation_a_r_n AS arn,
             sum(line_item_normalized_usage_amount) AS nu, sum(line_item_usage_amount) AS hours
           FROM cur WHERE line_item_line_item_type = 'DiscountedUsage' GROUP BY 1)
         SELECT abs((f.total - coalesce(CASE WHEN f.flexible THEN u.nu ELSE u.hours END, 0))
                    * f.fees / f.total - f.reported)
         FROM fee f LEFT JOIN used u ON f.arn = u.arn",
    )
    .await;
    assert_eq!(reconciled.len(), 7);
    assert!(reconciled.iter().all(|d| *d < 1e-6), "{reconciled:?}");
    let ri_unused = query_f64(
        &ctx,
        "SELECT sum(reservation_unused_amortized_upfront_fee_for_billing_period
                    + reservation_unused_recurring_fee) FROM cur WHERE line_item_line_item_type = 'RIFee'",
    )
    .await;
    assert!((ri_unused[0] - report.ri_unused_cost).abs() < 1e-6);
    let sp_unused = query_f64(
        &ctx,
        "SELECT sum(savings_plan_total_commitment_to_date - savings_plan_used_commitment)
         FROM cur WHERE line_item_line_item_type = 'SavingsPlanRecurringFee'",
    )
    .await;
    assert!((sp_unused[0] - report.sp_unused_cost).abs() < 1e-6);
    // Hours with RI use, truncated to the hour, match the truth's `hour` rows.
    let truth = ground_truth(&opts);
    let used_hours: BTreeSet<_> = truth
        .ri
        .iter()
        .filter(|r| r.attribution == Attribution::Hour)
        .map(|r| (r.reservation_arn.clone(), r.usage_hour))
        .collect();
    let sql_hours = query_f64(
        &ctx,
        "SELECT count(*) FROM (SELECT DISTINCT reservation_reservation_a_r_n,
           date_trunc('hour', line_item_usage_start_date)
         FROM cur WHERE line_item_line_item_type = 'DiscountedUsage')",
    )
    .await;
    assert_eq!(sql_hours, vec![used_hours.len() as f64]);
    let untagged = query_f64(
        &ctx,
        "SELECT count(*) FROM cur WHERE line_item_line_item_type = 'DiscountedUsage'
           AND resource_tags['user_application'] IS NULL",
    )
    .await;
    assert!(untagged[0] > 0.0);

    // Ground truth files hold the same rows as ground_truth().
    for (key, n) in report
        .ground_truth
        .iter()
        .zip([truth.ri.len(), truth.sp.len()])
    {
        let path = format!("{}/{key}", dir.path().display());
        let df = ctx
            .read_parquet(path, ParquetReadOptions::default())
            .await
            .unwrap();
        assert_eq!(df.count().await.unwrap(), n);
    }

    // A second delivery replaces the first one's data files.
    opts.delivery = 2;
    opts.rows = 9_000;
    opts.rows_per_file = 100_000;
    let second = generate(Arc::clone(&store), &root, &opts).await.unwrap();
    let listed: BTreeSet<String> = store
        .list(Some(&Path::from("src/payer-1/cur2/data")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        listed,
        second.files.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert!(second.files.iter().all(|f| f.contains("/cur2-002-")));
    assert_eq!(second.files.len(), 1);
    assert_eq!(second.ri_unused_cost, report.ri_unused_cost);
}
