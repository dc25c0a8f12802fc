//! `curflow check` against the real servers: everything reachable gives one `ok` line per
//! check and exit 0; a payer whose source bucket does not exist gives its `FAIL` line (the
//! others still checked) and exit 1; bad settings exit 2; nothing is left in staging.

use crate::ops::required_env;
use crate::s3_support::{S3World, curflow_s3, list};
use crate::support::run;

const PAYER: &str = "671238551718";

/// `[dev.notify]` to the test broker's `amq.topic`, `[dev.metrics]` to CloudWatch on the
/// S3 server (moto).
const EXTRA: &str = "[dev.notify]\namqp_url = { env = \"CHECK_AMQP_URL\" }\nexchange = \"amq.topic\"\ntimeout = \"5s\"\n\
     [dev.metrics]\nkinds = [\"cloudwatch\"]\nnamespace = \"curflow-check\"\n";

/// `curflow` with `args` in the world's folder, the broker URL in `CHECK_AMQP_URL`.
fn check(w: &S3World, args: &[&str]) -> std::process::Output {
    let mut cmd = curflow_s3(w.dir.path(), &w.ep, args);
    cmd.env("CHECK_AMQP_URL", required_env("TEST_AMQP_URL"));
    run(cmd)
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reaches_everything_and_names_what_fails() {
    let w = S3World::new(PAYER, "", "").await;
    w.generate((2025, 7), 1, 1000).await;
    // The profile's tables go after the payer entry, so that they are not read as its keys.
    let text = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(&w.config, format!("{text}{EXTRA}")).unwrap();
    let args = [
        "check",
        "--config",
        w.config.as_str(),
        "--env",
        "dev",
        "--period",
        "2025-07",
    ];

    let out = check(&w, &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let subjects: Vec<&str> = stdout
        .lines()
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "ok    warehouse",
            &format!("ok    payer {PAYER}"),
            "ok    staging",
            "ok    notify",
            "ok    metrics"
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "ok    payer {PAYER}: s3://{}/cur2 listed, 2025-07's manifest read\n",
            w.source
        )),
        "{stdout}"
    );
    assert!(
        list(&w.c, &w.staging, "staging/_curflow/check")
            .await
            .is_empty(),
        "the probe object is deleted"
    );

    // A second payer whose source bucket does not exist.
    let text = std::fs::read_to_string(&w.config).unwrap();
    let missing = "[[dev.payers]]\npayer_id = \"204857193650\"\nsource = \"s3://cf-no-such-bucket-curflow/cur2\"\n";
    std::fs::write(
        &w.config,
        text.replace("[dev.notify]", &format!("{missing}[dev.notify]")),
    )
    .unwrap();
    let out = check(
        &w,
        &[
            "--output", "json", "check", "--config", &w.config, "--env", "dev", "--period",
            "2025-07",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    let checks = doc["checks"].as_array().unwrap();
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["payer 204857193650"], "{doc}");
    let detail = checks
        .iter()
        .find(|c| c["check"] == "payer 204857193650")
        .unwrap()["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("cf-no-such-bucket-curflow"), "{detail}");
    assert_eq!(checks.len(), 6, "every check still ran: {doc}");

    // Bad settings: exit 2, one line.
    std::fs::write(&w.config, "[dev]\nconcurrency = \"many\"\n").unwrap();
    let out = check(&w, &args);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
}
