//! What a reader of staging sees (README, "Where things go"): the folder a payer-period's
//! ledger names holds one delivery, whole, whatever became of the run replacing it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fault_proxy::{FaultProxy, Faults};
use crate::s3_support::{
    S3World, curflow_s3, ledger_keys, list, sizes, source_period, staged_folder, staged_period,
};
use crate::support::{output_text, run};

const PAYER: &str = "671238551718";

/// A restatement whose copies are refused after the first few: the run fails the period
/// (exit 1), and a reader still finds the previous delivery, every file of it and nothing
/// of the new one. Copies used to land in the folder readers read, beside the old files:
/// a reader (the Snowflake stage, a `--stage-only` consumer) counted the month partly
/// twice until a later run finished. The next run publishes the new delivery whole, and
/// the old one stays, whole, for `keep_superseded`, for readers that were reading it.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_restatement_leaves_readers_the_previous_delivery_whole() {
    let w = S3World::new(PAYER, "keep_superseded = \"1h\"\nconcurrency = 2", "").await;
    w.generate((2025, 7), 1, 300).await;
    let run_args = w.july("run");
    let out = w.run(&run_args);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let first = staged_period(&w.c, &w.staging, PAYER, (2025, 7)).await;
    assert_eq!(first, source_period(&w.c, &w.source, "2025-07").await);
    let first_folder = staged_folder(&w.c, &w.staging, PAYER, "2025-07").await;

    // AWS restates July in other files; the staging store refuses copies after the third.
    let second = w.generate((2025, 7), 2, 200).await;
    assert!(second.files.len() > 5, "{} files", second.files.len());
    let copies = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&copies);
    let proxy = FaultProxy::start(
        &w.ep,
        Faults {
            refuse: Some(Arc::new(move |head: &str| {
                head.to_ascii_lowercase().contains("\r\nx-amz-copy-source:")
                    && counted.fetch_add(1, Ordering::SeqCst) >= 3
            })),
            ..Faults::default()
        },
    );
    let out = run(curflow_s3(w.dir.path(), &proxy.endpoint, &run_args));
    let said = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("2025-07  FAILED"), "{said}");
    let period = format!("staging/year=2025/month=7/payer-{PAYER}");
    let everything = list(&w.c, &w.staging, &period).await;
    assert!(
        everything.len() > first.len(),
        "some of the new delivery was copied: {everything:?}"
    );
    assert_eq!(
        staged_period(&w.c, &w.staging, PAYER, (2025, 7)).await,
        first,
        "a reader finds the previous delivery exactly"
    );
    assert_eq!(
        ledger_keys(&w.c, &w.staging, PAYER, "2025-07").await,
        first.keys().cloned().collect::<Vec<_>>()
    );

    // The next run finishes the new delivery and switches readers to it.
    let out = w.run(&run_args);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let source = source_period(&w.c, &w.source, "2025-07").await;
    assert_eq!(source.len(), second.files.len());
    assert_eq!(
        staged_period(&w.c, &w.staging, PAYER, (2025, 7)).await,
        source
    );
    assert_ne!(
        staged_folder(&w.c, &w.staging, PAYER, "2025-07").await,
        first_folder
    );
    assert_eq!(
        sizes(&list(&w.c, &w.staging, &format!("staging/{first_folder}")).await),
        first,
        "the superseded delivery stays whole for readers still on it"
    );
}
