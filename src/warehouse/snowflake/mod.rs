//! The Snowflake warehouse, over the documented SQL API v2 (no driver protocol).
//!
//! A staged payer-period becomes a stage (through a storage integration: no keys in SQL)
//! and an external table whose columns `INFER_SCHEMA` reads from the files; a layout that
//! keeps tags as columns has them mapped onto the `resource_tags` object in the view the
//! analytics read. The analytics (`sql/snowflake/`: the shared statements, then one file
//! per final table, the same logic as `sql/datafusion/`) run as one multi-statement
//! request — one session, so their temporary tables live exactly as long as the run — that
//! ends by replacing the payer-month in the final tables with `DELETE` + `INSERT` inside
//! one transaction. [`client`] speaks the API, [`auth`] signs in, [`ddl`] writes the SQL.

mod auth;
mod client;
mod config;
pub mod ddl;

use chrono::{DateTime, Utc};
use datafusion::datasource::file_format::parquet::ParquetFormat;

use client::{Client, Context, ResultSet, SqlApiError};
pub use config::{AuthSettings, SnowflakeProfile, SnowflakeSettings};

use super::{
    AnalyticsOutcome, Mismatch, Params, PayerTable, RenderError, StagedPeriod, StatementOutcome,
    Warehouse, WarehouseError, WasteBreakdown, WasteReader, WasteTotals, inspect, order_free_sum,
    sql, statement_name, tables,
};
use crate::payers::PayerConfig;
use crate::secrets::SecretError;
use crate::sync::TagColumn;
use crate::task::{BillingPeriod, PayerId};

/// The SQL dialect of `sql/<dialect>/` Snowflake runs.
const DIALECT: &str = "snowflake";

/// The analytics statements curflow sends for a payer-period, after its view over the
/// external table: every Snowflake SQL file in order, rendered and split.
pub fn analytics_statements(params: &Params) -> Result<Vec<String>, RenderError> {
    Ok(sql::analytics(DIALECT, params)?
        .iter()
        .flat_map(|script| ddl::split_statements(&script.text))
        .collect())
}

/// The columns of the payer table that become a payer configuration; others are ignored.
const PAYER_COLUMNS: [&str; 7] = [
    "payer_id",
    "source",
    "layout",
    "region",
    "role_arn",
    "external_id",
    "active",
];

/// Snowflake through the SQL API.
#[derive(Debug)]
pub struct Snowflake {
    client: Client,
    payer_table: String,
    storage_integration: String,
}

/// An external table over one staged payer-period.
#[derive(Debug, Clone)]
pub struct SnowflakeTable {
    staged: StagedPeriod,
    objects: ddl::PeriodObjects,
    /// Where the staged files keep their tags, which the view turns into `resource_tags`.
    tags: ddl::Tags,
}

impl From<SqlApiError> for WarehouseError {
    fn from(e: SqlApiError) -> Self {
        match e {
            SqlApiError::Unauthorized { .. } | SqlApiError::Key(_) => {
                WarehouseError::Credentials(e.to_string())
            }
            other => WarehouseError::Request(other.to_string()),
        }
    }
}

/// A credential that could not be read: a request failure when Secrets Manager itself
/// failed (the run takes the fatal path and the next one may succeed), else a credentials
/// error (the settings must change).
fn secret_unread(message: String, error: &SecretError) -> WarehouseError {
    if error.is_transient() {
        WarehouseError::Request(message)
    } else {
        WarehouseError::Credentials(message)
    }
}

