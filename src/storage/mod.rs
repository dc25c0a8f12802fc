//! Where bytes live: store URLs, and the one place that talks to object stores.
//!
//! A [`StoreUrl`] is a validated `s3://bucket/prefix` or `file:///dir` (a bare path is
//! made absolute). A [`Location`] is that URL opened: an object store plus a prefix, with
//! the handful of operations the pipeline needs, all addressed by keys *relative* to the
//! location so that callers never build bucket paths by hand.
//!
//! An S3 location opened with [`Location::connect`] also holds an S3 SDK client reached as
//! its own principal ([`Access`]: the default chain or an assumed role); copies between two
//! such locations reached as the same principal run server-side ([`s3`]), all others stream
//! through this process. Retries follow one [`RetryPolicy`] (see [`crate::retry`]); every
//! S3 store is wrapped in [`resilient::Resilient`], which finishes the operations
//! object_store's own retries leave half done (a lost answer to a conditional write or a
//! delete, a listing cut off midway).

pub(crate) mod cleanup;
mod credentials;
mod file_lock;
mod interrupted;
mod resilient;
mod retry;
mod s3;

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::{Path, PathPart};
use object_store::{
    ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::retry::RetryPolicy;

pub use credentials::Access;
use resilient::Resilient;

/// A failed storage operation, naming the URL it was about.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The text is not a URL curflow can store data at.
    #[error("{url}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// The store refused or failed an operation.
    #[error("could not {op} {url}: {source}")]
    Store {
        /// What was attempted: "list", "read", "write", "delete".
        op: &'static str,
        /// The full URL of the object or prefix.
        url: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// An S3 request failed after its retries.
    #[error("could not {op} {url}: {detail}{hint}")]
    S3 {
        /// What was attempted.
        op: &'static str,
        /// The object's URL.
        url: String,
        /// The SDK's error with its causes.
        detail: String,
        /// The permission to grant, when the store said access denied.
        hint: &'static str,
    },
    /// The source object was rewritten between listing and copying; nothing was recorded.
    #[error(
        "{url} changed at the source while it was copied (its ETag is no longer {e_tag}); nothing was recorded for it, the next run copies the new version"
    )]
    SourceChanged {
        /// The source object's URL.
        url: String,
        /// The ETag it had when listed.
        e_tag: String,
    },
    /// A copied object does not match its source.
    #[error("copy of {url} did not verify: {reason}")]
    Verify {
        /// The destination URL.
        url: String,
        /// Which check failed.
        reason: String,
    },
}

/// `text` with whatever stands between `://` and an `@` before the next `/` (a URL's user
/// and password) replaced by `***`, so that an error naming a refused URL shows no secret,
/// whether or not the rest of it parses.
pub(crate) fn without_user_info(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority.len()..]),
        None => text.to_owned(),
    }
}

/// A validated URL of a folder in an object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl(Url);

