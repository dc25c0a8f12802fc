//! `run --stage-only`: the staging mirror without the analytics, and the analytics on the
//! next plain run.

use std::path::Path;

use crate::s3_support::local_staged_folder;
use crate::support::{curflow, one_payer_july, run};

const PAYER: &str = "671238551718";

fn july(dir: &Path, settings: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "run", "--config", settings, "--year", "2025", "--month", "7", "--payer", PAYER,
    ];
    args.extend_from_slice(extra);
    let out = run(curflow(dir, &args));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn stage_only_mirrors_without_analytics_and_a_plain_run_analyses() {
    let dir = tempfile::tempdir().unwrap();
    let settings = one_payer_july(dir.path(), PAYER);
    let settings = settings.as_str();

    let (code, staged) = july(dir.path(), settings, &["--stage-only"]);
    assert_eq!(code, Some(0), "{staged}");
    assert!(
        staged.contains("1 file copied") && staged.contains("analytics not run (--stage-only)"),
        "{staged}"
    );
    let staged_dir = local_staged_folder(&dir.path().join("staging"), PAYER, "2025-07");
    assert_eq!(std::fs::read_dir(&staged_dir).unwrap().count(), 1);
    assert!(
        !dir.path().join("warehouse/ri_wastage_hourly").exists(),
        "no final table is written by --stage-only"
    );

    let (code, again) = july(dir.path(), settings, &["--stage-only"]);
    assert_eq!(code, Some(0), "{again}");
    assert!(again.contains("Already synchronized"), "{again}");

    let (code, analysed) = july(dir.path(), settings, &[]);
    assert_eq!(code, Some(0), "{analysed}");
    assert!(
        analysed.contains("staged copy up to date") && analysed.contains("RI waste $"),
        "{analysed}"
    );
    assert!(dir.path().join("warehouse/ri_wastage_hourly").exists());
    let (code, noop) = july(dir.path(), settings, &[]);
    assert_eq!(code, Some(0), "{noop}");
    assert!(noop.contains("Already synchronized"), "{noop}");
}
