//! Requests something dropped still owes the store: a transfer, aborting the multipart
//! upload it had started; a payer's lease, releasing it. They are dropped when a signal
//! stops the run; `Drop` cannot wait, so it spawns the request here, and the run awaits
//! them ([`finish`]) before it reports, so that the process does not end with a request
//! still on its way.

use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;

/// The spawned requests not yet awaited.
static PENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Sends `request` in the background (outside a runtime: not at all, and the store's own
/// expiry of unfinished uploads, a bucket lifecycle rule, removes what it left).
pub(crate) fn spawn(request: impl Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let handle = runtime.spawn(request);
        PENDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle);
    }
}

/// Waits up to `within` for every request [`spawn`]ed so far.
pub(crate) async fn finish(within: Duration) {
    let pending: Vec<JoinHandle<()>> = std::mem::take(
        &mut *PENDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if pending.is_empty() {
        return;
    }
    let count = pending.len();
    if tokio::time::timeout(within, futures::future::join_all(pending))
        .await
        .is_err()
    {
        tracing::warn!(
            count,
            "requests aborting unfinished uploads or releasing leases did not all end in time; a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes the parts of uploads, and a lease expires by itself"
        );
    }
}
