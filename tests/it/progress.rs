//! Copy progress as a user sees it: a bar (files, bytes, rate, ETA) when stderr is a
//! terminal — the binary runs under a pseudo-terminal from util-linux's `script` — and plain
//! log lines without control sequences when it is not.

use std::process::Command;

use crate::s3_support::{
    bucket, client, curflow_s3, endpoint, generate, settings, staged_period, task_args,
};
use crate::support::run;

const PAYER: &str = "671238551718";

/// `inner` run by `script -qefc … /dev/null`, which gives it a pseudo-terminal and copies
/// everything it writes there to our stdout.
pub fn under_terminal(inner: &Command) -> Command {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(quote)
        .collect();
    let mut cmd = Command::new("script");
    cmd.args(["-qefc", &line.join(" "), "/dev/null"]);
    if let Some(dir) = inner.get_current_dir() {
        cmd.current_dir(dir);
    }
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_bar_on_a_terminal_and_plain_lines_otherwise() {
    let ep = endpoint();
    let c = client(&ep);
    let source = bucket(&c, "psrc").await;
    generate(&ep, &source, PAYER, (2025, 7), 1, 250).await;

    // Not a terminal: plain, spaced log lines with the same facts, no control sequences.
    let plain_staging = bucket(&c, "pstg").await;
    let plain_dir = tempfile::tempdir().unwrap();
    let config = settings(
        plain_dir.path(),
        &plain_staging,
        &source,
        PAYER,
        "concurrency = 2",
        "",
    );
    let mut cmd = curflow_s3(
        plain_dir.path(),
        &ep,
        &task_args("run", &config, PAYER, "2025", "7"),
    );
    cmd.env("CURFLOW_LOG", "info");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    let files = staged_period(&c, &plain_staging, PAYER, (2025, 7))
        .await
        .len();
    assert!(files >= 10, "{files} files staged");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let done = format!("files=\"{files}/{files}\"");
    let last = stderr
        .lines()
        .find(|l| l.contains("copying") && l.contains(&done))
        .unwrap_or_else(|| panic!("a final progress line with {done}: {stderr}"));
    for field in [
        "payer=671238551718",
        "period=2025-07",
        "bytes=",
        "rate_bytes_per_s=",
        "eta_s=",
    ] {
        assert!(last.contains(field), "{field} in {last}");
    }
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "no terminal control sequences in plain output: {stderr:?}"
    );

    // A terminal: the bar, with files, bytes, rate and ETA.
    let tty_staging = bucket(&c, "ptty").await;
    let tty_dir = tempfile::tempdir().unwrap();
    let config = settings(
        tty_dir.path(),
        &tty_staging,
        &source,
        PAYER,
        "concurrency = 2",
        "",
    );
    let inner = curflow_s3(
        tty_dir.path(),
        &ep,
        &task_args("run", &config, PAYER, "2025", "7"),
    );
    let out = run(under_terminal(&inner));
    assert_eq!(
        out.status.code(),
        Some(0),
        "script (util-linux) runs the binary under a pseudo-terminal"
    );
    let screen = String::from_utf8_lossy(&out.stdout);
    let bar = screen
        .split(['\r', '\n'])
        .find(|l| l.contains(&format!("/{files} files")) && l.contains("ETA"))
        .unwrap_or_else(|| panic!("a progress bar line: {screen:?}"));
    assert!(bar.contains("payer 671238551718 2025-07"), "{bar:?}");
    assert!(bar.contains("B/s"), "rate in {bar:?}");
    // The units the summary uses (kB, MB: powers of 1000), not KiB or MiB.
    assert!(!bar.contains("iB"), "decimal units in {bar:?}");
    assert!(bar.contains('[') && bar.contains(']'), "bar in {bar:?}");
    assert!(
        screen.contains("\u{1b}["),
        "the bar redraws itself with control sequences: {screen:?}"
    );
    assert_eq!(
        staged_period(&c, &tty_staging, PAYER, (2025, 7))
            .await
            .len(),
        files
    );
}
