//! An object store that finishes what object_store's own retries leave half done.
//!
//! object_store retries throttling, 5xx answers, refused connections and interrupted
//! requests it considers idempotent (GET, HEAD, plain PUT), and resumes a GET body cut off
//! halfway. It gives up at once where the request may have reached the server and the
//! answer was lost or cut off: a conditional PUT (`If-None-Match`, `If-Match`: the lease,
//! Delta commits), the bulk DeleteObjects POST, and any answer body read after the status
//! line (a listing page, a DeleteObjects result, the error body of a 404). Seen through a
//! fault proxy, one reset on any of these failed the whole payer-period.
//!
//! [`Resilient`] wraps a store and repeats those operations under the same
//! [`RetryPolicy`], within one budget of attempts and time per operation (the inner
//! retries count against the same clock, so a dead endpoint is not retried twice over):
//! - reads (GET, HEAD, delimited listings) are simply repeated;
//! - a listing cut off midway resumes after the last key it returned;
//! - deletes are repeated (deleting what is gone is success);
//! - a conditional PUT that is refused after a failed attempt — or refused at all, since
//!   object_store may have retried it unseen — is read back: if the object holds exactly
//!   the bytes being written, the write was this one's and it succeeded. Every conditional
//!   write curflow and delta-rs make carries a token of its own (the lease holder's, a
//!   commit's timestamp and file UUIDs), so equal bytes cannot be another writer's.
//!
//! Only transport failures are retried here (an `HttpError` in the error's causes, other
//! than a refused connection, which object_store has already retried to its limit). A
//! definite answer — not found, precondition failed, access denied — is returned as is.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{
    CopyOptions, Error, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result,
};

use crate::retry::RetryPolicy;

/// A store whose operations are repeated on transport failures; see the module docs.
#[derive(Debug, Clone)]
pub(super) struct Resilient {
    inner: Arc<dyn ObjectStore>,
    policy: RetryPolicy,
}

impl Resilient {
    pub(super) fn new(inner: Arc<dyn ObjectStore>, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }
}

impl fmt::Display for Resilient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resilient({})", self.inner)
    }
}

/// Whether `error` is a transport failure object_store did not retry: the request may or
/// may not have been acted on, and its answer is missing or incomplete.
fn transient(error: &Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return !matches!(http.kind(), HttpErrorKind::Connect);
        }
        cause = e.source();
    }
    false
}

/// One operation's retry budget: the policy's attempts, within the time object_store's own
/// retries are allowed (`max_backoff × max_attempts`), counted from the first attempt.
struct Budget {
    policy: RetryPolicy,
    started: Instant,
    attempt: u32,
}

impl Budget {
    fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            started: Instant::now(),
            attempt: 1,
        }
    }

    /// After a failure: whether to try again (having waited), or give up with `error`.
    async fn again(&mut self, error: &Error, what: &str, path: &str) -> bool {
        let deadline = self.policy.max_backoff * self.policy.max_attempts;
        if !transient(error)
            || self.attempt >= self.policy.max_attempts
            || self.started.elapsed() > deadline
        {
            return false;
        }
        self.attempt += 1;
        tracing::info!(operation = what, %path, attempt = self.attempt, %error, "transport failure; trying again");
        tokio::time::sleep(self.policy.wait_before(self.attempt)).await;
        true
    }
}

/// Repeats `op` while it fails on transport and the budget lasts.
async fn retried<T, F, Fut>(policy: RetryPolicy, what: &str, path: &str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut budget = Budget::new(policy);
    loop {
        match op().await {
            Err(e) if budget.again(&e, what, path).await => continue,
            result => return result,
        }
    }
}

impl Resilient {
    /// After a conditional PUT was refused: whether `location` holds exactly `payload`,
    /// i.e. an attempt of this very write landed; then its ETag.
    async fn landed(&self, location: &Path, payload: &PutPayload) -> Option<PutResult> {
        let got = retried(self.policy, "read back", location.as_ref(), || async {
            let got = self.inner.get_opts(location, GetOptions::default()).await?;
            let (e_tag, version) = (got.meta.e_tag.clone(), got.meta.version.clone());
            Ok((got.bytes().await?, e_tag, version))
        })
        .await
        .ok()?;
        let (bytes, e_tag, version) = got;
        let written: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
        (bytes.as_ref() == written.as_slice()).then_some(PutResult { e_tag, version })
    }

