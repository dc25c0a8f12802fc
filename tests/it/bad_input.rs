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

/// Runs `curflow run` in `dir` with the task `json` (raw bytes: they need not be text) and
/// the settings file `settings`, if any, and checks the refusal: exit 2, one line on stderr
/// with no control character in it, nothing on stdout, no panic, and `dir` as it was.
fn refused_quietly(json: &[u8], settings: Option<&[u8]>, case: &str) {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["run"];
    if let Some(text) = settings {
        std::fs::write(dir.path().join("hostile.toml"), text).unwrap();
        args.extend(["--config", "hostile.toml"]);
    }
    let before = crate::s3_support::local_files(dir.path());
    let mut cmd = curflow(dir.path(), &args);
    cmd.env("TASK_INPUT_JSON", std::ffi::OsStr::from_bytes(json));
    let out = cmd.output().expect("the curflow binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{case}: one line: {stderr}");
    let line = stderr.trim_end_matches('\n');
    assert!(
        !line.chars().any(char::is_control),
        "{case}: a control character in {line:?}"
    );
    assert!(!line.contains("panicked"), "{case}: {line}");
    assert!(out.stdout.is_empty(), "{case}: stdout");
    assert_eq!(
        crate::s3_support::local_files(dir.path()),
        before,
        "{case}: nothing written"
    );
}

/// A corpus of hostile task inputs — wrong shapes and types, numbers past any range,
/// control characters, escape sequences and SQL in strings, deep nesting, bytes that are
/// not text, a byte-order mark, trailing garbage, 100 kB of padding — each refused in
/// one clean line before anything is touched.
#[test]
fn a_corpus_of_hostile_task_inputs_is_refused_in_one_clean_line() {
    let with = |year: &str, month: &str, payers: &str, env: &str| task(year, month, payers, env);
    let ok = |field: &str, value: &str| match field {
        "year" => with(value, "7", &format!(r#"["{OK_PAYER}"]"#), r#""local""#),
        "month" => with("2025", value, &format!(r#"["{OK_PAYER}"]"#), r#""local""#),
        "payers" => with("2025", "7", value, r#""local""#),
        _ => with("2025", "7", &format!(r#"["{OK_PAYER}"]"#), value),
    };
    let mut corpus: Vec<Vec<u8>> = [
        "",
        " ",
        "null",
        "[]",
        "42",
        r#""task""#,
        "{",
        "}",
        "{}",
        r#"{"year":}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for (field, values) in [
        (
            "year",
            &[
                "\"2025\"",
                "2025.5",
                "-1",
                "0",
                "1e309",
                "99999999999999999999",
                "null",
                "[2025]",
            ][..],
        ),
        ("month", &["\"7\"", "7.0", "-7", "4294967303", "null", "{}"]),
        (
            "payers",
            &[
                r#""671238551718""#,
                "[671238551718]",
                r#"["67123855171"]"#,
                r#"["6712385517189"]"#,
                r#"["671238551718\n"]"#,
                r#"["671238551718'; DROP TABLE ri_wastage_hourly; --"]"#,
                r#"["\u001b[31m671238551718"]"#,
                r#"["٦٧١٢٣٨٥٥١٧١٨"]"#,
                r#"[""]"#,
                "[null]",
                "[[]]",
            ],
        ),
        (
            "env",
            &[
                r#""""#,
                r#""../../etc""#,
                r#""local\nerror: forged""#,
                r#""\u0000""#,
                r#""\u001b]0;title\u0007""#,
                "123",
                "null",
            ],
        ),
    ] {
        corpus.extend(values.iter().map(|v| ok(field, v).into_bytes()));
    }
    let good = ok("env", r#""local""#);
    corpus.push(format!("\u{feff}{good}").into_bytes());
    corpus.push(format!("{good} trailing").into_bytes());
    corpus.push(
        good.replacen(r#""year": 2025"#, r#""year": 2025, "year": 2026"#, 1)
            .into_bytes(),
    );
    corpus.push(good.replacen("local", &"x".repeat(100_000), 1).into_bytes());
    corpus.push(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes());
    corpus.push(b"{\"year\": 2025, \"env\": \"caf\xe9\"}".to_vec());
    for json in &corpus {
        let case: String = String::from_utf8_lossy(json).chars().take(80).collect();
        refused_quietly(json, None, &format!("task {case:?}"));
    }
}

/// A corpus of hostile settings files — not TOML, wrong types, values out of range, URLs
/// that cannot be staged to (one carrying a password, which must not be echoed), keys with
/// escape sequences, a table twice — each refused in one clean line before anything is
/// touched, for a task that is valid on its own.
#[test]
fn a_corpus_of_hostile_settings_files_is_refused_in_one_clean_line() {
    let task = task("2025", "7", &format!(r#"["{OK_PAYER}"]"#), r#""dev""#);
    let payer = format!("[[dev.payers]]\npayer_id = \"{OK_PAYER}\"\nsource = \"src\"\n");
    let profile =
        |lines: &str| format!("[dev]\nstaging = \"st\"\nwarehouse_dir = \"wh\"\n{lines}\n{payer}");
    let mut corpus: Vec<Vec<u8>> = vec![
        b"[[[".to_vec(),
        b"\0\0\0\xff\xfe".to_vec(),
        b"[dev]\nstaging = 5\n".to_vec(),
        format!("[dev]\n[dev]\n{payer}").into_bytes(),
        format!(
            "{}{}",
            "a = ".to_owned() + &"[".repeat(5_000),
            "]".repeat(5_000)
        )
        .into_bytes(),
    ];
    for lines in [
        "concurrency = 0",
        "concurrency = -1",
        "concurrency = 99999999999999999999",
        "concurrency = \"many\"",
        "periods = 0",
        "periods = 37",
        "lease_ttl = \"0s\"",
        "lease_ttl = \"25h\"",
        "lease_ttl = \"soon\"",
        "keep_superseded = \"31d\"",
        "keep_superseded = \"-1s\"",
        "keep_replaced = \"366d\"",
        "warehouse = \"oracle\"",
        "\"x\\u001b[31m\\nerror: forged\" = 1",
        "on_sql_error = \"ignore\"",
        "application_tag = \"\"",
    ] {
        corpus.push(profile(lines).into_bytes());
    }
    for staging in [
        "s3://",
        "s3://bucket/a//b",
        "s3://bucket/%0A",
        "ftp://host/x",
        "s3://user:hunter2-secret@bucket/x",
    ] {
        corpus.push(
            format!("[dev]\nstaging = \"{staging}\"\nwarehouse_dir = \"wh\"\n{payer}").into_bytes(),
        );
    }
    for payer_id in ["12345", "67123855171\\n", "' OR 1=1 --"] {
        corpus.push(
            format!("[dev]\nstaging = \"st\"\nwarehouse_dir = \"wh\"\n[[dev.payers]]\npayer_id = \"{payer_id}\"\nsource = \"src\"\n")
                .into_bytes(),
        );
    }
    for text in &corpus {
        let case: String = String::from_utf8_lossy(text).chars().take(80).collect();
        refused_quietly(task.as_bytes(), Some(text), &format!("settings {case:?}"));
    }
    // The password of a refused URL is not echoed.
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[dev]\nstaging = \"s3://user:hunter2-secret@bucket/x\"\nwarehouse_dir = \"wh\"\n{payer}"
    );
    std::fs::write(dir.path().join("c.toml"), text).unwrap();
    let mut cmd = curflow(dir.path(), &["run", "--config", "c.toml"]);
    cmd.env("TASK_INPUT_JSON", &task);
    let out = run(cmd);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
}
