//! A run stopped by SIGTERM, as ECS stops a task (a deployment, a scale-in, a Spot
//! interruption; SIGKILL follows after the stop timeout, 30 s by default): the copy in
//! progress stops, nothing is recorded as done, the run reports itself interrupted
//! (summary, EMF metrics, the notification), releases its lease and exits 143; the next
//! run is not held up by a lease and finishes the period.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::delta_s3::{OnePayer, PAYERS, run_args};
use crate::fault_proxy::{FaultProxy, Faults};
use crate::fleet::{Fleet, PERIODS};
use crate::ops::{Queue, emf, notify_toml, required_env, unique};
use crate::s3::world_with_a_multipart_file;
use crate::s3_support::{curflow_s3, generate, ledger_keys, source_period, staged_period};
use crate::support::run;

/// ECS's default stop timeout: the run must have reported and exited before it.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A proxy's faults that hold up, by two seconds each, the requests whose lower-cased head
/// `holds` picks, raising `seen` when the first one comes.
fn held_up(holds: fn(&str) -> bool, seen: &Arc<AtomicBool>) -> Faults {
    let seen = Arc::clone(seen);
    Faults {
        hook: Some(Arc::new(move |head: &str| {
            if holds(&head.to_ascii_lowercase()) {
                seen.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(2));
            }
        })),
        ..Faults::default()
    }
}

