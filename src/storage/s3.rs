//! Server-side copies between S3 buckets with the S3 SDK (object_store copies only within
//! one bucket): CopyObject up to the multipart threshold, parallel UploadPartCopy above it
//! (objects over 5 GiB must be copied in parts), always guarded by
//! `x-amz-copy-source-if-match` and checked afterwards.
//!
//! The check does not trust the guard alone: some S3-compatible servers ignore it. A copy
//! whose ETag differs from the listed one (a multipart copy always does; so does an SSE-KMS
//! object) is accepted only if the source still carries the listed ETag.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::SharedHttpClient;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::Provider;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use futures::{StreamExt, TryStreamExt};

use super::{Access, StorageError, Transfer};

/// S3's smallest part (all but the last).
pub(super) const MIN_PART: u64 = 5 * 1024 * 1024;
/// S3's largest part, and the largest object one CopyObject can copy.
pub(super) const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;
/// S3's limit on parts per upload.
pub(super) const MAX_PARTS: u64 = 10_000;

/// The SDK's HTTPS client as the SDK builds it by default (rustls with aws-lc, proxy from
/// the environment, the SDK's timeouts), but keeping up to `concurrency` idle connections
/// per host: the copies of one run reuse as many connections as they run in parallel,
/// like object_store's client on the other side (`ClientOptions::with_pool_max_idle_per_host`).
pub(super) fn http_client(concurrency: usize) -> SharedHttpClient {
    let idle = concurrency.max(1);
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default()
            .pool_max_idle_per_host(idle)
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// One bucket reached through the SDK, with the principal that reaches it.
#[derive(Debug, Clone)]
pub(super) struct S3Side {
    pub(super) client: Client,
    pub(super) bucket: String,
    pub(super) access: Access,
}

/// An object on one side of a copy: its bucket, key, and URL for messages.
pub(super) struct Object<'a> {
    pub(super) side: &'a S3Side,
    pub(super) key: String,
    pub(super) url: String,
}

/// The inclusive byte ranges of the parts that copy an object of `size` bytes, `part_size`
/// each (kept within S3's 5 MiB–5 GiB, and grown when 10,000 parts would not cover it).
pub(super) fn part_plan(size: u64, part_size: u64) -> Vec<(u64, u64)> {
    let mut part = part_size.clamp(MIN_PART, MAX_PART);
    if size.div_ceil(part) > MAX_PARTS {
        part = size.div_ceil(MAX_PARTS);
    }
    (0..size.div_ceil(part))
        .map(|i| (i * part, ((i + 1) * part).min(size) - 1))
        .collect()
}

/// S3 ETags arrive quoted from some calls and not from others.
fn same_tag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

/// `x-amz-copy-source` wants the key URL-encoded (all but unreserved characters and `/`).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns an SDK failure into a storage error: 412 means the source is no longer the listed
/// version; access denied names the permission the principal lacks.
fn failure<E>(
    op: &'static str,
    url: &str,
    listed: &str,
    hint: &'static str,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let url = url.to_owned();
    let listed = listed.to_owned();
    move |error| {
        if error
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 412)
        {
            return StorageError::SourceChanged { url, e_tag: listed };
        }
        let denied = error
            .code()
            .is_some_and(|c| c == "AccessDenied" || c == "Forbidden");
        StorageError::S3 {
            op,
            url,
            detail: DisplayErrorContext(&error).to_string(),
            hint: if denied { hint } else { "" },
        }
    }
}

const COPY_HINT: &str = " — the principal needs s3:GetObject on the source and s3:PutObject on staging (see README, IAM permissions)";
const HEAD_HINT: &str = " — the principal needs s3:GetObject on this bucket";

