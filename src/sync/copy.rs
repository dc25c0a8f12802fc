//! Carrying out a plan: bounded parallel copies, each verified, then deletions.
//!
//! Copies run first and must all verify before any file is deleted; `stage` writes the
//! ledger, which points readers at the folder, only after both.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use tokio::sync::Semaphore;

use super::lease::{Fence, LeaseError};
use super::progress::Progress;
use crate::storage::{Location, ObjectInfo, StorageError};
use crate::task::{BillingPeriod, PayerId};

/// A copy or delete failed; readers still read what the previous ledger points at.
#[derive(Debug, thiserror::Error)]
#[error("{action} {total} files stopped: {source}")]
pub struct CopyError {
    action: &'static str,
    total: usize,
    #[source]
    source: Stopped,
}

/// Why a copy or delete did not happen.
#[derive(Debug, thiserror::Error)]
pub(super) enum Stopped {
    /// The store failed it.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The lease was no longer surely this run's, so it was not sent.
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

/// How many objects are copied or deleted at once: at most `per_payer` for one
/// payer-period, and at most the run-wide number across every payer of the run (clones
/// share it), so that a hundred payers staged together do not send a hundred times one
/// payer's requests. A multipart copy counts as one: its parts are bounded by the
/// transfer settings' `concurrency`.
#[derive(Debug, Clone)]
pub struct Transfers {
    per_payer: usize,
    run_wide: Arc<Semaphore>,
}

impl Transfers {
    /// `per_payer` at a time within a payer-period, `run_wide` across all of them
    /// (each at least 1).
    pub fn new(per_payer: usize, run_wide: usize) -> Self {
        Self {
            per_payer: per_payer.max(1),
            run_wide: Arc::new(Semaphore::new(run_wide.max(1))),
        }
    }

    /// Runs `transfer` once the run-wide cap has room for it.
    async fn limited<T>(&self, transfer: impl std::future::Future<Output = T>) -> T {
        // The semaphore is never closed, so a permit always comes.
        let _permit = self.run_wide.acquire().await;
        transfer.await
    }
}

/// What a sync moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Transferred {
    /// Objects written or deleted.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// Copies `files` (keys relative to both folders) from `source` to `staged`, as many at
/// a time as `transfers` allows, verifying each, with progress output for this payer-period;
/// each copy starts only if `fence` confirms the lease (a copy may replace a staged file).
pub(super) async fn copy_all(
    source: &Location,
    staged: &Location,
    files: &[ObjectInfo],
    transfers: &Transfers,
    (payer, period): (&PayerId, BillingPeriod),
    fence: &Fence,
) -> Result<Transferred, CopyError> {
    let total = files.len();
    let progress = Progress::new(payer, period, total, files.iter().map(|f| f.size).sum());
    let progress = &progress;
    futures::stream::iter(files)
        .map(|file| {
            transfers.limited(async move {
                fence.confirm()?;
                source.copy_to(file, staged, &file.key).await?;
                tracing::debug!(key = %file.key, bytes = file.size, "copied");
                progress.file_done(file.size);
                Ok::<_, Stopped>(file.size)
            })
        })
        .buffer_unordered(transfers.per_payer)
        .try_fold(Transferred::default(), |acc, bytes| async move {
            Ok(Transferred {
                files: acc.files + 1,
                bytes: acc.bytes + bytes,
            })
        })
        .await
        .map_err(|source| CopyError {
            action: "copying",
            total,
            source,
        })
}

/// The most keys one delete request carries (S3's DeleteObjects limit).
const DELETE_BATCH: usize = 1_000;

/// Deletes `keys` from `staged`, a thousand per request, as many requests at a time as
/// `transfers` allows, each only if `fence` confirms the lease.
pub(super) async fn delete_all(
    staged: &Location,
    keys: &[String],
    transfers: &Transfers,
    fence: &Fence,
) -> Result<Transferred, CopyError> {
    let total = keys.len();
    futures::stream::iter(keys.chunks(DELETE_BATCH))
        .map(|batch| {
            transfers.limited(async move {
                fence.confirm()?;
                staged.delete_many(batch).await?;
                Ok::<_, Stopped>(batch.len())
            })
        })
        .buffer_unordered(transfers.per_payer)
        .try_fold(Transferred::default(), |acc, files| async move {
            Ok(Transferred {
                files: acc.files + files,
                bytes: 0,
            })
        })
        .await
        .map_err(|source| CopyError {
            action: "deleting",
            total,
            source,
        })
}