impl Snowflake {
    /// Reads the credential and prepares the client. Errors (exit 2, nothing touched) when
    /// the secret cannot be read or the key is not a usable RSA key.
    pub async fn connect(settings: &SnowflakeSettings) -> Result<Self, WarehouseError> {
        let credentials = match &settings.auth {
            AuthSettings::KeyPair { private_key } => {
                let pem = private_key.read().await.map_err(|e| {
                    secret_unread(format!("Snowflake private key ({private_key}): {e}"), &e)
                })?;
                auth::Credentials::KeyPair(
                    auth::KeyPairSigner::from_pem(&settings.account, &settings.user, &pem)
                        .map_err(|e| {
                            WarehouseError::Credentials(format!("{e} (read from {private_key})"))
                        })?,
                )
            }
            AuthSettings::Token { kind, token } => auth::Credentials::Token {
                kind: *kind,
                token: token
                    .read()
                    .await
                    .map_err(|e| secret_unread(format!("Snowflake token ({token}): {e}"), &e))?,
            },
        };
        let client = Client::new(
            settings.base_url.clone(),
            settings.user.clone(),
            credentials,
            Context {
                role: settings.role.clone(),
                warehouse: settings.warehouse.clone(),
                database: settings.database.clone(),
                schema: settings.schema.clone(),
            },
            crate::retry::RetryPolicy::default(),
        )?;
        Ok(Self {
            client,
            payer_table: settings.payer_table.clone(),
            storage_integration: settings.storage_integration.clone(),
        })
    }

    /// Runs statements as one request.
    async fn run_all(&self, statements: &[String]) -> Result<ResultSet, SqlApiError> {
        self.client
            .execute(&ddl::join(statements), statements.len(), &[])
            .await
    }
}

/// The statement (index into `statements`) a failed multi-statement request names.
fn failed_index(error: &SqlApiError, statements: &[String]) -> Option<usize> {
    match error {
        SqlApiError::Statement {
            line: Some(line), ..
        } => ddl::statement_at_line(statements, *line),
        _ => None,
    }
}

/// The tag columns whose names are plain identifiers, which the view can name unquoted
/// (Snowflake's inferred columns are upper-case, and an unquoted name matches them); any
/// other is left out with a warning rather than spliced into SQL.
fn plain_tag_columns(columns: Vec<TagColumn>) -> Vec<TagColumn> {
    columns
        .into_iter()
        .filter(|c| {
            let plain = config::is_identifier(&c.column);
            if !plain {
                tracing::warn!(column = %c.column, "tag column name is not a plain identifier; its tag is not mapped");
            }
            plain
        })
        .collect()
}

/// A payer table row as the JSON of a settings-file payer entry.
fn payer_json(result: &ResultSet, row: usize) -> serde_json::Value {
    let mut entry = serde_json::Map::new();
    for column in PAYER_COLUMNS {
        let Some(value) = result.cell(row, column) else {
            continue;
        };
        let value = if column == "active" {
            serde_json::Value::Bool(matches!(
                value.to_ascii_lowercase().as_str(),
                "true" | "1" | "yes" | "y"
            ))
        } else {
            serde_json::Value::String(value.to_owned())
        };
        entry.insert(column.to_owned(), value);
    }
    serde_json::Value::Object(entry)
}

