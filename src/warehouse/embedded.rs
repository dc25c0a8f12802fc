//! The embedded warehouse: Apache DataFusion in-process over the staged CUR, final tables
//! as Delta Lake tables (see [`super::delta`]), one per entry of [`super::tables`], each
//! filled by its own DataFusion-dialect SQL file.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::config::TableParquetOptions;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::functions_aggregate::expr_fn::{max, sum};
use datafusion::functions_nested::map::map;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, Expr, SessionConfig, SessionContext, col, ident, lit};
use datafusion::sql::parser::DFParser;
use futures::{StreamExt, TryStreamExt};

use super::scratch::Scratch;
use super::tables::{
    self, FINAL_TABLES, FinalTable, RECONCILE_TOLERANCE, RECONCILIATION, UNUSED_COST,
};
use super::{
    AnalyticsOutcome, ExactSum, Mismatch, PayerTable, StagedPeriod, StatementOutcome, Warehouse,
    WarehouseError, WasteBreakdown, WasteReader, WasteTotals, sql, statement_name,
};
use super::{delta, inspect, payer_table};
use crate::payers::PayerConfig;
use crate::storage::Location;
use crate::sync::Layout;
use crate::task::{BillingPeriod, PayerId};

/// The SQL dialect of `sql/<dialect>/` this engine runs.
const DIALECT: &str = "datafusion";
/// The table name the script reads the staged CUR from.
const CUR_TABLE: &str = "cur_line_items";

/// DataFusion over the staging store; final Delta tables under `dir`.
#[derive(Debug, Clone)]
pub struct Embedded {
    dir: Location,
    keep_replaced: Duration,
    memory_limit: u64,
}

/// How long files a run replaced in a final table stay, unless the settings say otherwise:
/// Delta's own default, long enough for any reader that started before the replacement
/// and for a week of time travel.
pub const DEFAULT_KEEP_REPLACED: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the analytics' operators may hold in memory before they spill to disk, unless the
/// settings say otherwise: 2 GiB, which a 10⁸-row payer-month fits within
/// (docs/benchmarks.md) and a 4 GiB container leaves room around.
pub const DEFAULT_MEMORY_LIMIT: u64 = 2 << 30;

/// The footers of the staged files may take up to `memory_limit / METADATA_SHARE` (512 MiB
/// with the default limit: enough for about 600 files of a million CUR rows each).
const METADATA_SHARE: usize = 4;

/// The largest consumers of the memory pool an out-of-memory error names.
const CONSUMERS_NAMED: NonZeroUsize = NonZeroUsize::new(5).unwrap();

/// A DataFusion session holding one staged payer-period as `cur_line_items`, and the
/// folder its scripts' intermediate tables are written to.
pub struct EmbeddedTable {
    ctx: SessionContext,
    staged: StagedPeriod,
    scratch: Scratch,
}

impl Embedded {
    /// A warehouse whose final tables live under `dir`.
    pub fn new(dir: Location) -> Self {
        Self {
            dir,
            keep_replaced: DEFAULT_KEEP_REPLACED,
            memory_limit: DEFAULT_MEMORY_LIMIT,
        }
    }

    /// Files a run replaces in the final tables are deleted by the first run that publishes
    /// the table after `keep` has passed (see [`delta::remove_replaced`]).
    pub fn keep_replaced(mut self, keep: Duration) -> Self {
        self.keep_replaced = keep;
        self
    }

    /// The analytics' joins, aggregations and sorts hold at most `bytes` between them.
    /// Aggregations and sorts spill to the OS's temporary directory beyond it, so a larger
    /// month is slower, not an out-of-memory kill; a hash join cannot spill, and one that
    /// needs more fails its statement with an error that says to raise the limit.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// The latest version of final table `name` (see [`tables`]), for readers such as
    /// reports; `None` before the first run wrote it.
    pub async fn final_table(
        &self,
        name: &str,
    ) -> Result<Option<Arc<dyn TableProvider>>, WarehouseError> {
        delta::provider(&self.dir, name)
            .await
            .map_err(|e| WarehouseError::Read {
                table: name.to_owned(),
                reason: e.to_string(),
            })
    }

