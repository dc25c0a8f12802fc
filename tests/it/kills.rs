//! Runs killed (SIGKILL) at seeded random moments over two payers × two billing periods,
//! with restatements landing between kills. After every kill a reader must find one whole
//! delivery per payer-period in staging and in every final table, never a mix or a month
//! counted twice (`Fleet::check_readers`); after a clean run, staging equals each source
//! and every table the generator's truth.

use std::time::Duration;

use crate::fleet::{Fleet, PERIODS, next};
use crate::s3_support::curflow_s3;
use crate::support::{output_text, run};

/// Runs killed before they finished, per test run; at most `ROUNDS` runs are started.
const KILLS: u32 = 20;
const ROUNDS: u32 = 60;
/// Each run is killed this long after it starts, at most (seeded).
const LONGEST: u64 = 3_000;

#[tokio::test(flavor = "multi_thread")]
async fn runs_killed_at_random_moments_never_show_readers_a_mix_and_then_converge() {
    let mut fleet = Fleet::new(2).await;
    fleet.deliver_all().await;
    let start: u64 = 0x005e_edc0_ffee;
    let mut seed = start;
    let (mut killed, mut round) = (0, 0);
    while killed < KILLS && round < ROUNDS {
        round += 1;
        // Before three runs in four, a payer-period is restated (new file names, new data),
        // so most runs have copies, deletions and commits to be killed in.
        if !next(&mut seed).is_multiple_of(4) {
            let payer = (next(&mut seed) % 2) as usize;
            let period = PERIODS[(next(&mut seed) % 2) as usize];
            fleet.deliver(payer, period).await;
        }
        let delay = Duration::from_millis(50 + next(&mut seed) % LONGEST);
        // A killed run leaves its analytics' scratch folder in TMPDIR, as DataFusion's
        // spill files would be: the test's folder, removed with it.
        let mut child = curflow_s3(fleet.dir.path(), &fleet.ep, &fleet.args())
            .env("TMPDIR", fleet.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(delay).await;
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        let when = format!("after run {round}, killed at {delay:?} (seed {start:#x})");
        fleet.check_readers(&when).await;
    }
    assert_eq!(
        killed, KILLS,
        "{round} runs, {killed} killed before they finished"
    );
    let restated = fleet.history.values().filter(|h| h.len() > 1).count();
    assert!(restated > 0, "no restatement landed (seed {start:#x})");
    // The last killed run's lease (1 s) expires; then one clean run.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fleet.production_lease();
    let out = run(curflow_s3(fleet.dir.path(), &fleet.ep, &fleet.args()));
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    fleet.check_converged("the clean run").await;
}
