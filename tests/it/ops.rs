//! Operations: the RabbitMQ notification (delivered, delayed by a broker that comes up late,
//! given up on), CloudWatch metrics (PutMetricData read back, EMF lines, and both from one
//! profile), Secrets Manager, the fatal path and JSON logs — against the servers
//! `scripts/test` starts. The fixture, queue and settings helpers are shared with amqps.rs.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::Value;

use crate::support::{curflow, generate_july, run};

pub(crate) const PAYER: &str = "671238551718";

pub(crate) fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test, which starts the servers")
    })
}

/// A name no other test (or earlier run) uses.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A loopback port where nothing listens (just now).
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One payer's July 2025 CUR under `dir/sources`, and a settings file with profile `ops`
/// (one billing period) plus `extra` TOML appended to it.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    config: PathBuf,
}

impl Fixture {
    pub(crate) fn new(extra: &str) -> Self {
        Self::with_staging(extra, None)
    }

    fn with_staging(extra: &str, staging: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("sources/cur2");
        generate_july(dir.path(), &source, PAYER, &["--rows", "1500"]);
        let staging = staging.map_or_else(|| dir.path().join("staging"), Path::to_path_buf);
        let config = dir.path().join("ops.toml");
        let text = format!(
            "[ops]\nstaging = \"{}\"\nwarehouse_dir = \"{}\"\nperiods = 1\n\n[[ops.payers]]\npayer_id = \"{PAYER}\"\nsource = \"{}\"\n\n{extra}",
            staging.display(),
            dir.path().join("warehouse").display(),
            source.display()
        );
        std::fs::write(&config, text).unwrap();
        Self { dir, config }
    }

    /// `curflow run` of the task given as flags, with the local AWS endpoint in the environment.
    pub(crate) fn command(&self) -> Command {
        self.command_with(&[
            "--env", "ops", "--year", "2025", "--month", "7", "--payer", PAYER,
        ])
    }

    /// `curflow run` with these task flags (none: the task comes from TASK_INPUT_JSON).
    fn command_with(&self, task: &[&str]) -> Command {
        let mut args = vec!["run", "--config", self.config.to_str().unwrap()];
        args.extend_from_slice(task);
        let mut cmd = curflow(self.dir.path(), &args);
        aws_env(&mut cmd);
        cmd
    }
}