    /// Adds or replaces a payer's entry in the payer table. `config_json` must hold the keys
    /// of a settings-file payer entry; it is validated before it is stored.
    pub async fn save_payer(&self, config_json: &str) -> Result<PayerConfig, WarehouseError> {
        let config: PayerConfig = serde_json::from_str(config_json).map_err(|e| {
            WarehouseError::PayerTable(payer_table::PayerTableError::invalid("(new)", &e))
        })?;
        payer_table::save(&self.dir, &config.payer_id, config_json).await?;
        Ok(config)
    }

    /// Removes a payer's entry from the payer table; true when there was one.
    pub async fn remove_payer(&self, payer: &PayerId) -> Result<bool, WarehouseError> {
        Ok(payer_table::remove(&self.dir, payer).await?)
    }

    /// Deletes the files that replaces of the final tables removed more than
    /// `keep_replaced` ago. Without this every run would leave its replaced files behind for
    /// ever. A failure costs storage, not data: logged, and the next run tries again.
    async fn remove_replaced(&self) {
        for name in FINAL_TABLES.iter().map(|t| t.name) {
            match delta::remove_replaced(&self.dir, name, self.keep_replaced).await {
                Ok(0) => {}
                Ok(files) => tracing::info!(table = name, files, "removed files replaced earlier"),
                Err(error) => {
                    tracing::warn!(table = name, error = %error, "could not remove replaced files; the next run tries again")
                }
            }
        }
    }

    /// A failed statement's error as the run reports it. One that ran out of memory says
    /// which setting to raise: the pool's own message names only its largest consumers.
    fn statement_error(&self, error: datafusion::error::DataFusionError) -> String {
        let message = error.to_string();
        if !matches!(
            error.find_root(),
            datafusion::error::DataFusionError::ResourcesExhausted(_)
        ) {
            return message;
        }
        let limit = self.memory_limit;
        let limit = if limit.is_multiple_of(1 << 30) {
            format!("{}GiB", limit >> 30)
        } else {
            format!("{}MiB", limit >> 20)
        };
        format!(
            "{message}; this payer-month's analytics need more than memory_limit = \"{limit}\": raise memory_limit, and the container's memory with it (about twice the limit)"
        )
    }

    /// Replaces the payer-period in final table `table` with `rows` (the script's table),
    /// every row stamped `processed_at`, and returns what the table now holds for it.
    ///
    /// The rows stream: they are read once here for the totals, and again by the Delta
    /// writer. Neither holds the table whole, and the totals are taken before anything is
    /// published, so a row the table's columns refuse fails the period unpublished.
    async fn publish(
        &self,
        table: &'static FinalTable,
        rows: DataFrame,
        staged: &StagedPeriod,
        processed_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Tally, WarehouseError> {
        let fail = |reason: String| staged.publish_failed(table.name, reason);
        let conformed =
            Conformed::rows(table, rows, processed_at).map_err(|e| fail(e.to_string()))?;
        let tally = Tally::of(table, conformed.clone())
            .await
            .map_err(|e| fail(e.to_string()))?;
        staged.fence.confirm()?;
        delta::replace_partition(
            &self.dir,
            table.name,
            conformed.into_unoptimized_plan(),
            &staged.payer,
            staged.period,
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        Ok(tally)
    }
}

/// A final table's rows in the table's exact columns, as a stream that DataFusion can run
/// any number of times: each run reads the script's table anew, batch by batch.
#[derive(Debug)]
struct Conformed {
    schema: SchemaRef,
    rows: DataFrame,
    processed_at: chrono::DateTime<chrono::Utc>,
}

impl Conformed {
    /// `rows` conformed to `table`, as a table of the same session.
    fn rows(
        table: &FinalTable,
        rows: DataFrame,
        processed_at: chrono::DateTime<chrono::Utc>,
    ) -> datafusion::error::Result<DataFrame> {
        let schema = table.schema();
        let ctx = SessionContext::new_with_state(rows.clone().into_parts().0);
        let conformed = Self {
            schema: Arc::clone(&schema),
            rows,
            processed_at,
        };
        let provider = StreamingTable::try_new(schema, vec![Arc::new(conformed)])?;
        ctx.read_table(Arc::new(provider))
    }
}

impl PartitionStream for Conformed {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (rows, schema, processed_at) = (
            self.rows.clone(),
            Arc::clone(&self.schema),
            self.processed_at,
        );
        let batches = futures::stream::once(rows.execute_stream())
            .try_flatten()
            .map(move |batch| conform(&schema, &batch?, processed_at));
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            batches,
        ))
    }
}

