//! The warehouse: external tables over staged CUR and the wastage analytics on them.
//!
//! [`Warehouse`] is the seam between the pipeline and a query engine: the small core a
//! backend must implement. Reading the final tables back ([`WasteReader`]) and the payer
//! table ([`PayerTable`]) are extension traits. [`open`] turns a profile's
//! [`WarehouseSettings`] into a [`Backend`], and no module outside this one knows the
//! backends apart. The embedded DataFusion engine is the default; Snowflake implements the
//! same traits. Every final table is one entry of [`tables`] and one SQL file per dialect
//! under `sql/` ([`sql`]), filled by [`render`].

mod backend;
mod breakdown;
mod config;
mod cur_columns;
mod delta;
mod embedded;
mod exact_sum;
mod inspect;
mod payer_table;
mod render;
mod scratch;
pub mod snowflake;
mod sql;
pub mod tables;

use std::future::Future;

pub use backend::{Backend, BackendTable, open, payer_table_for_writing};
pub use breakdown::{ApplicationWaste, CommitmentWaste, WasteBreakdown};
pub use config::WarehouseSettings;
pub(crate) use config::{WarehouseKind, WarehouseProfile};
pub use embedded::{DEFAULT_KEEP_REPLACED, DEFAULT_MEMORY_LIMIT, Embedded};
pub(crate) use exact_sum::{ExactSum, order_free_sum};
pub use payer_table::PayerTableError;
pub use render::{Params, RenderError};
pub use snowflake::Snowflake;

use crate::payers::PayerConfig;
use crate::storage::{Location, StorageError};
use crate::sync::{Fence, Layout, LeaseError};
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
    /// The profile's warehouse keeps its payer table where curflow does not write.
    #[error(
        "`curflow payers add` and `remove` change the embedded warehouse's payer table; with warehouse = \"snowflake\" edit the table named by snowflake.payer_table in Snowflake (`curflow payers list` reads it)"
    )]
    PayerTableReadOnly,
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
    /// The final tables hold a payer-month from different runs (one died between their
    /// commits): nothing is read from them until a run publishes the month whole.
    #[error(
        "payer {payer} period {period} is not published whole: the final tables hold it from different runs ({runs}; a run stopped between their commits); nothing is reported from them until the next `curflow run` for the payer publishes the month again"
    )]
    Inconsistent {
        /// The payer.
        payer: PayerId,
        /// The billing period.
        period: BillingPeriod,
        /// Each table's `processed_at` for the month.
        runs: String,
    },
    /// The payer's lease was no longer surely this run's: nothing was published.
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

/// A payer-period as staged, ready to become an external table: the one source of the
/// payer and period the analytics run for.
#[derive(Debug, Clone)]
pub struct StagedPeriod {
    /// The payer.
    pub payer: PayerId,
    /// The billing period of the staged folder.
    pub period: BillingPeriod,
    /// The staged folder.
    pub location: Location,
    /// The layout the files came in (never `Auto`): it says how their columns map onto
    /// the ones the analytics read (legacy tag columns → the `resource_tags` map).
    pub layout: Layout,
    /// The payer's lease, confirmed before each change to the final tables.
    pub fence: Fence,
}

impl StagedPeriod {
    /// The error for a period that could not be registered: its files cannot be read as
    /// one table, or the engine refused them; `reason` says which.
    pub(crate) fn register_failed(&self, reason: String) -> WarehouseError {
        WarehouseError::Register {
            payer: self.payer.clone(),
            period: self.period,
            url: self.location.url().as_folder(),
            source: reason.into(),
        }
    }

    /// The error for a final table the payer-period could not be published to.
    pub(crate) fn publish_failed(&self, table: &'static str, reason: String) -> WarehouseError {
        WarehouseError::Publish {
            table,
            payer: self.payer.clone(),
            period: self.period,
            reason,
        }
    }

    /// The renderer's values for this payer-period.
    pub fn params(&self, application_tag: &str) -> Params {
        Params {
            period: self.period,
            payer: self.payer.clone(),
            application_tag: application_tag.to_owned(),
        }
    }
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

/// What one waste table now holds for the payer-period.
#[derive(Debug, Clone, PartialEq)]
pub struct TableTotal {
    /// The waste table ([`tables::waste_tables`]).
    pub table: &'static str,
    /// Its commitment kind, `ri` or `sp`.
    pub kind: &'static str,
    /// How the summary names it.
    pub label: &'static str,
    /// Its rows.
    pub rows: usize,
    /// Σ `unused_cost`, USD.
    pub unused_cost: f64,
}

/// What the final tables now hold for the payer-period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WasteTotals {
    /// One entry per waste table, in registry order.
    pub tables: Vec<TableTotal>,
    /// Commitments that do not reconcile to the cent.
    pub mismatches: Vec<Mismatch>,
}

impl WasteTotals {
    /// Records what waste table `table` holds (nothing for a table that is not one).
    pub(crate) fn add(&mut self, table: &tables::FinalTable, rows: usize, unused_cost: f64) {
        if let Some(waste) = &table.waste {
            self.tables.push(TableTotal {
                table: table.name,
                kind: waste.kind,
                label: waste.label,
                rows,
                unused_cost,
            });
        }
    }
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

/// A query engine that can analyse staged CUR and hold the final tables: what a new
/// backend must implement.
pub trait Warehouse {
    /// An external table over one staged payer-period.
    type Table;

    /// How many payer-periods the run lets register, analyse and publish at once; the
    /// others wait their turn, their staging done.
    fn analyses_at_once(&self) -> usize;

    /// Creates an external table over every data file of `staged`, with the schema inferred
    /// from the files and the columns of its layout mapped onto the analytics' own. Errors
    /// when the files cannot be read as one table.
    fn register_period(
        &self,
        staged: &StagedPeriod,
    ) -> impl Future<Output = Result<Self::Table, WarehouseError>> + Send;

    /// Runs the analytics on `table` for its payer-period, statement by statement, and —
    /// only if all of them succeed — replaces the payer-period in every final table, so
    /// that a reader sees the old month or the new one, never both. A failed statement is
    /// reported in the outcome, not as an error; errors are for failures to publish.
    fn run_analytics(
        &self,
        table: &Self::Table,
        application_tag: &str,
    ) -> impl Future<Output = Result<AnalyticsOutcome, WarehouseError>> + Send;

    /// Removes the payer-period of `staged` from every final table, as publishing would
    /// replace it with no rows: what an empty delivery (a manifest naming no data files)
    /// publishes, so the previous delivery's numbers are not kept. A reader sees the old
    /// rows or none, never some. Errors when a table cannot be changed.
    fn clear_period(
        &self,
        staged: &StagedPeriod,
    ) -> impl Future<Output = Result<(), WarehouseError>> + Send;
}

/// Reading the final tables back, for reports and `curflow payers list`.
pub trait WasteReader {
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
}

/// The payer configurations a warehouse keeps (DESIGN.md §3: they take precedence over the
/// settings file's).
pub trait PayerTable {
    /// The payer configurations kept in the warehouse (empty when it has none). Errors when
    /// the table exists but cannot be read or holds an invalid entry; the caller then falls
    /// back to the settings file.
    fn payer_configs(
        &self,
    ) -> impl Future<Output = Result<Vec<PayerConfig>, WarehouseError>> + Send;
}
