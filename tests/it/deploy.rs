//! deploy/ and the release workflow, checked as far as this machine can: every JSON file
//! parses (and the IAM documents are policies), the CloudFormation template passes cfn-lint
//! (`TEST_CFN_LINT`), the workflow passes actionlint (`TEST_ACTIONLINT`), the examples name
//! the task definition's container and carry task inputs curflow accepts, and the
//! schedule's input (no month, every payer) runs the current month and the one before.
//! Running the production run-task example inside the image is in image.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use curflow::task::{BillingPeriod, PayerChoice, TaskInput};
use serde_json::Value;

use crate::image::{ecs_env, json, repo};
use crate::ops::required_env;
use crate::s3_support::{
    bucket, client, curflow_s3, endpoint, generate, source_period, staged_period, table_folders,
};
use crate::support::run;

/// Every file under `dir`, relative to the repository, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            let relative = path.strip_prefix(repo()).unwrap();
            out.push(relative.to_str().unwrap().to_owned());
        }
    }
    out.sort();
    out
}

/// cfn-lint's verdict on a template: (passed, what it printed).
fn cfn_lint(template: &Path) -> (bool, String) {
    let out = Command::new(required_env("TEST_CFN_LINT"))
        .arg(template)
        .output()
        .expect("cfn-lint runs (scripts/test installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// An IAM policy document: version 2012-10-17 and statements that each allow or deny
/// actions on resources (or, in a trust policy, to a principal).
fn assert_policy(path: &str, doc: &Value) {
    assert_eq!(doc["Version"], "2012-10-17", "{path}");
    let statements = doc["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: Statement"));
    assert!(!statements.is_empty(), "{path}: no statement");
    for s in statements {
        assert!(
            matches!(s["Effect"].as_str(), Some("Allow" | "Deny")),
            "{path}: {s}"
        );
        assert!(
            s["Action"].is_string() || s["Action"].is_array(),
            "{path}: {s}"
        );
        assert!(
            s.get("Resource").is_some() != s.get("Principal").is_some(),
            "{path}: {s}"
        );
    }
}

#[test]
fn every_deploy_file_is_valid() {
    let all = files(&repo().join("deploy"));
    let mut policies = 0;
    for path in &all {
        let full = repo().join(path);
        match full.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                let doc = json(path);
                assert!(doc.is_object(), "{path} is a JSON object");
                if path.starts_with("deploy/iam/") {
                    assert_policy(path, &doc);
                    policies += 1;
                }
            }
            Some("yaml") => {
                let (passed, said) = cfn_lint(&full);
                assert!(passed, "{path}: cfn-lint says\n{said}");
            }
            // Built by image.rs (the deployment image) and read as text there.
            _ if path == "deploy/Containerfile.settings" || path == "deploy/README.md" => {}
            _ => panic!("{path}: no check knows this kind of file; add one"),
        }
    }
    assert_eq!(
        policies, 7,
        "policies and trust policies under deploy/iam: {all:?}"
    );

    // The linter does find mistakes: a misspelt resource type fails.
    let template = std::fs::read_to_string(repo().join("deploy/cloudformation.yaml")).unwrap();
    let broken = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(
        broken.path(),
        template.replace("AWS::ECS::TaskDefinition", "AWS::ECS::TaskDefinitoin"),
    )
    .unwrap();
    let (passed, said) = cfn_lint(broken.path());
    assert!(!passed && said.contains("TaskDefinitoin"), "{said}");
}

