//! What an operator notices from one command to the next: money printed one way (the same
//! cents from `generate` and `run` on the same data), `run --period` as `report` takes it,
//! a settings error that names its key, "not configured" naming the profile, and logs
//! without colours under `NO_COLOR`.

use crate::progress::under_terminal;
use crate::support::{amount, curflow, one_payer_settings, output_text, run};

const PAYER: &str = "671238551718";

#[test]
fn generate_and_run_print_the_same_cents_and_period_is_year_and_month() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let out = run(curflow(
        dir.path(),
        &[
            "generate",
            "--out",
            source.to_str().unwrap(),
            "--payer",
            PAYER,
            "--year",
            "2025",
            "--month",
            "7",
        ],
    ));
    assert!(out.status.success(), "{}", output_text(&out));
    let generated = output_text(&out);
    let settings = one_payer_settings(dir.path(), PAYER, &source);
    let out = run(curflow(
        dir.path(),
        &[
            "run", "--config", &settings, "--year", "2025", "--month", "7", "--payer", PAYER,
        ],
    ));
    assert!(out.status.success(), "{}", output_text(&out));
    let summary = output_text(&out);
    for kind in ["RI waste ", "SP waste "] {
        assert_eq!(
            amount(&generated, kind),
            amount(&summary, kind),
            "{kind}: {generated}\n{summary}"
        );
    }
    // `--period`, as `report` takes it, is the same task.
    let out = run(curflow(
        dir.path(),
        &[
            "plan", "--config", &settings, "--period", "2025-07", "--payer", PAYER,
        ],
    ));
    assert!(out.status.success(), "{}", output_text(&out));
    let plan = output_text(&out);
    assert!(
        plan.contains("task month 2025-07") && plan.contains("Already synchronized"),
        "{plan}"
    );
}

#[test]
fn a_settings_error_names_its_key_and_not_configured_names_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("curflow.toml");
    std::fs::write(
        &settings,
        "[dev]\nstaging = \"st\"\nwarehouse_dir = \"wh\"\nconcurrency = \"many\"\n",
    )
    .unwrap();
    let config = settings.to_str().unwrap();
    let task = [
        "run", "--config", config, "--env", "dev", "--year", "2025", "--month", "7", "--payer",
        PAYER,
    ];
    let out = run(curflow(dir.path(), &task));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!("error: settings {config} [dev]: concurrency: \"many\" is not a whole number")
    );
    std::fs::write(
        &settings,
        "[dev]\nstaging = \"st\"\nwarehouse_dir = \"wh\"\n",
    )
    .unwrap();
    let mut overridden = curflow(dir.path(), &task);
    overridden.env("CURFLOW_CONCURRENCY", "lots");
    let out = run(overridden);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: settings from environment (CURFLOW_CONCURRENCY): concurrency: \"lots\" is not a whole number"
    );
    let out = run(curflow(dir.path(), &task));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "payer {PAYER} is not configured in profile dev: add a [[dev.payers]] entry"
        )),
        "{stderr}"
    );
}

/// Select Graphic Rendition sequences (`ESC [ … m`): colours and bold, not cursor moves.
fn has_colour(screen: &str) -> bool {
    screen.split('\u{1b}').skip(1).any(|seq| {
        seq.strip_prefix('[').is_some_and(|rest| {
            let params = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';');
            params.starts_with('m')
        })
    })
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color_is_set() {
    let dir = tempfile::tempdir().unwrap();
    // A run that logs an error: the payer's source root does not exist.
    let settings = one_payer_settings(dir.path(), PAYER, &dir.path().join("no-such-export"));
    let task = [
        "run", "--config", &settings, "--year", "2025", "--month", "7", "--payer", PAYER,
    ];
    let mut coloured = curflow(dir.path(), &task);
    coloured.env_remove("NO_COLOR").env("CURFLOW_LOG", "info");
    let screen = String::from_utf8_lossy(&run(under_terminal(&coloured)).stdout).into_owned();
    assert!(screen.contains("no CUR export"), "{screen:?}");
    assert!(has_colour(&screen), "coloured on a terminal: {screen:?}");
    let mut plain = curflow(dir.path(), &task);
    plain.env("NO_COLOR", "1").env("CURFLOW_LOG", "info");
    let screen = String::from_utf8_lossy(&run(under_terminal(&plain)).stdout).into_owned();
    assert!(screen.contains("no CUR export"), "{screen:?}");
    assert!(!has_colour(&screen), "NO_COLOR: {screen:?}");
}

/// Stdout as the one JSON document `--output json` promises.
fn document(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn run_plan_and_report_print_one_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::support::one_payer_july(dir.path(), PAYER);
    let task = |command: &'static str| {
        vec![
            "--output", "json", command, "--config", &settings, "--year", "2025", "--month", "7",
            "--payer", PAYER,
        ]
    };
    let out = run(curflow(dir.path(), &task("plan")));
    assert!(out.status.success(), "{}", output_text(&out));
    let plan = document(&out);
    assert_eq!(plan["schema_version"], 3);
    assert_eq!(plan["periods"][0]["outcome"], "planned", "{plan}");
    assert_eq!(plan["periods"][0]["files_copied"], 1, "{plan}");

    let out = run(curflow(dir.path(), &task("run")));
    assert!(out.status.success(), "{}", output_text(&out));
    let body = document(&out);
    assert_eq!(body["status"], "success", "{body}");
    let analytics = &body["periods"][0]["analytics"];
    assert_eq!(analytics["status"], "succeeded", "{body}");
    let ri = analytics["ri_unused_cost"].as_f64().unwrap();

    let out = run(curflow(
        dir.path(),
        &[
            "report", "--output", "json", "--config", &settings, "--payer", PAYER, "--period",
            "2025-07",
        ],
    ));
    assert!(out.status.success(), "{}", output_text(&out));
    let report = document(&out);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["billing_period"], "2025-07");
    assert!(
        (report["ri_unused_cost"].as_f64().unwrap() - ri).abs() < 0.005,
        "{report}"
    );
    assert!(!report["top_commitments"].as_array().unwrap().is_empty());

    let out = run(curflow(
        dir.path(),
        &[
            "generate", "--output", "json", "--out", "x", "--payer", PAYER, "--year", "2025",
            "--month", "7",
        ],
    ));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: --output json is for run, plan, report and check; generate prints text only: drop --output"
    );
}