impl StoreUrl {
    /// Accepts `s3://bucket[/prefix]`, `file:///abs/dir`, or a filesystem path (made absolute
    /// against the current directory). A trailing slash is dropped.
    pub fn parse(text: &str) -> Result<Self, StorageError> {
        let bad = |reason: &str| StorageError::BadUrl {
            url: without_user_info(text),
            reason: reason.to_owned(),
        };
        if text.trim().is_empty() {
            return Err(bad(
                "empty location; give s3://bucket/prefix or a directory",
            ));
        }
        let url = if text.contains("://") {
            Url::parse(text).map_err(|e| bad(&format!("not a URL ({e})")))?
        } else {
            let abs = std::path::absolute(text)
                .map_err(|e| bad(&format!("cannot make the path absolute ({e})")))?;
            Url::from_file_path(&abs).map_err(|()| bad("not a usable filesystem path"))?
        };
        match url.scheme() {
            "file" => {}
            "s3" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(bad("an s3:// URL needs a bucket: s3://bucket/prefix"));
                }
            }
            "gs" | "az" | "abfss" => {
                return Err(bad(
                    "Google Cloud Storage and Azure are not enabled in this build; use s3:// or a local directory",
                ));
            }
            other => {
                return Err(bad(&format!(
                    "unsupported scheme \"{other}\"; use s3://bucket/prefix or a local directory"
                )));
            }
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a store URL has no query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "a store URL carries no user or password: S3 credentials come from the AWS credential chain (or the payer's role_arn)",
            ));
        }
        let mut url = url;
        let trimmed = url.path().trim_end_matches('/').to_owned();
        url.set_path(&trimmed);
        if Path::from_url_path(url.path()).is_err() {
            return Err(bad(
                "the key prefix has an empty segment (//) or a control character, which curflow cannot address; give the prefix with single slashes",
            ));
        }
        Ok(Self(url))
    }

    /// The URL of `rel` below this one (`rel` uses `/` separators).
    pub fn join(&self, rel: &str) -> Self {
        let mut url = self.0.clone();
        let path = format!("{}/{}", url.path(), rel.trim_matches('/'));
        url.set_path(&path);
        Self(url)
    }

    /// The URL as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The URL with a trailing slash, as query engines expect for a folder.
    pub fn as_folder(&self) -> String {
        format!("{}/", self.0.as_str().trim_end_matches('/'))
    }

    /// `scheme://authority` — the key under which a query engine registers the store.
    pub fn store_root(&self) -> Url {
        let mut root = self.0.clone();
        root.set_path("");
        root
    }

    /// The key prefix, decoded from the URL's path; [`StoreUrl::parse`] has checked that it
    /// decodes, so the store root is never taken for a prefix it could not read.
    fn key_prefix(&self) -> Path {
        Path::from_url_path(self.0.path()).unwrap_or_default()
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One listed object, keyed relative to the location it was listed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key below the listed location, `/`-separated.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The store's entity tag, if it has one.
    pub e_tag: Option<String>,
    /// When the store last wrote the object.
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// How objects are moved between two locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Requests in flight at once (files, and parts of one large file); the connection pool
    /// keeps this many idle connections per host. Default 16.
    pub concurrency: usize,
    /// Server-side copies of objects larger than this (bytes) use parallel UploadPartCopy;
    /// objects over 5 GiB always do. Default 512 MiB (see docs/benchmarks.md).
    pub multipart_threshold: u64,
    /// Part size (bytes) of a multipart copy, 5 MiB–5 GiB. Default 128 MiB.
    pub part_size: u64,
    /// How each request is retried (its timeouts are fixed: 5 s to connect, 120 s of
    /// silence).
    pub retry: RetryPolicy,
}

impl Default for Transfer {
    fn default() -> Self {
        Self {
            concurrency: 16,
            multipart_threshold: 512 * 1024 * 1024,
            part_size: 128 * 1024 * 1024,
            retry: RetryPolicy::default(),
        }
    }
}

/// An opened folder in an object store.
#[derive(Debug, Clone)]
pub struct Location {
    url: StoreUrl,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    s3: Option<s3::S3Side>,
    transfer: Transfer,
}

impl Location {
    /// Opens `url` reached as `access`: for S3, an SDK client (server-side copies) and an
    /// object store signing with the same credentials, both retrying per `transfer.retry`
    /// with a connection pool sized to `transfer.concurrency`. Endpoint and base credentials
    /// come from the standard AWS environment (`AWS_ENDPOINT_URL`, profiles, instance roles).
    pub async fn connect(
        url: &StoreUrl,
        access: &Access,
        transfer: &Transfer,
    ) -> Result<Self, StorageError> {
        if url.0.scheme() != "s3" {
            let mut local = Self::local(url)?;
            local.transfer = *transfer;
            return Ok(local);
        }
        let bucket = url.0.host_str().unwrap_or_default().to_owned();
        let sdk = access.sdk_config(&transfer.retry).await;
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .http_client(s3::http_client(transfer.concurrency))
                .force_path_style(sdk.endpoint_url().is_some())
                .build(),
        );
        let mut options = ClientOptions::new()
            .with_pool_max_idle_per_host(transfer.concurrency)
            .with_connect_timeout(retry::CONNECT_TIMEOUT)
            .with_timeout(retry::READ_TIMEOUT);
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_retry(retry::object_store_retry(&transfer.retry))
            .with_region(sdk.region().map_or("us-east-1", |r| r.as_ref()));
        if let Some(endpoint) = sdk.endpoint_url() {
            options = options.with_allow_http(endpoint.starts_with("http://"));
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(provider) = sdk.credentials_provider() {
            builder =
                builder.with_credentials(Arc::new(credentials::SdkCredentials::new(provider)));
        }
        let store = builder
            .with_client_options(options)
            .build()
            .map_err(|source| StorageError::Store {
                op: "open",
                url: url.to_string(),
                source,
            })?;
        Ok(Self {
            prefix: url.key_prefix(),
            url: url.clone(),
            store: Arc::new(Resilient::new(Arc::new(store), transfer.retry)),
            s3: Some(s3::S3Side {
                client,
                bucket,
                access: access.clone(),
            }),
            transfer: *transfer,
        })
    }

