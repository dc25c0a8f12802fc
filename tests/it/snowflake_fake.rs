//! A fake of the Snowflake SQL API v2 on loopback, following the official reference: the
//! only in-repo fake the tests use (Snowflake has no local server).
//!
//! - `POST /api/v2/statements?requestId=…[&retry=true]`: checks the `Authorization: Bearer`
//!   key-pair JWT (RS256 signature with the test's public key, `iss`/`sub`/`iat`/`exp`
//!   claims) and `X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT`; splits the statement
//!   text and checks `parameters.MULTI_STATEMENT_COUNT`; refuses bindings in a
//!   multi-statement request; answers 200 with a `ResultSet` (a multi-statement request:
//!   `statementHandles`), 202 with a `QueryStatus` when told to run "asynchronously", 422
//!   with a `QueryFailureStatus` when a rule says a statement fails, or 429/503 when told
//!   to throttle. A resubmitted `requestId` gets the first submission's statement back
//!   without running it again.
//! - `GET /api/v2/statements/{handle}[?partition=N]`: 202 while "running", then the result,
//!   `partition` N of `resultSetMetaData.partitionInfo`.
//! - `POST /api/v2/statements/{handle}/cancel`.
//!
//! By default statements are not executed: a test scripts the rows a statement returns (by
//! a substring of its text) and reads back every statement received, in order. After
//! [`FakeSnowflake::execute_in_fakesnow`] they are executed: each request's statements run in
//! order as one session of fakesnow (Snowflake SQL on DuckDB) in a long-lived Python process
//! (tests/snowflake/fakesnow_executor.py), whose database keeps the final tables and the
//! payer table across requests and reads stages from the S3 test server; a scripted answer
//! still wins for the statements it matches, and a statement fakesnow fails answers 422.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use curflow::warehouse::snowflake::ddl::split_statements;
use serde_json::{Value, json};

/// What a statement does in the fake.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Returns these columns and rows (every cell as text, as `jsonv2` does).
    Rows(Vec<&'static str>, Vec<Vec<Option<String>>>),
    /// Fails with a 422 carrying this code, SQLSTATE and message.
    Fail(&'static str, &'static str, &'static str),
}

/// One POST received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request id.
    pub request_id: String,
    /// Whether it was a resubmission (`retry=true`).
    pub retry: bool,
    /// The statements, split as the API splits them.
    pub statements: Vec<String>,
    /// The request body.
    pub body: Value,
}

/// A statement's result: column names, rows, and (multi-statement) its statements' handles.
type Rows = (Vec<String>, Vec<Vec<Option<String>>>, Vec<String>);

/// Rows as the SQL API's `jsonv2` gives them: every cell text or null.
type Cells = Vec<Vec<Option<String>>>;

/// A finished or running statement.
#[derive(Debug, Clone)]
struct Statement {
    polls_left: usize,
    /// The result, or the HTTP status and body of its failure.
    outcome: Result<Rows, (u16, Value)>,
}