/// Copies `from` to `to` on the S3 side, then checks that the staged object is the
/// listed version: proven by the copy's answer when it carries the listed ETag (S3 copied
/// the version `copy_source_if_match` named, and equal ETags mean equal bytes, so the
/// listed size too), else by [`verify`].
pub(super) async fn copy(
    from: &Object<'_>,
    to: &Object<'_>,
    size: u64,
    e_tag: &str,
    transfer: &Transfer,
) -> Result<(), StorageError> {
    let source = format!("{}/{}", from.side.bucket, encode_key(&from.key));
    let written = if size > transfer.multipart_threshold.min(MAX_PART) {
        copy_in_parts(&source, from, to, size, e_tag, transfer).await?
    } else {
        to.side
            .client
            .copy_object()
            .bucket(&to.side.bucket)
            .key(&to.key)
            .copy_source(&source)
            .copy_source_if_match(e_tag)
            .send()
            .await
            .map_err(failure("copy", &from.url, e_tag, COPY_HINT))?
            .copy_object_result()
            .and_then(|r| r.e_tag())
            .map(str::to_owned)
    };
    // The common case, a single-part copy of a plain object, keeps the source's ETag:
    // one request per object. A multipart copy, SSE-KMS or an answer without an ETag is
    // checked with HEADs.
    if written
        .as_deref()
        .is_some_and(|w| !w.is_empty() && same_tag(w, e_tag))
    {
        return Ok(());
    }
    verify(from, to, size, e_tag, written.as_deref()).await
}

async fn verify(
    from: &Object<'_>,
    to: &Object<'_>,
    size: u64,
    e_tag: &str,
    written: Option<&str>,
) -> Result<(), StorageError> {
    let bad = |reason: String| StorageError::Verify {
        url: to.url.clone(),
        reason,
    };
    let head = to
        .side
        .client
        .head_object()
        .bucket(&to.side.bucket)
        .key(&to.key)
        .send()
        .await
        .map_err(failure("check", &to.url, e_tag, HEAD_HINT))?;
    let got = head.content_length().unwrap_or(-1);
    let staged = head.e_tag().unwrap_or_default();
    let problem = if u64::try_from(got).ok() != Some(size) {
        Some(format!("{got} bytes staged, the source listed {size}"))
    } else if let Some(written) = written
        && !same_tag(written, staged)
    {
        Some(format!(
            "staged ETag {staged} is not the one the copy wrote ({written}); another writer touched it"
        ))
    } else {
        None
    };
    if problem.is_none() && same_tag(staged, e_tag) {
        return Ok(());
    }
    // Another ETag (a multipart copy, SSE-KMS) or a mismatch: is the source still the
    // listed version? If not, the guard was ignored and the copy is of a newer version.
    let now = from
        .side
        .client
        .head_object()
        .bucket(&from.side.bucket)
        .key(&from.key)
        .send()
        .await
        .map_err(failure("check", &from.url, e_tag, HEAD_HINT))?;
    if !now.e_tag().is_some_and(|t| same_tag(t, e_tag)) {
        return Err(StorageError::SourceChanged {
            url: from.url.clone(),
            e_tag: e_tag.to_owned(),
        });
    }
    match problem {
        Some(reason) => Err(bad(reason)),
        None => Ok(()),
    }
}

