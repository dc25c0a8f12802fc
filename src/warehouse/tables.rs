//! The final tables' names and columns: the contract every warehouse backend writes to
//! and every reader (reports, tests, other engines) relies on. DESIGN.md §3 defines them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Hourly RI waste per reservation and application.
pub const RI_WASTAGE: &str = "ri_wastage_hourly";
/// Hourly Savings Plans waste per plan and application.
pub const SP_WASTAGE: &str = "sp_wastage_hourly";
/// The two waste tables as (kind, table, commitment ARN column).
pub const WASTE_TABLES: [(&str, &str, &str); 2] = [
    ("ri", RI_WASTAGE, "reservation_arn"),
    ("sp", SP_WASTAGE, "savings_plan_arn"),
];
/// Per commitment: what the fee lines report against what the hourly rows add up to.
pub const RECONCILIATION: &str = "commitment_reconciliation";

/// A commitment reconciles when its hourly rows add up to its fee lines within half a cent.
pub const RECONCILE_TOLERANCE: f64 = 0.005;

/// Payer configurations (see `payer_table`).
pub const PAYER_CONFIG: &str = "payer_config";

/// Timestamps are stored as UTC microseconds, which every Parquet reader understands.
fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn number(name: &str) -> Field {
    Field::new(name, DataType::Float64, false)
}

/// The columns of a final table, in order.
pub fn schema(table: &str) -> Option<SchemaRef> {
    let head = |arn: &str| {
        vec![
            text("payer_id"),
            text("billing_period"),
            Field::new("usage_hour", utc(), false),
            text(arn),
            Field::new("owner_account_id", DataType::Utf8, true),
            Field::new("region", DataType::Utf8, true),
            Field::new("product_code", DataType::Utf8, true),
            text("application"),
        ]
    };
    let tail = [
        text("attribution"),
        Field::new("processed_at", utc(), false),
    ];
    let fields: Vec<Field> = match table {
        RI_WASTAGE => head("reservation_arn")
            .into_iter()
            .chain(
                [
                    "reserved_units",
                    "used_units",
                    "unused_units",
                    "unused_cost",
                ]
                .map(number),
            )
            .chain(tail)
            .collect(),
        SP_WASTAGE => head("savings_plan_arn")
            .into_iter()
            .chain(
                [
                    "commitment",
                    "used_commitment",
                    "unused_commitment",
                    "unused_cost",
                ]
                .map(number),
            )
            .chain(tail)
            .collect(),
        RECONCILIATION => vec![
            text("payer_id"),
            text("billing_period"),
            text("kind"),
            text("commitment_arn"),
            number("expected"),
            number("computed"),
            Field::new("processed_at", utc(), false),
        ],
        PAYER_CONFIG => vec![
            text("payer_id"),
            text("config"),
            Field::new("updated_at", utc(), false),
        ],
        _ => return None,
    };
    Some(Arc::new(Schema::new(fields)))
}