fn aws_env(cmd: &mut Command) {
    cmd.env("AWS_ENDPOINT_URL", required_env("TEST_S3_ENDPOINT"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE");
}

async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(required_env("TEST_S3_ENDPOINT"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await
}

/// A queue bound to `amq.topic` with its own routing key: where a test's notification lands.
pub(crate) struct Queue {
    channel: Channel,
    _connection: Connection,
    name: String,
}

impl Queue {
    pub(crate) async fn bind(routing_key: &str) -> Self {
        Self::bind_at(&required_env("TEST_AMQP_URL"), routing_key).await
    }

    /// [`Queue::bind`] on the broker (and virtual host) of `url`.
    async fn bind_at(url: &str, routing_key: &str) -> Self {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("RabbitMQ at TEST_AMQP_URL answers (run scripts/test)");
        let channel = connection.create_channel().await.unwrap();
        let name = unique("curflow-test");
        channel
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                name.as_str().into(),
                "amq.topic".into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Self {
            channel,
            _connection: connection,
            name,
        }
    }

    /// Every message waiting, as (JSON body, delivery mode); deletes the queue.
    pub(crate) async fn drain(self) -> Vec<(Value, Option<u8>)> {
        let mut out = Vec::new();
        let options = BasicGetOptions { no_ack: true };
        while let Some(message) = self
            .channel
            .basic_get(self.name.as_str().into(), options)
            .await
            .unwrap()
        {
            let body = serde_json::from_slice(&message.delivery.data).expect("the body is JSON");
            out.push((body, *message.delivery.properties.delivery_mode()));
        }
        self.channel
            .queue_delete(self.name.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
        out
    }
}

/// `[ops.notify]` publishing to `amq.topic` with `routing_key`, URL from `amqp_url`.
pub(crate) fn notify_toml(
    amqp_url: &str,
    routing_key: &str,
    retries: u32,
    backoff: &str,
) -> String {
    notify_section("ops", amqp_url, routing_key, retries, backoff)
}

/// [`notify_toml`] for profile `profile`.
pub(crate) fn notify_section(
    profile: &str,
    amqp_url: &str,
    routing_key: &str,
    retries: u32,
    backoff: &str,
) -> String {
    format!(
        "[{profile}.notify]\namqp_url = {amqp_url}\nexchange = \"amq.topic\"\nrouting_key = \"{routing_key}\"\nretries = {retries}\nbackoff = \"{backoff}\"\ntimeout = \"5s\"\n"
    )
}

/// The EMF objects printed on stdout, by their dimension names.
pub(crate) fn emf(out: &Output, dimensions: &[&str]) -> Value {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| {
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] == serde_json::json!(dimensions)
        })
        .unwrap_or_else(|| panic!("no EMF line with dimensions {dimensions:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn notification_from_a_secrets_manager_url_and_emf_metrics() {
    let routing_key = unique("ops.delivered");
    let queue = Queue::bind(&routing_key).await;
    let secret = unique("curflow/amqp");
    let client = aws_sdk_secretsmanager::Client::new(&aws_config().await);
    let value =
        serde_json::json!({"url": required_env("TEST_AMQP_URL"), "user": "guest"}).to_string();
    client
        .create_secret()
        .name(&secret)
        .secret_string(value)
        .send()
        .await
        .expect("create the secret in moto (run scripts/test)");
    let notify = notify_toml(
        &format!("{{ secret = \"{secret}\", key = \"url\" }}"),
        &routing_key,
        2,
        "100ms",
    );
    let fixture = Fixture::new(&format!(
        "{notify}\n[ops.metrics]\nkind = \"emf\"\nnamespace = \"curflow-test\"\n"
    ));
    let mut cmd = fixture.command_with(&[]);
    cmd.env(
        "TASK_INPUT_JSON",
        format!(r#"{{"year": 2025, "month": 7, "payers": ["{PAYER}"], "partnerId": 1000218, "module": "analytics", "env": "ops"}}"#),
    );
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));

    let messages = queue.drain().await;
    assert_eq!(messages.len(), 1, "one notification");
    let (body, delivery_mode) = &messages[0];
    assert_eq!(*delivery_mode, Some(2), "persistent");
    assert_eq!(body["schema_version"], 3);
    assert_eq!(body["status"], "success");
    assert_eq!(body["curflow_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["task"]["payers"], serde_json::json!([PAYER]));
    assert_eq!(body["task"]["partnerId"], 1000218);
    assert_eq!(body["task"]["env"], "ops");
    let period = &body["periods"][0];
    assert_eq!(period["payer_id"], PAYER);
    assert_eq!(period["billing_period"], "2025-07");
    assert_eq!(period["outcome"], "synchronized");
    assert_eq!(period["analytics"]["status"], "succeeded");
    let files = period["files_copied"].as_u64().unwrap();
    assert!(files > 0);
    assert_eq!(body["totals"]["files_copied"].as_u64(), Some(files));
    assert!(body["duration_seconds"].as_f64().unwrap() > 0.0);

    // EMF: the run line and the payer line tell the same counts as the message.
    let run_line = emf(&out, &["Env"]);
    assert_eq!(
        run_line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "curflow-test"
    );
    assert_eq!(run_line["Env"], "ops");
    assert_eq!(run_line["TaskCompleted"], 1.0);
    assert_eq!(run_line["FatalError"], 0.0);
    assert_eq!(run_line["NotificationFailed"], 0.0);
    let payer_line = emf(&out, &["Env", "PayerId"]);
    assert_eq!(payer_line["PayerId"], PAYER);
    assert_eq!(payer_line["FilesCopied"].as_f64(), Some(files as f64));
    assert_eq!(payer_line["PeriodsSynchronized"], 1.0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("status: success"),
        "summary still printed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudwatch_metrics_read_back() {
    let namespace = unique("curflow-test");
    let fixture = Fixture::new(&format!(
        "[ops.metrics]\nkind = \"cloudwatch\"\nnamespace = \"{namespace}\"\n"
    ));
    let out = run(fixture.command());
    assert_eq!(out.status.code(), Some(0));

    use aws_sdk_cloudwatch::types::Dimension;
    let client = aws_sdk_cloudwatch::Client::new(&aws_config().await);
    let listed = client
        .list_metrics()
        .namespace(&namespace)
        .send()
        .await
        .expect("ListMetrics");
    let names: std::collections::BTreeSet<&str> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    for name in [
        "FilesCopied",
        "BytesCopied",
        "FilesDeleted",
        "PeriodsSynchronized",
        "AlreadySynchronized",
        "AnalyticsFailed",
        "ReconciliationMismatches",
        "DurationSeconds",
        "TaskCompleted",
        "FatalError",
    ] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    let env = Dimension::builder().name("Env").value("ops").build();
    let payer = Dimension::builder().name("PayerId").value(PAYER).build();
    let sum = async |name: &str, dimensions: Vec<Dimension>| {
        metric_sum(&client, &namespace, name, dimensions).await
    };
    assert!(sum("FilesCopied", vec![env.clone(), payer]).await > 0.0);
    assert_eq!(sum("TaskCompleted", vec![env.clone()]).await, 1.0);
    assert_eq!(sum("FatalError", vec![env]).await, 0.0);
}

/// The sum of metric `name` with exactly `dimensions` in `namespace`, within two hours of
/// now. GetMetricStatistics, not GetMetricData: moto's GetMetricData ignores the namespace
/// and would mix in other tests' runs.
async fn metric_sum(
    client: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dimensions: Vec<aws_sdk_cloudwatch::types::Dimension>,
) -> f64 {
    let now = chrono::Utc::now().timestamp();
    let stats = client
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(name)
        .set_dimensions(Some(dimensions))
        .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            now - 7200,
        ))
        .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            now + 7200,
        ))
        .period(60)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .expect("GetMetricStatistics");
    stats.datapoints().iter().filter_map(|d| d.sum()).sum()
}

/// Both metrics sinks in one profile: PutMetricData arrives at CloudWatch and the EMF lines
/// on stdout, printed before the summary, tell the same counts.
#[tokio::test(flavor = "multi_thread")]
async fn cloudwatch_and_emf_metrics_in_one_profile() {
    use aws_sdk_cloudwatch::types::Dimension;
    let namespace = unique("curflow-test");
    let fixture = Fixture::new(&format!(
        "[ops.metrics]\nkinds = [\"cloudwatch\", \"emf\"]\nnamespace = \"{namespace}\"\n"
    ));
    let out = run(fixture.command());
    assert_eq!(out.status.code(), Some(0));

    let run_line = emf(&out, &["Env"]);
    assert_eq!(
        run_line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        namespace.as_str()
    );
    assert_eq!(run_line["TaskCompleted"], 1.0);
    assert_eq!(run_line["FatalError"], 0.0);
    let payer_line = emf(&out, &["Env", "PayerId"]);
    let files = payer_line["FilesCopied"].as_f64().unwrap();
    assert!(files > 0.0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.find("status: success").expect("summary printed");
    assert!(
        stdout.find("\"_aws\"").is_some_and(|emf| emf < summary),
        "EMF lines come before the summary: {stdout}"
    );

    // Every value of both EMF lines arrived at CloudWatch with the same dimensions. moto
    // matches every datapoint that carries the dimensions asked for (among others), so the
    // counts sent with both `Env` and `Env, PayerId` are read back with the payer's set.
    let client = aws_sdk_cloudwatch::Client::new(&aws_config().await);
    let env = Dimension::builder().name("Env").value("ops").build();
    let payer = Dimension::builder().name("PayerId").value(PAYER).build();
    let names = |line: &Value| -> Vec<String> {
        line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_owned())
            .collect()
    };
    let counts = names(&payer_line);
    let run_only: Vec<String> = names(&run_line)
        .into_iter()
        .filter(|name| !counts.contains(name))
        .collect();
    assert!(
        run_only.contains(&"TaskCompleted".to_owned()),
        "{run_only:?}"
    );
    for (line, names, dimensions) in [
        (&run_line, run_only, vec![env.clone()]),
        (&payer_line, counts, vec![env, payer]),
    ] {
        for name in &names {
            let name = name.as_str();
            let sent = metric_sum(&client, &namespace, name, dimensions.clone()).await;
            let printed = line[name].as_f64().unwrap();
            assert!(
                (sent - printed).abs() < 1e-6,
                "{name} {dimensions:?}: CloudWatch {sent}, EMF {printed}"
            );
        }
    }
}

#[test]
fn logs_are_json_lines_by_default_in_prod_when_not_on_a_terminal() {
    let fixture = Fixture::new("");
    let prod = fixture.dir.path().join("prod.toml");
    let text = std::fs::read_to_string(&fixture.config).unwrap();
    std::fs::write(&prod, text.replace("[ops", "[prod")).unwrap();
    let logs = |env: &str, config: &Path| {
        let mut cmd = curflow(
            fixture.dir.path(),
            &[
                "run",
                "--config",
                config.to_str().unwrap(),
                "--env",
                env,
                "--year",
                "2025",
                "--month",
                "7",
                "--payer",
                PAYER,
            ],
        );
        cmd.env("CURFLOW_LOG", "info");
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Another profile, stderr captured: text.
    let text = logs("ops", &fixture.config);
    assert!(text.contains("payer=671238551718"), "{text}");
    assert!(serde_json::from_str::<Value>(text.lines().next().unwrap()).is_err());
    // `prod`, stderr captured (a container's log driver): one JSON object per line.
    assert_json_lines_name_the_period(&logs("prod", &prod));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_secrets_manager_takes_the_fatal_path() {
    // The Snowflake key is kept in Secrets Manager, which does not answer: the run cannot
    // start, through no fault of its settings. Fatal path, not "bad settings".
    let routing_key = unique("ops.fatal");
    let queue = Queue::bind(&routing_key).await;
    let notify = notify_toml("{ env = \"OPS_AMQP_URL\" }", &routing_key, 1, "10ms");
    let fixture = Fixture::new(&format!(
        "{notify}\n[ops.metrics]\nkind = \"emf\"\n\n[ops.snowflake]\naccount = \"xy12345.us-east-1\"\n\
         user = \"curflow\"\nrole = \"CURFLOW\"\nwarehouse = \"CURFLOW_WH\"\ndatabase = \"FINOPS\"\n\
         schema = \"CUR\"\nstorage_integration = \"CURFLOW_S3\"\n\
         private_key = {{ secret = \"prod/curflow/snowflake\", key = \"private_key\" }}\n"
    ));
    let mut cmd = fixture.command();
    cmd.env("OPS_AMQP_URL", required_env("TEST_AMQP_URL"))
        .env("CURFLOW_WAREHOUSE", "snowflake")
        .env("CURFLOW_STAGING", "s3://curflow-never-touched/staging")
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", dead_port()),
        );
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(
        errors[0].contains("prod/curflow/snowflake")
            && errors[0].contains("Secrets Manager")
            && errors[0].contains("a later run retries"),
        "{}",
        errors[0]
    );
    let run_line = emf(&out, &["Env"]);
    assert_eq!(run_line["FatalError"], 1.0);
    assert_eq!(run_line["TaskCompleted"], 0.0);
    let messages = queue.drain().await;
    assert_eq!(messages.len(), 1);
    let body = &messages[0].0;
    assert_eq!(body["status"], "failed");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("prod/curflow/snowflake")),
        "{body}"
    );
    assert_eq!(body["periods"], serde_json::json!([]));
}

/// Every line of `logs` is a JSON object, and one has the fields `payer` and `period` of
/// the fixture's payer-period.
fn assert_json_lines_name_the_period(logs: &str) {
    let events: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["payer"] == PAYER && e["period"] == "2025-07"),
        "{logs}"
    );
}