    /// Opens `url` reached as the default AWS credential chain (environment, shared config
    /// and credentials files with `AWS_PROFILE`, SSO, web identity, container and instance
    /// credentials), in `region` if given, with the default [`Transfer`]: the warehouse,
    /// `curflow generate`, anything that is not a payer's source or the staging store.
    pub async fn open(url: &StoreUrl, region: Option<&str>) -> Result<Self, StorageError> {
        let access = Access {
            region: region.map(str::to_owned),
            ..Access::default()
        };
        Self::connect(url, &access, &Transfer::default()).await
    }

    /// Opens a local folder (`file://` or a path), synchronously: nothing to reach.
    pub fn local(url: &StoreUrl) -> Result<Self, StorageError> {
        if url.0.scheme() != "file" {
            return Err(StorageError::BadUrl {
                url: url.to_string(),
                reason: "not a local folder".into(),
            });
        }
        Ok(Self {
            prefix: url.key_prefix(),
            url: url.clone(),
            // Deleting a folder's last file removes the folder (a superseded delivery's),
            // as it disappears from an object store.
            store: Arc::new(LocalFileSystem::new().with_automatic_cleanup(true)),
            s3: None,
            transfer: Transfer::default(),
        })
    }

    /// `url` on a store built elsewhere (by a test with its server's credentials, say),
    /// which must hold the URL's keys as they are, `<prefix>/<key>` (an S3 store of its
    /// bucket, an unprefixed local one). No server-side copies.
    pub fn over(url: &StoreUrl, store: Arc<dyn ObjectStore>) -> Self {
        Self {
            prefix: url.key_prefix(),
            url: url.clone(),
            store,
            s3: None,
            transfer: Transfer::default(),
        }
    }

    /// The location's URL.
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// The object store and the key prefix, for components (the query engine, the
    /// generator) that read or write through object_store themselves.
    pub fn store(&self) -> (Arc<dyn ObjectStore>, Path) {
        (Arc::clone(&self.store), self.prefix.clone())
    }

    /// The same store, `rel` deeper.
    pub fn child(&self, rel: &str) -> Self {
        Self {
            url: self.url.join(rel),
            store: Arc::clone(&self.store),
            prefix: self.path(rel),
            s3: self.s3.clone(),
            transfer: self.transfer,
        }
    }