/// Casts a batch of the script's result to the final table's exact columns (by name, in
/// order), so every backend and every run writes the same schema. `processed_at` is one
/// instant for the three tables of a payer-period: a reader can tell that they come from
/// the same run.
fn conform(
    schema: &SchemaRef,
    batch: &RecordBatch,
    processed_at: chrono::DateTime<chrono::Utc>,
) -> datafusion::error::Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            if field.name() == "processed_at" {
                let stamp = TimestampMicrosecondArray::from_value(
                    processed_at.timestamp_micros(),
                    batch.num_rows(),
                )
                .with_timezone("UTC");
                return Ok(Arc::new(stamp) as ArrayRef);
            }
            let column = batch.column_by_name(field.name()).ok_or_else(|| {
                datafusion::error::DataFusionError::Plan(format!(
                    "the script produced no column {}",
                    field.name()
                ))
            })?;
            Ok(cast(column, field.data_type())?)
        })
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// What a final table holds for the payer-period, counted as its rows stream past.
#[derive(Debug, Default)]
struct Tally {
    rows: usize,
    unused_cost: ExactSum,
    mismatches: Vec<Mismatch>,
}

impl Tally {
    async fn of(table: &FinalTable, rows: DataFrame) -> datafusion::error::Result<Self> {
        let mut tally = Self::default();
        let mut batches = rows.execute_stream().await?;
        while let Some(batch) = batches.try_next().await? {
            tally.rows += batch.num_rows();
            tally.unused_cost.extend(floats(&batch, UNUSED_COST));
            if table.name == RECONCILIATION {
                tally.mismatches.extend(mismatches(&batch));
            }
        }
        Ok(tally)
    }
}

/// The non-null values of a Float64 column of `batch` (none if it has no such column).
fn floats<'a>(batch: &'a RecordBatch, column: &str) -> impl Iterator<Item = f64> + 'a {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_primitive_opt::<Float64Type>())
        .into_iter()
        .flat_map(|values| values.iter().flatten())
}

/// (text, number) pairs from batches whose first column is text and second a Float64.
fn text_and_cost(batches: &[RecordBatch]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for batch in batches {
        let Ok(names) = cast(batch.column(0), &DataType::Utf8) else {
            continue;
        };
        let (Some(names), Some(costs)) = (
            names.as_string_opt::<i32>(),
            batch.column(1).as_primitive_opt::<Float64Type>(),
        ) else {
            continue;
        };
        for i in 0..batch.num_rows() {
            out.push((names.value(i).to_owned(), costs.value(i)));
        }
    }
    out
}

/// The single UTC timestamp an aggregate such as `max(processed_at)` returned, if not null.
fn newest_timestamp(batches: &[RecordBatch]) -> Option<chrono::DateTime<chrono::Utc>> {
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    let micros = cast(batch.column(0), &DataType::Int64).ok()?;
    let micros = micros.as_primitive_opt::<Int64Type>()?;
    if micros.is_null(0) {
        return None;
    }
    chrono::DateTime::from_timestamp_micros(micros.value(0))
}

fn mismatches(batch: &RecordBatch) -> Vec<Mismatch> {
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
    };
    let number = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<Float64Type>())
    };
    let (Some(kind), Some(arn), Some(expected), Some(computed)) = (
        text("kind"),
        text("commitment_arn"),
        number("expected"),
        number("computed"),
    ) else {
        return Vec::new();
    };
    (0..batch.num_rows())
        .filter(|&i| (expected.value(i) - computed.value(i)).abs() >= RECONCILE_TOLERANCE)
        .map(|i| Mismatch {
            kind: kind.value(i).to_owned(),
            commitment_arn: arn.value(i).to_owned(),
            expected: expected.value(i),
            computed: computed.value(i),
        })
        .collect()
}

