//! Every statement the Snowflake backend generates, as pure functions of validated values.
//!
//! Object names are built from a payer id (12 digits) and a billing period, so they are
//! plain identifiers; the only literals (the stage URL, the payer id and the period) are
//! quoted by the typed renderer's [`literal`]. The payer table and the storage integration
//! are identifiers validated by the settings. Golden tests pin each statement's text.

use std::fmt::Write;

use datafusion::arrow::datatypes::DataType;

use super::super::render::literal;
use super::super::tables::{self, FINAL_TABLES, RECONCILE_TOLERANCE, UNUSED_COST};
use crate::sync::TagColumn;
use crate::task::{BillingPeriod, PayerId};

/// The Parquet file format every stage and external table uses.
pub const FILE_FORMAT: &str = "curflow_parquet";
/// The view the analytics script reads (the DataFusion script's table name too).
pub const CUR_VIEW: &str = "cur_line_items";
/// Prefix of the script's result tables, which replace the final tables' payer-month.
pub const NEW_PREFIX: &str = "new_";

/// The stage and external table of one payer-period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodObjects {
    /// `curflow_stage_<payer>_<yyyy>_<mm>`.
    pub stage: String,
    /// `cur_<payer>_<yyyy>_<mm>`.
    pub external_table: String,
}

impl PeriodObjects {
    /// The names for `payer` and `period`.
    pub fn new(payer: &PayerId, period: BillingPeriod) -> Self {
        let suffix = format!("{payer}_{:04}_{:02}", period.year(), period.month());
        Self {
            stage: format!("curflow_stage_{suffix}"),
            external_table: format!("cur_{suffix}"),
        }
    }
}

/// The statements that expose a staged folder (`stage_url`, `s3://bucket/prefix/`) as an
/// external table with the files' inferred schema, then register the files.
/// Column names are inferred case-insensitively (upper-case), so the analytics can name
/// them unquoted as CUR writes them.
pub fn register_period(
    objects: &PeriodObjects,
    stage_url: &str,
    storage_integration: &str,
) -> Vec<String> {
    let PeriodObjects {
        stage,
        external_table,
    } = objects;
    vec![
        format!("CREATE FILE FORMAT IF NOT EXISTS {FILE_FORMAT} TYPE = PARQUET"),
        format!(
            "CREATE OR REPLACE STAGE {stage} URL = {} STORAGE_INTEGRATION = {storage_integration} FILE_FORMAT = (FORMAT_NAME = '{FILE_FORMAT}')",
            literal(stage_url)
        ),
        format!(
            "CREATE OR REPLACE EXTERNAL TABLE {external_table} USING TEMPLATE (SELECT ARRAY_AGG(OBJECT_CONSTRUCT(*)) WITHIN GROUP (ORDER BY ORDER_ID) FROM TABLE(INFER_SCHEMA(LOCATION => '@{stage}/', FILE_FORMAT => '{FILE_FORMAT}', IGNORE_CASE => TRUE))) LOCATION = @{stage}/ FILE_FORMAT = (FORMAT_NAME = '{FILE_FORMAT}') AUTO_REFRESH = FALSE REFRESH_ON_CREATE = FALSE"
        ),
        format!("ALTER EXTERNAL TABLE {external_table} REFRESH"),
    ]
}

/// A final table's column type in Snowflake. Timestamps are UTC without a zone
/// (`TIMESTAMP_NTZ`), as CUR writes them.
fn column_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Float64 => "FLOAT",
        DataType::Timestamp(_, _) => "TIMESTAMP_NTZ",
        _ => "VARCHAR",
    }
}

/// `CREATE TABLE IF NOT EXISTS` for each final table, with the columns of [`tables`].
pub fn create_final_tables() -> Vec<String> {
    FINAL_TABLES
        .iter()
        .map(|table| {
            let schema = table.schema();
            let columns: Vec<String> = schema
                .fields()
                .iter()
                .map(|f| {
                    format!(
                        "{} {}{}",
                        f.name(),
                        column_type(f.data_type()),
                        if f.is_nullable() { "" } else { " NOT NULL" }
                    )
                })
                .collect();
            format!(
                "CREATE TABLE IF NOT EXISTS {} ({}) CLUSTER BY ({})",
                table.name,
                columns.join(", "),
                tables::PARTITION_COLUMNS.join(", ")
            )
        })
        .collect()
}

