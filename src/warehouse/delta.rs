//! The embedded warehouse's final tables, stored as Delta Lake tables.
//!
//! Each table lives at `<warehouse_dir>/<table>/`, partitioned by `payer_id` and
//! `billing_period`. A payer-month is replaced with one `replaceWhere` overwrite: a single
//! commit to the Delta log, so a reader sees the previous version or the new one — never
//! both, never neither — and a crash before the commit leaves only unreferenced files.
//! Any Delta reader (Spark, DuckDB, Polars, delta-rs) can read the tables.

use std::sync::{Arc, Once};
use std::time::Duration;

use datafusion::catalog::TableProvider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{Expr, col, lit};
use deltalake::kernel::transaction::TransactionError;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};

use super::tables::PARTITION_COLUMNS;
use crate::retry::RetryPolicy;
use crate::storage::Location;
use crate::task::{BillingPeriod, PayerId};

static S3_HANDLERS: Once = Once::new();

/// Opens (without loading) the Delta table `name` under `dir`, through the warehouse's own
/// object store so that its credentials and endpoint apply.
fn builder(dir: &Location, name: &str) -> Result<DeltaTable, DeltaTableError> {
    S3_HANDLERS.call_once(|| deltalake::aws::register_handlers(None));
    let url = url::Url::parse(&dir.url().join(name).as_folder())
        .map_err(|e| DeltaTableError::Generic(e.to_string()))?;
    let (store, _) = dir.store();
    DeltaTableBuilder::from_url(url.clone())?
        .with_storage_backend(store, url)
        .build()
}

/// The folder of a table on local disk (delta-rs refuses a local location that does not
/// exist), or `None` for a table in an object store.
fn local_folder(dir: &Location, name: &str) -> Option<std::path::PathBuf> {
    url::Url::parse(dir.url().join(name).as_str())
        .ok()
        .filter(|url| url.scheme() == "file")
        .and_then(|url| url.to_file_path().ok())
}

/// The table with its latest version loaded, or `None` when it does not exist yet.
pub(super) async fn load(
    dir: &Location,
    name: &str,
) -> Result<Option<DeltaTable>, DeltaTableError> {
    if local_folder(dir, name).is_some_and(|folder| !folder.exists()) {
        return Ok(None);
    }
    // Asked to load a table that does not exist in an object store, deltalake logs an ERROR
    // before it answers NotATable: on a first run that reads as a failure. One delimited
    // listing of the table's folder tells first.
    let folders = dir
        .folders(name)
        .await
        .map_err(|e| DeltaTableError::GenericError {
            source: Box::new(e),
        })?;
    if !folders.iter().any(|f| f == "_delta_log") {
        return Ok(None);
    }
    let mut table = builder(dir, name)?;
    match table.load().await {
        Ok(()) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the rows of one payer-period in table `name` with `rows`, in one commit.
pub(super) async fn replace_partition(
    dir: &Location,
    name: &str,
    rows: LogicalPlan,
    payer: &PayerId,
    period: BillingPeriod,
) -> Result<(), DeltaTableError> {
    let partition = col("payer_id")
        .eq(lit(payer.as_str()))
        .and(col("billing_period").eq(lit(period.to_string())));
    replace_where(dir, name, rows, partition, &PARTITION_COLUMNS).await
}

/// How a replace is retried when other writers keep committing first in a way delta-rs does
/// not reconcile by itself (two runs creating the same table, say): 5 attempts, a short
/// growing wait between them so that racing writers fall out of step.
const COMMIT_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    initial_backoff: Duration::from_millis(50),
    max_backoff: Duration::from_secs(2),
};

/// Replaces the rows matching `predicate` in table `name` (created, partitioned by
/// `partition_columns`, if missing) with `rows`, in one commit. The predicate is an
/// expression tree, not SQL text: values in it cannot alter it.
///
/// `rows` is a plan, not rows in memory: the Delta writer runs it as it writes the files,
/// so a table of any size streams through; a retried commit runs it again. It runs in the
/// writer's own session (which has the planner for Delta's own operators), so what it
/// scans must need no particular session: in-memory batches, or a provider that runs its
/// own plan (`embedded::Conformed`).
///
/// Commits are put-if-absent (`If-None-Match: *` on S3, the object store's default), so
/// concurrent writers — runs for other payers — can never overwrite each other's commit;
/// the loser of a race re-reads the table and commits again. Writers of disjoint
/// partitions are reconciled by delta-rs itself; a lost race on table creation is retried
/// here from a fresh snapshot, after a short wait that grows with each attempt.
pub(super) async fn replace_where(
    dir: &Location,
    name: &str,
    rows: LogicalPlan,
    predicate: Expr,
    partition_columns: &[&str],
) -> Result<(), DeltaTableError> {
    let mut attempt = 1;
    loop {
        match replace_once(
            dir,
            name,
            rows.clone(),
            predicate.clone(),
            partition_columns,
        )
        .await
        {
            Err(e) if attempt < COMMIT_RETRY.max_attempts && lost_race(&e) => {
                tracing::info!(table = name, attempt, error = %e, "another writer committed first; retrying");
                attempt += 1;
                tokio::time::sleep(COMMIT_RETRY.wait_before(attempt)).await;
            }
            result => return result,
        }
    }
}

/// Whether the error says another writer committed in between, so that committing again
/// from a fresh snapshot may succeed.
fn lost_race(error: &DeltaTableError) -> bool {
    matches!(
        error,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::VersionAlreadyExists(_)
                    | TransactionError::CommitConflict(_)
                    | TransactionError::MaxCommitAttempts(_)
            }
    )
}

