//! Bad input exits 2 with one line naming the field and the value, before any I/O.

use crate::support::{curflow, run};

/// Runs `curflow run` in an empty folder and checks the refusal.
fn refused(json: Option<&str>, args: &[&str], expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let mut cmd = curflow(dir.path(), &all);
    if let Some(json) = json {
        cmd.env("TASK_INPUT_JSON", json);
    }
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2), "exit code");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    for needle in expect {
        assert!(
            lines[0].contains(needle),
            "{needle:?} not in {:?}",
            lines[0]
        );
    }
    assert!(out.stdout.is_empty(), "nothing printed on stdout");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}

const OK_PAYER: &str = "671238551718";

fn task(year: &str, month: &str, payers: &str, env: &str) -> String {
    format!(
        r#"{{"year": {year}, "month": {month}, "payers": {payers}, "partnerId": 1000218, "module": "analytics", "env": {env}}}"#
    )
}

#[test]
fn malformed_json() {
    refused(
        Some(r#"{"year": 2025, "month": 7,"#),
        &[],
        &["TASK_INPUT_JSON", "not valid JSON"],
    );
}

#[test]
fn missing_field() {
    refused(
        Some(r#"{"year": 2025, "payers": ["671238551718"], "env": "local"}"#),
        &[],
        &["missing field", "month"],
    );
}

#[test]
fn month_zero_and_thirteen() {
    let payers = format!(r#"["{OK_PAYER}"]"#);
    refused(
        Some(&task("2025", "0", &payers, r#""local""#)),
        &[],
        &["month = 0", "1-12"],
    );
    refused(
        Some(&task("2025", "13", &payers, r#""local""#)),
        &[],
        &["month = 13", "1-12"],
    );
    refused(
        None,
        &["--year", "2025", "--month", "13", "--payer", OK_PAYER],
        &["month = 13"],
    );
}

#[test]
fn injected_payer() {
    refused(
        Some(&task(
            "2025",
            "7",
            r#"["1'; DROP TABLE x;--"]"#,
            r#""local""#,
        )),
        &[],
        &["payers", "1'; DROP TABLE x;--", "12-digit"],
    );
    refused(
        None,
        &[
            "--year",
            "2025",
            "--month",
            "7",
            "--payer",
            "1'; DROP TABLE x;--",
        ],
        &["payers", "DROP TABLE"],
    );
}

#[test]
fn empty_payer_list() {
    refused(
        Some(&task("2025", "7", "[]", r#""local""#)),
        &[],
        &["payers = []"],
    );
}

#[test]
fn unknown_env() {
    let payers = format!(r#"["{OK_PAYER}"]"#);
    refused(
        Some(&task("2025", "7", &payers, r#""staging""#)),
        &[],
        &["env \"staging\"", "no settings profile"],
    );
    refused(
        Some(&task("2025", "7", &payers, r#""Prod; rm""#)),
        &[],
        &["env", "Prod; rm"],
    );
}

#[test]
fn unreadable_settings_file() {
    refused(
        None,
        &[
            "--config",
            "/nonexistent/curflow.toml",
            "--year",
            "2025",
            "--month",
            "7",
            "--payer",
            OK_PAYER,
        ],
        &["cannot read settings file", "/nonexistent/curflow.toml"],
    );
}

#[test]
fn unconfigured_payer() {
    refused(
        None,
        &["--year", "2025", "--month", "7", "--payer", OK_PAYER],
        &["payer 671238551718 is not configured"],
    );
}

#[test]
fn periods_out_of_range() {
    // `--periods` is checked as the profile's `periods` is: 1-36.
    for n in ["0", "37"] {
        refused(
            None,
            &[
                "--year",
                "2025",
                "--month",
                "7",
                "--payer",
                OK_PAYER,
                "--periods",
                n,
            ],
            &["--periods", &format!("= {n}"), "must be 1-36"],
        );
    }
}

/// Bytes that are not UTF-8 in the environment: in a variable curflow does not read, the
/// run goes on (here to the next refusal, the unconfigured payer); in a `CURFLOW_*` one,
/// the refusal names it. Before, either panicked (exit 101) in every command.
#[test]
fn environment_values_that_are_not_text_do_not_panic() {
    use std::os::unix::ffi::OsStrExt;
    let junk = std::ffi::OsStr::from_bytes(b"caf\xe9");
    for (var, expect) in [
        (
            "SOME_OTHER_TOOL",
            "payer 671238551718 is not configured in profile local",
        ),
        (
            "CURFLOW_PERIODS",
            "environment variable CURFLOW_PERIODS is not UTF-8 text",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = curflow(
            dir.path(),
            &["run", "--period", "2025-07", "--payer", OK_PAYER],
        );
        cmd.env(var, junk);
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expect), "{var}: {stderr}");
    }
}

/// An unknown task key is named with its control characters escaped: a newline or an
/// escape sequence in it cannot forge a log line or colour the terminal.
#[test]
fn an_unknown_key_cannot_forge_a_line() {
    let json = format!(
        r#"{{"year": 2025, "month": 7, "payers": ["{OK_PAYER}"], "env": "local", "x\nerror: forged \u001b[31m": 1}}"#
    );
    refused(
        Some(&json),
        &[],
        &["unknown field", r#"x\nerror: forged \u{1b}[31m"#],
    );
}