/// Starts `command`, sends it SIGTERM once `seen` is raised (a held-up request came), and
/// returns its output and how long it took to exit after the signal.
fn terminate_when(mut command: Command, seen: &AtomicBool) -> (Output, Duration) {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("start curflow");
    let waiting = Instant::now();
    while !seen.load(Ordering::SeqCst) {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "curflow ended before the request it was to be stopped at:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "curflow never sent the request it was to be stopped at"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill(1)");
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    (out, signalled.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_staging_reports_an_interrupted_run_and_frees_the_next_one() {
    let w = OnePayer::new().await;
    let (ep, c, payer, dir) = (&w.ep, &w.c, w.payer, w.dir.path());
    let routing_key = unique("interrupt");
    let queue = Queue::bind(&routing_key).await;
    // The lease lives as long as in production (10 minutes): one left behind would hold
    // up the next run.
    let text = std::fs::read_to_string(&w.config)
        .unwrap()
        .replace("lease_ttl = \"1s\"\n", "")
        .replace("[dev]", "[ops]")
        .replace("[[dev.payers]]", "[[ops.payers]]");
    let notify = notify_toml("{ env = \"OPS_AMQP_URL\" }", &routing_key, 1, "100ms");
    std::fs::write(
        &w.config,
        format!("{text}\n{notify}\n[ops.metrics]\nkind = \"emf\"\nnamespace = \"curflow-test\"\n"),
    )
    .unwrap();
    let args: Vec<&str> = run_args(&w.config, &[payer])
        .into_iter()
        .map(|a| if a == "dev" { "ops" } else { a })
        .collect();
    // Many small files, each copy held up at the proxy: staging takes a while.
    let delivery = generate(ep, &w.source, payer, (2025, 7), 1, 50).await;
    assert!(delivery.files.len() > 20, "{} files", delivery.files.len());
    let copying = Arc::new(AtomicBool::new(false));
    let proxy = FaultProxy::start(
        ep,
        held_up(|head| head.contains("x-amz-copy-source"), &copying),
    );
    let mut command = curflow_s3(dir, &proxy.endpoint, &args);
    command.env("OPS_AMQP_URL", required_env("TEST_AMQP_URL"));
    let (out, took) = terminate_when(command, &copying);
    let summary = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{summary}\n{stderr}");
    assert!(
        took < STOP_TIMEOUT,
        "exited {took:?} after SIGTERM, past ECS's stop timeout"
    );
    assert!(
        summary.contains("2025-07  interrupted: not done (the next run does it)")
            && summary.contains(
                "status: INTERRUPTED by SIGTERM: 1 payer-period not done; the next run does them"
            ),
        "{summary}"
    );
    let run_line = emf(&out, &["Env"]);
    assert_eq!(run_line["TaskInterrupted"], 1.0);
    assert_eq!(run_line["TaskCompleted"], 0.0);
    assert_eq!(run_line["FatalError"], 0.0);
    assert_eq!(run_line["PeriodsInterrupted"], 1.0);
    let messages = queue.drain().await;
    assert_eq!(messages.len(), 1, "one notification");
    let body = &messages[0].0;
    assert_eq!(body["status"], "interrupted");
    assert_eq!(body["interrupted_by"], "SIGTERM");
    assert_eq!(body["periods"][0]["outcome"], "interrupted");
    assert_eq!(body["totals"]["periods_interrupted"], 1);
    let ledger = c
        .head_object()
        .bucket(&w.staging)
        .key(format!(
            "staging/_curflow/ledger/payer-{payer}/2025-07.json"
        ))
        .send()
        .await;
    assert!(
        ledger.is_err_and(|e| e.as_service_error().is_some_and(|e| e.is_not_found())),
        "nothing is recorded as staged"
    );

    // The lease was released: the next run starts at once and finishes the period.
    let mut next = curflow_s3(dir, ep, &args);
    next.env("OPS_AMQP_URL", required_env("TEST_AMQP_URL"));
    let out = run(next);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(summary.contains("status: success"), "{summary}");
    let src = source_period(c, &w.source, "2025-07").await;
    assert_eq!(staged_period(c, &w.staging, payer, (2025, 7)).await, src);
    assert_eq!(
        ledger_keys(c, &w.staging, payer, "2025-07").await,
        src.keys().cloned().collect::<Vec<_>>()
    );
}

/// A multipart copy (UploadPartCopy) cut short by the signal is aborted: no upload is left
/// open in the staging bucket, so no orphaned parts are billed.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_aborts_the_multipart_copy_in_flight() {
    let (w, _) = world_with_a_multipart_file().await;
    let copying_parts = Arc::new(AtomicBool::new(false));
    let proxy = FaultProxy::start(
        &w.ep,
        held_up(
            |head| head.contains("partnumber=") && head.contains("x-amz-copy-source"),
            &copying_parts,
        ),
    );
    let command = curflow_s3(w.dir.path(), &proxy.endpoint, &w.july("run"));
    let (out, _) = terminate_when(command, &copying_parts);
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let open =
        w.c.list_multipart_uploads()
            .bucket(&w.staging)
            .send()
            .await
            .unwrap();
    assert!(
        open.uploads().is_empty(),
        "uploads left open: {:?}",
        open.uploads()
    );
}

/// SIGTERM while a payer-period's final tables are being committed (each Delta
/// commit held up at the proxy): that period is published whole — all three tables, the
/// generator's truth, from one run — and recorded as analysed; no other period is started;
/// the run exits 143 within ECS's stop timeout, and the next run does the rest.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_publishing_finishes_that_period_whole_and_starts_no_other() {
    let mut fleet = Fleet::new(2).await;
    fleet.production_lease();
    fleet.deliver_all().await;
    let committing = Arc::new(AtomicBool::new(false));
    let proxy = FaultProxy::start(
        &fleet.ep,
        held_up(
            |head| head.starts_with("put ") && head.contains("/_delta_log/"),
            &committing,
        ),
    );
    let command = curflow_s3(fleet.dir.path(), &proxy.endpoint, &fleet.args());
    let (out, took) = terminate_when(command, &committing);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(143), "{summary}");
    assert!(took < STOP_TIMEOUT, "exited {took:?} after SIGTERM");
    assert!(
        summary.contains("status: INTERRUPTED by SIGTERM: 3 payer-periods not done"),
        "{summary}"
    );
    // Payers run side by side: whichever payer-period had the first turn at the
    // warehouse is the one published, whole; no other was started.
    let published = fleet.published();
    let (_, payer, period) = published
        .keys()
        .next()
        .unwrap_or_else(|| panic!("the period in the warehouse was published: {published:?}"))
        .clone();
    let index = PAYERS.iter().position(|p| *p == payer).unwrap();
    let month = *PERIODS
        .iter()
        .find(|(y, m)| period.starts_with(&format!("{y}-{m:02}")))
        .unwrap();
    let first = &fleet.history[&(index, month)][0].1;
    for (table, truth) in [
        ("ri_wastage_hourly", Some(first.ri_unused_cost)),
        ("sp_wastage_hourly", Some(first.sp_unused_cost)),
        ("commitment_reconciliation", None),
    ] {
        let months: Vec<_> = published
            .iter()
            .filter(|((t, _, _), _)| t == table)
            .collect();
        assert_eq!(months.len(), 1, "{table}: only one period: {months:?}");
        let ((_, this_payer, this_period), month) = months[0];
        assert!(
            *this_payer == payer && *this_period == period,
            "{table}: {this_payer} {this_period}, not {payer} {period}"
        );
        assert!(
            month.rows > 0 && month.rows == month.distinct && month.runs == 1,
            "{table}: {month:?}"
        );
        if let Some(truth) = truth {
            assert!(
                (month.unused_cost - truth).abs() < 0.01,
                "{table}: {month:?} vs {truth}"
            );
        }
    }

    let out = run(curflow_s3(fleet.dir.path(), &fleet.ep, &fleet.args()));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{summary}");
    assert_eq!(
        summary.matches("Already synchronized").count(),
        1,
        "the published period was recorded as analysed: {summary}"
    );
    fleet.check_converged("the next run").await;
}
