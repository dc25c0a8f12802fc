//! Object keys with every character S3 allows in a name and object_store would
//! percent-encode (`~ * # [ ] { } ^ | < > " \ ? %`, and spaces, `+`, `=`, `&`, non-ASCII),
//! in file names and in the source's prefix: a delivery of such files is listed, copied,
//! recorded in the ledger and, once a restatement drops them, deleted from staging — each
//! by the key's own bytes — on S3 staging and on a local staging folder.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use crate::s3::{PAYER, ri_waste};
use crate::s3_support::{
    S3World, curflow_s3, generate, get, ledger_keys, list, local_files, local_ledger_keys,
    local_staged_folder, settings_at, sizes, staged_period, task_args,
};
use crate::support::run;

/// One name part per character, then the ones URLs and shells mistake for something else;
/// `%41` and `%2F` must stay those three bytes, never become `A` or `/`.
const NAMES: [&str; 15] = [
    "tilde~",
    "star*",
    "hash#",
    "brackets[]",
    "braces{}",
    "caret^",
    "pipe|",
    "angles<>",
    "quote\"",
    "backslash\\",
    "question?",
    "percent%",
    "encoded%41%2F",
    "space plus+ equals= amp& apostrophe' parens() bang! at@ dollar$ comma, semicolon; colon:",
    "ünïcødé €",
];

/// The export's prefix: the special characters a URL can carry without encoding ambiguity.
const PREFIX: &str = "exports/cur ~*[x]{y}^|é";

/// The URL a user writes for [`PREFIX`].
fn source_url(bucket: &str) -> String {
    format!("s3://{bucket}/{PREFIX}")
}

const PERIOD: &str = "BILLING_PERIOD=2025-07";

/// Moves every object of a generated export under `cur2/` to [`PREFIX`], renaming data
/// file *i* after `NAMES[i]` (delivery 1) and rewriting the manifest to name the new keys.
async fn move_to_special_names(c: &Client, bucket: &str, delivery: u32) {
    let old = list(c, bucket, "cur2/").await;
    let mut renamed = BTreeMap::new();
    let data = old.keys().filter(|k| k.starts_with("data/")).enumerate();
    for (i, key) in data {
        let name = match delivery {
            1 => format!(
                "{PERIOD}/{} part-{i}.snappy.parquet",
                NAMES[i % NAMES.len()]
            ),
            _ => format!("{PERIOD}/plain-{delivery}-{i}.snappy.parquet"),
        };
        renamed.insert(key.clone(), format!("data/{name}"));
    }
    for (key, _) in old {
        let target = renamed.get(&key).cloned().unwrap_or_else(|| key.clone());
        let mut body = get(c, bucket, &format!("cur2/{key}")).await;
        if key.ends_with("Manifest.json") {
            let mut manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
            for file in manifest["dataFiles"].as_array_mut().unwrap() {
                let named = file.as_str().unwrap();
                let (_, tail) = named.split_once("cur2/").unwrap();
                *file = format!("s3://{bucket}/{PREFIX}/{}", renamed[tail]).into();
            }
            body = serde_json::to_vec(&manifest).unwrap();
        }
        c.put_object()
            .bucket(bucket)
            .key(format!("{PREFIX}/{target}"))
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
        c.delete_object()
            .bucket(bucket)
            .key(format!("cur2/{key}"))
            .send()
            .await
            .unwrap();
    }
}

/// The source period's data files (name → size) as staging must mirror them.
async fn source_files(c: &Client, bucket: &str) -> BTreeMap<String, i64> {
    sizes(&list(c, bucket, &format!("{PREFIX}/data/{PERIOD}")).await)
}

/// Writes a settings file: the payer's source at [`source_url`], staging at `staging`.
fn settings(dir: &Path, staging: &str, source_bucket: &str) -> String {
    settings_at(dir, (staging, ""), (PAYER, &source_url(source_bucket), ""))
}

/// Runs July 2025 and returns the run's summary, asserting it succeeded.
fn run_july(dir: &Path, endpoint: &str, config: &str) -> String {
    let out = run(curflow_s3(
        dir,
        endpoint,
        &task_args("run", config, PAYER, "2025", "7"),
    ));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_keys_with_special_characters_round_trip() {
    let w = S3World::new(PAYER, "", "").await;
    let first = generate(&w.ep, &w.source, PAYER, (2025, 7), 1, 200).await;
    assert!(
        first.files.len() >= NAMES.len(),
        "{} files",
        first.files.len()
    );
    move_to_special_names(&w.c, &w.source, 1).await;
    let config = settings(
        w.dir.path(),
        &format!("s3://{}/staging", w.staging),
        &w.source,
    );
    let staged = || staged_period(&w.c, &w.staging, PAYER, (2025, 7));
    let everything = || async {
        let prefix = format!("staging/year=2025/month=7/payer-{PAYER}");
        list(&w.c, &w.staging, &prefix).await.len()
    };

    let text = run_july(w.dir.path(), &w.ep, &config);
    let source = source_files(&w.c, &w.source).await;
    assert!(
        NAMES
            .iter()
            .all(|n| source.keys().any(|k| k.starts_with(n))),
        "{source:?}"
    );
    assert_eq!(staged().await, source, "staged keys are the source's bytes");
    assert_eq!(
        ledger_keys(&w.c, &w.staging, PAYER, "2025-07").await,
        source.keys().cloned().collect::<Vec<_>>()
    );
    assert!(
        (ri_waste(&text) - first.ri_unused_cost).abs() < 0.01,
        "every file was read: {text}"
    );

    // A restatement with plain names: every special-named file is deleted from staging.
    generate(&w.ep, &w.source, PAYER, (2025, 7), 2, 500).await;
    for key in source.keys() {
        w.c.delete_object()
            .bucket(&w.source)
            .key(format!("{PREFIX}/data/{PERIOD}/{key}"))
            .send()
            .await
            .unwrap();
    }
    move_to_special_names(&w.c, &w.source, 2).await;
    run_july(w.dir.path(), &w.ep, &config);
    let source = source_files(&w.c, &w.source).await;
    assert!(source.keys().all(|k| k.starts_with("plain-")), "{source:?}");
    assert_eq!(staged().await, source, "readers see the plain names only");
    assert_eq!(
        everything().await,
        source.len(),
        "the special-named files are gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_staging_keeps_special_character_names() {
    let w = S3World::new(PAYER, "", "").await;
    let first = generate(&w.ep, &w.source, PAYER, (2025, 7), 1, 200).await;
    move_to_special_names(&w.c, &w.source, 1).await;
    let staging = w.dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let config = settings(w.dir.path(), staging.to_str().unwrap(), &w.source);
    let text = run_july(w.dir.path(), &w.ep, &config);
    let source = source_files(&w.c, &w.source).await;
    assert_eq!(
        local_files(&local_staged_folder(&staging, PAYER, "2025-07")),
        source,
        "each file is named on disk as its key"
    );
    assert_eq!(
        local_ledger_keys(&staging, PAYER, "2025-07"),
        source.keys().cloned().collect::<Vec<_>>()
    );
    assert!(
        (ri_waste(&text) - first.ri_unused_cost).abs() < 0.01,
        "{text}"
    );
}
