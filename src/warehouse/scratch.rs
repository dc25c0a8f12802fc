//! The embedded analytics' intermediate tables, kept on local disk.
//!
//! The scripts build every table they select from with `CREATE TABLE … AS SELECT`.
//! DataFusion would keep each as a table in memory, outside the memory pool that
//! `memory_limit` sizes, and a large payer-month's tables grow with commitments × hours ×
//! applications, like the final tables they lead to. Here each one is written as the
//! query runs, as one Parquet file in a temporary folder of the session, and read from
//! there by the statements after it: what memory holds is what the operators hold, within
//! the pool. The folder is deleted when the session ends.
//!
//! Parquet, not Arrow IPC, though the files are read only a few times: a Parquet file
//! tells the planner how many rows it holds, and the joins after it need that to choose
//! their build sides. Over Arrow IPC files the joins of a 2,000-commitment month held
//! 7 GB and had not finished after four minutes (Parquet: 7 s, 0.6 GB).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::config::TableParquetOptions;
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::CreateMemoryTable;
use datafusion::prelude::SessionContext;

/// Rows per row group of a scratch file: small enough that the writer's buffer stays a
/// few MB, far under the smallest `memory_limit`, which it is counted against.
const ROWS_PER_GROUP: usize = 128 * 1024;

/// The temporary folder of one session's intermediate tables.
#[derive(Debug)]
pub(super) struct Scratch {
    dir: tempfile::TempDir,
    /// How many tables were written: the next file's name.
    written: AtomicUsize,
}

impl Scratch {
    /// A new folder in the OS's temporary directory, where DataFusion spills too.
    pub(super) fn new() -> std::io::Result<Self> {
        Ok(Self {
            dir: tempfile::Builder::new()
                .prefix("curflow-analytics-")
                .tempdir()?,
            written: AtomicUsize::new(0),
        })
    }

    /// Runs the query of `create` into a new scratch file and registers the file under the
    /// table's name, as `CREATE TABLE … AS` would register the rows.
    pub(super) async fn create(
        &self,
        ctx: &SessionContext,
        create: CreateMemoryTable,
    ) -> Result<()> {
        let CreateMemoryTable {
            name,
            input,
            if_not_exists,
            or_replace,
            ..
        } = create;
        if ctx.table_exist(name.clone())? {
            if if_not_exists {
                return Ok(());
            }
            if !or_replace {
                return Err(DataFusionError::Plan(format!(
                    "table {name} already exists"
                )));
            }
        }
        let rows = DataFrame::new(ctx.state(), Arc::unwrap_or_clone(input));
        let schema = Arc::new(rows.schema().as_arrow().clone());
        let file = self.next_file();
        let path = file.to_str().ok_or_else(|| {
            DataFusionError::Execution(format!("scratch path {} is not UTF-8", file.display()))
        })?;
        // Read a few times, on local disk, and then deleted: not worth compressing. One
        // file, written even when the query returns no rows.
        let mut parquet = TableParquetOptions::default();
        parquet.global.compression = Some("uncompressed".into());
        parquet.global.max_row_group_size = ROWS_PER_GROUP;
        rows.write_parquet(
            path,
            DataFrameWriteOptions::new().with_single_file_output(true),
            Some(parquet),
        )
        .await?;
        if or_replace {
            ctx.deregister_table(name.clone())?;
        }
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        ctx.register_listing_table(name, path, options, Some(schema), None)
            .await
    }

    fn next_file(&self) -> PathBuf {
        let n = self.written.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("{n}.parquet"))
    }
}
