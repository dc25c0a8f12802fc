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
/// The temporary table of the period's distinct tag lists and the tag object of each.
pub const TAG_MAPS: &str = "cur_tag_maps";
/// What every request that changes the final tables says first. By default
/// (`TRANSACTION_ABORT_ON_ERROR = FALSE`) a failed statement inside a transaction leaves
/// it open with the statements before it applied ("Transactions"), and the SQL API
/// accepts this parameter only from `ALTER SESSION`, not in the request's `parameters`:
/// with it a failure aborts the transaction, so the final tables keep the old month.
pub const ABORT_ON_ERROR: &str = "ALTER SESSION SET TRANSACTION_ABORT_ON_ERROR = TRUE";

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
/// them unquoted as CUR writes them. The template takes only the four fields a column
/// definition needs from `INFER_SCHEMA`: with `OBJECT_CONSTRUCT(*)` every column would
/// also carry `FILENAMES`, the list of files holding it, and for a payer with many files
/// and columns the aggregate can pass the size limit of an `ARRAY` ("INFER_SCHEMA").
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
            "CREATE OR REPLACE EXTERNAL TABLE {external_table} USING TEMPLATE (SELECT ARRAY_AGG(OBJECT_CONSTRUCT('COLUMN_NAME', COLUMN_NAME, 'TYPE', TYPE, 'NULLABLE', NULLABLE, 'EXPRESSION', EXPRESSION)) WITHIN GROUP (ORDER BY ORDER_ID) FROM TABLE(INFER_SCHEMA(LOCATION => '@{stage}/', FILE_FORMAT => '{FILE_FORMAT}', IGNORE_CASE => TRUE))) LOCATION = @{stage}/ FILE_FORMAT = (FORMAT_NAME = '{FILE_FORMAT}') AUTO_REFRESH = FALSE REFRESH_ON_CREATE = FALSE"
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

/// Where the tags of a staged period are, for [`cur_view`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tags {
    /// CUR 2.0's `resource_tags` Parquet map.
    Map,
    /// A layout's tag columns (the legacy report's `resource_tags_user_<key>`).
    Columns(Vec<TagColumn>),
    /// No tags at all: every line is untagged.
    None,
}

/// The statements that make the view the analytics script reads, over the period's
/// external table, with `resource_tags` an object of tag key → value on every line.
///
/// - A Parquet map reaches an external table as `{"key_value": [{"key": …, "value": …}]}`:
///   only the vectorized scanner reads maps as objects, and external tables do not take
///   that option ("CREATE FILE FORMAT", "CREATE EXTERNAL TABLE"). So the period's distinct
///   tag lists are turned into objects once, in a small temporary table, and joined back
///   by their text; a line whose tags already are an object keeps them. (Loading the
///   period with `COPY INTO` and the vectorized scanner would read maps right, but keeps a
///   second copy of every staged month and reloads it on each delivery.)
/// - Tag columns are gathered into an object (`OBJECT_CONSTRUCT` leaves out the tags a
///   line does not carry, as the map does). Each column is a Parquet column name the
///   caller checked to be a plain identifier; each key is quoted as a literal.
pub fn cur_view(objects: &PeriodObjects, tags: &Tags) -> Vec<String> {
    let table = &objects.external_table;
    match tags {
        Tags::Map => vec![
            format!(
                "CREATE OR REPLACE TEMPORARY TABLE {TAG_MAPS} AS SELECT t.tags_text, OBJECT_AGG(f.value:key::VARCHAR, f.value:value) AS tags \
                 FROM (SELECT DISTINCT TO_JSON(resource_tags:key_value) AS tags_text FROM {table} WHERE IS_ARRAY(resource_tags:key_value)) t, \
                 LATERAL FLATTEN(input => PARSE_JSON(t.tags_text)) f GROUP BY t.tags_text"
            ),
            format!(
                "CREATE OR REPLACE TEMPORARY VIEW {CUR_VIEW} AS SELECT e.* EXCLUDE (resource_tags), COALESCE(m.tags, e.resource_tags) AS resource_tags \
                 FROM {table} e LEFT JOIN {TAG_MAPS} m ON m.tags_text = TO_JSON(e.resource_tags:key_value)"
            ),
        ],
        Tags::Columns(columns) => {
            let pairs: Vec<String> = columns
                .iter()
                .map(|c| format!("{}, {}::VARCHAR", literal(&c.key), c.column))
                .collect();
            vec![format!(
                "CREATE OR REPLACE TEMPORARY VIEW {CUR_VIEW} AS SELECT *, OBJECT_CONSTRUCT({}) AS resource_tags FROM {table}",
                pairs.join(", ")
            )]
        }
        Tags::None => vec![format!(
            "CREATE OR REPLACE TEMPORARY VIEW {CUR_VIEW} AS SELECT *, OBJECT_CONSTRUCT() AS resource_tags FROM {table}"
        )],
    }
}

/// Replaces the payer-period in every final table with the script's `new_…` tables, in
/// one transaction: readers see the old month or the new one, never both.
pub fn replace_period(payer: &PayerId, period: BillingPeriod) -> Vec<String> {
    let predicate = period_predicate(payer, period);
    let mut out = vec![ABORT_ON_ERROR.to_owned(), "BEGIN TRANSACTION".to_owned()];
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
    out.push(ABORT_ON_ERROR.to_owned());
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

/// Statements joined into one multi-statement request body: each ends with `;` and a
/// line break, so [`statement_at_line`] can find one from the line Snowflake names.
pub fn join(statements: &[String]) -> String {
    let mut out = String::new();
    for s in statements {
        let _ = writeln!(out, "{s};");
    }
    out
}

/// The statement of a [`join`]ed request that starts on `line` (1-based).
pub fn statement_at_line(statements: &[String], line: usize) -> Option<usize> {
    let mut first = 1;
    for (i, statement) in statements.iter().enumerate() {
        let last = first + statement.matches('\n').count();
        if (first..=last).contains(&line) {
            return Some(i);
        }
        first = last + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_the_request_names_its_statement() {
        let statements: Vec<String> = ["SELECT 1", "SELECT\n2\nFROM t", "SELECT 3"]
            .map(str::to_owned)
            .into();
        let text = join(&statements);
        let starts: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with("SELECT"))
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(starts, [1, 2, 5]);
        let found: Vec<Option<usize>> =
            (1..=6).map(|l| statement_at_line(&statements, l)).collect();
        assert_eq!(found, [Some(0), Some(1), Some(1), Some(1), Some(2), None]);
    }

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
        let view = cur_view(&objects, &Tags::Columns(tags.to_vec())).remove(0);
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
                ABORT_ON_ERROR,
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