/// The view the analytics script reads, over the period's external table. A layout that
/// keeps tags as columns has them gathered into the `resource_tags` object the script
/// reads (`OBJECT_CONSTRUCT` leaves out the tags a line does not carry, as the CUR 2.0 map
/// does). Each column is a Parquet column name the caller checked to be a plain
/// identifier; each key is quoted as a literal.
pub fn cur_view(objects: &PeriodObjects, tag_columns: &[TagColumn]) -> String {
    let tags = if tag_columns.is_empty() {
        String::new()
    } else {
        let pairs: Vec<String> = tag_columns
            .iter()
            .map(|c| format!("{}, {}::VARCHAR", literal(&c.key), c.column))
            .collect();
        format!(", OBJECT_CONSTRUCT({}) AS resource_tags", pairs.join(", "))
    };
    format!(
        "CREATE OR REPLACE TEMPORARY VIEW {CUR_VIEW} AS SELECT *{tags} FROM {}",
        objects.external_table
    )
}

/// Replaces the payer-period in every final table with the script's `new_…` tables, in
/// one transaction: readers see the old month or the new one, never both.
pub fn replace_period(payer: &PayerId, period: BillingPeriod) -> Vec<String> {
    let predicate = period_predicate(payer, period);
    let mut out = vec!["BEGIN TRANSACTION".to_owned()];
    for table in &FINAL_TABLES {
        let (name, schema) = (table.name, table.schema());
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let columns = columns.join(", ");
        out.push(format!("DELETE FROM {name} WHERE {predicate}"));
        out.push(format!(
            "INSERT INTO {name} ({columns}) SELECT {columns} FROM {NEW_PREFIX}{name}"
        ));
    }
    out.push("COMMIT".to_owned());
    out
}

/// The rows of one payer-month in a final table. The SQL API binds no value in a
/// multi-statement request, and a transaction over several tables needs one, so the two
/// values are literals: a validated payer id (digits) and a billing period curflow formats,
/// quoted by the typed renderer.
fn period_predicate(payer: &PayerId, period: BillingPeriod) -> String {
    format!(
        "payer_id = {} AND billing_period = {}",
        literal(payer.as_str()),
        literal(&period.to_string())
    )
}

/// The statements that remove a payer-month from every final table in one transaction
/// (an empty delivery), creating the tables first if they do not exist yet.
pub fn clear_period(payer: &PayerId, period: BillingPeriod) -> Vec<String> {
    let predicate = period_predicate(payer, period);
    let mut out = create_final_tables();
    out.push("BEGIN TRANSACTION".to_owned());
    for table in &FINAL_TABLES {
        out.push(format!("DELETE FROM {} WHERE {predicate}", table.name));
    }
    out.push("COMMIT".to_owned());
    out
}

/// What the run reports: rows and waste per kind of waste table, then the commitments that
/// do not reconcile to the cent.
pub fn totals() -> Vec<String> {
    let per_kind: Vec<String> = tables::waste_tables()
        .enumerate()
        .map(|(i, (table, waste))| {
            let (kind, count, cost) = if i == 0 {
                (" AS kind", " AS row_count", " AS unused_cost")
            } else {
                ("", "", "")
            };
            format!(
                "SELECT '{}'{kind}, COUNT(*){count}, COALESCE(SUM({UNUSED_COST}), 0){cost} FROM {NEW_PREFIX}{}",
                waste.kind, table.name
            )
        })
        .collect();
    vec![
        per_kind.join(" UNION ALL "),
        format!(
            "SELECT kind, commitment_arn, expected, computed FROM {NEW_PREFIX}{} WHERE ABS(expected - computed) >= {RECONCILE_TOLERANCE} ORDER BY kind, commitment_arn",
            tables::RECONCILIATION
        ),
    ]
}

/// One payer-month's waste in final table `table` (whose commitment column is `arn`),
/// summed three ways: per commitment, per application, and per hour (epoch seconds) and
/// application. The payer and the period are bound as `?`, three times each.
pub fn breakdown(table: &str, arn: &str) -> String {
    let rows = format!("FROM {table} WHERE payer_id = ? AND billing_period = ?");
    format!(
        "SELECT 'commitment' AS grain, {arn} AS name, NULL AS hour, SUM(unused_cost) AS cost {rows} GROUP BY {arn} \
         UNION ALL SELECT 'application', application, NULL, SUM(unused_cost) {rows} GROUP BY application \
         UNION ALL SELECT 'hour', application, DATE_PART(EPOCH_SECOND, usage_hour), SUM(unused_cost) {rows} GROUP BY application, usage_hour"
    )
}