    /// Deletes one batch, repeating it while any of its deletes failed on transport.
    async fn delete_batch(&self, batch: Vec<Path>) -> Vec<Result<Path>> {
        let mut budget = Budget::new(self.policy);
        loop {
            let input = stream::iter(batch.clone().into_iter().map(Ok)).boxed();
            let results: Vec<Result<Path>> = self.inner.delete_stream(input).collect().await;
            let failure = results
                .iter()
                .find_map(|r| r.as_ref().err().filter(|e| transient(e)));
            match failure {
                Some(e) if budget.again(e, "delete", batch[0].as_ref()).await => continue,
                _ => return results,
            }
        }
    }

    /// A listing from after `offset` that, cut off midway, resumes after the last object
    /// it returned.
    fn resuming_list(
        &self,
        prefix: Option<&Path>,
        offset: Option<Path>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        struct Cursor {
            inner: Arc<dyn ObjectStore>,
            prefix: Option<Path>,
            after: Option<Path>,
            page: BoxStream<'static, Result<ObjectMeta>>,
            budget: Budget,
        }
        let open =
            |inner: &Arc<dyn ObjectStore>, prefix: Option<&Path>, after: Option<&Path>| match after
            {
                Some(after) => inner.list_with_offset(prefix, after),
                None => inner.list(prefix),
            };
        let cursor = Cursor {
            page: open(&self.inner, prefix, offset.as_ref()),
            inner: Arc::clone(&self.inner),
            prefix: prefix.cloned(),
            after: offset,
            budget: Budget::new(self.policy),
        };
        stream::try_unfold(cursor, move |mut cursor| async move {
            loop {
                match cursor.page.next().await {
                    Some(Ok(meta)) => {
                        cursor.after = Some(meta.location.clone());
                        return Ok(Some((meta, cursor)));
                    }
                    None => return Ok(None),
                    Some(Err(e)) => {
                        let at = cursor
                            .prefix
                            .as_ref()
                            .map(Path::to_string)
                            .unwrap_or_default();
                        if !cursor.budget.again(&e, "list", &at).await {
                            return Err(e);
                        }
                        cursor.page =
                            open(&cursor.inner, cursor.prefix.as_ref(), cursor.after.as_ref());
                    }
                }
            }
        })
        .boxed()
    }
}

#[async_trait]
impl ObjectStore for Resilient {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let conditional = !matches!(opts.mode, PutMode::Overwrite);
        let result = retried(self.policy, "write", location.as_ref(), || {
            self.inner.put_opts(location, payload.clone(), opts.clone())
        })
        .await;
        match result {
            Err(e @ (Error::AlreadyExists { .. } | Error::Precondition { .. })) if conditional => {
                match self.landed(location, &payload).await {
                    Some(written) => {
                        tracing::info!(path = %location, "a conditional write whose answer was lost had landed");
                        Ok(written)
                    }
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        retried(self.policy, "read", location.as_ref(), || {
            self.inner.get_opts(location, options.clone())
        })
        .await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        retried(self.policy, "read", location.as_ref(), || {
            self.inner.get_ranges(location, ranges)
        })
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let this = self.clone();
        locations
            .try_chunks(1_000)
            .map_err(|e| e.1)
            .and_then(move |batch| {
                let this = this.clone();
                async move { Ok(stream::iter(this.delete_batch(batch).await)) }
            })
            .try_flatten()
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.resuming_list(prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.resuming_list(prefix, Some(offset.clone()))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let at = prefix.map(Path::to_string).unwrap_or_default();
        retried(self.policy, "list", &at, || {
            self.inner.list_with_delimiter(prefix)
        })
        .await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