/// CreateMultipartUpload, parallel UploadPartCopy, Complete; aborted on any failure so no
/// orphaned parts are billed.
async fn copy_in_parts(
    source: &str,
    from: &Object<'_>,
    to: &Object<'_>,
    size: u64,
    e_tag: &str,
    transfer: &Transfer,
) -> Result<Option<String>, StorageError> {
    let client = &to.side.client;
    let created = client
        .create_multipart_upload()
        .bucket(&to.side.bucket)
        .key(&to.key)
        .send()
        .await
        .map_err(failure(
            "start a multipart copy to",
            &to.url,
            e_tag,
            COPY_HINT,
        ))?;
    let Some(upload_id) = created.upload_id().map(str::to_owned) else {
        return Err(StorageError::Verify {
            url: to.url.clone(),
            reason: "the store started a multipart upload without an upload id".into(),
        });
    };
    let upload = OpenUpload {
        client: client.clone(),
        bucket: to.side.bucket.clone(),
        key: to.key.clone(),
        url: to.url.clone(),
        id: Some(upload_id.clone()),
    };
    let parts = futures::stream::iter(part_plan(size, transfer.part_size).into_iter().zip(1..))
        .map(|((first, last), number)| {
            let upload_id = &upload_id;
            async move {
                let out = client
                    .upload_part_copy()
                    .bucket(&to.side.bucket)
                    .key(&to.key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .copy_source(source)
                    .copy_source_range(format!("bytes={first}-{last}"))
                    .copy_source_if_match(e_tag)
                    .send()
                    .await
                    .map_err(failure("copy a part of", &from.url, e_tag, COPY_HINT))?;
                Ok::<_, StorageError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(
                            out.copy_part_result()
                                .and_then(|r| r.e_tag())
                                .map(str::to_owned),
                        )
                        .build(),
                )
            }
        })
        .buffered(transfer.concurrency.max(1))
        .try_collect::<Vec<_>>()
        .await;
    let completed = match parts {
        Ok(parts) => client
            .complete_multipart_upload()
            .bucket(&to.side.bucket)
            .key(&to.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(failure(
                "complete the multipart copy to",
                &to.url,
                e_tag,
                COPY_HINT,
            )),
        Err(e) => Err(e),
    };
    match completed {
        Ok(out) => {
            upload.completed();
            Ok(out.e_tag().map(str::to_owned))
        }
        Err(e) => {
            upload.abort().await;
            Err(e)
        }
    }
}

/// A multipart upload that is aborted unless it completed: awaited after a failure, and
/// sent through [`super::cleanup`] when the copy is dropped before it ends (a signal
/// stopped the run), so that no orphaned parts are billed.
struct OpenUpload {
    client: Client,
    bucket: String,
    key: String,
    url: String,
    /// The upload id while the upload is open.
    id: Option<String>,
}

impl OpenUpload {
    fn request(&self, id: String) -> impl Future<Output = ()> + Send + 'static {
        let sent = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(id)
            .send();
        let url = self.url.clone();
        async move {
            if let Err(abort) = sent.await {
                tracing::warn!(%url, error = %DisplayErrorContext(&abort), "could not abort an unfinished multipart copy; a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes its parts");
            }
        }
    }

    /// The upload completed: nothing to abort.
    fn completed(mut self) {
        self.id = None;
    }

    /// Aborts the upload now.
    async fn abort(mut self) {
        if let Some(id) = self.id.take() {
            self.request(id).await;
        }
    }
}

impl Drop for OpenUpload {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            tracing::info!(url = %self.url, "aborting the multipart copy the run stopped");
            super::cleanup::spawn(self.request(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;

    fn covers(size: u64, plan: &[(u64, u64)]) {
        assert_eq!(plan.first().map(|p| p.0), Some(0));
        assert_eq!(plan.last().map(|p| p.1), Some(size - 1));
        for w in plan.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0);
        }
        assert!(plan.len() as u64 <= MAX_PARTS);
        assert!(plan.iter().all(|(a, b)| b - a < MAX_PART));
    }

    #[test]
    fn parts_cover_the_object_within_s3_limits() {
        let plan = part_plan(12 * MIB, 5 * MIB);
        assert_eq!(
            plan,
            [
                (0, 5 * MIB - 1),
                (5 * MIB, 10 * MIB - 1),
                (10 * MIB, 12 * MIB - 1)
            ]
        );
        // Over 5 GiB: the case CopyObject cannot do.
        let big = 6 * GIB + 7;
        let plan = part_plan(big, 64 * MIB);
        covers(big, &plan);
        assert_eq!(plan.len(), 97);
        // A part size under S3's minimum is raised; 5 TiB at 5 MiB needs bigger parts.
        assert_eq!(part_plan(10 * MIB, MIB).len(), 2);
        let huge = 5 * 1024 * GIB;
        covers(huge, &part_plan(huge, 5 * MIB));
        assert_eq!(part_plan(1, 8 * MIB), [(0, 0)]);
    }

    #[test]
    fn copy_source_keys_are_encoded() {
        assert_eq!(
            encode_key("data/BILLING_PERIOD=2025-07/a b+c.parquet"),
            "data/BILLING_PERIOD%3D2025-07/a%20b%2Bc.parquet"
        );
        assert!(same_tag("\"abc\"", "abc"));
    }
}
