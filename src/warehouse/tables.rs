//! The one registry of final tables: each table's name, columns, partition columns and what
//! the run totals from it. It is the contract every backend writes to and every reader
//! (reports, tests, other engines) relies on; DESIGN.md §3 defines the tables.
//!
//! Both backends loop over [`FINAL_TABLES`]: adding a table is one entry here plus one SQL
//! file per dialect, `sql/<dialect>/<name>.sql` (see `super::sql`), whose statement creates
//! the table's rows for one payer-period.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Hourly RI waste per reservation and application.
pub const RI_WASTAGE: &str = "ri_wastage_hourly";
/// Hourly Savings Plans waste per plan and application.
pub const SP_WASTAGE: &str = "sp_wastage_hourly";
/// Per commitment: what the fee lines report against what the hourly rows add up to.
pub const RECONCILIATION: &str = "commitment_reconciliation";
/// Payer configurations (see `payer_table`); written by `curflow payers`, not by a run.
pub const PAYER_CONFIG: &str = "payer_config";

/// The column every waste table holds its wasted dollars in, and that the run totals.
pub const UNUSED_COST: &str = "unused_cost";

/// A commitment reconciles when its hourly rows add up to its fee lines within half a cent.
pub const RECONCILE_TOLERANCE: f64 = 0.005;

/// Every final table is partitioned by payer and billing period: a run replaces one
/// payer-month of each.
pub const PARTITION_COLUMNS: [&str; 2] = ["payer_id", "billing_period"];

/// A final table a run replaces one payer-month of.
#[derive(Debug)]
pub struct FinalTable {
    /// The table's name, in every warehouse, and the name of its SQL file in every dialect.
    pub name: &'static str,
    /// Its columns, in order.
    fields: fn() -> Vec<Field>,
    /// Set for a table of commitment waste: what the run totals from it.
    pub waste: Option<Waste>,
}

/// What a waste table is, for the run's totals and the report.
#[derive(Debug)]
pub struct Waste {
    /// The commitment kind, `ri` or `sp`: the totals' and the notification's key.
    pub kind: &'static str,
    /// How the summary names it (`RI` → "RI waste $12.00").
    pub label: &'static str,
    /// The column naming the commitment (a reservation or Savings Plan ARN).
    pub commitment_column: &'static str,
}

impl FinalTable {
    /// The table's columns, in order.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new((self.fields)()))
    }
}

/// The final tables, in the order a run replaces them.
pub const FINAL_TABLES: [FinalTable; 3] = [
    FinalTable {
        name: RI_WASTAGE,
        fields: ri_wastage_fields,
        waste: Some(Waste {
            kind: "ri",
            label: "RI",
            commitment_column: "reservation_arn",
        }),
    },
    FinalTable {
        name: SP_WASTAGE,
        fields: sp_wastage_fields,
        waste: Some(Waste {
            kind: "sp",
            label: "SP",
            commitment_column: "savings_plan_arn",
        }),
    },
    FinalTable {
        name: RECONCILIATION,
        fields: reconciliation_fields,
        waste: None,
    },
];

/// The waste tables with what they are, in registry order.
pub fn waste_tables() -> impl Iterator<Item = (&'static FinalTable, &'static Waste)> {
    FINAL_TABLES
        .iter()
        .filter_map(|table| table.waste.as_ref().map(|waste| (table, waste)))
}

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

/// The columns every waste table starts with: the partition, the hour, the commitment
/// (`arn`) and where it lives, and the application.
fn waste_head(arn: &str) -> Vec<Field> {
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
}

/// A waste table: its head, its four measures, then how the waste was attributed and when.
fn waste_fields(arn: &str, measures: [&str; 4]) -> Vec<Field> {
    let mut fields = waste_head(arn);
    fields.extend(measures.map(number));
    fields.push(text("attribution"));
    fields.push(Field::new("processed_at", utc(), false));
    fields
}

fn ri_wastage_fields() -> Vec<Field> {
    waste_fields(
        "reservation_arn",
        ["reserved_units", "used_units", "unused_units", UNUSED_COST],
    )
}

fn sp_wastage_fields() -> Vec<Field> {
    waste_fields(
        "savings_plan_arn",
        [
            "commitment",
            "used_commitment",
            "unused_commitment",
            UNUSED_COST,
        ],
    )
}

fn reconciliation_fields() -> Vec<Field> {
    vec![
        text("payer_id"),
        text("billing_period"),
        text("kind"),
        text("commitment_arn"),
        number("expected"),
        number("computed"),
        Field::new("processed_at", utc(), false),
    ]
}

/// The payer table's columns.
pub fn payer_config_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("payer_id"),
        text("config"),
        Field::new("updated_at", utc(), false),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_final_table_is_partitioned_by_payer_and_period_and_stamped() {
        for table in &FINAL_TABLES {
            let schema = table.schema();
            for column in PARTITION_COLUMNS.iter().chain(["processed_at"].iter()) {
                assert!(
                    schema.field_with_name(column).is_ok(),
                    "{} has no {column}",
                    table.name
                );
            }
        }
        for (table, waste) in waste_tables() {
            let schema = table.schema();
            assert!(
                schema.field_with_name(UNUSED_COST).is_ok(),
                "{}",
                table.name
            );
            assert!(
                schema.field_with_name(waste.commitment_column).is_ok(),
                "{}",
                table.name
            );
        }
    }
}
