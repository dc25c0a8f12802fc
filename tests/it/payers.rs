//! The payer table: payers added with `curflow payers` are run without a settings entry.

use curflow::task::PayerId;
use curflow::warehouse::WasteReader;

use crate::s3::ri_waste;
use crate::s3_support::{S3World, source_period, staged_period, task_args};
use crate::support::{curflow, final_tables, generate_july, run};

const PAYER: &str = "385920174463";

#[tokio::test(flavor = "multi_thread")]
async fn payers_added_to_the_table_are_run_and_removed_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    generate_july(dir.path(), &source, PAYER, &["--rows", "3000"]);
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
    let list = || {
        let listed = run(curflow(dir.path(), &["payers", "--config", config, "list"]));
        assert_eq!(listed.status.code(), Some(0));
        String::from_utf8_lossy(&listed.stdout).into_owned()
    };
    let listed = list();
    assert!(
        listed.contains(PAYER)
            && listed.contains("payer table")
            && listed.contains("never processed"),
        "{listed}"
    );
    let warehouse = final_tables(&dir.path().join("warehouse"));
    let payer = PayerId::parse(PAYER).unwrap();
    assert_eq!(warehouse.last_processed(&payer).await.unwrap(), None);

    let before = chrono::Utc::now();
    let ran = run(curflow(dir.path(), &task));
    let after = chrono::Utc::now();
    assert_eq!(ran.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ran.stdout).contains("RI waste $"));

    // The final tables say when the payer was last analysed; the listing shows it.
    let processed = warehouse
        .last_processed(&payer)
        .await
        .unwrap()
        .expect("processed once");
    assert!(
        before <= processed && processed <= after,
        "{processed} not within the run ({before} .. {after})"
    );
    let other = PayerId::parse("111111111111").unwrap();
    assert_eq!(warehouse.last_processed(&other).await.unwrap(), None);
    let listed = list();
    assert!(
        listed.contains(&format!(
            "last processed {}",
            processed.format("%Y-%m-%d %H:%M:%S UTC")
        )),
        "{listed}"
    );

    let remove = ["payers", "--config", config, "remove", "--payer", PAYER];
    assert_eq!(run(curflow(dir.path(), &remove)).status.code(), Some(0));
    assert_eq!(
        run(curflow(dir.path(), &task)).status.code(),
        Some(2),
        "removed again"
    );
}

/// DESIGN.md §3: a payer table entry whose source cannot be reached gives way to the
/// settings file's entry for that payer (logged with the reason), and a payer table that
/// cannot be read at all gives way to the settings file as a whole.
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_table_entries_fall_back_to_the_settings_file() {
    let w = S3World::new(PAYER, "periods = 1", "").await;
    let generated = w.generate((2025, 7), 1, 1000).await;

    // The payer table sends the payer to a bucket that does not exist.
    let gone = format!("s3://{}-gone/cur2", w.source);
    let add = [
        "payers", "--config", &w.config, "--env", "dev", "add", "--payer", PAYER, "--source", &gone,
    ];
    assert_eq!(w.run(&add).status.code(), Some(0));
    let task = w.july("run");
    let out = w.run(&task);
    assert_eq!(out.status.code(), Some(0));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stderr.contains("not reachable") && stderr.contains(&format!("{}-gone", w.source)),
        "the fallback and its reason are logged: {stderr}"
    );
    assert_eq!(
        staged_period(&w.c, &w.staging, PAYER, (2025, 7)).await,
        source_period(&w.c, &w.source, "2025-07").await,
        "staged from the settings file's source"
    );
    let waste = ri_waste(&stdout);
    assert!(
        (waste - generated.ri_unused_cost).abs() < 0.01,
        "{waste} vs {}",
        generated.ri_unused_cost
    );

    // Without a settings-file entry to fall back on, the table's entry stands and the
    // payer-period fails naming the missing bucket.
    let alone = w.dir.path().join("alone.toml");
    std::fs::write(
        &alone,
        format!(
            "[dev]\nstaging = \"s3://{}/staging\"\nwarehouse_dir = \"{}\"\nperiods = 1\n",
            w.staging,
            w.dir.path().join("warehouse").display()
        ),
    )
    .unwrap();
    let alone_task = task_args("run", alone.to_str().unwrap(), PAYER, "2025", "7");
    let out = w.run(&alone_task);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{}-gone", w.source)),
        "the failure names the unreachable source"
    );

    // A payer table that cannot be read: the settings file's payers are used.
    let log = w
        .dir
        .path()
        .join("warehouse/payer_config/_delta_log/00000000000000000000.json");
    std::fs::write(&log, "not a delta log").unwrap();
    let out = w.run(&task);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("payer table unreadable"),
        "logged"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Already synchronized"),
        "the file's entry, already staged and analysed"
    );
}
