//! Every kind of request a run sends survives the faults of a real network: throttling,
//! server errors, a connection reset before the server saw the request, an answer lost
//! after the server acted on it, and an answer cut off halfway. Each scenario stages a
//! restatement of July (new files to copy, stale ones to delete, three Delta commits)
//! through a proxy that hits one kind of request with a run of faults — a retry of the
//! same request is hit again — and the run must end exit 0 with staging, ledger and final
//! tables exact. Last, seeded random faults of every kind hit a tenth of all requests of
//! runs over two payers × two periods.

use crate::delta_s3::{OnePayer, assert_once, read_outside, run_args};
use crate::fault_proxy::{Fault, FaultProxy, Faults, Random, Rule};
use crate::fleet::Fleet;
use crate::s3::{ri_waste, staged_big_file, world_with_a_multipart_file};
use crate::s3_support::{curflow_s3, generate, ledger_keys, source_period, staged_period};
use crate::support::{output_text, run};

use Fault::{LostAnswer, ResetBefore, ServerError, SlowDown, Truncated};

/// Runs a restated July through a proxy applying `rule`, and checks the run converged:
/// exit 0, every fault of the rule dealt, staging and ledger the new delivery exactly, and
/// the final tables (read by delta-rs from outside) holding the new month once, equal to
/// the generator's truth to the cent.
async fn survives(rule: Rule) {
    let w = OnePayer::new().await;
    let (ep, c, payer, dir) = (&w.ep, &w.c, w.payer, w.dir.path());
    // The lease lives as long as in production (10 minutes): a lease whose answer was
    // lost must be recognised as this run's, not waited out.
    let text = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(&w.config, text.replace("lease_ttl = \"1s\"\n", "")).unwrap();
    let args = run_args(&w.config, &[payer]);

    generate(ep, &w.source, payer, (2025, 7), 1, 500).await;
    let out = run(curflow_s3(dir, ep, &args));
    assert!(out.status.success(), "the clean first run");
    // AWS restates July in fewer, differently named files.
    let restated = generate(ep, &w.source, payer, (2025, 7), 2, 1000).await;

    let proxy = FaultProxy::start(
        ep,
        Faults {
            rules: vec![rule.clone()],
            ..Faults::default()
        },
    );
    let out = run(curflow_s3(dir, &proxy.endpoint, &args));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {summary}\n{}",
        rule.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let matched = proxy.matched().get(rule.name).copied().unwrap_or_default();
    assert!(
        matched > rule.faults.len(),
        "{}: {matched} requests matched, fewer than the {} faults and the one that passes",
        rule.name,
        rule.faults.len()
    );

    let src = source_period(c, &w.source, "2025-07").await;
    assert_eq!(src.len(), restated.files.len());
    let staged = staged_period(c, &w.staging, payer, (2025, 7)).await;
    assert_eq!(staged, src, "{}: staging is the new delivery", rule.name);
    let ledger = ledger_keys(c, &w.staging, payer, "2025-07").await;
    assert_eq!(ledger, src.keys().cloned().collect::<Vec<_>>());
    assert!(
        (ri_waste(&summary) - restated.ri_unused_cost).abs() < 0.01,
        "{}: {summary}",
        rule.name
    );
    assert_once(
        &read_outside(ep, &w.warehouse, "ri_wastage_hourly", "reservation_arn"),
        &[(payer, restated.ri_unused_cost)],
        "ri_wastage_hourly",
    );
    assert_once(
        &read_outside(ep, &w.warehouse, "sp_wastage_hourly", "savings_plan_arn"),
        &[(payer, restated.sp_unused_cost)],
        "sp_wastage_hourly",
    );
    // The next run finds nothing to do.
    let out = run(curflow_s3(dir, ep, &args));
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Already synchronized"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A listing request (ListObjectsV2) whose `prefix` parameter starts with `prefix`
/// (URL-encoded, as sent).
fn listing(method: &str, target: &str, prefix: &str) -> bool {
    method == "GET"
        && target.contains("list-type=2")
        && target.contains(&format!("prefix={prefix}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_source_listings() {
    survives(Rule {
        name: "source listing",
        matches: |method, target| listing(method, target, "cur2"),
        faults: vec![
            Truncated,
            ResetBefore,
            LostAnswer,
            ServerError,
            SlowDown,
            Truncated,
        ],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_staging_listings() {
    survives(Rule {
        name: "staging listing",
        matches: |method, target| listing(method, target, "staging"),
        faults: vec![Truncated, ResetBefore, LostAnswer, Truncated],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_warehouse_listings() {
    survives(Rule {
        name: "warehouse listing",
        matches: |method, target| listing(method, target, "warehouse"),
        faults: vec![Truncated, ResetBefore, LostAnswer, Truncated, ServerError],
    })
    .await;
}

/// A copy whose answer proves it sends no HEAD, so the HEADs left are those that check a
/// multipart copy (its ETag is not the source's): faults on them are retried, and the
/// staged object is the source's bytes.
#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_heads_that_check_a_multipart_copy() {
    let (w, big) = world_with_a_multipart_file().await;
    let heads = Rule {
        name: "head",
        matches: |method, _| method == "HEAD",
        faults: vec![Truncated, ResetBefore, LostAnswer, ServerError],
    };
    let proxy = FaultProxy::start(
        &w.ep,
        Faults {
            rules: vec![heads],
            ..Faults::default()
        },
    );
    let mut args = w.july("run");
    args.push("--stage-only");
    let out = run(curflow_s3(w.dir.path(), &proxy.endpoint, &args));
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let matched = proxy.matched().get("head").copied().unwrap_or_default();
    assert!(
        matched > 4,
        "{matched} HEADs: the faults and one that passes"
    );
    assert_eq!(staged_big_file(&w).await, big);
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_manifest_reads() {
    survives(Rule {
        name: "manifest",
        matches: |method, target| method == "GET" && target.contains("Manifest.json"),
        faults: vec![Truncated, ResetBefore, LostAnswer, ServerError],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_copies() {
    survives(Rule {
        name: "copy",
        matches: |method, target| method == "PUT" && target.contains("/staging/year"),
        faults: vec![LostAnswer, Truncated, ResetBefore, ServerError, SlowDown],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_deletes() {
    survives(Rule {
        name: "delete",
        matches: |method, target| {
            (method == "POST" && target.contains("?delete")) || method == "DELETE"
        },
        faults: vec![LostAnswer, Truncated, ResetBefore, ServerError, LostAnswer],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_lease() {
    survives(Rule {
        name: "lease",
        matches: |_, target| target.contains("/_curflow/locks/"),
        faults: vec![LostAnswer, Truncated, ResetBefore, LostAnswer],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_ledger() {
    survives(Rule {
        name: "ledger",
        matches: |_, target| target.contains("/_curflow/ledger/"),
        faults: vec![Truncated, LostAnswer, ResetBefore, LostAnswer, Truncated],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_delta_log_reads() {
    survives(Rule {
        name: "delta log read",
        matches: |method, target| {
            method == "GET" && target.contains("/_delta_log/") && !target.contains("list-type")
        },
        faults: vec![Truncated, ResetBefore, LostAnswer, ServerError, Truncated],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_delta_commits() {
    survives(Rule {
        name: "delta commit",
        matches: |method, target| method == "PUT" && target.contains("/_delta_log/"),
        faults: vec![LostAnswer, Truncated, ResetBefore, LostAnswer, ServerError],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_delta_data_files() {
    survives(Rule {
        name: "delta data file",
        matches: |method, target| {
            method == "PUT" && target.contains("/warehouse/") && target.contains(".parquet")
        },
        faults: vec![LostAnswer, Truncated, ResetBefore, ServerError],
    })
    .await;
}

/// Seeded random faults (503, 500, resets, lost and half answers, delays) on a tenth of all
/// requests — listings, copies, deletes, the lease, the ledger, the Delta log and commits
/// alike — over two payers × two periods, and then over a restatement of all four: each run
/// exits 0, and staging and every final table hold the latest deliveries once, to the cent.
#[tokio::test(flavor = "multi_thread")]
async fn random_faults_on_a_tenth_of_requests_lose_nothing() {
    let mut fleet = Fleet::new(2).await;
    fleet.production_lease();
    for seed in [0x0dd_f00d_u64, 0xbad_5eed] {
        fleet.deliver_all().await;
        let random = Random { seed, percent: 10 };
        let proxy = FaultProxy::start(
            &fleet.ep,
            Faults {
                random: Some(random),
                ..Faults::default()
            },
        );
        let out = run(curflow_s3(fleet.dir.path(), &proxy.endpoint, &fleet.args()));
        let when = format!("{random:?}");
        assert_eq!(out.status.code(), Some(0), "{when}: {}", output_text(&out));
        assert!(
            proxy.faults_injected() >= 20,
            "{when}: {} faults",
            proxy.faults_injected()
        );
        fleet.check_converged(&when).await;
    }
}
