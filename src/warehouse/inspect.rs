//! A staged payer-period inspected before any engine reads it: every data file is non-empty,
//! readable Parquet and holds the columns the analytics read ([`cur_columns`]), and the
//! files agree on each column's type. Engines are lenient where
//! curflow must not be — DataFusion skips an empty file, and a delivery missing one file's
//! rows would be analysed and published as if complete — so each backend inspects the
//! period first and refuses it, naming the file, when one fails. The schema it merges is
//! the one the engine would infer, so the embedded engine registers the files with it
//! instead of reading every footer a second time; and the footers it reads stay in the
//! session's metadata cache for the scans that follow.

use std::collections::{BTreeMap, HashMap, HashSet};

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::execution::SessionState;
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore};

use super::{StagedPeriod, cur_columns};

/// The merged schema of the staged files of `staged`, as DataFusion infers it for a
/// listing table read with `format` (columns in first-seen order), or why the files cannot
/// be read as one table: the first file that is empty or not readable Parquet, the first
/// column whose type differs between two files ("column X is Utf8 in a.parquet but Int64
/// in b.parquet"), or the first file without a column it must hold for its layout
/// ([`cur_columns::Requirement`]). Footers are read through `state`, whose file metadata
/// cache keeps them.
pub(super) async fn staged_files(
    staged: &StagedPeriod,
    format: &ParquetFormat,
    state: &SessionState,
) -> Result<SchemaRef, String> {
    let (store, prefix) = staged.location.store();
    let mut files: Vec<ObjectMeta> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| format!("the staged files cannot be listed ({e})"))?;
    files.retain(|f| f.location.as_ref().ends_with(".parquet"));
    files.sort_by(|a, b| a.location.cmp(&b.location));
    // One session for every read: its file metadata cache serves the merge below from the
    // footers already read file by file.
    let mut seen: HashMap<String, (DataType, String)> = HashMap::new();
    let mut file_columns: Vec<(String, HashSet<String>)> = Vec::with_capacity(files.len());
    for file in &files {
        let name = file.location.filename().unwrap_or_default().to_owned();
        if file.size == 0 {
            return Err(format!(
                "{name} is empty (0 bytes), not a Parquet file; the source holds it so, and runs fail on this period until AWS delivers it again"
            ));
        }
        let schema = format
            .infer_schema(state, &store, std::slice::from_ref(file))
            .await
            .map_err(|e| {
                format!(
                    "{name} is not readable Parquet ({}); the source holds it so, and runs fail on this period until AWS delivers it again",
                    e.strip_backtrace()
                )
            })?;
        for field in schema.fields() {
            match seen.get(field.name()) {
                Some((data_type, first)) if data_type != field.data_type() => {
                    return Err(format!(
                        "column {} is {data_type} in {first} but {} in {name}; the delivery mixes incompatible schemas",
                        field.name(),
                        field.data_type()
                    ));
                }
                Some(_) => {}
                None => {
                    seen.insert(
                        field.name().clone(),
                        (field.data_type().clone(), name.clone()),
                    );
                }
            }
        }
        let columns = schema.fields().iter().map(|f| f.name().clone()).collect();
        file_columns.push((name, columns));
    }
    let delivery: BTreeMap<String, String> = seen
        .into_iter()
        .map(|(column, (_, first))| (column, first))
        .collect();
    let requirement = cur_columns::Requirement::new(staged.layout, &delivery);
    for (name, columns) in &file_columns {
        if let Some(reason) = requirement.refusal(name, columns) {
            return Err(reason);
        }
    }
    format
        .infer_schema(state, &store, &files)
        .await
        .map_err(|e| e.strip_backtrace())
}
