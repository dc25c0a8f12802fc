//! The S3 sync engine against the local S3 server (moto) that `scripts/test` starts:
//! cross-bucket copies, plan output, restatements, late data, a source rewritten mid-copy,
//! injected faults, a process killed at random moments, a 1,000-object period, a no-op run
//! that writes nothing, an assumed role, and multipart copies.

use crate::fault_proxy::{FaultProxy, Faults};
use crate::s3_support::{
    S3World, curflow_s3, ledger_keys, source_period, staged_folder, staged_period,
};
use crate::support::run;

pub(crate) const PAYER: &str = "671238551718";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Staging mirrors the source period, and the ledger lists exactly those files.
pub(crate) async fn assert_mirrored(
    c: &aws_sdk_s3::Client,
    source: &str,
    staging: &str,
    (year, month): (i32, u32),
) {
    let period = format!("{year}-{month:02}");
    let src = source_period(c, source, &period).await;
    let staged = staged_period(c, staging, PAYER, (year, month)).await;
    assert!(!src.is_empty(), "source {period} is empty");
    assert_eq!(staged, src, "staged {period} differs from the source");
    let ledger = ledger_keys(c, staging, PAYER, &period).await;
    assert_eq!(
        ledger,
        src.keys().cloned().collect::<Vec<_>>(),
        "ledger of {period}"
    );
}

/// "RI waste $1,234.56" in a run summary → 1234.56.
pub fn ri_waste(summary: &str) -> f64 {
    dollars_after(summary, "RI waste $")
}

