//! The notification over TLS (`amqps://`): delivered through RabbitMQ's TLS listener when
//! `notify.ca_file` names the CA that `scripts/test` made for it, refused with nothing sent
//! when the CA is not trusted, a TLS ClientHello (never a plaintext AMQP header) as the
//! first bytes on the wire, and a CA file that cannot be read refused before the run.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use crate::ops::{Fixture, Queue, emf, notify_toml, required_env, unique};
use crate::support::run;

/// The broker's TLS URL; `scripts/test` adds the listener and makes its CA.
fn amqps_url() -> String {
    required_env("TEST_AMQPS_URL")
}

/// The `host:port` of the TLS listener, as curflow names the broker in its messages.
fn amqps_host() -> String {
    let url = url::Url::parse(&amqps_url()).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn amqps_with_the_configured_ca_delivers_the_notification() {
    let routing_key = unique("amqps.delivered");
    // Read back over the same broker's plaintext listener.
    let queue = Queue::bind(&routing_key).await;
    let ca = required_env("TEST_AMQPS_CA");
    let notify = notify_toml("{ env = \"OPS_AMQP_URL\" }", &routing_key, 0, "10ms");
    let fixture = Fixture::new(&format!("{notify}ca_file = \"{ca}\"\n"));
    let mut cmd = fixture.command();
    cmd.env("OPS_AMQP_URL", amqps_url())
        .env("CURFLOW_LOG", "debug,lapin=trace");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("run notification delivered"), "{stderr}");
    assert!(
        !stderr.contains("guest:guest"),
        "the URL's password is logged"
    );

    let messages = queue.drain().await;
    assert_eq!(messages.len(), 1, "one notification, through TLS");
    assert_eq!(messages[0].0["status"], "success");
    assert_eq!(messages[0].1, Some(2), "persistent");
}

#[tokio::test(flavor = "multi_thread")]
async fn amqps_to_a_broker_whose_ca_is_not_trusted_is_refused_and_nothing_arrives() {
    let routing_key = unique("amqps.untrusted");
    let queue = Queue::bind(&routing_key).await;
    // Retries configured: a refused certificate is not retried.
    let notify = notify_toml("{ env = \"OPS_AMQP_URL\" }", &routing_key, 3, "10ms");
    let fixture = Fixture::new(&format!("{notify}\n[ops.metrics]\nkind = \"emf\"\n"));

    let mut cmd = fixture.command();
    cmd.env("OPS_AMQP_URL", amqps_url());
    let out = run(cmd);
    // Not required: the run's own result decides the exit code.
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let refusal: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("certificate that is not trusted"))
        .collect();
    assert_eq!(refusal.len(), 1, "one error line: {stderr}");
    let line = refusal[0];
    for part in [
        amqps_host().as_str(),
        "UnknownIssuer",
        "nothing was sent",
        "notify.ca_file",
        "system trust store",
    ] {
        assert!(line.contains(part), "{part:?} missing from: {line}");
    }
    assert!(!stderr.contains("not delivered yet"), "retried: {stderr}");
    assert!(
        !stderr.contains("guest:guest"),
        "the URL's password is logged"
    );
    assert_eq!(emf(&out, &["Env"])["NotificationFailed"], 1.0);

    // Required: the same refusal makes the exit code 1.
    let mut cmd = fixture.command();
    cmd.env("OPS_AMQP_URL", amqps_url())
        .env("CURFLOW_NOTIFY__REQUIRED", "true");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("certificate that is not trusted"));

    assert!(queue.drain().await.is_empty(), "a message arrived");
}

#[test]
fn amqps_opens_with_a_tls_client_hello_never_a_plaintext_amqp_header() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let first_bytes = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("curflow connects");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut bytes = [0u8; 4];
        socket
            .read_exact(&mut bytes)
            .expect("curflow sends its first bytes");
        bytes
    });
    let notify = notify_toml("{ env = \"OPS_AMQP_URL\" }", "amqps.nowhere", 0, "10ms");
    let fixture = Fixture::new(&notify);
    let mut cmd = fixture.command();
    cmd.env(
        "OPS_AMQP_URL",
        format!("amqps://guest:guest@127.0.0.1:{port}/%2f"),
    );
    let out = run(cmd);
    let bytes = first_bytes.join().unwrap();
    assert_ne!(&bytes, b"AMQP", "a plaintext AMQP header was sent");
    assert_eq!(
        bytes[..2],
        [0x16, 0x03],
        "not a TLS handshake record: {bytes:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no confirmed delivery"));
}

#[test]
fn a_ca_file_that_cannot_be_read_is_refused_before_the_run() {
    let notify = notify_toml("{ env = \"OPS_AMQP_URL\" }", "amqps.nowhere", 0, "10ms");
    let fixture = Fixture::new(&notify);
    let missing = fixture.dir.path().join("no-such-ca.pem");
    let mut cmd = fixture.command();
    cmd.env("OPS_AMQP_URL", "amqps://127.0.0.1:1/%2f")
        .env("CURFLOW_NOTIFY__CA_FILE", &missing);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains("notify.ca_file") && lines[0].contains(&*missing.to_string_lossy()),
        "{stderr}"
    );
    assert!(
        !fixture.dir.path().join("staging").exists(),
        "staging was touched"
    );
}