/// actionlint's findings on a workflow, one line each.
fn actionlint(workflow: &Path, text: &str) -> Vec<String> {
    let script = "const fs = require('fs');\n\
        require(process.argv[1]).createLinter().then((lint) => {\n\
        \x20 for (const f of lint(fs.readFileSync(process.argv[2], 'utf8'), process.argv[3]))\n\
        \x20   console.log(`${f.line}:${f.column} ${f.kind} ${f.message}`);\n\
        \x20 process.exit(0);\n\
        });";
    let file = tempfile::Builder::new().suffix(".yml").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let out = Command::new("node")
        .args(["-e", script, &required_env("TEST_ACTIONLINT")])
        .arg(file.path())
        .arg(workflow)
        .output()
        .expect("node runs (scripts/test installs it)");
    assert!(
        out.status.success(),
        "actionlint did not run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_release_workflow_passes_actionlint() {
    let path = PathBuf::from(".github/workflows/release.yml");
    let text = std::fs::read_to_string(repo().join(&path)).unwrap();
    // The linter's WebAssembly build predates GitHub's arm64 runners; that label is the
    // one it does not know (what actionlint.yaml's runner labels would say).
    let findings: Vec<String> = actionlint(&path, &text)
        .into_iter()
        .filter(|f| !(f.contains(" runner-label ") && f.contains("\"ubuntu-24.04-arm\"")))
        .collect();
    assert!(findings.is_empty(), "{path:?}:\n{}", findings.join("\n"));
    // It does find mistakes: an undefined matrix key.
    let broken = text.replace("${{ matrix.platform }}", "${{ matrix.platfrom }}");
    assert!(
        actionlint(&path, &broken)
            .iter()
            .any(|f| f.contains("platfrom")),
        "a misspelt matrix key passed"
    );
}

/// The TASK_INPUT_JSON of an ECS `overrides` object.
fn task_input(overrides: &Value) -> String {
    let container = &overrides["containerOverrides"][0];
    assert_eq!(
        container["name"], "curflow",
        "the task definition's container"
    );
    ecs_env(&container["environment"], "TASK_INPUT_JSON").to_owned()
}

#[test]
fn the_examples_are_tasks_curflow_accepts() {
    let definition = json("deploy/task-definition.json");
    assert_eq!(definition["containerDefinitions"][0]["name"], "curflow");
    for example in [
        "deploy/run-task/production.json",
        "deploy/run-task/development.json",
    ] {
        let doc = json(example);
        let task = TaskInput::from_json(&task_input(&doc["overrides"]))
            .unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(task.period.to_string(), "2025-07", "{example}");
        assert_eq!(doc["launchType"], "FARGATE", "{example}");
    }
    let mut inputs = Vec::new();
    for example in ["deploy/schedule/daily.json", "deploy/schedule/monthly.json"] {
        let doc = json(example);
        let target = &doc["Target"];
        assert!(
            target["EcsParameters"]["TaskDefinitionArn"]
                .as_str()
                .unwrap()
                .ends_with(&format!(
                    ":task-definition/{}",
                    definition["family"].as_str().unwrap()
                )),
            "{example} runs the task definition"
        );
        let overrides: Value = serde_json::from_str(target["Input"].as_str().unwrap()).unwrap();
        let task = TaskInput::from_json(&task_input(&overrides)).unwrap();
        assert_eq!(
            (task.period, task.payers),
            (BillingPeriod::current(), PayerChoice::All)
        );
        inputs.push(overrides);
    }
    // The template's schedule sends the same input (its profile a parameter).
    let template = std::fs::read_to_string(repo().join("deploy/cloudformation.yaml")).unwrap();
    let line = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("Input: !Sub '"))
        .expect("the template's schedule input");
    let input: Value =
        serde_json::from_str(&line.trim_end_matches('\'').replace("${Env}", "prod")).unwrap();
    assert_eq!(input, inputs[0]);
}

/// The schedule's input names no month and every payer: a run covers the current month and
/// the one before, for each payer the profile configures.
#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_input_runs_every_payer_for_the_current_month() {
    let schedule = json("deploy/schedule/daily.json");
    let overrides: Value =
        serde_json::from_str(schedule["Target"]["Input"].as_str().unwrap()).unwrap();
    let input = task_input(&overrides);
    let (ep, now) = (endpoint(), BillingPeriod::current());
    let c = client(&ep);
    let payers = ["385920174463", "204857193650"];
    let staging = bucket(&c, "stg").await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = format!(
        "[prod]\nstaging = \"s3://{staging}/staging\"\nwarehouse_dir = \"{}\"\n",
        dir.path().join("warehouse").display()
    );
    let mut sources = Vec::new();
    for payer in payers {
        let source = bucket(&c, "src").await;
        for period in [now, now.previous()] {
            generate(
                &ep,
                &source,
                payer,
                (period.year(), period.month()),
                1,
                1_000,
            )
            .await;
        }
        settings.push_str(&format!(
            "[[prod.payers]]\npayer_id = \"{payer}\"\nsource = \"s3://{source}/cur2\"\n"
        ));
        sources.push(source);
    }
    table_folders(dir.path());
    let config = dir.path().join("curflow.toml");
    std::fs::write(&config, settings).unwrap();

    let mut cmd = curflow_s3(
        dir.path(),
        &ep,
        &["run", "--config", config.to_str().unwrap()],
    );
    cmd.env("TASK_INPUT_JSON", &input)
        .env("CURFLOW_LOG_FORMAT", "text");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(&format!(
            "task month {now}, periods {now}, {}, 2 payers",
            now.previous()
        )),
        "{summary}"
    );
    // Account-id order, whatever the file's.
    let first = summary.find("payer 204857193650").expect("first payer");
    assert!(summary.find("payer 385920174463").expect("second payer") > first);
    for (payer, source) in payers.iter().zip(&sources) {
        for period in [now, now.previous()] {
            let staged = staged_period(&c, &staging, payer, (period.year(), period.month())).await;
            let delivered = source_period(&c, source, &period.to_string()).await;
            assert!(!delivered.is_empty());
            assert_eq!(staged, delivered, "payer {payer} {period}");
        }
    }
}