async fn replace_once(
    dir: &Location,
    name: &str,
    rows: LogicalPlan,
    predicate: Expr,
    partition_columns: &[&str],
) -> Result<(), DeltaTableError> {
    let table = match load(dir, name).await? {
        Some(table) => table,
        None => {
            if let Some(folder) = local_folder(dir, name) {
                std::fs::create_dir_all(&folder).map_err(|e| {
                    DeltaTableError::Generic(format!("cannot create {}: {e}", folder.display()))
                })?;
            }
            builder(dir, name)?
        }
    };
    table
        .write(std::iter::empty())
        .with_input_plan(rows)
        .with_save_mode(SaveMode::Overwrite)
        .with_replace_where(predicate)
        .with_partition_columns(partition_columns.iter().copied())
        .await?;
    Ok(())
}

/// Deletes the rows matching `predicate` from table `name`, in one commit.
pub(super) async fn delete_where(
    dir: &Location,
    name: &str,
    predicate: Expr,
) -> Result<(), DeltaTableError> {
    if let Some(table) = load(dir, name).await? {
        table.delete().with_predicate(predicate).await?;
    }
    Ok(())
}

/// Deletes the data files that commits to table `name` replaced more than `keep` ago, and
/// returns how many. This is Delta's vacuum in its lite mode: it deletes only files the
/// log marks as removed, never a file another writer has written but not committed yet,
/// so it is safe while other runs write. Files of a run killed before its commit are not
/// in the log and stay.
pub(super) async fn remove_replaced(
    dir: &Location,
    name: &str,
    keep: std::time::Duration,
) -> Result<usize, DeltaTableError> {
    let Some(table) = load(dir, name).await? else {
        return Ok(0);
    };
    let keep =
        chrono::Duration::from_std(keep).map_err(|e| DeltaTableError::Generic(e.to_string()))?;
    // The table's own minimum (delta.deletedFileRetentionDuration, a week unless set) is
    // not enforced: `keep_replaced` in the settings is the operator's decision.
    let (_, metrics) = table
        .vacuum()
        .with_mode(VacuumMode::Lite)
        .with_retention_period(keep)
        .with_enforce_retention_duration(false)
        .await?;
    Ok(metrics.files_deleted.len())
}

/// A DataFusion table provider over the latest version of table `name`, if it exists.
pub(super) async fn provider(
    dir: &Location,
    name: &str,
) -> Result<Option<Arc<dyn TableProvider>>, DeltaTableError> {
    match load(dir, name).await? {
        Some(table) => Ok(Some(
            table
                .table_provider()
                .await
                .map_err(|e| DeltaTableError::Generic(e.to_string()))?,
        )),
        None => Ok(None),
    }
}
