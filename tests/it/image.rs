//! The runtime image, run the way ECS runs it. `scripts/test` builds it with `scripts/image`
//! from the binary under test (`TEST_IMAGE`); buildah runs it (chroot isolation, the host's
//! network, so the local S3 server and RabbitMQ are on loopback as for the other tests).
//! A deployment's image is deploy/Containerfile.settings layered on it, started with the
//! environment of deploy/task-definition.json and the task input of a deploy/run-task/
//! example.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::demo::{assert_tables_match_truth, tables_and_truth_in};
use crate::ops::{Queue, emf, required_env, unique};
use crate::s3::assert_mirrored;
use crate::s3_support::{bucket, client, endpoint, generate};
use crate::support::run;

/// The repository's root (deploy/ and the Containerfiles are read from it).
pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A JSON file of the repository.
pub(crate) fn json(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// The value of `name` in an ECS `environment` list (`[{"name": …, "value": …}]`).
pub(crate) fn ecs_env<'a>(list: &'a Value, name: &str) -> &'a str {
    list.as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == name))
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

fn buildah(args: &[&str]) -> Output {
    let out = Command::new("buildah")
        .args(args)
        .output()
        .expect("buildah runs (scripts/test installs it)");
    eprintln!(
        "--- buildah {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn buildah_ok(args: &[&str]) -> String {
    let out = buildah(args);
    assert!(out.status.success(), "buildah {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The image under test.
fn image() -> String {
    required_env("TEST_IMAGE")
}

/// An image's OCI configuration (entrypoint, command, user, environment).
fn image_config(image: &str) -> Value {
    let inspect: Value =
        serde_json::from_str(&buildah_ok(&["inspect", "--type", "image", image])).unwrap();
    inspect["OCIv1"]["config"].clone()
}

/// A working container of an image; removed when dropped.
struct Container {
    id: String,
    entrypoint: Vec<String>,
}

impl Container {
    fn of(image: &str) -> Self {
        let entrypoint = image_config(image)["Entrypoint"]
            .as_array()
            .expect("the image has an entrypoint")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let id = buildah_ok(&["from", "--pull-never", "--quiet", image]);
        Self { id, entrypoint }
    }

    /// The entrypoint with `args`, as `docker run <image> <args>` runs it (buildah run
    /// takes the whole command line), with `env` set and `mounts` (host, container) bound.
    fn run(&self, env: &[(String, String)], mounts: &[(&Path, &str)], args: &[&str]) -> Output {
        let mut cmd = Command::new("buildah");
        cmd.args(["run", "--isolation", "chroot"]);
        for (key, value) in env {
            cmd.arg("--env").arg(format!("{key}={value}"));
        }
        for (host, inside) in mounts {
            cmd.arg("--volume")
                .arg(format!("{}:{inside}", host.display()));
        }
        cmd.arg(&self.id)
            .arg("--")
            .args(&self.entrypoint)
            .args(args);
        run(cmd)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        buildah(&["rm", &self.id]);
    }
}

/// An image a test built; removed when dropped (after the containers made from it).
struct Built(String);

impl Drop for Built {
    fn drop(&mut self) {
        buildah(&["rmi", &self.0]);
    }
}

/// What the Containerfile's runtime stage sets: entrypoint `curflow`, command `run`, the
/// non-root user; and the binary inside is the one under test.
#[test]
fn the_image_runs_curflow_as_a_non_root_user() {
    let image = image();
    let config = image_config(&image);
    assert_eq!(config["Entrypoint"], serde_json::json!(["curflow"]));
    assert_eq!(config["Cmd"], serde_json::json!(["run"]));
    assert_eq!(config["User"], "65532:65532");
    let container = Container::of(&image);
    let version = container.run(&[], &[], &["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("curflow {}", env!("CARGO_PKG_VERSION"))
    );
    // The image's own command, without a task: `run` refuses to guess, exit 2.
    let no_task = container.run(&[], &[], &["run"]);
    assert_eq!(no_task.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_task.stderr).contains("no task: set TASK_INPUT_JSON"));
}

/// `curflow demo` inside the image, as its user, in a folder bound from the host: the
/// final tables it writes match the generator's ground truth to the cent.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_in_the_image() {
    let dir = tempfile::tempdir().unwrap();
    // The image's user (65532) writes here.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let container = Container::of(&image());
    let out = container.run(
        &[],
        &[(dir.path(), "/home/nonroot/work")],
        &[
            "demo",
            "--rows",
            "6000",
            "--data-dir",
            "/home/nonroot/work/curflow-data",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("status: success"), "{summary}");
    let data = dir.path().join("curflow-data");
    let ctx = tables_and_truth_in(&data.join("warehouse"), &data.join("sources"), 6).await;
    assert_tables_match_truth(&ctx).await;
}

/// A deployment as deploy/ describes it: the settings file layered on the image
/// (deploy/Containerfile.settings), the container started with the task definition's
/// command and environment (its secret injected as ECS would), and the production
/// run-task example's TASK_INPUT_JSON. The run stages July exactly, prints EMF metrics
/// and publishes its notification.
#[tokio::test(flavor = "multi_thread")]
async fn the_production_run_task_example_runs_in_the_deployment_image() {
    let run_task = json("deploy/run-task/production.json");
    let overrides = &run_task["overrides"]["containerOverrides"][0];
    let task_input = ecs_env(&overrides["environment"], "TASK_INPUT_JSON").to_owned();
    let task: Value = serde_json::from_str(&task_input).unwrap();
    let payer = task["payers"][0].as_str().unwrap().to_owned();
    let env = task["env"].as_str().unwrap().to_owned();

    let ep = endpoint();
    let c = client(&ep);
    let (source, staging, warehouse) = (
        bucket(&c, "src").await,
        bucket(&c, "stg").await,
        bucket(&c, "wh").await,
    );
    generate(&ep, &source, &payer, (2025, 7), 1, 1_000).await;
    let routing_key = unique("curflow.image");
    let queue = Queue::bind(&routing_key).await;

    // The deployment's settings file and its image.
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("curflow.toml"),
        format!(
            "[{env}]\nstaging = \"s3://{staging}/staging\"\nwarehouse_dir = \"s3://{warehouse}/warehouse\"\n\n\
             [{env}.notify]\nexchange = \"amq.topic\"\nrouting_key = \"{routing_key}\"\nretries = 1\n\n\
             [[{env}.payers]]\npayer_id = \"{payer}\"\nsource = \"s3://{source}/cur2\"\n"
        ),
    )
    .unwrap();
    let deployment = format!("localhost/{}:test", unique("curflow-settings"));
    let containerfile = repo().join("deploy/Containerfile.settings");
    buildah_ok(&[
        "build",
        "--isolation",
        "chroot",
        "--pull=never",
        "--quiet",
        "--file",
        containerfile.to_str().unwrap(),
        "--build-arg",
        &format!("CURFLOW_IMAGE={}", image()),
        "--tag",
        &deployment,
        context.path().to_str().unwrap(),
    ]);
    let _image = Built(deployment.clone());
    let container = Container::of(&deployment);

    // The container's environment as ECS sets it: the task definition's variables, its
    // secret (the broker URL) and the run-task override; and what the task role gives a
    // task in AWS (here: the local server's endpoint and keys).
    let definition = json("deploy/task-definition.json");
    let spec = &definition["containerDefinitions"][0];
    assert_eq!(
        spec["name"], overrides["name"],
        "the override names the container"
    );
    let mut environment: Vec<(String, String)> = spec["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (name, value) = (e["name"].as_str(), e["value"].as_str());
            (name.unwrap().to_owned(), value.unwrap().to_owned())
        })
        .collect();
    let secrets: Vec<&str> = spec["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(secrets, ["AMQP_URL"]);
    environment.push(("AMQP_URL".into(), required_env("TEST_AMQP_URL")));
    environment.push(("TASK_INPUT_JSON".into(), task_input));
    for (key, value) in [
        ("AWS_ENDPOINT_URL", ep.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ALLOW_HTTP", "true"),
    ] {
        environment.push((key.into(), value.into()));
    }
    let command: Vec<&str> = spec["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let out = container.run(&environment, &[], &command);
    assert_eq!(out.status.code(), Some(0));

    assert_eq!(payer, crate::s3::PAYER, "the example's payer");
    assert_mirrored(&c, &source, &staging, (2025, 7)).await;
    assert_eq!(emf(&out, &["Env"])["TaskCompleted"], serde_json::json!(1.0));
    let messages = queue.drain().await;
    assert_eq!(messages.len(), 1, "one notification");
    let body = &messages[0].0;
    assert_eq!(body["status"], "success");
    assert_eq!(body["task"]["payers"], serde_json::json!([payer]));
    assert_eq!(
        (body["task"]["year"].clone(), body["task"]["month"].clone()),
        (2025.into(), 7.into())
    );
}
