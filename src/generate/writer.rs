//! Streaming Parquet output: data files that roll over every `rows_per_file` rows, with
//! ~64k-row row groups flushed to the object store as they fill, so memory stays flat
//! however many rows the month has.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;

use super::GenerateError;

/// Rows per Parquet row group.
pub(crate) const ROW_GROUP_ROWS: usize = 64 * 1024;

/// A data file once complete.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// File name, without the folder.
    pub(crate) name: String,
    pub(crate) key: Path,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
}

struct Open {
    writer: AsyncArrowWriter<BufWriter>,
    name: String,
    key: Path,
    rows: u64,
}

/// The data files of one delivery: `<dir>/<prefix>-<part:05>.snappy.parquet`, parts from 1.
pub(crate) struct DataFiles {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    prefix: String,
    rows_per_file: u64,
    schema: SchemaRef,
    current: Option<Open>,
    written: Vec<Written>,
}

/// Snappy, ~64k-row row groups, and a fixed `created_by` so files do not change with the
/// Parquet library's version.
fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by("curflow generate".to_owned())
        .build()
}

fn open(
    store: &Arc<dyn ObjectStore>,
    key: &Path,
    schema: SchemaRef,
) -> Result<AsyncArrowWriter<BufWriter>, GenerateError> {
    let sink = BufWriter::new(Arc::clone(store), key.clone());
    AsyncArrowWriter::try_new(sink, schema, Some(properties())).map_err(|source| {
        GenerateError::Write {
            key: key.to_string(),
            source,
        }
    })
}

impl DataFiles {
    /// Files named `<prefix>-<part>.snappy.parquet` under `dir`, at most `rows_per_file` rows each.
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        dir: Path,
        prefix: String,
        rows_per_file: u64,
        schema: SchemaRef,
    ) -> Self {
        Self {
            store,
            dir,
            prefix,
            rows_per_file: rows_per_file.max(1),
            schema,
            current: None,
            written: Vec::new(),
        }
    }

    /// Appends `batch`, starting new files whenever one is full.
    pub(crate) async fn write(&mut self, batch: &RecordBatch) -> Result<(), GenerateError> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let open = match self.current.as_mut() {
                Some(open) => open,
                None => {
                    let name = format!(
                        "{}-{:05}.snappy.parquet",
                        self.prefix,
                        self.written.len() + 1
                    );
                    let key = self.dir.clone().join(name.as_str());
                    let writer = open(&self.store, &key, self.schema.clone())?;
                    self.current.insert(Open {
                        writer,
                        name,
                        key,
                        rows: 0,
                    })
                }
            };
            let room = usize::try_from(self.rows_per_file - open.rows).unwrap_or(usize::MAX);
            let take = room.min(batch.num_rows() - offset);
            open.writer
                .write(&batch.slice(offset, take))
                .await
                .map_err(|source| GenerateError::Write {
                    key: open.key.to_string(),
                    source,
                })?;
            open.rows += take as u64;
            offset += take;
            if open.rows >= self.rows_per_file {
                self.close().await?;
            }
        }
        Ok(())
    }

    /// Completes the last file and returns every file written, in order.
    pub(crate) async fn finish(mut self) -> Result<Vec<Written>, GenerateError> {
        self.close().await?;
        Ok(self.written)
    }

    async fn close(&mut self) -> Result<(), GenerateError> {
        if let Some(mut open) = self.current.take() {
            open.writer
                .finish()
                .await
                .map_err(|source| GenerateError::Write {
                    key: open.key.to_string(),
                    source,
                })?;
            let bytes = open.writer.bytes_written() as u64;
            self.written.push(Written {
                name: open.name,
                key: open.key,
                rows: open.rows,
                bytes,
            });
        }
        Ok(())
    }
}

/// Writes one small Parquet file holding `batch`; returns its size in bytes.
pub(crate) async fn write_file(
    store: &Arc<dyn ObjectStore>,
    key: &Path,
    batch: &RecordBatch,
) -> Result<u64, GenerateError> {
    let mut writer = open(store, key, batch.schema())?;
    let result = match writer.write(batch).await {
        Ok(()) => writer.finish().await.map(|_| ()),
        Err(e) => Err(e),
    };
    result.map_err(|source| GenerateError::Write {
        key: key.to_string(),
        source,
    })?;
    Ok(writer.bytes_written() as u64)
}
