//! Carrying out a plan: bounded parallel copies, each verified, then deletions.
//!
//! Copies run first and must all verify before any file is deleted; `stage` writes the
//! ledger, which points readers at the folder, only after both.

use futures::{StreamExt, TryStreamExt};

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

/// What a sync moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Transferred {
    /// Objects written or deleted.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// Copies `files` (keys relative to both folders) from `source` to `staged`, at most
/// `concurrency` at a time, verifying each, with progress output for this payer-period;
/// each copy starts only if `fence` confirms the lease (a copy may replace a staged file).
pub(super) async fn copy_all(
    source: &Location,
    staged: &Location,
    files: &[ObjectInfo],
    concurrency: usize,
    (payer, period): (&PayerId, BillingPeriod),
    fence: &Fence,
) -> Result<Transferred, CopyError> {
    let total = files.len();
    let progress = Progress::new(payer, period, total, files.iter().map(|f| f.size).sum());
    let progress = &progress;
    futures::stream::iter(files)
        .map(|file| async move {
            fence.confirm()?;
            source.copy_to(file, staged, &file.key).await?;
            tracing::debug!(key = %file.key, bytes = file.size, "copied");
            progress.file_done(file.size);
            Ok::<_, Stopped>(file.size)
        })
        .buffer_unordered(concurrency.max(1))
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

/// Deletes `keys` from `staged`, at most `concurrency` at a time, each only if `fence`
/// confirms the lease.
pub(super) async fn delete_all(
    staged: &Location,
    keys: &[String],
    concurrency: usize,
    fence: &Fence,
) -> Result<Transferred, CopyError> {
    let total = keys.len();
    futures::stream::iter(keys)
        .map(|key| async move {
            fence.confirm()?;
            staged.delete(key).await?;
            Ok::<_, Stopped>(())
        })
        .buffer_unordered(concurrency.max(1))
        .try_fold(Transferred::default(), |acc, ()| async move {
            Ok(Transferred {
                files: acc.files + 1,
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
