//! The payer's lease between real runs on the local S3 server: a holder whose renewals
//! stop getting through stops itself before it changes anything more (fencing), and of
//! two runs started on one payer at once, on S3 staging and on a local staging folder,
//! one stages and the other leaves the payer alone.

use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::fault_proxy::{FaultProxy, Faults};
use crate::s3::{PAYER, assert_mirrored};
use crate::s3_support::{
    S3World, curflow_s3, ledger_keys, list, local_files, local_ledger_keys, local_staged_folder,
    settings_at, sizes, source_period,
};
use crate::support::{output_text, run};

/// Each copy is held up this long at the proxy, so staging takes a few seconds.
const COPY_DELAY: Duration = Duration::from_millis(300);

/// Holds up every copy by [`COPY_DELAY`], raising `copying` at the first one; with
/// `refuse_renewals`, every write to a lease after the first (the one that takes it) is
/// refused, as a staging store that stopped answering that run would.
fn slow_copies(copying: &Arc<AtomicBool>, refuse_renewals: bool) -> Faults {
    let seen = Arc::clone(copying);
    let lease_writes = Arc::new(AtomicUsize::new(0));
    Faults {
        hook: Some(Arc::new(move |head: &str| {
            let copy = head.to_ascii_lowercase().contains("x-amz-copy-source:");
            // Into a local staging folder a copy is a GET of the source file.
            let download = head.starts_with("GET ") && head.contains("/cur2/data/");
            if copy || download {
                seen.store(true, Ordering::SeqCst);
                std::thread::sleep(COPY_DELAY);
            }
        })),
        refuse: refuse_renewals.then(|| {
            Arc::new(move |head: &str| {
                head.starts_with("PUT ")
                    && head.contains("/_curflow/locks/")
                    && lease_writes.fetch_add(1, Ordering::SeqCst) > 0
            }) as crate::fault_proxy::Refuse
        }),
        ..Faults::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_holder_whose_renewals_fail_stops_before_changing_more() {
    // 3 s lease: renewed every second, refused from the first renewal on, so the lease is
    // no longer surely this run's 2 s after it was taken; copying takes about 5 s.
    let w = S3World::new(PAYER, "concurrency = 1\nlease_ttl = \"3s\"", "").await;
    let delivery = w.generate((2025, 7), 1, 200).await;
    assert!(delivery.files.len() > 15, "{} files", delivery.files.len());
    let copying = Arc::new(AtomicBool::new(false));
    let proxy = FaultProxy::start(&w.ep, slow_copies(&copying, true));
    let out = run(curflow_s3(w.dir.path(), &proxy.endpoint, &w.july("run")));
    let said = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("2025-07  FAILED") && said.contains("could not be renewed in time"),
        "{said}"
    );
    let staged = sizes(&list(&w.c, &w.staging, "staging/year=2025/month=7/").await);
    assert!(
        staged.len() < delivery.files.len(),
        "it stopped copying: {} of {} files staged",
        staged.len(),
        delivery.files.len()
    );
    let ledger = list(&w.c, &w.staging, "staging/_curflow/ledger/").await;
    assert!(ledger.is_empty(), "nothing recorded as staged: {ledger:?}");
    assert!(
        std::fs::read_dir(w.dir.path().join("warehouse/ri_wastage_hourly"))
            .unwrap()
            .next()
            .is_none(),
        "nothing published"
    );

    // Its lease could not be released either; once it has expired (3 s after the last
    // write that got through), the next run, with a store that answers, finishes the period.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = w.run(&w.july("run"));
    assert!(out.status.success(), "{}", output_text(&out));
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 7)).await;
}

/// Starts `second` once `first` (already started) is copying, and returns both outputs.
fn overlapping(mut first: Child, mut second: Command, copying: &AtomicBool) -> (Output, Output) {
    let started = Instant::now();
    while !copying.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(60) && first.try_wait().unwrap().is_none(),
            "the first run never started copying"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = second.output().unwrap();
    (first.wait_with_output().unwrap(), second)
}

/// Two runs on one payer through a proxy that holds up copies: the second starts while the
/// first copies, finds the lease held and leaves the payer alone; the first stages it.
async fn two_runs_one_payer(w: &S3World, config: &str) -> (Output, Output) {
    let delivery = w.generate((2025, 7), 1, 500).await;
    assert!(delivery.files.len() > 3, "{} files", delivery.files.len());
    let copying = Arc::new(AtomicBool::new(false));
    let proxy = FaultProxy::start(&w.ep, slow_copies(&copying, false));
    let args = crate::s3_support::task_args("run", config, PAYER, "2025", "7");
    let first = curflow_s3(w.dir.path(), &proxy.endpoint, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let second = curflow_s3(w.dir.path(), &proxy.endpoint, &args);
    let (first, second) = tokio::task::spawn_blocking({
        let copying = Arc::clone(&copying);
        move || overlapping(first, second, &copying)
    })
    .await
    .unwrap();
    assert!(first.status.success(), "first run: {}", output_text(&first));
    assert_eq!(
        second.status.code(),
        Some(1),
        "second run: {}",
        output_text(&second)
    );
    assert!(
        output_text(&second).contains("is being synchronized by another run"),
        "{}",
        output_text(&second)
    );
    (first, second)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_on_one_payer_s3_staging() {
    let w = S3World::new(PAYER, "concurrency = 2", "").await;
    two_runs_one_payer(&w, &w.config).await;
    assert_mirrored(&w.c, &w.source, &w.staging, (2025, 7)).await;
    assert_eq!(
        ledger_keys(&w.c, &w.staging, PAYER, "2025-07").await.len(),
        { source_period(&w.c, &w.source, "2025-07").await.len() }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_on_one_payer_local_staging() {
    let w = S3World::new(PAYER, "", "").await;
    let staging = w.dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let config = settings_at(
        w.dir.path(),
        (staging.to_str().unwrap(), "concurrency = 2"),
        (PAYER, &format!("s3://{}/cur2", w.source), ""),
    );
    two_runs_one_payer(&w, &config).await;
    let source = source_period(&w.c, &w.source, "2025-07").await;
    assert_eq!(
        local_ledger_keys(&staging, PAYER, "2025-07"),
        source.keys().cloned().collect::<Vec<_>>()
    );
    let staged = local_staged_folder(&staging, PAYER, "2025-07");
    assert_eq!(local_files(&staged), source, "staged once, whole");
    let period = staging.join(format!("year=2025/month=7/payer-{PAYER}"));
    assert_eq!(local_files(&period).len(), source.len(), "and only once");
}
