//! Payers of one run are processed side by side, each isolated: a payer whose source
//! refuses every request fails alone, and a payer whose source is stuck holds up nobody
//! but itself. The summary and the notification still list every payer-period, in the
//! task's order, and the run exits 1.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::delta_s3::PAYERS;
use crate::fault_proxy::{FaultProxy, Faults};
use crate::fleet::{Fleet, PERIODS};
use crate::ops::{Queue, notify_section, required_env, unique};
use crate::s3_support::curflow_s3;
use crate::support::{output_text, run};

/// How long the stuck source holds a request before giving up on the others: a run that
/// processes payers one after another never gets past it in time.
const HOLD_AT_MOST: Duration = Duration::from_secs(60);

/// Whether a request head is addressed to `bucket` (path- or host-style).
fn to_bucket(head: &str, bucket: &str) -> bool {
    head.contains(&format!(" /{bucket}/"))
        || head.contains(&format!(" /{bucket}?"))
        || head.contains(&format!("host: {bucket}."))
}

/// Three payers × two periods with `payer_concurrency = 3`: the first payer's source
/// holds its first request until the second payer has published both its periods; the
/// third payer's source answers 403 to everything.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_payer_and_a_stuck_one_neither_fail_nor_stall_the_others() {
    let mut fleet = Fleet::new(3).await;
    fleet.production_lease();
    for payer in 0..2 {
        for period in PERIODS {
            fleet.deliver(payer, period).await;
        }
    }
    let routing_key = unique("isolation");
    let queue = Queue::bind(&routing_key).await;
    let text = std::fs::read_to_string(&fleet.config).unwrap();
    let notify = notify_section("dev", "{ env = \"OPS_AMQP_URL\" }", &routing_key, 1, "10ms");
    let text = text.replacen("periods = 2\n", "periods = 2\npayer_concurrency = 3\n", 1);
    std::fs::write(&fleet.config, format!("{text}{notify}")).unwrap();

    // Released (true) by the second payer's last ledger write; a request that waited
    // HOLD_AT_MOST goes on with the release still false.
    let released = Arc::new((Mutex::new(false), Condvar::new()));
    let held = Arc::new(Mutex::new(None::<bool>));
    let (stuck, refusing) = (fleet.sources[0].clone(), fleet.sources[2].clone());
    let last_ledger = format!("/_curflow/ledger/payer-{}/2025-06.json", PAYERS[1]);
    let ledger_puts = Arc::new(Mutex::new(0));
    let hook = {
        let (released, held, ledger_puts) = (released.clone(), held.clone(), ledger_puts.clone());
        Arc::new(move |head: &str| {
            let head = head.to_ascii_lowercase();
            if head.starts_with("put ") && head.contains(&last_ledger) {
                // The second write of that ledger records its analytics: the payer is done.
                let mut puts = ledger_puts.lock().unwrap();
                *puts += 1;
                if *puts == 2 {
                    *released.0.lock().unwrap() = true;
                    released.1.notify_all();
                }
            }
            if to_bucket(&head, &stuck) && held.lock().unwrap().is_none() {
                let (lock, signal) = &*released;
                let (done, _) = signal
                    .wait_timeout_while(lock.lock().unwrap(), HOLD_AT_MOST, |done| !*done)
                    .unwrap();
                *held.lock().unwrap() = Some(*done);
            }
        })
    };
    let refuse = Arc::new(move |head: &str| to_bucket(&head.to_ascii_lowercase(), &refusing));
    let proxy = FaultProxy::start(
        &fleet.ep,
        Faults {
            hook: Some(hook),
            refuse: Some(refuse),
            ..Faults::default()
        },
    );
    let started = Instant::now();
    let mut command = curflow_s3(fleet.dir.path(), &proxy.endpoint, &fleet.args());
    command.env("OPS_AMQP_URL", required_env("TEST_AMQP_URL"));
    let out = run(command);
    let said = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(
        *held.lock().unwrap(),
        Some(true),
        "the stuck payer's source was held until the second payer had finished \
         (false: it was still waiting after {HOLD_AT_MOST:?}, {:?} into the run)",
        started.elapsed()
    );

    // The summary: every payer-period, in the task's order; the third payer's failed.
    let summary = String::from_utf8_lossy(&out.stdout);
    let mut at = 0;
    for (index, payer) in PAYERS.iter().enumerate() {
        at += summary[at..]
            .find(&format!("payer {payer}"))
            .unwrap_or_else(|| panic!("payer {payer} in order in the summary:\n{summary}"));
        for (year, month) in PERIODS {
            let period = format!("  {year}-{month:02}  ");
            let line_at = at
                + summary[at..]
                    .find(&period)
                    .unwrap_or_else(|| panic!("{payer} {period} in order:\n{summary}"));
            let line = summary[line_at..].lines().next().unwrap();
            match index {
                2 => assert!(
                    line.contains("FAILED") && line.contains("AccessDenied"),
                    "{line}"
                ),
                _ => assert!(line.contains("synchronized: "), "{line}"),
            }
            at = line_at + line.len();
        }
    }

    // The notification: one, complete, in the same order.
    let messages = queue.drain().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let body = &messages[0].0;
    assert_eq!(body["status"], "partial", "{body}");
    let periods: Vec<(&str, &str, &str)> = body["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p: &Value| {
            (
                p["payer_id"].as_str().unwrap(),
                p["billing_period"].as_str().unwrap(),
                p["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(&str, &str, &str)> = PAYERS
        .iter()
        .enumerate()
        .flat_map(|(index, payer)| {
            let outcome = if index == 2 { "failed" } else { "synchronized" };
            [(*payer, "2025-07", outcome), (*payer, "2025-06", outcome)]
        })
        .collect();
    assert_eq!(periods, expected);
    assert_eq!(body["totals"]["periods_failed"], 2, "{body}");
    assert_eq!(body["totals"]["periods_synchronized"], 4, "{body}");

    // What the two good payers published is exact; nothing of the third is anywhere.
    fleet.check_converged("after the run").await;
    assert!(
        fleet
            .published()
            .keys()
            .all(|(_, payer, _)| payer != PAYERS[2]),
        "the failed payer published nothing"
    );
}
