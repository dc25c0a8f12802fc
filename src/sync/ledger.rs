//! The ledger: what curflow staged for one payer-period, verified, and when analytics ran.
//!
//! One JSON object per payer-period at `_curflow/ledger/payer-<id>/YYYY-MM.json` in the
//! staging store, written in a single PUT (atomic on S3 and on local disk) and only after
//! every copy it lists was verified. A ledger that cannot be parsed is treated as absent:
//! the next sync re-copies and converges instead of failing forever.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::layout::{Layout, Stamp};
use crate::storage::{Location, ObjectInfo, StorageError};
use crate::task::{BillingPeriod, PayerId};

/// The ledger's format version; bump when fields change meaning. 2: each delivery staged
/// in a folder of its own (`folder`, `superseded`); a ledger of 1 described files staged
/// directly in the payer-period folder, and is read as absent (the delivery is staged again,
/// in its own folder, and the old files are superseded).
const FORMAT: u32 = 2;

/// Reading or writing a ledger failed.
#[derive(Debug, thiserror::Error)]
#[error("ledger for payer {payer} period {period}: {source}")]
pub struct LedgerError {
    payer: PayerId,
    period: BillingPeriod,
    #[source]
    source: StorageError,
}

/// One staged file as it was at the source when copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StagedFile {
    /// Size in bytes.
    pub size: u64,
    /// The source's ETag at copy time.
    pub e_tag: Option<String>,
    /// The source's LastModified at copy time (informational: never used to decide).
    pub last_modified: DateTime<Utc>,
}

impl From<&ObjectInfo> for StagedFile {
    fn from(o: &ObjectInfo) -> Self {
        Self {
            size: o.size,
            e_tag: o.e_tag.clone(),
            last_modified: o.last_modified,
        }
    }
}

/// What is staged for one payer-period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Ledger {
    /// Format version.
    pub format: u32,
    /// The source delivery (manifest execution id), if the source had a manifest.
    pub delivery: Option<String>,
    /// When the staged copy was last compared in full with the source and found complete.
    pub synced_at: Option<DateTime<Utc>>,
    /// When analytics last succeeded on exactly these files; cleared by any change.
    pub analytics_succeeded_at: Option<DateTime<Utc>>,
    /// The folder that holds the staged delivery, relative to the staging root
    /// (`year=YYYY/month=M/payer-<id>/delivery-<digest>`): what readers read.
    pub folder: String,
    /// Staged files, keyed relative to `folder`.
    pub files: BTreeMap<String, StagedFile>,
    /// What else the payer-period folder holds (by name within it: earlier deliveries'
    /// folders, files of the flat layout) and when a run first found it superseded; each
    /// is deleted once kept for `keep_superseded`.
    #[serde(default)]
    pub superseded: BTreeMap<String, DateTime<Utc>>,
    /// The layout the delivery was staged from (never `Auto`).
    #[serde(default)]
    pub layout: Option<Layout>,
    /// The source's stamp (its manifest's key and ETag) as staged: while the source's is
    /// the same, so is the delivery, and a run need not list it.
    #[serde(default)]
    pub stamp: Option<Stamp>,
}

impl Ledger {
    /// The files it records, as listed objects keyed like the staged folder's.
    pub(super) fn staged_files(&self) -> Vec<ObjectInfo> {
        self.files
            .iter()
            .map(|(key, file)| ObjectInfo {
                key: key.clone(),
                size: file.size,
                e_tag: file.e_tag.clone(),
                last_modified: file.last_modified,
            })
            .collect()
    }

    fn key(payer: &PayerId, period: BillingPeriod) -> String {
        format!("_curflow/ledger/payer-{payer}/{period}.json")
    }

    /// Reads the ledger; `None` when there is none or it is unreadable (logged).
    pub(super) async fn read(
        staging: &Location,
        payer: &PayerId,
        period: BillingPeriod,
    ) -> Result<Option<Self>, LedgerError> {
        let key = Self::key(payer, period);
        let Some(bytes) = staging.read(&key).await.map_err(|source| LedgerError {
            payer: payer.clone(),
            period,
            source,
        })?
        else {
            return Ok(None);
        };
        match serde_json::from_slice::<Self>(&bytes) {
            Ok(ledger) if ledger.format == FORMAT => Ok(Some(ledger)),
            Ok(ledger) => {
                tracing::warn!(%payer, %period, format = ledger.format, "ledger has an unknown format; re-verifying the staged copy");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(%payer, %period, error = %e, "ledger is unreadable; re-verifying the staged copy");
                Ok(None)
            }
        }
    }

    /// Writes the ledger in one request.
    pub(super) async fn write(
        &self,
        staging: &Location,
        payer: &PayerId,
        period: BillingPeriod,
    ) -> Result<(), LedgerError> {
        let body = serde_json::to_vec_pretty(&Self {
            format: FORMAT,
            ..self.clone()
        })
        .unwrap_or_default();
        staging
            .write(&Self::key(payer, period), body)
            .await
            .map_err(|source| LedgerError {
                payer: payer.clone(),
                period,
                source,
            })
    }
}