#[derive(Default)]
struct State {
    /// (ACCOUNT, USER, SPKI DER of the accepted public key).
    identity: (String, String, Vec<u8>),
    /// Seconds added to the fake's clock (to make tokens look expired).
    clock_skew: i64,
    rules: Vec<(&'static str, Answer)>,
    /// Statuses to answer the next POSTs with instead of serving them.
    throttle: VecDeque<u16>,
    /// 202 answers (POST and status polls) before a statement is done.
    async_polls: usize,
    /// Rows per result partition.
    partition_rows: usize,
    received: Vec<Received>,
    executed: Vec<String>,
    by_request: HashMap<String, Value>,
    statements: HashMap<String, Statement>,
    cancelled: Vec<String>,
    auth_failures: Vec<String>,
    next: u64,
    /// Set by [`FakeSnowflake::execute_in_fakesnow`]: where statements run.
    executor: Option<Executor>,
}

/// The Python process that runs statements in fakesnow, one JSON request and answer per
/// line (the protocol is described in tests/snowflake/fakesnow_executor.py). It ends when
/// the test binary does: its stdin closes.
struct Executor {
    /// Kept so that the process is not reaped while the fake serves.
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The process's stderr (fakesnow's and Python's messages), shown when it fails.
    log: tempfile::NamedTempFile,
}

/// How a statement went in fakesnow: its columns and rows, or (code, SQLSTATE, message).
type Executed = Result<(Vec<String>, Cells), (String, String, String)>;

impl Executor {
    /// Starts the executor with `TEST_PYTHON` (set by scripts/test, which installs
    /// fakesnow), reading stages from the S3 server at `s3_endpoint`.
    fn start(s3_endpoint: &str) -> Self {
        let python = std::env::var("TEST_PYTHON").expect(
            "TEST_PYTHON is not set: run the tests with scripts/test, which installs fakesnow",
        );
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snowflake/fakesnow_executor.py");
        let log = tempfile::NamedTempFile::new().expect("a temporary file for the executor log");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(s3_endpoint)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.reopen().expect("reopen the executor log")))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{python} {}: {e} (run the tests with scripts/test)",
                    script.display()
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut executor = Self {
            _child: child,
            stdin,
            stdout,
            log,
        };
        let ready = executor.read();
        assert!(
            ready.as_ref().is_ok_and(|r| r["ready"] == true),
            "the fakesnow executor did not start (scripts/test installs fakesnow into TEST_PYTHON): {ready:?}"
        );
        executor
    }

    /// The next answer, or why there is none (the process ended: its log).
    fn read(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        let read = self.stdout.read_line(&mut line);
        match read {
            Ok(n) if n > 0 => serde_json::from_str(&line).map_err(|e| format!("{e}: {line}")),
            _ => Err(format!(
                "the fakesnow executor ended: {}",
                std::fs::read_to_string(self.log.path()).unwrap_or_default()
            )),
        }
    }

    fn call(&mut self, request: &Value) -> Result<Value, String> {
        writeln!(self.stdin, "{request}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("the fakesnow executor does not listen ({e})"))?;
        self.read()
    }

    /// A new session in `database`.`schema`.
    fn open(&mut self, database: &Value, schema: &Value) -> Result<u64, String> {
        let answer = self.call(&json!({"op": "open", "database": database, "schema": schema}))?;
        answer["session"]
            .as_u64()
            .ok_or_else(|| format!("no session: {answer}"))
    }

    /// Ends a session: its temporary objects go, an open transaction is rolled back.
    fn close(&mut self, session: u64) {
        let _ = self.call(&json!({"op": "close", "session": session}));
    }

    /// Runs one statement in `session`, `?` bound to `bindings`.
    fn run(&mut self, session: u64, sql: &str, bindings: &[String]) -> Result<Executed, String> {
        let answer =
            self.call(&json!({"op": "run", "session": session, "sql": sql, "bindings": bindings}))?;
        if let Some(error) = answer.get("error") {
            let text = |key: &str| error[key].as_str().unwrap_or_default().to_owned();
            return Ok(Err((text("code"), text("sqlState"), text("message"))));
        }
        let columns = answer["columns"]
            .as_array()
            .map(|c| {
                c.iter()
                    .map(|n| n.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let rows = answer["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        row.as_array()
                            .map(|cells| {
                                cells
                                    .iter()
                                    .map(|c| c.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Ok((columns, rows)))
    }
}

/// The fake, serving on a thread of its own until dropped with the test.
#[derive(Clone)]
pub struct FakeSnowflake {
    state: Arc<Mutex<State>>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl FakeSnowflake {
    /// Serves on a free loopback port, accepting JWTs of `account`.`user` signed by the key
    /// whose public half (SubjectPublicKeyInfo DER) is `public_key`.
    pub fn start(account: &str, user: &str, public_key: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            identity: (
                account.to_ascii_uppercase(),
                user.to_ascii_uppercase(),
                public_key,
            ),
            partition_rows: 1000,
            ..State::default()
        }));
        let serving = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&serving);
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        Self { state, url }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Statements containing `needle` get `answer` (the first matching rule wins).
    pub fn answer(&self, needle: &'static str, answer: Answer) {
        self.with(|s| s.rules.push((needle, answer)));
    }

    /// The next POSTs are answered with these statuses (e.g. 429, 503) first.
    pub fn throttle(&self, statuses: &[u16]) {
        self.with(|s| s.throttle.extend(statuses));
    }

    /// Every statement answers 202 `polls` times before its result.
    pub fn run_async(&self, polls: usize) {
        self.with(|s| s.async_polls = polls);
    }

    /// Results are split into partitions of `rows` rows.
    pub fn partition_rows(&self, rows: usize) {
        self.with(|s| s.partition_rows = rows.max(1));
    }

    /// Moves the fake's clock by `seconds`.
    pub fn skew_clock(&self, seconds: i64) {
        self.with(|s| s.clock_skew = seconds);
    }

    /// Every POST received.
    pub fn received(&self) -> Vec<Received> {
        self.with(|s| s.received.clone())
    }

    /// Every statement executed, in order (a statement after a failed one is not).
    pub fn executed(&self) -> Vec<String> {
        self.with(|s| s.executed.clone())
    }

    /// From now on statements are executed in fakesnow, which reads stages from the S3
    /// server at `s3_endpoint`; rules still answer the statements they match.
    pub fn execute_in_fakesnow(&self, s3_endpoint: &str) {
        let executor = Executor::start(s3_endpoint);
        self.with(|s| s.executor = Some(executor));
    }

    /// Runs `statements` in one fakesnow session in `database`.`schema`, outside the API (as
    /// the account's owner would in a worksheet, e.g. to fill the payer table or read a
    /// final table back), and returns each one's rows. Panics when one fails.
    pub fn sql(&self, (database, schema): (&str, &str), statements: &[&str]) -> Vec<Cells> {
        self.with(|s| {
            let executor = s
                .executor
                .as_mut()
                .expect("FakeSnowflake::sql needs execute_in_fakesnow first");
            let session = executor
                .open(&json!(database), &json!(schema))
                .unwrap_or_else(|e| panic!("{e}"));
            let mut out = Vec::new();
            for statement in statements {
                match executor.run(session, statement, &[]) {
                    Ok(Ok((_, rows))) => out.push(rows),
                    failed => {
                        executor.close(session);
                        panic!("{statement}: {failed:?}");
                    }
                }
            }
            executor.close(session);
            out
        })
    }

    /// Why tokens were refused.
    pub fn auth_failures(&self) -> Vec<String> {
        self.with(|s| s.auth_failures.clone())
    }
}

/// One connection: one request, one answer, closed (`Connection: close`).
fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (status, answer) = {
        let mut state = state.lock().unwrap();
        handle(&mut state, &method, &target, &headers, &body)
    };
    let text = answer.to_string();
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        401 => "Unauthorized",
        408 => "Request Timeout",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

fn query(target: &str) -> (String, HashMap<String, String>) {
    let url = url::Url::parse(&format!("http://fake{target}")).unwrap();
    (
        url.path().to_owned(),
        url.query_pairs().into_owned().collect(),
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Checks the key-pair JWT as Snowflake does; the reason when it is refused.
fn check_jwt(state: &State, headers: &HashMap<String, String>) -> Result<(), String> {
    if headers
        .get("x-snowflake-authorization-token-type")
        .map(String::as_str)
        != Some("KEYPAIR_JWT")
    {
        return Err("token type is not KEYPAIR_JWT".into());
    }
    let jwt = headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("no Bearer token")?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("not a JWT".into());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string());
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err("alg is not RS256".into());
    }
    let (account, user, public_key) = &state.identity;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(
            format!("{}.{claims}", parts[0]).as_bytes(),
            &decode(signature)?,
        )
        .map_err(|_| "signature does not match the user's public key".to_owned())?;
    let claims: Value = serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public_key);
    let fingerprint = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    );
    if claims["sub"] != format!("{account}.{user}") {
        return Err(format!("sub {} is not {account}.{user}", claims["sub"]));
    }
    if claims["iss"] != format!("{account}.{user}.{fingerprint}") {
        return Err(format!("iss {} names another key", claims["iss"]));
    }
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    let now = now() + state.clock_skew;
    if exp <= now {
        return Err("JWT token is expired".into());
    }
    if iat > now + 60 || exp - iat > 3600 {
        return Err("iat/exp out of range (at most one hour)".into());
    }
    Ok(())
}

fn handle(
    state: &mut State,
    method: &str,
    target: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> (u16, Value) {
    if let Err(reason) = check_jwt(state, headers) {
        state.auth_failures.push(reason.clone());
        return (
            401,
            json!({"code": "390144", "message": format!("JWT token is invalid. [{reason}]")}),
        );
    }
    let (path, params) = query(target);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["api", "v2", "statements"]) => submit(state, &params, body),
        ("GET", ["api", "v2", "statements", handle]) => status(state, handle, &params),
        ("POST", ["api", "v2", "statements", handle, "cancel"]) => {
            state.cancelled.push((*handle).to_owned());
            (
                200,
                json!({"code": "000604", "sqlState": "57014", "message": "SQL execution canceled", "statementHandle": handle}),
            )
        }
        _ => (404, json!({"message": format!("no route {method} {path}")})),
    }
}

fn failure(code: &str, sql_state: &str, message: &str, handle: &str) -> Value {
    json!({
        "code": code, "sqlState": sql_state, "message": message,
        "statementHandle": handle, "createdOn": now() * 1000,
        "statementStatusUrl": format!("/api/v2/statements/{handle}"),
    })
}

fn submit(state: &mut State, params: &HashMap<String, String>, body: &[u8]) -> (u16, Value) {
    if let Some(status) = state.throttle.pop_front() {
        return (status, json!({"message": "throttled by the fake"}));
    }
    let request_id = params.get("requestId").cloned().unwrap_or_default();
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    // Split as the API does: at `;` outside quotes and comments.
    let statements = split_statements(body["statement"].as_str().unwrap_or_default());
    state.received.push(Received {
        request_id: request_id.clone(),
        retry: params.get("retry").is_some_and(|v| v == "true"),
        statements: statements.clone(),
        body: body.clone(),
    });
    if let Some(previous) = state.by_request.get(&request_id) {
        let handle = previous["statementHandle"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return status(state, &handle, &HashMap::new());
    }
    state.next += 1;
    let handle = format!("01b2c3d4-0000-{:04}-0000-{:012}", state.next, state.next);
    let expected = body["parameters"]["MULTI_STATEMENT_COUNT"]
        .as_str()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1);
    let outcome = if expected != statements.len() && expected != 0 {
        Err((
            422,
            failure(
                "000008",
                "0A000",
                &format!(
                    "Actual statement count {} did not match the desired statement count {expected}.",
                    statements.len()
                ),
                &handle,
            ),
        ))
    } else if statements.len() > 1 && body.get("bindings").is_some() {
        Err((
            422,
            failure(
                "000002",
                "0A000",
                "Bind variables are not supported in multi-statement requests.",
                &handle,
            ),
        ))
    } else {
        run(state, &statements, &handle, &body)
    };
    state.statements.insert(
        handle.clone(),
        Statement {
            polls_left: state.async_polls,
            outcome,
        },
    );
    state
        .by_request
        .insert(request_id, json!({ "statementHandle": handle }));
    status(state, &handle, &HashMap::new())
}

/// Runs a request's statements: in one fakesnow session when the fake executes them (see
/// [`run_statements`]), ended whatever happens.
fn run(
    state: &mut State,
    statements: &[String],
    handle: &str,
    body: &Value,
) -> Result<Rows, (u16, Value)> {
    let session = match state.executor.as_mut() {
        Some(executor) => Some(
            executor
                .open(&body["database"], &body["schema"])
                .map_err(|e| (422, failure("000000", "XX000", &e, handle)))?,
        ),
        None => None,
    };
    let bindings: Vec<String> = body["bindings"]
        .as_object()
        .map(|bound| {
            let mut bound: Vec<(usize, String)> = bound
                .iter()
                .map(|(i, b)| {
                    (
                        i.parse().unwrap_or(usize::MAX),
                        b["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            bound.sort();
            bound.into_iter().map(|(_, v)| v).collect()
        })
        .unwrap_or_default();
    let result = run_statements(
        state,
        statements,
        handle,
        session.map(|s| (s, &bindings[..])),
    );
    if let (Some(executor), Some(session)) = (state.executor.as_mut(), session) {
        executor.close(session);
    }
    result
}

/// "Runs" statements: records them and picks each one's answer (a rule's, else fakesnow's
/// in `session` with its bindings, else "executed successfully"); stops at a failure.
fn run_statements(
    state: &mut State,
    statements: &[String],
    handle: &str,
    session: Option<(u64, &[String])>,
) -> Result<Rows, (u16, Value)> {
    let mut children = Vec::new();
    let mut last = (
        vec!["status".to_owned()],
        vec![vec![Some("Statement executed successfully.".to_owned())]],
    );
    for statement in statements {
        state.executed.push(statement.clone());
        let answer = state
            .rules
            .iter()
            .find(|(needle, _)| statement.contains(needle))
            .map(|(_, a)| a.clone());
        last = match answer {
            Some(Answer::Fail(code, sql_state, message)) => {
                return Err((422, failure(code, sql_state, message, handle)));
            }
            Some(Answer::Rows(columns, rows)) => {
                (columns.iter().map(|c| (*c).to_owned()).collect(), rows)
            }
            None => match (session, state.executor.as_mut()) {
                (Some((session, bindings)), Some(executor)) => {
                    match executor.run(session, statement, bindings) {
                        Ok(Ok(result)) => result,
                        Ok(Err((code, sql_state, message))) => {
                            return Err((422, failure(&code, &sql_state, &message, handle)));
                        }
                        Err(e) => return Err((422, failure("000000", "XX000", &e, handle))),
                    }
                }
                _ => (
                    vec!["status".to_owned()],
                    vec![vec![Some("Statement executed successfully.".to_owned())]],
                ),
            },
        };
        if statements.len() > 1 {
            state.next += 1;
            let child = format!("01b2c3d4-0001-{:04}-0000-{:012}", state.next, state.next);
            state.statements.insert(
                child.clone(),
                Statement {
                    polls_left: 0,
                    outcome: Ok((last.0.clone(), last.1.clone(), Vec::new())),
                },
            );
            children.push(child);
        }
    }
    if statements.len() > 1 {
        let message = vec![vec![Some(
            "Multiple statements executed successfully.".to_owned(),
        )]];
        return Ok((
            vec!["multiple statement execution".to_owned()],
            message,
            children,
        ));
    }
    Ok((last.0, last.1, children))
}

fn status(state: &mut State, handle: &str, params: &HashMap<String, String>) -> (u16, Value) {
    let partition_rows = state.partition_rows;
    let Some(statement) = state.statements.get_mut(handle) else {
        return (
            422,
            failure(
                "000709",
                "02000",
                &format!("Statement {handle} not found"),
                handle,
            ),
        );
    };
    let url = format!("/api/v2/statements/{handle}");
    if statement.polls_left > 0 {
        statement.polls_left -= 1;
        return (
            202,
            json!({
                "code": "333334", "sqlState": "01000",
                "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
                "statementHandle": handle, "statementStatusUrl": url,
            }),
        );
    }
    let (columns, rows, children) = match &statement.outcome {
        Ok(result) => result.clone(),
        Err((code, body)) => return (*code, body.clone()),
    };
    let partitions: Vec<&[Vec<Option<String>>]> = if rows.is_empty() {
        vec![&rows[..]]
    } else {
        rows.chunks(partition_rows).collect()
    };
    let index: usize = params
        .get("partition")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let Some(data) = partitions.get(index) else {
        return (422, failure("000709", "02000", "no such partition", handle));
    };
    if index > 0 {
        return (200, json!({ "data": data }));
    }
    let mut answer = json!({
        "resultSetMetaData": {
            "numRows": rows.len(),
            "format": "jsonv2",
            "partitionInfo": partitions.iter().map(|p| json!({"rowCount": p.len(), "uncompressedSize": 100 * p.len()})).collect::<Vec<_>>(),
            "rowType": columns.iter().map(|c| json!({"name": c.to_ascii_uppercase(), "type": "text", "nullable": true, "length": 16777216, "precision": null, "scale": null, "byteLength": 16777216})).collect::<Vec<_>>(),
        },
        "data": data,
        "code": "090001", "sqlState": "00000",
        "statementHandle": handle,
        "message": "Statement executed successfully.",
        "createdOn": now() * 1000,
        "statementStatusUrl": url,
    });
    if !children.is_empty() {
        answer["statementHandles"] = json!(children);
    }
    (200, answer)
}