/// Runs `rabbitmqctl` (installed with the broker by `scripts/test`) on the test broker.
fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs (scripts/test installs RabbitMQ)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_profiles_vhost_replaces_the_urls() {
    // The seed's VHOST_MAPPING: one broker URL, a virtual host per environment.
    let vhost = unique("curflow-vhost");
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let mut in_vhost = url::Url::parse(&required_env("TEST_AMQP_URL")).unwrap();
    in_vhost.set_path(&format!("/{vhost}"));
    let routing_key = unique("ops.vhost");
    let there = Queue::bind_at(in_vhost.as_str(), &routing_key).await;
    let default_vhost = Queue::bind(&routing_key).await;
    let notify = notify_toml("{ env = \"OPS_AMQP_URL\" }", &routing_key, 2, "100ms");
    let fixture = Fixture::new(&format!("{notify}vhost = \"{vhost}\"\n"));
    let mut cmd = fixture.command();
    cmd.env("OPS_AMQP_URL", required_env("TEST_AMQP_URL"));
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));

    let messages = there.drain().await;
    assert_eq!(messages.len(), 1, "delivered in virtual host {vhost}");
    assert_eq!(messages[0].0["status"], "success");
    assert!(
        default_vhost.drain().await.is_empty(),
        "nothing in the URL's own virtual host"
    );
    rabbitmqctl(&["delete_vhost", &vhost]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metrics_failure_is_logged_and_not_fatal() {
    let routing_key = unique("ops.metrics-down");
    let queue = Queue::bind(&routing_key).await;
    let notify = notify_toml("{ env = \"OPS_AMQP_URL\" }", &routing_key, 1, "10ms");
    let fixture = Fixture::new(&format!(
        "{notify}\n[ops.metrics]\nkind = \"cloudwatch\"\nnamespace = \"curflow-test\"\n"
    ));
    let mut cmd = fixture.command();
    // CloudWatch is unreachable; the staging and sources are local folders.
    cmd.env("OPS_AMQP_URL", required_env("TEST_AMQP_URL")).env(
        "AWS_ENDPOINT_URL",
        format!("http://127.0.0.1:{}", dead_port()),
    );
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "metrics never decide the exit code"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("metrics not sent") && stderr.contains("cloudwatch:PutMetricData"),
        "the failure is logged with what to grant: {stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("status: success"));
    let messages = queue.drain().await;
    assert_eq!(messages.len(), 1, "the notification still goes out");
    assert_eq!(messages[0].0["status"], "success");
}

/// Forwards every connection to `port` to the broker at `target`, from now on.
fn forward(listener: TcpListener, target: String) {
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_down_at_start_then_up_gets_the_message_after_retries() {
    let routing_key = unique("ops.late");
    let queue = Queue::bind(&routing_key).await;
    let port = dead_port();
    let real = url::Url::parse(&required_env("TEST_AMQP_URL")).unwrap();
    let target = format!(
        "{}:{}",
        real.host_str().unwrap(),
        real.port().unwrap_or(5672)
    );
    let mut late = real.clone();
    late.set_port(Some(port)).unwrap();
    let fixture = Fixture::new(&notify_toml(
        "{ env = \"OPS_AMQP_URL\" }",
        &routing_key,
        8,
        "200ms",
    ));
    let mut cmd = fixture.command();
    cmd.env("OPS_AMQP_URL", late.as_str())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Start the "broker" once the first attempt has failed.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("not delivered yet") {
            break;
        }
    }
    assert!(
        seen.contains("not delivered yet"),
        "a first attempt failed: {seen}"
    );
    forward(TcpListener::bind(("127.0.0.1", port)).unwrap(), target);
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    eprintln!("--- stdout\n{stdout}--- stderr\n{seen}");
    assert_eq!(status.code(), Some(0));
    assert!(!seen.contains("no confirmed delivery"), "{seen}");
    let messages = queue.drain().await;
    assert_eq!(messages.len(), 1, "delivered once, after retries");
    assert_eq!(messages[0].0["status"], "success");
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_down_throughout_gives_up_and_follows_the_exit_rule() {
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", dead_port());
    let notify = notify_toml("{ env = \"OPS_AMQP_URL\" }", "ops.nowhere", 2, "50ms");
    let fixture = Fixture::new(&format!("{notify}\n[ops.metrics]\nkind = \"emf\"\n"));
    let mut cmd = fixture.command();
    cmd.env("OPS_AMQP_URL", &url);
    let out = run(cmd);
    // Not required: the run's own result decides the exit code.
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("not delivered yet").count(),
        2,
        "two retries: {stderr}"
    );
    assert!(stderr.contains("after 3 attempt(s)"), "{stderr}");
    assert_eq!(emf(&out, &["Env"])["NotificationFailed"], 1.0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("status: success"));

    // Required: the same failure makes the exit code 1 (the run itself is already synchronized).
    let mut cmd = fixture.command();
    cmd.env("OPS_AMQP_URL", &url)
        .env("CURFLOW_NOTIFY__REQUIRED", "true");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Already synchronized"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_never_reaches_the_logs() {
    // A password the broker refuses, so that every error path runs, kept in Secrets Manager.
    let password = unique("pw-never-logged");
    let mut url = url::Url::parse(&required_env("TEST_AMQP_URL")).unwrap();
    url.set_username("curflow-test").unwrap();
    url.set_password(Some(&password)).unwrap();
    let secret = unique("curflow/amqp-refused");
    let client = aws_sdk_secretsmanager::Client::new(&aws_config().await);
    client
        .create_secret()
        .name(&secret)
        .secret_string(serde_json::json!({ "url": url.as_str() }).to_string())
        .send()
        .await
        .expect("create the secret in moto (run scripts/test)");
    let notify = notify_toml(
        &format!("{{ secret = \"{secret}\", key = \"url\" }}"),
        "ops.secret",
        1,
        "10ms",
    );
    let fixture = Fixture::new(&notify);
    for format in ["text", "json"] {
        let mut cmd = fixture.command();
        cmd.env("CURFLOW_LOG", "debug,lapin=trace,aws_smithy_runtime=trace")
            .args(["--log-format", format]);
        let out = run(cmd);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            all.contains("no confirmed delivery"),
            "the failure is reported"
        );
        assert!(
            !all.contains(&password),
            "the password leaked ({format} logs)"
        );
    }
    // A password written in the settings is refused, without repeating it.
    let fixture = Fixture::new(&notify_toml(&format!("\"{url}\""), "ops.secret", 1, "10ms"));
    let out = run(fixture.command());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("notify.amqp_url") && !stderr.contains(&password),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_fails_sends_fatal_error_and_a_failed_message_in_json_logs() {
    let routing_key = unique("ops.failed");
    let queue = Queue::bind(&routing_key).await;
    // Staging is a file where a directory is expected: nothing can be staged.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let notify = notify_toml("{ env = \"OPS_AMQP_URL\" }", &routing_key, 1, "10ms");
    let fixture = Fixture::with_staging(
        &format!("{notify}\n[ops.metrics]\nkind = \"emf\"\n"),
        Some(blocker.path()),
    );
    let mut cmd = fixture.command();
    cmd.env("OPS_AMQP_URL", required_env("TEST_AMQP_URL"))
        .args(["--log-format", "json"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(emf(&out, &["Env"])["FatalError"], 1.0);
    assert_eq!(emf(&out, &["Env"])["TaskCompleted"], 0.0);
    let messages = queue.drain().await;
    assert_eq!(messages.len(), 1);
    let body = &messages[0].0;
    assert_eq!(body["status"], "failed");
    assert_eq!(body["periods"][0]["outcome"], "failed");
    assert!(
        body["periods"][0]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    // JSON logs: one object per line; the failure names its payer and period.
    assert_json_lines_name_the_period(&String::from_utf8_lossy(&out.stderr));
}