fn number(result: &ResultSet, row: usize, column: &str) -> f64 {
    result
        .cell(row, column)
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

impl PayerTable for Snowflake {
    async fn payer_configs(&self) -> Result<Vec<PayerConfig>, WarehouseError> {
        let result = self
            .client
            .execute(&ddl::payer_table(&self.payer_table), 1, &[])
            .await?;
        (0..result.rows.len())
            .map(|row| {
                let entry = payer_json(&result, row);
                serde_json::from_value::<PayerConfig>(entry).map_err(|e| {
                    let id = result.cell(row, "payer_id").unwrap_or("(no payer_id)");
                    WarehouseError::PayerTable(super::PayerTableError::invalid(id, &e))
                })
            })
            .collect()
    }
}

impl WasteReader for Snowflake {
    async fn last_processed(
        &self,
        payer: &PayerId,
    ) -> Result<Option<DateTime<Utc>>, WarehouseError> {
        let binds = vec![payer.as_str(); tables::waste_tables().count()];
        let result = match self.client.execute(&ddl::last_processed(), 1, &binds).await {
            // 002003: the final tables do not exist yet, so nothing was ever processed.
            Err(SqlApiError::Statement { code, .. }) if code == "002003" => return Ok(None),
            other => other?,
        };
        let micros = result
            .rows
            .first()
            .and_then(|row| row.first())
            .and_then(|cell| cell.as_deref())
            .and_then(|text| text.parse::<f64>().ok());
        Ok(micros.and_then(|m| DateTime::from_timestamp_micros(m as i64)))
    }

    async fn breakdown(
        &self,
        payer: &PayerId,
        period: BillingPeriod,
    ) -> Result<WasteBreakdown, WarehouseError> {
        let mut out = WasteBreakdown::new(payer.clone(), period);
        let period_text = period.to_string();
        let binds = [payer.as_str(), period_text.as_str()].repeat(3);
        for (final_table, waste) in tables::waste_tables() {
            let (kind, table, arn) = (waste.kind, final_table.name, waste.commitment_column);
            let result = match self
                .client
                .execute(&ddl::breakdown(table, arn), 1, &binds)
                .await
            {
                // 002003: the table does not exist yet: nothing was analysed.
                Err(SqlApiError::Statement { code, .. }) if code == "002003" => continue,
                other => other?,
            };
            let mut commitment_costs = Vec::new();
            for row in 0..result.rows.len() {
                let cell = |name: &str| result.cell(row, name);
                let name = cell("name").unwrap_or_default().to_owned();
                let Some(cost) = cell("cost").and_then(|c| c.parse::<f64>().ok()) else {
                    continue;
                };
                match cell("grain") {
                    Some("commitment") => {
                        commitment_costs.push(cost);
                        out.add_commitment(kind, name, cost);
                    }
                    Some("application") => out.add_application(kind, name, cost),
                    Some("hour") => {
                        let hour = cell("hour")
                            .and_then(|h| h.parse::<f64>().ok())
                            .and_then(|h| DateTime::from_timestamp(h as i64, 0));
                        if let Some(hour) = hour {
                            out.add_hour(hour, name, cost);
                        }
                    }
                    _ => {}
                }
            }
            out.set_total(kind, order_free_sum(commitment_costs));
        }
        Ok(out.finish())
    }
}

impl Warehouse for Snowflake {
    type Table = SnowflakeTable;

    /// As many as the run's payers bring: the work is Snowflake's, each payer-period has
    /// its own stage and external table, and each request is its own session (its
    /// temporary tables are its own).
    fn analyses_at_once(&self) -> usize {
        usize::MAX
    }

    async fn register_period(
        &self,
        staged: &StagedPeriod,
    ) -> Result<SnowflakeTable, WarehouseError> {
        let objects = ddl::PeriodObjects::new(&staged.payer, staged.period);
        // Snowflake infers the schema itself; curflow reads the files' footers first so that
        // an empty or unreadable file, or one without a column the analytics read, is
        // refused, naming it, and a layout's tag columns can be mapped.
        let state = datafusion::prelude::SessionContext::new().state();
        let schema = inspect::staged_files(staged, &ParquetFormat::default(), &state)
            .await
            .map_err(|reason| staged.register_failed(reason))?;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let tag_columns = plain_tag_columns(staged.layout.tag_columns(&columns));
        let tags = if !tag_columns.is_empty() {
            ddl::Tags::Columns(tag_columns)
        } else if columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case("resource_tags"))
        {
            ddl::Tags::Map
        } else {
            ddl::Tags::None
        };
        let url = staged.location.url().as_folder();
        let mut statements = ddl::register_period(&objects, &url, &self.storage_integration);
        statements.extend(ddl::create_final_tables());
        self.run_all(&statements)
            .await
            .map_err(|e| match WarehouseError::from(e) {
                WarehouseError::Request(reason) => staged.register_failed(reason),
                other => other,
            })?;
        Ok(SnowflakeTable {
            staged: staged.clone(),
            objects,
            tags,
        })
    }

    async fn run_analytics(
        &self,
        table: &SnowflakeTable,
        application_tag: &str,
    ) -> Result<AnalyticsOutcome, WarehouseError> {
        let params = table.staged.params(application_tag);
        let mut statements = ddl::cur_view(&table.objects, &table.tags);
        statements.extend(analytics_statements(&params)?);
        statements.extend(ddl::replace_period(
            &table.staged.payer,
            table.staged.period,
        ));
        // The totals come right after the replace's COMMIT.
        let totals_at = statements.len();
        statements.extend(ddl::totals());
        let names: Vec<String> = statements.iter().map(|s| statement_name(s)).collect();
        let mut outcome = AnalyticsOutcome::default();
        // One request computes and replaces the payer-month: the lease is confirmed as it
        // is sent (Snowflake cannot check it at the commit).
        table.staged.fence.confirm()?;
        let result = match self.run_all(&statements).await {
            Ok(result) => result,
            Err(
                e @ (SqlApiError::Statement { .. }
                | SqlApiError::Timeout { .. }
                | SqlApiError::Cancelled { .. }),
            ) => {
                let failed = failed_index(&e, &statements);
                if let Some(index) = failed.filter(|&i| i >= totals_at) {
                    // The payer-month is replaced; only reading the totals failed. Not an
                    // analytics failure: the run fails, and the next one analyses again.
                    return Err(WarehouseError::Request(format!(
                        "the payer-month was replaced in the final tables (committed), but statement {} of {} after the commit ({}) failed: {e}",
                        index + 1,
                        names.len(),
                        names[index]
                    )));
                }
                // The failed statement aborted the transaction (ABORT_ON_ERROR) and the
                // statements after it did not run: the final tables are untouched.
                tracing::warn!(payer = %params.payer, period = %params.period, error = %e, "analytics failed");
                let failed_name = match failed {
                    Some(index) => {
                        outcome.statements = names[..index]
                            .iter()
                            .map(|name| StatementOutcome {
                                name: name.clone(),
                                error: None,
                            })
                            .collect();
                        format!(
                            "statement {} of {} in one request: {}",
                            index + 1,
                            names.len(),
                            names[index]
                        )
                    }
                    None => format!(
                        "sql/{DIALECT}/*.sql ({} statements in one request)",
                        names.len()
                    ),
                };
                outcome.statements.push(StatementOutcome {
                    name: failed_name,
                    error: Some(e.to_string()),
                });
                return Ok(outcome);
            }
            Err(e) => return Err(e.into()),
        };
        outcome.statements = names
            .into_iter()
            .map(|name| StatementOutcome { name, error: None })
            .collect();
        let read = |i: usize| {
            result.handles.get(i).cloned().ok_or_else(|| {
                WarehouseError::Request(format!(
                    "Snowflake answered {} statement handles for {} statements",
                    result.handles.len(),
                    statements.len()
                ))
            })
        };
        let counts = self.client.results(&read(totals_at)?).await?;
        let mismatched = self.client.results(&read(totals_at + 1)?).await?;
        let mut totals = WasteTotals::default();
        for (final_table, waste) in tables::waste_tables() {
            let row = (0..counts.rows.len()).find(|&r| counts.cell(r, "kind") == Some(waste.kind));
            let (rows, cost) = row.map_or((0, 0.0), |r| {
                (
                    number(&counts, r, "row_count") as usize,
                    number(&counts, r, tables::UNUSED_COST),
                )
            });
            totals.add(final_table, rows, cost);
        }
        totals.mismatches = (0..mismatched.rows.len())
            .map(|row| Mismatch {
                kind: mismatched.cell(row, "kind").unwrap_or_default().to_owned(),
                commitment_arn: mismatched
                    .cell(row, "commitment_arn")
                    .unwrap_or_default()
                    .to_owned(),
                expected: number(&mismatched, row, "expected"),
                computed: number(&mismatched, row, "computed"),
            })
            .collect();
        outcome.totals = Some(totals);
        Ok(outcome)
    }

    /// One request: the final tables created if missing, then a `DELETE` per table in
    /// one transaction; a failed statement ends the session and rolls it back.
    async fn clear_period(&self, staged: &StagedPeriod) -> Result<(), WarehouseError> {
        let statements = ddl::clear_period(&staged.payer, staged.period);
        staged.fence.confirm()?;
        self.run_all(&statements).await?;
        Ok(())
    }
}
