//! The ground truth as Parquet tables: `ri_wastage_hourly` and `sp_wastage_hourly` with the
//! final tables' columns (minus `processed_at`), so a test can compare them with a join.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::error::ArrowError;

use super::truth::{RiTruthRow, SpTruthRow};

/// `usage_hour` as the final tables hold it: microseconds, UTC.
fn hour_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Column layout shared by both tables: the commitment's id column and its four amounts differ.
fn schema(id: &str, amounts: [&str; 4]) -> Arc<Schema> {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let mut fields = vec![
        text("payer_id"),
        text("billing_period"),
        Field::new("usage_hour", hour_type(), true),
        text(id),
        text("owner_account_id"),
        text("region"),
        text("product_code"),
        text("application"),
    ];
    fields.extend(
        amounts
            .iter()
            .map(|name| Field::new(*name, DataType::Float64, true)),
    );
    fields.push(text("attribution"));
    Arc::new(Schema::new(fields))
}

fn strings<T>(rows: &[T], f: impl Fn(&T) -> &str) -> ArrayRef {
    Arc::new(rows.iter().map(|r| Some(f(r))).collect::<StringArray>())
}

fn floats<T>(rows: &[T], f: impl Fn(&T) -> f64) -> ArrayRef {
    Arc::new(rows.iter().map(|r| Some(f(r))).collect::<Float64Array>())
}

fn hours<T>(rows: &[T], f: impl Fn(&T) -> i64) -> ArrayRef {
    Arc::new(
        rows.iter()
            .map(|r| Some(f(r)))
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    )
}

/// `ri_wastage_hourly` rows as one batch.
pub(crate) fn ri_batch(rows: &[RiTruthRow]) -> Result<RecordBatch, ArrowError> {
    let schema = schema(
        "reservation_arn",
        [
            "reserved_units",
            "used_units",
            "unused_units",
            "unused_cost",
        ],
    );
    RecordBatch::try_new(
        schema,
        vec![
            strings(rows, |r| &r.payer_id),
            strings(rows, |r| &r.billing_period),
            hours(rows, |r| r.usage_hour.timestamp_micros()),
            strings(rows, |r| &r.reservation_arn),
            strings(rows, |r| &r.owner_account_id),
            strings(rows, |r| &r.region),
            strings(rows, |r| &r.product_code),
            strings(rows, |r| &r.application),
            floats(rows, |r| r.reserved_units),
            floats(rows, |r| r.used_units),
            floats(rows, |r| r.unused_units),
            floats(rows, |r| r.unused_cost),
            strings(rows, |r| r.attribution.as_str()),
        ],
    )
}

/// `sp_wastage_hourly` rows as one batch.
pub(crate) fn sp_batch(rows: &[SpTruthRow]) -> Result<RecordBatch, ArrowError> {
    let schema = schema(
        "savings_plan_arn",
        [
            "commitment",
            "used_commitment",
            "unused_commitment",
            "unused_cost",
        ],
    );
    RecordBatch::try_new(
        schema,
        vec![
            strings(rows, |r| &r.payer_id),
            strings(rows, |r| &r.billing_period),
            hours(rows, |r| r.usage_hour.timestamp_micros()),
            strings(rows, |r| &r.savings_plan_arn),
            strings(rows, |r| &r.owner_account_id),
            strings(rows, |r| &r.region),
            strings(rows, |r| &r.product_code),
            strings(rows, |r| &r.application),
            floats(rows, |r| r.commitment),
            floats(rows, |r| r.used_commitment),
            floats(rows, |r| r.unused_commitment),
            floats(rows, |r| r.unused_cost),
            strings(rows, |r| r.attribution.as_str()),
        ],
    )
}