    /// The store path of `rel`, its segments taken as they are: a listing hands back keys
    /// verbatim (`~`, `*`, `%`, `#` … included), and a key must be addressed by the same
    /// bytes. object_store's `Path::join(&str)` would percent-encode those characters and
    /// address another object. Only a segment a listing can never return (`.`, `..`, a
    /// control character: object_store refuses to list such keys) is encoded.
    fn path(&self, rel: &str) -> Path {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |path, segment| {
                match PathPart::parse(segment) {
                    Ok(verbatim) => path.join(verbatim),
                    Err(_) => path.join(segment),
                }
            })
    }

    /// The file or folder that holds `rel` when this location is on local disk: the store
    /// is rooted at `/` and keeps keys verbatim ([`Self::path`]).
    fn local_file(&self, rel: &str) -> Option<std::path::PathBuf> {
        (self.url.0.scheme() == "file").then(|| format!("/{}", self.path(rel)).into())
    }

    fn err(&self, op: &'static str, rel: &str) -> impl FnOnce(object_store::Error) -> StorageError {
        let url = self.url.join(rel).to_string();
        move |source| StorageError::Store { op, url, source }
    }

    /// Every object below `rel` (recursively), keyed relative to this location, sorted.
    pub async fn list(&self, rel: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let base = self.prefix.as_ref().len();
        let prefix = self.path(rel);
        let mut out: Vec<ObjectInfo> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| ObjectInfo {
                key: meta.location.as_ref()[base..]
                    .trim_start_matches('/')
                    .to_owned(),
                size: meta.size,
                e_tag: meta.e_tag,
                last_modified: meta.last_modified,
            })
            .try_collect()
            .await
            .map_err(self.err("list", rel))?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The names of the folders directly below `rel` (one delimited listing, not a walk of
    /// everything below), sorted.
    pub async fn folders(&self, rel: &str) -> Result<Vec<String>, StorageError> {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.path(rel)))
            .await
            .map_err(self.err("list", rel))?;
        let mut out: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Checks that the location can be reached: one listing request (S3: the bucket exists
    /// and the credentials may list it), or the directory exists (local). An empty folder
    /// in a reachable store is fine.
    pub async fn probe(&self) -> Result<(), StorageError> {
        if let Ok(dir) = self.url.0.to_file_path() {
            return match dir.is_dir() {
                true => Ok(()),
                false => Err(StorageError::BadUrl {
                    url: self.url.to_string(),
                    reason: "no such directory".into(),
                }),
            };
        }
        self.store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map(drop)
            .map_err(self.err("list", ""))
    }

    /// Deletes what interrupted writes left below `rel` on local disk (see `interrupted`),
    /// and returns how many files; nothing to do in an object store. Call it only while no
    /// other writer can be writing there (under the payer's lease).
    pub async fn remove_interrupted_writes(&self, rel: &str) -> Result<usize, StorageError> {
        let Some(folder) = self.local_file(rel) else {
            return Ok(0);
        };
        let url = self.url.join(rel).to_string();
        let failed = |e: std::io::Error| StorageError::Store {
            op: "clean up",
            url: url.clone(),
            source: local_error(e),
        };
        tokio::task::spawn_blocking(move || interrupted::remove_partial_writes(&folder))
            .await
            .map_err(|e| failed(std::io::Error::other(e)))?
            .map_err(failed)
    }

    /// Reads a whole (small) object; `None` when it does not exist.
    pub async fn read(&self, rel: &str) -> Result<Option<bytes::Bytes>, StorageError> {
        match self.store.get(&self.path(rel)).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(self.err("read", rel))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("read", rel)(e)),
        }
    }

    /// Writes a whole object in one request, so readers see the old or the new bytes.
    pub async fn write(&self, rel: &str, bytes: impl Into<PutPayload>) -> Result<(), StorageError> {
        self.store
            .put(&self.path(rel), bytes.into())
            .await
            .map(drop)
            .map_err(self.err("write", rel))
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, rel: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", rel)(e)),
        }
    }

    /// Deletes objects in as few requests as the store allows (S3: one DeleteObjects per
    /// thousand keys); a missing object is not an error. A failure names the first key
    /// that could not be deleted.
    pub async fn delete_many(&self, rels: &[String]) -> Result<(), StorageError> {
        let paths: Vec<object_store::Result<Path>> =
            rels.iter().map(|rel| Ok(self.path(rel))).collect();
        let mut deleted = self
            .store
            .delete_stream(futures::stream::iter(paths).boxed());
        let mut at = 0;
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(self.err("delete", rels.get(at).map_or("", String::as_str))(
                        e,
                    ));
                }
            }
            at += 1;
        }
        Ok(())
    }

    /// Reads a small object with its ETag; `None` when it does not exist.
    pub async fn read_tagged(
        &self,
        rel: &str,
    ) -> Result<Option<(bytes::Bytes, Option<String>)>, StorageError> {
        match self.store.get(&self.path(rel)).await {
            Ok(got) => {
                let e_tag = got.meta.e_tag.clone();
                Ok(Some((
                    got.bytes().await.map_err(self.err("read", rel))?,
                    e_tag,
                )))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("read", rel)(e)),
        }
    }

    /// Writes `rel` only if it does not exist (`If-None-Match: *`), or, given `replacing`,
    /// only if it still has that ETag (`If-Match`). `false` when another writer got there
    /// first. Atomic on every store curflow supports: S3 checks the condition itself; on a
    /// local or mounted filesystem the compare and the replace happen under an OS lock
    /// ([`file_lock`]), so of two writers holding the same ETag exactly one succeeds.
    pub async fn write_if(
        &self,
        rel: &str,
        bytes: impl Into<PutPayload>,
        replacing: Option<&str>,
    ) -> Result<bool, StorageError> {
        let path = self.path(rel);
        let payload: PutPayload = bytes.into();
        let put = |payload, mode| {
            let options = PutOptions {
                mode,
                ..PutOptions::default()
            };
            self.store.put_opts(&path, payload, options)
        };
        let result = match (replacing, self.local_file(rel)) {
            (None, _) => put(payload, PutMode::Create).await,
            (Some(tag), None) => {
                let version = UpdateVersion {
                    e_tag: Some(tag.to_owned()),
                    version: None,
                };
                put(payload, PutMode::Update(version)).await
            }
            (Some(tag), Some(file)) => {
                let _held = file_lock::lock(&file)
                    .await
                    .map_err(|e| self.err("lock", rel)(local_error(e)))?;
                match self.store.head(&path).await {
                    Ok(meta) if meta.e_tag.as_deref() == Some(tag) => {
                        put(payload, PutMode::Overwrite).await
                    }
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => return Ok(false),
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(self.err("write", rel)(e)),
        }
    }

    /// Copies `src` (keyed relative to this location) to `dst_rel` at `dst` and verifies
    /// the result. Server-side when both are S3 reached as the same principal (CopyObject,
    /// or UploadPartCopy above the multipart threshold); otherwise streamed with bounded
    /// memory. Either way the source must still carry the listed ETag.
    pub async fn copy_to(
        &self,
        src: &ObjectInfo,
        dst: &Location,
        dst_rel: &str,
    ) -> Result<(), StorageError> {
        if let (Some(from), Some(to), Some(e_tag)) = (&self.s3, &dst.s3, &src.e_tag)
            && from.access.same_principal(&to.access)
        {
            let object = |loc: &Location, side, rel: &str| s3::Object {
                side,
                key: loc.path(rel).to_string(),
                url: loc.url.join(rel).to_string(),
            };
            return s3::copy(
                &object(self, from, &src.key),
                &object(dst, to, dst_rel),
                src.size,
                e_tag,
                &dst.transfer,
            )
            .await;
        }
        self.stream_to(src, dst, dst_rel).await
    }

    /// GET (with If-Match on the listed ETag) piped into a multipart PUT, then a size check.
    async fn stream_to(
        &self,
        src: &ObjectInfo,
        dst: &Location,
        dst_rel: &str,
    ) -> Result<(), StorageError> {
        let options = GetOptions {
            if_match: src.e_tag.clone(),
            ..GetOptions::default()
        };
        let got = match self.store.get_opts(&self.path(&src.key), options).await {
            Ok(got) => got,
            Err(object_store::Error::Precondition { .. }) => {
                return Err(StorageError::SourceChanged {
                    url: self.url.join(&src.key).to_string(),
                    e_tag: src.e_tag.clone().unwrap_or_default(),
                });
            }
            Err(e) => return Err(self.err("read", &src.key)(e)),
        };
        let dst_path = dst.path(dst_rel);
        let mut writer = UnfinishedWrite(Some(object_store::buffered::BufWriter::new(
            Arc::clone(&dst.store),
            dst_path.clone(),
        )));
        let mut body = got.into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    writer.abort().await;
                    return Err(self.err("read", &src.key)(e));
                }
            };
            if let Err(e) = writer.get().write_all(&chunk).await {
                writer.abort().await;
                return Err(StorageError::Verify {
                    url: dst.url.join(dst_rel).to_string(),
                    reason: format!("write failed: {e}"),
                });
            }
        }
        writer
            .finish()
            .shutdown()
            .await
            .map_err(|e| StorageError::Verify {
                url: dst.url.join(dst_rel).to_string(),
                reason: format!("upload did not complete: {e}"),
            })?;
        let written = dst
            .store
            .head(&dst_path)
            .await
            .map_err(dst.err("read", dst_rel))?;
        if written.size != src.size {
            return Err(StorageError::Verify {
                url: dst.url.join(dst_rel).to_string(),
                reason: format!("{} bytes written, source has {}", written.size, src.size),
            });
        }
        Ok(())
    }
}

