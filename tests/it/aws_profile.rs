//! Credentials as an operator's laptop has them: only in a shared credentials file, picked
//! by `AWS_PROFILE` — no `AWS_ACCESS_KEY_ID` in the environment, no instance metadata.
//! Every AWS call (sources, staging, the final tables on S3, `report`, `generate`) must
//! take them from the SDK's default chain.

use std::path::Path;
use std::process::Command;

use crate::delta_s3::{OnePayer, run_args};
use crate::s3::{dollars_after, ri_waste};
use crate::s3_support::{generate, list};
use crate::support::{curflow, run};

/// `curflow` with `args`, reaching the S3 server with the profile `curflow-test` of the
/// config and credentials files written under `dir`, and nothing else.
fn with_profile(dir: &Path, endpoint: &str, args: &[&str]) -> Command {
    let credentials = dir.join("aws-credentials");
    let config = dir.join("aws-config");
    std::fs::write(
        &credentials,
        "[curflow-test]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    std::fs::write(&config, "[profile curflow-test]\nregion = us-east-1\n").unwrap();
    let mut cmd = curflow(dir, args);
    cmd.env("AWS_PROFILE", "curflow-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        cmd.env_remove(name);
    }
    cmd
}

fn stdout(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn run_report_and_generate_take_credentials_from_the_profile() {
    let w = OnePayer::new().await;
    let dir = w.dir.path();
    let truth = generate(&w.ep, &w.source, w.payer, (2025, 7), 1, 1000).await;

    let out = run(with_profile(dir, &w.ep, &run_args(&w.config, &[w.payer])));
    assert!(out.status.success(), "run: {}", stdout(&out));
    let summary = stdout(&out);
    // The SDK's credential chain logs at info; by default curflow shows libraries' warnings
    // only, and the credentials it loaded never.
    assert!(
        !summary.contains("loaded base credentials") && !summary.contains("access_key_id"),
        "{summary}"
    );
    assert!(
        (ri_waste(&summary) - truth.ri_unused_cost).abs() < 0.01,
        "{summary}"
    );
    assert!(
        list(&w.c, &w.warehouse, "warehouse/ri_wastage_hourly/_delta_log")
            .await
            .keys()
            .any(|k| k.ends_with(".json")),
        "the final tables were committed on S3"
    );

    let html = dir.join("report.html");
    let out = run(with_profile(
        dir,
        &w.ep,
        &[
            "report",
            "--config",
            &w.config,
            "--env",
            "dev",
            "--payer",
            w.payer,
            "--period",
            "2025-07",
            "--html",
            html.to_str().unwrap(),
        ],
    ));
    assert!(out.status.success(), "report: {}", stdout(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        (dollars_after(&text, "(Reserved Instances $") - truth.ri_unused_cost).abs() < 0.01,
        "{text}"
    );

    let target = format!("s3://{}/generated", w.source);
    let out = run(with_profile(
        dir,
        &w.ep,
        &[
            "generate", "--out", &target, "--payer", w.payer, "--year", "2025", "--month", "8",
            "--rows", "500",
        ],
    ));
    assert!(out.status.success(), "generate: {}", stdout(&out));
    assert!(
        list(&w.c, &w.source, "generated/metadata/BILLING_PERIOD=2025-08")
            .await
            .keys()
            .any(|k| k.ends_with("Manifest.json")),
        "generate wrote its manifest to S3"
    );
}
