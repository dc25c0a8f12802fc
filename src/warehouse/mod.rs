//! The warehouse: external tables over staged CUR and the wastage analytics on them.
//!
//! [`Warehouse`] is the seam between the pipeline and a query engine. The embedded
//! DataFusion engine is the default; Snowflake implements the same trait. The analytics
//! SQL is a template per dialect under `sql/`, filled by [`render`]; the final tables'
//! columns are fixed in [`tables`], whatever the engine.

mod breakdown;
mod delta;
mod embedded;
mod payer_table;
mod render;
pub mod snowflake;
pub mod tables;

use std::future::Future;

pub use breakdown::{ApplicationWaste, CommitmentWaste, WasteBreakdown};
pub use embedded::{DEFAULT_KEEP_REPLACED, Embedded};
pub use payer_table::PayerTableError;
pub use render::{Params, RenderError, render};
pub use snowflake::Snowflake;

use crate::payers::PayerConfig;
use crate::storage::{Location, StorageError};
use crate::task::{BillingPeriod, PayerId};

/// A warehouse operation failed (as opposed to an analytics statement, which is reported
/// in [`AnalyticsOutcome`] and handled by `on_sql_error`).
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The staged files could not be read as one table.
    #[error("could not register staged CUR for payer {payer} period {period} at {url}: {source}")]
    Register {
        /// The payer.
        payer: PayerId,
        /// The billing period.
        period: BillingPeriod,
        /// The staged folder.
        url: String,
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A template could not be rendered (a bug in a template, caught before running it).
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Writing a final table failed.
    #[error("could not replace {table} for payer {payer} period {period}: {reason}")]
    Publish {
        /// The final table.
        table: &'static str,
        /// The payer.
        payer: PayerId,
        /// The billing period.
        period: BillingPeriod,
        /// What failed.
        reason: String,
    },
    /// The payer table cannot be read or changed, or holds an invalid entry.
    #[error(transparent)]
    PayerTable(#[from] PayerTableError),
    /// Reading a final table failed.
    #[error("could not read final table {table}: {reason}")]
    Read {
        /// The final table.
        table: String,
        /// What failed.
        reason: String,
    },
    /// The warehouse store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The warehouse's credentials cannot be read or were refused: nothing works until
    /// they are fixed.
    #[error("{0}")]
    Credentials(String),
    /// A request to the warehouse failed (unreachable, throttled, an unexpected answer).
    #[error("{0}")]
    Request(String),
}

/// A payer-period as staged, ready to become an external table.
#[derive(Debug, Clone)]
pub struct StagedPeriod {
    /// The payer.
    pub payer: PayerId,
    /// The billing period of the staged folder.
    pub period: BillingPeriod,
    /// The staged folder.
    pub location: Location,
}

/// How one analytics statement went.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementOutcome {
    /// A short name: the statement's first words, e.g. `CREATE TABLE ri_hours`.
    pub name: String,
    /// The engine's error, if it failed.
    pub error: Option<String>,
}

/// A commitment whose hourly waste does not add up to what its fee lines report.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// `ri` or `sp`.
    pub kind: String,
    /// The reservation or Savings Plan ARN.
    pub commitment_arn: String,
    /// What the CUR fee lines report.
    pub expected: f64,
    /// What the hourly analytics add up to.
    pub computed: f64,
}

/// The sum of `values`, the same whatever order they come in. Engines return rows in
/// whatever order their partitions finish, and a float sum taken in that order could differ
/// in the last cent between two reads of the same data (synthetic and real prices often
/// total exactly half a cent); summing in sorted order gives every run, and the report, the
/// same total.
pub(crate) fn order_free_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_unstable_by(f64::total_cmp);
    values.into_iter().sum()
}

/// What the final tables now hold for the payer-period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WasteTotals {
    /// Rows in `ri_wastage_hourly`.
    pub ri_rows: usize,
    /// Σ `unused_cost` of RIs, USD.
    pub ri_unused_cost: f64,
    /// Rows in `sp_wastage_hourly`.
    pub sp_rows: usize,
    /// Σ `unused_cost` of Savings Plans, USD.
    pub sp_unused_cost: f64,
    /// Commitments that do not reconcile to the cent.
    pub mismatches: Vec<Mismatch>,
}

/// The result of running the analytics on one payer-period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyticsOutcome {
    /// Every statement run, in order; execution stops at the first failure.
    pub statements: Vec<StatementOutcome>,
    /// Set when every statement succeeded and the final tables were replaced.
    pub totals: Option<WasteTotals>,
}

impl AnalyticsOutcome {
    /// The first failed statement, if any.
    pub fn failure(&self) -> Option<&StatementOutcome> {
        self.statements.iter().find(|s| s.error.is_some())
    }
}

/// `CREATE TABLE ri_hours AS SELECT …` → `CREATE TABLE ri_hours`: a statement's short name
/// in outcomes and logs.
pub(crate) fn statement_name(sql: &str) -> String {
    sql.split_whitespace()
        .take_while(|w| !w.eq_ignore_ascii_case("AS"))
        .take(6)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A query engine that can analyse staged CUR and hold the final tables.
pub trait Warehouse {
    /// An external table over one staged payer-period.
    type Table;

    /// The payer configurations kept in the warehouse (empty when it has none). Errors when
    /// the table exists but cannot be read or holds an invalid entry; the caller then falls
    /// back to the settings file.
    fn payer_configs(
        &self,
    ) -> impl Future<Output = Result<Vec<PayerConfig>, WarehouseError>> + Send;

    /// When analytics last replaced a period of `payer` in the final tables (the newest
    /// `processed_at`), or `None` if they never have.
    fn last_processed(
        &self,
        payer: &PayerId,
    ) -> impl Future<Output = Result<Option<chrono::DateTime<chrono::Utc>>, WarehouseError>> + Send;

    /// Where `payer`'s waste in `period` went, from the final tables (empty when the
    /// payer-month was never analysed). Errors when the tables cannot be read.
    fn breakdown(
        &self,
        payer: &PayerId,
        period: BillingPeriod,
    ) -> impl Future<Output = Result<WasteBreakdown, WarehouseError>> + Send;

    /// Creates an external table over every data file of `staged`, with the schema inferred
    /// from the files. Errors when the files cannot be read as one table.
    fn register_period(
        &self,
        staged: &StagedPeriod,
    ) -> impl Future<Output = Result<Self::Table, WarehouseError>> + Send;

    /// Runs the analytics script on `table`, statement by statement, and — only if all of
    /// them succeed — replaces the payer-period in the final tables, so that a reader sees
    /// the old month or the new one, never both. A failed statement is reported in the
    /// outcome, not as an error; errors are for failures to publish.
    fn run_analytics(
        &self,
        table: &Self::Table,
        params: &Params,
    ) -> impl Future<Output = Result<AnalyticsOutcome, WarehouseError>> + Send;
}