/// The amount written right after `label` in `text` ("…$1,234.56" → 1234.56).
pub fn dollars_after(text: &str, label: &str) -> f64 {
    crate::support::amount(text, label)
        .replace(['$', ','], "")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_cross_bucket_plan_run_restatement_and_noop() {
    let w = S3World::new(PAYER, "concurrency = 8", "").await;
    let first = w.generate((2025, 7), 1, 500).await;
    let args = w.july("plan");

    let out = w.run(&args);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains(&format!("to copy {} files", first.files.len())),
        "{text}"
    );
    assert!(
        text.contains("2025-06") && text.contains("no data"),
        "skipped month and why: {text}"
    );
    assert!(
        staged_period(&w.c, &w.staging, PAYER, (2025, 7))
            .await
            .is_empty(),
        "plan wrote nothing"
    );

    let run_args = w.july("run");
    let out = w.run(&run_args);
    assert!(out.status.success());
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 7)).await;
    let waste = ri_waste(&stdout(&out));
    assert!(
        (waste - first.ri_unused_cost).abs() < 0.01,
        "{waste} vs {}",
        first.ri_unused_cost
    );

    // A no-op run through a counting proxy: reads only, no write request at all.
    let proxy = FaultProxy::start(&w.ep, Faults::default());
    let out = run(curflow_s3(w.dir.path(), &proxy.endpoint, &run_args));
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("Already synchronized"),
        "{}",
        stdout(&out)
    );
    let counts = proxy.counts();
    for write in ["PUT", "POST", "DELETE"] {
        assert_eq!(
            counts.get(write),
            None,
            "no-op run sent {write}: {counts:?}"
        );
    }
    assert!(
        counts.get("GET").copied().unwrap_or_default() > 0,
        "{counts:?}"
    );

    // Restatement: delivery 2 renames every file; old ones go, nothing doubles. Each new
    // file costs one request: its CopyObject, whose answer carries the listed ETag and so
    // proves the copy without a HEAD; the superseded delivery goes in one DeleteObjects.
    let second = w.generate((2025, 7), 2, 500).await;
    assert!(second.files.iter().all(|f| !first.files.contains(f)));
    let proxy = FaultProxy::start(&w.ep, Faults::default());
    let out = run(curflow_s3(w.dir.path(), &proxy.endpoint, &run_args));
    assert!(out.status.success());
    let counts = proxy.counts();
    assert_eq!(
        counts.get("COPY"),
        Some(&second.files.len()),
        "one CopyObject per new file: {counts:?}"
    );
    assert_eq!(counts.get("HEAD"), None, "no HEAD after a copy: {counts:?}");
    assert_eq!(
        counts.get("POST"),
        Some(&1),
        "one DeleteObjects for the superseded delivery's files: {counts:?}"
    );
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{} deleted", first.files.len())),
        "{text}"
    );
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 7)).await;
    let waste = ri_waste(&text);
    assert!(
        (waste - second.ri_unused_cost).abs() < 0.01,
        "totals after restatement: {waste} vs {}",
        second.ri_unused_cost
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_late_data_in_previous_months() {
    let w = S3World::new(PAYER, "concurrency = 8", "").await;
    w.generate((2025, 5), 1, 1000).await;
    w.generate((2025, 6), 1, 1000).await;
    w.generate((2025, 7), 1, 1000).await;
    let run_args = w.july("run");
    assert!(w.run(&run_args).status.success());
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 6)).await;
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 7)).await;
    assert!(
        staged_period(&w.c, &w.staging, PAYER, (2025, 5))
            .await
            .is_empty(),
        "May is outside the default two periods"
    );

    // AWS restates June after the fact: the July task picks it up.
    w.generate((2025, 6), 2, 700).await;
    let out = w.run(&run_args);
    assert!(out.status.success());
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 6)).await;
    assert!(
        stdout(&out).contains("Already synchronized"),
        "July is untouched"
    );

    // --periods 3 reaches May.
    let mut args = run_args.clone();
    args.extend(["--periods", "3"]);
    assert!(w.run(&args).status.success());
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 5)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_source_rewritten_between_listing_and_copy() {
    let w = S3World::new(PAYER, "periods = 1\nconcurrency = 1", "").await;
    let report = w.generate((2025, 7), 1, 1000).await;
    let victim = report.files[0].clone();
    let donor = report.files[1].clone();
    // When the copy of `victim` passes the proxy, overwrite it at the source first.
    let handle = tokio::runtime::Handle::current();
    let (hook_client, hook_bucket, victim_key) = (w.c.clone(), w.source.clone(), victim.clone());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hook_done = done.clone();
    let hook: crate::fault_proxy::Hook = std::sync::Arc::new(move |head: &str| {
        let file = victim_key.rsplit('/').next().unwrap();
        if head.to_ascii_lowercase().contains("x-amz-copy-source:")
            && head.contains(file)
            && !hook_done.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            handle.block_on(async {
                let body = hook_client
                    .get_object()
                    .bucket(&hook_bucket)
                    .key(&donor)
                    .send()
                    .await
                    .unwrap();
                let bytes = body.body.collect().await.unwrap().into_bytes();
                hook_client
                    .put_object()
                    .bucket(&hook_bucket)
                    .key(&victim_key)
                    .body(bytes.into())
                    .send()
                    .await
                    .unwrap();
            });
        }
    });
    let proxy = FaultProxy::start(
        &w.ep,
        Faults {
            hook: Some(hook),
            ..Faults::default()
        },
    );
    let run_args = w.july("run");
    let out = tokio::task::spawn_blocking({
        let cmd = curflow_s3(w.dir.path(), &proxy.endpoint, &run_args);
        move || run(cmd)
    })
    .await
    .unwrap();
    assert!(
        done.load(std::sync::atomic::Ordering::SeqCst),
        "the hook ran"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run reports the changed source"
    );
    assert!(
        stdout(&out).contains("changed at the source"),
        "{}",
        stdout(&out)
    );
    // AWS finishes the rewrite with a manifest; the next run converges on the new version.
    let manifest = crate::s3_support::get(&w.c, &w.source, &report.manifest).await;
    w.c.put_object()
        .bucket(&w.source)
        .key(&report.manifest)
        .body(manifest.into())
        .send()
        .await
        .unwrap();
    let out = w.run(&run_args);
    assert!(out.status.success());
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 7)).await;
    let src = crate::s3_support::list(&w.c, &w.source, "").await;
    let staged = crate::s3_support::list(&w.c, &w.staging, "").await;
    let name = victim.rsplit('/').next().unwrap();
    let staged_tag = staged.iter().find(|(k, _)| k.ends_with(name)).unwrap().1;
    assert_eq!(
        staged_tag.1, src[&victim].1,
        "the staged copy is the rewritten version"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_injected_503s_and_dropped_connections_lose_nothing() {
    let w = S3World::new(PAYER, "concurrency = 8", "").await;
    w.generate((2025, 7), 1, 100).await;
    let proxy = FaultProxy::start(
        &w.ep,
        Faults {
            every: 4,
            ..Faults::default()
        },
    );
    let run_args = w.july("run");
    let out = tokio::task::spawn_blocking({
        let cmd = curflow_s3(w.dir.path(), &proxy.endpoint, &run_args);
        move || run(cmd)
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert!(
        proxy.faults_injected() > 20,
        "{} faults",
        proxy.faults_injected()
    );
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 7)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_thousand_object_period() {
    let w = S3World::new(PAYER, "periods = 1\nconcurrency = 32", "").await;
    let report = w.generate((2025, 7), 1, 3).await;
    assert!(report.files.len() >= 1000, "{} files", report.files.len());
    let out = w.run(&w.july("run"));
    assert!(out.status.success());
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 7)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_assumed_role_streams_between_principals() {
    let w = S3World::new(
        PAYER,
        "periods = 1",
        "role_arn = \"arn:aws:iam::671238551718:role/curflow-read\"\nexternal_id = \"finops-1\"",
    )
    .await;
    w.generate((2025, 7), 1, 1000).await;
    let proxy = FaultProxy::start(&w.ep, Faults::default());
    let out = run(curflow_s3(w.dir.path(), &proxy.endpoint, &w.july("run")));
    assert!(out.status.success());
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 7)).await;
    let counts = proxy.counts();
    assert_eq!(
        counts.get("COPY"),
        None,
        "different principals never copy server-side: {counts:?}"
    );
    assert!(
        counts.get("POST").copied().unwrap_or_default() >= 1,
        "STS AssumeRole was called: {counts:?}"
    );
}

/// One payer whose July is a single 12 MiB file (not Parquet: what is tested is its copy),
/// staged in three parts (multipart threshold and part size lowered to 5 MiB); and its bytes.
pub(crate) async fn world_with_a_multipart_file() -> (S3World, Vec<u8>) {
    let w = S3World::new(
        PAYER,
        "periods = 1\nmultipart_threshold_mib = 5\npart_size_mib = 5",
        "",
    )
    .await;
    // No manifest: every .parquet file of the period folder is staged.
    let big: Vec<u8> = (0..12 * 1024 * 1024 + 17)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    w.c.put_object()
        .bucket(&w.source)
        .key("cur2/data/BILLING_PERIOD=2025-07/big.parquet")
        .body(big.clone().into())
        .send()
        .await
        .unwrap();
    (w, big)
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_multipart_copy_with_lowered_threshold() {
    let (w, big) = world_with_a_multipart_file().await;
    let proxy = FaultProxy::start(&w.ep, Faults::default());
    let out = run(curflow_s3(w.dir.path(), &proxy.endpoint, &w.july("run")));
    // The bytes are not Parquet, so analytics refuses them; the copy is what is tested here.
    assert!(
        !stdout(&out).contains("did not verify") && !stdout(&out).contains("could not copy"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        proxy.counts().get("COPY"),
        Some(&3),
        "three UploadPartCopy requests: {:?}",
        proxy.counts()
    );
    assert_eq!(staged_big_file(&w).await, big);
}

/// What [`world_with_a_multipart_file`]'s run staged of the big file.
pub(crate) async fn staged_big_file(w: &S3World) -> Vec<u8> {
    let staged =
        w.c.get_object()
            .bucket(&w.staging)
            .key(format!(
                "staging/{}/big.parquet",
                staged_folder(&w.c, &w.staging, PAYER, "2025-07").await
            ))
            .send()
            .await
            .unwrap();
    staged.body.collect().await.unwrap().into_bytes().to_vec()
}

/// `CURFLOW_LOG=trace` on a run against S3: only curflow and the query engines log below
/// info. The AWS SDK, request signing, HTTP and TLS libraries are capped, whatever they
/// are called: at trace they log the requests curflow signs.
#[tokio::test(flavor = "multi_thread")]
async fn s3_trace_logs_come_only_from_curflow_and_the_engines() {
    let w = S3World::new(PAYER, "periods = 1", "").await;
    w.generate((2025, 7), 1, 1_000).await;
    let mut args = w.july("run");
    args.extend(["--log-format", "json"]);
    let mut command = curflow_s3(w.dir.path(), &w.ep, &args);
    command.env("CURFLOW_LOG", "trace");
    let out = run(command);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut verbose = 0;
    for line in stderr.lines() {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        if matches!(event["level"].as_str(), Some("DEBUG" | "TRACE")) {
            let target = event["target"].as_str().unwrap_or_default();
            assert!(
                ["curflow", "datafusion", "deltalake"]
                    .iter()
                    .any(|allowed| target.starts_with(allowed)),
                "{target} logged below info: {line}"
            );
            verbose += 1;
        }
    }
    assert!(
        verbose > 0,
        "trace asked, and curflow logs at debug: {stderr}"
    );
}
