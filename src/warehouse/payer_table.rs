//! The embedded warehouse's payer table: payer configurations kept beside the final
//! tables, so that adding a payer needs no change to a settings file on every machine.
//!
//! A Delta table `payer_config` with one row per payer: `payer_id`, `config` (the entry as
//! JSON, with exactly the keys of a settings-file `[[<env>.payers]]` entry, so both sources
//! are validated by the same code) and `updated_at`.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{SessionContext, col, lit};

use super::delta;
use super::tables::{self, PAYER_CONFIG};
use crate::storage::Location;
use crate::task::PayerId;

/// Reading or changing the payer table failed.
#[derive(Debug, thiserror::Error)]
#[error("payer table {PAYER_CONFIG}: {0}")]
pub struct PayerTableError(String);

impl PayerTableError {
    /// An entry that is not a valid payer configuration.
    pub fn invalid(payer: &str, error: &dyn std::fmt::Display) -> Self {
        Self(format!("entry for payer {payer} is invalid: {error}"))
    }
}

/// Every entry as stored: (payer id, JSON configuration).
pub(super) async fn read(dir: &Location) -> Result<Vec<(String, String)>, PayerTableError> {
    let fail = |e: &dyn std::fmt::Display| PayerTableError(e.to_string());
    let Some(provider) = delta::provider(dir, PAYER_CONFIG)
        .await
        .map_err(|e| fail(&e))?
    else {
        return Ok(Vec::new());
    };
    let batches = SessionContext::new()
        .read_table(provider)
        .map_err(|e| fail(&e))?
        .select(vec![col("payer_id"), col("config")])
        .map_err(|e| fail(&e))?
        .sort(vec![col("payer_id").sort(true, false)])
        .map_err(|e| fail(&e))?
        .collect()
        .await
        .map_err(|e| fail(&e))?;
    let mut out = Vec::new();
    for batch in batches {
        let ids = cast(batch.column(0), &DataType::Utf8).map_err(|e| fail(&e))?;
        let configs = cast(batch.column(1), &DataType::Utf8).map_err(|e| fail(&e))?;
        let (ids, configs) = (ids.as_string::<i32>(), configs.as_string::<i32>());
        for i in 0..batch.num_rows() {
            out.push((ids.value(i).to_owned(), configs.value(i).to_owned()));
        }
    }
    Ok(out)
}

/// Adds or replaces one payer's entry, in one commit.
pub(super) async fn save(
    dir: &Location,
    payer: &PayerId,
    config_json: &str,
) -> Result<(), PayerTableError> {
    let schema = tables::payer_config_schema();
    let now = chrono::Utc::now().timestamp_micros();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![payer.as_str()])),
            Arc::new(StringArray::from(vec![config_json])),
            Arc::new(TimestampMicrosecondArray::from(vec![now]).with_timezone("UTC")),
        ],
    )
    .map_err(|e| PayerTableError(e.to_string()))?;
    let rows = SessionContext::new()
        .read_batch(batch)
        .map_err(|e| PayerTableError(e.to_string()))?
        .into_unoptimized_plan();
    delta::replace_where(
        dir,
        PAYER_CONFIG,
        rows,
        col("payer_id").eq(lit(payer.as_str())),
        &["payer_id"],
    )
    .await
    .map_err(|e| PayerTableError(e.to_string()))
}

/// Removes one payer's entry; true when there was one.
pub(super) async fn remove(dir: &Location, payer: &PayerId) -> Result<bool, PayerTableError> {
    let existed = read(dir).await?.iter().any(|(id, _)| id == payer.as_str());
    if existed {
        delta::delete_where(dir, PAYER_CONFIG, col("payer_id").eq(lit(payer.as_str())))
            .await
            .map_err(|e| PayerTableError(e.to_string()))?;
    }
    Ok(existed)
}