/// Every row of the payer table.
pub fn payer_table(table: &str) -> String {
    format!("SELECT * FROM {table}")
}

/// The newest `processed_at` of a payer in the waste tables (the payer bound as `?` once
/// per waste table), in microseconds since the epoch (a number is unambiguous across the
/// SQL API's timestamp formats).
pub fn last_processed() -> String {
    let rows: Vec<String> = tables::waste_tables()
        .map(|(table, _)| format!("SELECT processed_at FROM {} WHERE payer_id = ?", table.name))
        .collect();
    format!(
        "SELECT DATE_PART(EPOCH_MICROSECOND, MAX(processed_at)) AS processed_at FROM ({})",
        rows.join(" UNION ALL ")
    )
}

/// The statements of a script: split at `;` outside quotes, `--` comments dropped,
/// blank statements skipped.
pub fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let mut in_quote = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    in_quote = !in_quote;
                    current.push(c);
                }
                '-' if !in_quote && chars.peek() == Some(&'-') => break,
                ';' if !in_quote => {
                    let statement = current.trim();
                    if !statement.is_empty() {
                        out.push(statement.to_owned());
                    }
                    current.clear();
                }
                _ => current.push(c),
            }
        }
        current.push('\n');
    }
    let statement = current.trim();
    if !statement.is_empty() {
        out.push(statement.to_owned());
    }
    out
}

/// Statements joined into one multi-statement request body.
pub fn join(statements: &[String]) -> String {
    let mut out = String::new();
    for s in statements {
        let _ = writeln!(out, "{s};");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_comments() {
        let got =
            split_statements("-- a; comment\nSELECT 'a;b' AS x; -- trailing;\n\nSELECT 2\n;\n");
        assert_eq!(got, vec!["SELECT 'a;b' AS x", "SELECT 2"]);
    }

    /// A legacy report's tag columns become the `resource_tags` object the script reads,
    /// keys as literals; the statement parses as Snowflake SQL.
    #[test]
    fn the_view_gathers_tag_columns_into_resource_tags() {
        let objects = PeriodObjects::new(
            &PayerId::parse("671238551718").unwrap(),
            BillingPeriod::new(2025, 7).unwrap(),
        );
        let tags = [
            TagColumn {
                column: "resource_tags_user_application".into(),
                key: "user_application".into(),
            },
            TagColumn {
                column: "resource_tags_user_team".into(),
                key: "user_team".into(),
            },
        ];
        let view = cur_view(&objects, &tags);
        assert_eq!(
            view,
            "CREATE OR REPLACE TEMPORARY VIEW cur_line_items AS SELECT *, OBJECT_CONSTRUCT('user_application', resource_tags_user_application::VARCHAR, 'user_team', resource_tags_user_team::VARCHAR) AS resource_tags FROM cur_671238551718_2025_07"
        );
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::SnowflakeDialect {}, &view)
            .unwrap();
    }

    #[test]
    fn an_empty_delivery_clears_the_payer_month_in_one_transaction() {
        let payer = PayerId::parse("671238551718").unwrap();
        let period = BillingPeriod::new(2025, 7).unwrap();
        let statements = clear_period(&payer, period);
        let creates = create_final_tables().len();
        assert_eq!(statements[..creates], create_final_tables()[..]);
        assert_eq!(
            statements[creates..],
            [
                "BEGIN TRANSACTION",
                "DELETE FROM ri_wastage_hourly WHERE payer_id = '671238551718' AND billing_period = '2025-07'",
                "DELETE FROM sp_wastage_hourly WHERE payer_id = '671238551718' AND billing_period = '2025-07'",
                "DELETE FROM commitment_reconciliation WHERE payer_id = '671238551718' AND billing_period = '2025-07'",
                "COMMIT",
            ]
        );
    }

    #[test]
    fn names_are_identifiers() {
        let o = PeriodObjects::new(
            &PayerId::parse("671238551718").unwrap(),
            BillingPeriod::new(2025, 7).unwrap(),
        );
        assert_eq!(o.stage, "curflow_stage_671238551718_2025_07");
        assert!(super::super::config::is_identifier(&o.external_table));
    }
}
