//! Helpers for the S3 tests: the test server's endpoint, unique buckets, synthetic exports
//! written by the generator, listings to compare, and the binary pointed at S3.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use curflow::generate::{GenerateOptions, GenerateReport};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

use crate::support::{curflow, run};

/// The S3 server `scripts/test` started.
pub fn endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT").expect(
        "TEST_S3_ENDPOINT is not set: run the tests with scripts/test, which starts the local S3 server (moto)",
    )
}

/// An SDK client straight to `endpoint` (no proxy).
pub fn client(endpoint: &str) -> Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

/// A new, empty bucket with a name no other test uses.
pub async fn bucket(client: &Client, tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "cf-{tag}-{}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros() % 1_000_000_000,
        N.fetch_add(1, Ordering::SeqCst)
    );
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!("create bucket {name} at the S3 server (is scripts/test running it?): {e:?}")
        });
    name
}

/// An object store on `bucket`, for the generator.
pub fn store(endpoint: &str, bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap(),
    )
}

/// Writes one delivery of synthetic CUR 2.0 for `payer` and `year-month` under
/// `s3://bucket/cur2`, `rows_per_file` rows per Parquet file.
pub async fn generate(
    endpoint: &str,
    bucket: &str,
    payer: &str,
    (year, month): (i32, u32),
    delivery: u32,
    rows_per_file: u64,
) -> GenerateReport {
    let mut options = GenerateOptions::new(payer, year, month);
    options.rows = 3_000;
    options.rows_per_file = rows_per_file;
    options.delivery = delivery;
    options.root_url = format!("s3://{bucket}/cur2");
    curflow::generate::generate(
        store(endpoint, bucket),
        &object_store::path::Path::from("cur2"),
        &options,
    )
    .await
    .unwrap()
}

/// `(key below prefix, size, ETag)` of every object below `prefix`.
pub async fn list(client: &Client, bucket: &str, prefix: &str) -> BTreeMap<String, (i64, String)> {
    let mut out = BTreeMap::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            let key = o.key().unwrap();
            out.insert(
                key[prefix.len()..].trim_start_matches('/').to_owned(),
                (
                    o.size().unwrap_or_default(),
                    o.e_tag().unwrap_or_default().to_owned(),
                ),
            );
        }
    }
    out
}

/// Names and sizes only (copies may carry other ETags).
pub fn sizes(listing: &BTreeMap<String, (i64, String)>) -> BTreeMap<String, i64> {
    listing.iter().map(|(k, (s, _))| (k.clone(), *s)).collect()
}

/// The data files of one source period, as the staging should mirror them.
pub async fn source_period(client: &Client, bucket: &str, period: &str) -> BTreeMap<String, i64> {
    sizes(
        &list(
            client,
            bucket,
            &format!("cur2/data/BILLING_PERIOD={period}"),
        )
        .await,
    )
    .into_iter()
    .filter(|(k, _)| k.ends_with(".parquet"))
    .collect()
}

/// One staged payer-period as a reader sees it (README, "Where things go"): the files of
/// the folder its ledger names, keyed relative to it; nothing while there is no ledger.
pub async fn staged_period(
    client: &Client,
    bucket: &str,
    payer: &str,
    (year, month): (i32, u32),
) -> BTreeMap<String, i64> {
    let key = format!("staging/_curflow/ledger/payer-{payer}/{year}-{month:02}.json");
    let Ok(got) = client.get_object().bucket(bucket).key(&key).send().await else {
        return BTreeMap::new();
    };
    let ledger = got.body.collect().await.unwrap().into_bytes();
    sizes(
        &list(
            client,
            bucket,
            &format!("staging/{}", folder_named(&ledger)),
        )
        .await,
    )
}

/// The folder (relative to the staging root) a payer-period's ledger names; it must exist.
pub async fn staged_folder(client: &Client, bucket: &str, payer: &str, period: &str) -> String {
    let key = format!("staging/_curflow/ledger/payer-{payer}/{period}.json");
    folder_named(&get(client, bucket, &key).await)
}

/// The folder a local staging root's ledger of a payer-period names: what a reader reads.
pub fn local_staged_folder(staging: &Path, payer: &str, period: &str) -> std::path::PathBuf {
    let ledger = staging.join(format!("_curflow/ledger/payer-{payer}/{period}.json"));
    let text = std::fs::read(&ledger).unwrap_or_else(|e| panic!("{}: {e}", ledger.display()));
    staging.join(folder_named(&text))
}

/// The `folder` a ledger (its JSON text) names.
fn folder_named(ledger: &[u8]) -> String {
    let ledger: serde_json::Value = serde_json::from_slice(ledger).unwrap();
    ledger["folder"]
        .as_str()
        .unwrap_or_else(|| panic!("a ledger names its folder: {ledger}"))
        .to_owned()
}

/// The keys the ledger of a payer-period lists.
pub async fn ledger_keys(client: &Client, bucket: &str, payer: &str, period: &str) -> Vec<String> {
    let key = format!("staging/_curflow/ledger/payer-{payer}/{period}.json");
    ledger_files(&get(client, bucket, &key).await)
}

