//! The payer table: payers added with `curflow payers` are run without a settings entry.

use crate::support::{curflow, run};

const PAYER: &str = "385920174463";

#[test]
fn payers_added_to_the_table_are_run_and_removed_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let generate = [
        "generate",
        "--out",
        source.to_str().unwrap(),
        "--payer",
        PAYER,
        "--year",
        "2025",
        "--month",
        "7",
        "--rows",
        "3000",
    ];
    assert_eq!(run(curflow(dir.path(), &generate)).status.code(), Some(0));
    let settings = dir.path().join("curflow.toml");
    std::fs::write(
        &settings,
        format!(
            "[local]\nstaging = \"{0}/staging\"\nwarehouse_dir = \"{0}/warehouse\"\nperiods = 1\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let config = settings.to_str().unwrap();
    let task = [
        "run", "--config", config, "--year", "2025", "--month", "7", "--payer", PAYER,
    ];

    assert_eq!(
        run(curflow(dir.path(), &task)).status.code(),
        Some(2),
        "not configured yet"
    );

    let bad = run(curflow(
        dir.path(),
        &[
            "payers", "--config", config, "add", "--payer", "12345", "--source", "/tmp/x",
        ],
    ));
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("12345"));

    let add = [
        "payers",
        "--config",
        config,
        "add",
        "--payer",
        PAYER,
        "--source",
        source.to_str().unwrap(),
    ];
    assert_eq!(run(curflow(dir.path(), &add)).status.code(), Some(0));
    let listed = run(curflow(dir.path(), &["payers", "--config", config, "list"]));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(PAYER) && listed.contains("payer table"),
        "{listed}"
    );

    let ran = run(curflow(dir.path(), &task));
    assert_eq!(ran.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ran.stdout).contains("RI waste $"));

    let remove = ["payers", "--config", config, "remove", "--payer", PAYER];
    assert_eq!(run(curflow(dir.path(), &remove)).status.code(), Some(0));
    assert_eq!(
        run(curflow(dir.path(), &task)).status.code(),
        Some(2),
        "removed again"
    );
}