/// A layout that keeps tags as columns (the legacy CUR's `resource_tags_user_<key>`) has
/// them mapped onto CUR 2.0's `resource_tags` map, as the layout says
/// ([`Layout::tag_columns`]): `cur_line_items` is replaced by a view that adds the map, so
/// the one analytics script reads every layout. Column names come from the Parquet schema
/// and are used as identifiers, never as SQL text.
async fn expose_tag_columns(ctx: &SessionContext, layout: Layout) -> datafusion::error::Result<()> {
    let staged = ctx.table(CUR_TABLE).await?;
    let names: Vec<String> = staged
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let tag_columns = layout.tag_columns(&names);
    if tag_columns.is_empty() {
        return Ok(());
    }
    let keys = tag_columns.iter().map(|c| lit(c.key.as_str())).collect();
    let values = tag_columns
        .iter()
        .map(|c| datafusion::prelude::cast(ident(c.column.as_str()), DataType::Utf8))
        .collect();
    let mut columns: Vec<_> = names.iter().map(|n| ident(n.as_str())).collect();
    columns.push(map(keys, values).alias("resource_tags"));
    let view = staged.select(columns)?.into_view();
    ctx.deregister_table(CUR_TABLE)?;
    ctx.register_table(CUR_TABLE, view)?;
    Ok(())
}

impl PayerTable for Embedded {
    async fn payer_configs(&self) -> Result<Vec<PayerConfig>, WarehouseError> {
        payer_table::read(&self.dir)
            .await?
            .into_iter()
            .map(|(id, json)| {
                serde_json::from_str::<PayerConfig>(&json).map_err(|e| {
                    WarehouseError::PayerTable(payer_table::PayerTableError::invalid(&id, &e))
                })
            })
            .collect()
    }
}

impl Embedded {
    /// The newest `processed_at` of the rows `filter` picks, in each final table that has
    /// such rows, in the registry's order.
    async fn newest_processed(
        &self,
        filter: Expr,
    ) -> Result<Vec<(&'static str, chrono::DateTime<chrono::Utc>)>, WarehouseError> {
        let ctx = SessionContext::new();
        let mut out = Vec::new();
        for table in FINAL_TABLES.iter().map(|t| t.name) {
            let Some(provider) = self.final_table(table).await? else {
                continue;
            };
            let batches = async {
                ctx.read_table(provider)?
                    .filter(filter.clone())?
                    .aggregate(vec![], vec![max(col("processed_at"))])?
                    .collect()
                    .await
            }
            .await
            .map_err(|e| WarehouseError::Read {
                table: table.to_owned(),
                reason: e.to_string(),
            })?;
            out.extend(newest_timestamp(&batches).map(|at| (table, at)));
        }
        Ok(out)
    }
}