/// The keys the ledger of a payer-period lists, in the local staging folder `staging`.
pub fn local_ledger_keys(staging: &Path, payer: &str, period: &str) -> Vec<String> {
    let ledger = staging.join(format!("_curflow/ledger/payer-{payer}/{period}.json"));
    ledger_files(&std::fs::read(&ledger).unwrap_or_else(|e| panic!("{}: {e}", ledger.display())))
}

/// A local folder's files below `root`, named relative to it, with their sizes.
pub fn local_files(root: &Path) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                out.insert(rel, entry.metadata().unwrap().len() as i64);
            }
        }
    }
    out
}

/// The keys a ledger (its JSON text) records.
fn ledger_files(text: &[u8]) -> Vec<String> {
    let ledger: serde_json::Value = serde_json::from_slice(text).unwrap();
    ledger["files"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// Creates `dir/warehouse/<table>` for every final table, which the Delta warehouse
/// refuses to write to a local folder without, and returns `dir/warehouse`.
pub fn table_folders(dir: &Path) -> std::path::PathBuf {
    let warehouse = dir.join("warehouse");
    for table in curflow::warehouse::tables::FINAL_TABLES {
        std::fs::create_dir_all(warehouse.join(table.name)).unwrap();
    }
    warehouse
}

/// The whole object at `key`, which must exist.
pub async fn get(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get s3://{bucket}/{key}: {e:?}"));
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

/// A settings file with a `dev` profile: staging in `staging_bucket`, the warehouse in
/// `dir`, one payer reading `source_bucket`; `extra` is appended to the profile and
/// `payer_extra` to the payer entry.
pub fn settings(
    dir: &Path,
    staging_bucket: &str,
    source_bucket: &str,
    payer: &str,
    extra: &str,
    payer_extra: &str,
) -> String {
    settings_at(
        dir,
        (&format!("s3://{staging_bucket}/staging"), extra),
        (payer, &format!("s3://{source_bucket}/cur2"), payer_extra),
    )
}

/// A settings file with a `dev` profile: staging at the URL or folder `staging` and
/// `extra` settings, the warehouse in `dir`, one payer reading `source` with `payer_extra`.
pub fn settings_at(
    dir: &Path,
    (staging, extra): (&str, &str),
    (payer, source, payer_extra): (&str, &str, &str),
) -> String {
    let path = dir.join("curflow.toml");
    let warehouse = table_folders(dir);
    // Superseded deliveries go in the run that supersedes them, so after each run the
    // staging holds exactly the source's delivery, unless `extra` says otherwise.
    let keep = match extra.contains("keep_superseded") {
        true => "",
        false => "keep_superseded = \"0s\"\n",
    };
    let text = format!(
        "[dev]\nstaging = \"{staging}\"\nwarehouse_dir = \"{}\"\n{keep}{extra}\n\
         [[dev.payers]]\npayer_id = \"{payer}\"\nsource = \"{source}\"\n{payer_extra}\n",
        warehouse.display()
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// One test's world on the S3 server: its own source and staging buckets, a working
/// folder, and a [`settings`] file in it for `payer` (with `extra` and `payer_extra`).
pub struct S3World {
    /// The one payer.
    pub payer: String,
    /// The S3 server's endpoint.
    pub ep: String,
    /// A client of it.
    pub c: Client,
    /// The source bucket.
    pub source: String,
    /// The staging bucket.
    pub staging: String,
    /// The working folder (the warehouse is under it).
    pub dir: tempfile::TempDir,
    /// The settings file's path.
    pub config: String,
}

impl S3World {
    pub async fn new(payer: &str, extra: &str, payer_extra: &str) -> Self {
        let ep = endpoint();
        let c = client(&ep);
        let (source, staging) = (bucket(&c, "src").await, bucket(&c, "stg").await);
        let dir = tempfile::tempdir().unwrap();
        let config = settings(dir.path(), &staging, &source, payer, extra, payer_extra);
        Self {
            payer: payer.to_owned(),
            ep,
            c,
            source,
            staging,
            dir,
            config,
        }
    }

    /// [`generate`] a delivery of the payer's `period` into the source bucket.
    pub async fn generate(
        &self,
        period: (i32, u32),
        delivery: u32,
        rows_per_file: u64,
    ) -> GenerateReport {
        generate(
            &self.ep,
            &self.source,
            &self.payer,
            period,
            delivery,
            rows_per_file,
        )
        .await
    }

    /// `curflow` with `args` in the working folder, reaching the S3 server; its output.
    pub fn run(&self, args: &[&str]) -> Output {
        run(curflow_s3(self.dir.path(), &self.ep, args))
    }

    /// [`task_args`] of the payer's July 2025 with this settings file.
    pub fn july<'a>(&'a self, command: &'a str) -> Vec<&'a str> {
        task_args(command, &self.config, &self.payer, "2025", "7")
    }
}

/// The binary, reaching S3 at `endpoint` with the test server's credentials.
pub fn curflow_s3(dir: &Path, endpoint: &str, args: &[&str]) -> Command {
    let mut cmd = curflow(dir, args);
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    cmd
}

/// `run`/`plan` arguments for one payer and task month.
pub fn task_args<'a>(
    command: &'a str,
    config: &'a str,
    payer: &'a str,
    year: &'a str,
    month: &'a str,
) -> Vec<&'a str> {
    vec![
        command, "--config", config, "--env", "dev", "--payer", payer, "--year", year, "--month",
        month,
    ]
}