/// A local filesystem's error, as object_store reports one.
fn local_error(e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(e),
    }
}

/// A streamed write that is aborted unless it was finished: awaited after a failure, and
/// sent through [`cleanup`] when the copy is dropped before it ends (a signal stopped the
/// run), so that a multipart upload it started leaves no parts behind.
struct UnfinishedWrite(Option<object_store::buffered::BufWriter>);

impl UnfinishedWrite {
    fn get(&mut self) -> &mut object_store::buffered::BufWriter {
        self.0
            .as_mut()
            .expect("an unfinished write holds its writer")
    }

    /// The writer, to complete the write: nothing to abort any more.
    fn finish(mut self) -> object_store::buffered::BufWriter {
        self.0.take().expect("an unfinished write holds its writer")
    }

    async fn abort(mut self) {
        if let Some(mut writer) = self.0.take() {
            let _ = writer.abort().await;
        }
    }
}

impl Drop for UnfinishedWrite {
    fn drop(&mut self) {
        if let Some(mut writer) = self.0.take() {
            cleanup::spawn(async move {
                let _ = writer.abort().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_and_checked() {
        assert_eq!(
            StoreUrl::parse("s3://bucket/a/b/").unwrap().as_str(),
            "s3://bucket/a/b"
        );
        assert_eq!(
            StoreUrl::parse("s3://bucket/a")
                .unwrap()
                .join("x/y.json")
                .as_str(),
            "s3://bucket/a/x/y.json"
        );
        assert!(
            StoreUrl::parse("/tmp/x")
                .unwrap()
                .as_str()
                .starts_with("file:///tmp/x")
        );
        assert!(StoreUrl::parse("ftp://h/x").is_err());
        assert!(StoreUrl::parse("s3://bucket/a//b").is_err());
        assert!(StoreUrl::parse("s3://bucket/a%0Ab").is_err());
        assert!(StoreUrl::parse("s3:///x").is_err());
        assert!(StoreUrl::parse("").is_err());
        // A user or password is refused, and not shown, whether the URL parses or not.
        for url in [
            "s3://key:hunter2@bucket/x",
            "s3://key@bucket",
            "ftp://key:hunter2@host/x",
            "s3://key:hunter2@bu cket/x",
        ] {
            let error = StoreUrl::parse(url).unwrap_err().to_string();
            assert!(
                !error.contains("hunter2") && !error.contains("key"),
                "{error}"
            );
            assert!(error.contains("***@"), "{error}");
        }
    }

    #[tokio::test]
    async fn lists_relative_keys_and_copies() {
        let dir = tempfile::tempdir().unwrap();
        let root =
            Location::local(&StoreUrl::parse(dir.path().to_str().unwrap()).unwrap()).unwrap();
        let src = root.child("src");
        src.write("a/one.parquet", b"hello".to_vec()).await.unwrap();
        let listed = src.list("").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "a/one.parquet");
        assert_eq!(listed[0].size, 5);
        let dst = root.child("dst");
        src.copy_to(&listed[0], &dst, "b/one.parquet")
            .await
            .unwrap();
        assert_eq!(
            dst.read("b/one.parquet").await.unwrap().unwrap().as_ref(),
            b"hello"
        );
        let wrong_size = ObjectInfo {
            size: 6,
            ..listed[0].clone()
        };
        assert!(src.copy_to(&wrong_size, &dst, "c.parquet").await.is_err());
        assert!(dst.read("missing").await.unwrap().is_none());
        assert!(dst.write_if("lock", b"1".to_vec(), None).await.unwrap());
        assert!(!dst.write_if("lock", b"2".to_vec(), None).await.unwrap());
        let (_, tag) = dst.read_tagged("lock").await.unwrap().unwrap();
        assert!(
            dst.write_if("lock", b"3".to_vec(), tag.as_deref())
                .await
                .unwrap()
        );
        assert_eq!(dst.read("lock").await.unwrap().unwrap().as_ref(), b"3");
        assert_eq!(root.folders("").await.unwrap(), ["dst", "src"]);
        assert_eq!(dst.folders("").await.unwrap(), ["b"]);
    }

    /// Keys with the characters object_store would percent-encode are addressed as listed:
    /// the file on disk has the key's own name, and copy, read and delete reach it.
    #[tokio::test]
    async fn keys_are_addressed_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let root =
            Location::local(&StoreUrl::parse(dir.path().to_str().unwrap()).unwrap()).unwrap();
        let name = r#"a~b*c#d[e]f{g}h^i|j<k>l"m\n?o%p%41 q+r.parquet"#;
        let src = root.child("src ~%41");
        src.write(&format!("x/{name}"), b"hello".to_vec())
            .await
            .unwrap();
        assert!(dir.path().join("src ~%41").join("x").join(name).is_file());
        let listed = src.list("x").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, format!("x/{name}"));
        let dst = root.child("dst");
        src.copy_to(&listed[0], &dst, name).await.unwrap();
        assert!(dir.path().join("dst").join(name).is_file());
        assert_eq!(dst.read(name).await.unwrap().unwrap().as_ref(), b"hello");
        dst.delete(name).await.unwrap();
        src.delete(&listed[0].key).await.unwrap();
        assert!(dst.list("").await.unwrap().is_empty());
        assert!(src.list("").await.unwrap().is_empty());
    }
}