impl WasteReader for Embedded {
    async fn last_processed(
        &self,
        payer: &PayerId,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, WarehouseError> {
        let newest = self
            .newest_processed(col("payer_id").eq(lit(payer.as_str())))
            .await?;
        Ok(newest.into_iter().map(|(_, at)| at).max())
    }

    /// Filters are expressions, not SQL text.
    async fn breakdown(
        &self,
        payer: &PayerId,
        period: BillingPeriod,
    ) -> Result<WasteBreakdown, WarehouseError> {
        // The three tables are three commits: a run that died between them left the month
        // of one run in some and of another in the rest. Never combined: refused until
        // the next run publishes the month whole again.
        let month = col("payer_id")
            .eq(lit(payer.as_str()))
            .and(col("billing_period").eq(lit(period.to_string())));
        let runs = self.newest_processed(month.clone()).await?;
        if runs.iter().any(|(_, at)| *at != runs[0].1) {
            return Err(WarehouseError::Inconsistent {
                payer: payer.clone(),
                period,
                runs: runs
                    .iter()
                    .map(|(table, at)| format!("{table} {}", at.format("%Y-%m-%dT%H:%M:%S%.6fZ")))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut out = WasteBreakdown::new(payer.clone(), period);
        let ctx = SessionContext::new();
        let read_failed = |table: &str| {
            let table = table.to_owned();
            move |e: datafusion::error::DataFusionError| WarehouseError::Read {
                table,
                reason: e.to_string(),
            }
        };
        for (final_table, waste) in tables::waste_tables() {
            let (kind, table, arn) = (waste.kind, final_table.name, waste.commitment_column);
            let Some(provider) = self.final_table(table).await? else {
                continue;
            };
            let rows = ctx
                .read_table(provider)
                .and_then(|df| df.filter(month.clone()))
                .map_err(read_failed(table))?;
            let grouped = |keys: Vec<&str>| {
                let rows = rows.clone();
                let keys: Vec<_> = keys.into_iter().map(col).collect();
                async move {
                    rows.aggregate(keys, vec![sum(col(UNUSED_COST)).alias("cost")])?
                        .collect()
                        .await
                }
            };
            // The total as the run's summary computed it (same rows, same order-free sum),
            // so that the report and the summary never differ in the last cent.
            let costs = rows
                .clone()
                .select(vec![col(UNUSED_COST)])
                .map_err(read_failed(table))?;
            let held = Tally::of(final_table, costs)
                .await
                .map_err(read_failed(table))?;
            out.set_total(kind, held.unused_cost.total());
            let by_arn = grouped(vec![arn]).await.map_err(read_failed(table))?;
            for (name, cost) in text_and_cost(&by_arn) {
                out.add_commitment(kind, name, cost);
            }
            let by_application = grouped(vec!["application"])
                .await
                .map_err(read_failed(table))?;
            for (name, cost) in text_and_cost(&by_application) {
                out.add_application(kind, name, cost);
            }
            let hourly = grouped(vec!["usage_hour", "application"])
                .await
                .map_err(read_failed(table))?;
            for batch in &hourly {
                // usage_hour is UTC microseconds (tables::schema).
                let hours = cast(batch.column(0), &DataType::Int64)
                    .map_err(|e| read_failed(table)(e.into()))?;
                let hours = hours.as_primitive::<Int64Type>();
                let named = text_and_cost(std::slice::from_ref(
                    &batch
                        .project(&[1, 2])
                        .map_err(|e| read_failed(table)(e.into()))?,
                ));
                for (i, (application, cost)) in named.into_iter().enumerate() {
                    if let Some(hour) = chrono::DateTime::from_timestamp_micros(hours.value(i)) {
                        out.add_hour(hour, application, cost);
                    }
                }
            }
        }
        Ok(out.finish())
    }
}

impl Warehouse for Embedded {
    type Table = EmbeddedTable;

    /// One: DataFusion already spreads one analysis over every core, and two at once
    /// would only need twice the memory (`memory_limit` holds for one).
    fn analyses_at_once(&self) -> usize {
        1
    }

    async fn register_period(
        &self,
        staged: &StagedPeriod,
    ) -> Result<EmbeddedTable, WarehouseError> {
        let config = SessionConfig::new().with_information_schema(false);
        // One pool for the session's operators, shared fairly among those that can spill
        // (sorts, aggregations); an operator that cannot spill and finds the pool full
        // fails the statement, naming the largest consumers.
        let limit = usize::try_from(self.memory_limit).unwrap_or(usize::MAX);
        let pool = TrackConsumersPool::new(FairSpillPool::new(limit), CONSUMERS_NAMED);
        // Every statement scans the month again, and each scan needs every file's footer
        // (its row groups' statistics, its page index): kept, they are read once, by the
        // inspection below. DataFusion keeps 50 MB of them unless told; a 10⁸-row month's
        // 100 footers take about 85 MB, and a cache too small for all of them misses on
        // every file of every scan, which made the analytics 2.5 times slower at that size
        // (docs/benchmarks.md). They are not counted in the pool: they come out of the
        // room around it that the README asks for.
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_metadata_cache_limit(limit / METADATA_SHARE)
            .build_arc()
            .map_err(|e| staged.register_failed(e.to_string()))?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let (store, _) = staged.location.store();
        ctx.register_object_store(&staged.location.url().store_root(), store);
        // Each statement keeps a few line item types of the month: decode the filter
        // columns first and the others (resource_tags above all) only for the rows that
        // pass. Five times faster at 10 million rows (docs/benchmarks.md).
        let mut parquet = TableParquetOptions::default();
        parquet.global.pushdown_filters = true;
        let format = ParquetFormat::default().with_options(parquet);
        // Files of different deliveries may differ in columns; DataFusion unifies them by
        // name (a missing column reads as null). An empty or unreadable file, a type
        // conflict, or a file without a column the analytics read, is refused first,
        // naming the file: DataFusion would skip an empty one and read the column as null.
        // The schema the inspection merged is the table's: no footer is read twice.
        let schema = inspect::staged_files(staged, &format, &ctx.state())
            .await
            .map_err(|reason| staged.register_failed(reason))?;
        let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
        let url = staged.location.url().as_folder();
        ctx.register_listing_table(CUR_TABLE, &url, options, Some(schema), None)
            .await
            .map_err(|e| staged.register_failed(e.to_string()))?;
        expose_tag_columns(&ctx, staged.layout)
            .await
            .map_err(|e| staged.register_failed(e.to_string()))?;
        let scratch = Scratch::new().map_err(|e| {
            staged.register_failed(format!(
                "cannot create a folder for the analytics' intermediate tables in {}: {e}",
                std::env::temp_dir().display()
            ))
        })?;
        Ok(EmbeddedTable {
            ctx,
            staged: staged.clone(),
            scratch,
        })
    }

    async fn run_analytics(
        &self,
        table: &EmbeddedTable,
        application_tag: &str,
    ) -> Result<AnalyticsOutcome, WarehouseError> {
        let staged = &table.staged;
        let scripts = sql::analytics(DIALECT, &staged.params(application_tag))?;
        let mut outcome = AnalyticsOutcome::default();
        let mut statements = Vec::new();
        for script in scripts {
            match DFParser::parse_sql(&script.text) {
                Ok(parsed) => statements.extend(parsed),
                Err(e) => {
                    outcome.statements.push(StatementOutcome {
                        name: script.path,
                        error: Some(e.to_string()),
                    });
                    return Ok(outcome);
                }
            }
        }
        let ctx = &table.ctx;
        for statement in statements {
            let name = statement_name(&statement.to_string());
            let run = async {
                match ctx.state().statement_to_plan(statement).await? {
                    // A final table's rows stream twice, for the totals and into the Delta
                    // writer, straight from the tables before them: a view, not a file.
                    LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create))
                        if FINAL_TABLES.iter().any(|t| create.name.table() == t.name) =>
                    {
                        let rows = DataFrame::new(ctx.state(), Arc::unwrap_or_clone(create.input));
                        ctx.register_table(create.name, rows.into_view()).map(drop)
                    }
                    LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) => {
                        table.scratch.create(ctx, create).await
                    }
                    plan => ctx
                        .execute_logical_plan(plan)
                        .await?
                        .collect()
                        .await
                        .map(drop),
                }
            };
            let started = std::time::Instant::now();
            let error = run.await.err().map(|e| self.statement_error(e));
            let failed = error.is_some();
            if let Some(e) = &error {
                tracing::warn!(payer = %staged.payer, period = %staged.period, statement = %name, error = %e, "analytics statement failed");
            } else {
                tracing::debug!(payer = %staged.payer, period = %staged.period, statement = %name, seconds = started.elapsed().as_secs_f64(), "analytics statement done");
            }
            outcome.statements.push(StatementOutcome { name, error });
            if failed {
                return Ok(outcome);
            }
        }
        let mut totals = WasteTotals::default();
        // One commit per table: a crash between them leaves the payer-period new in some
        // tables and as before in the others, each holding it exactly once. The ledger marks
        // analytics done only after all of them, so the next run redoes the period.
        let processed_at = chrono::Utc::now();
        for final_table in &FINAL_TABLES {
            let name = final_table.name;
            let rows = match ctx.table(name).await {
                Ok(rows) => rows,
                Err(e) => {
                    outcome.statements.push(StatementOutcome {
                        name: format!("read {name}"),
                        error: Some(e.to_string()),
                    });
                    return Ok(outcome);
                }
            };
            let written = self
                .publish(final_table, rows, staged, processed_at)
                .await?;
            totals.add(final_table, written.rows, written.unused_cost.total());
            if name == RECONCILIATION {
                totals.mismatches = written.mismatches;
            }
        }
        outcome.totals = Some(totals);
        self.remove_replaced().await;
        Ok(outcome)
    }

    /// Publishes no rows for the payer-period in every final table: the same one replace
    /// per table as [`Warehouse::run_analytics`], of an empty result.
    async fn clear_period(&self, staged: &StagedPeriod) -> Result<(), WarehouseError> {
        let processed_at = chrono::Utc::now();
        let ctx = SessionContext::new();
        for final_table in &FINAL_TABLES {
            let none = ctx
                .read_batch(RecordBatch::new_empty(final_table.schema()))
                .map_err(|e| staged.publish_failed(final_table.name, e.to_string()))?;
            self.publish(final_table, none, staged, processed_at)
                .await?;
        }
        self.remove_replaced().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_names_are_short() {
        assert_eq!(
            statement_name("CREATE TABLE ri_hours AS SELECT 1"),
            "CREATE TABLE ri_hours"
        );
        assert_eq!(statement_name("SELECT 1"), "SELECT 1");
    }
}
