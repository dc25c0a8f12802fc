//! A fake of the Snowflake SQL API v2 on loopback, following the official reference: the
//! only in-repo fake the tests use (Snowflake has no local server).
//!
//! - Every request: `Authorization: Bearer` with `X-Snowflake-Authorization-Token-Type`
//!   `KEYPAIR_JWT` (RS256 signature with the test's public key, `iss`/`sub`/`iat`/`exp`
//!   claims), `PROGRAMMATIC_ACCESS_TOKEN` or `OAUTH` (a token the test issued); without the
//!   header the type is told from the token, as the docs say.
//! - `POST /api/v2/statements?requestId=…[&retry=true]`: the `warehouse`, `database`,
//!   `schema` and `role` fields must name the account's objects exactly (they are
//!   case-sensitive); `parameters` may hold only the session parameters the API lists;
//!   the statement text is split by sqlparser's Snowflake tokenizer (not curflow's
//!   splitter) and must hold `MULTI_STATEMENT_COUNT` statements; bindings are refused in a
//!   multi-statement request. Answers 200 with a `ResultSet` (a multi-statement request:
//!   `statementHandles`), 202 with a `QueryStatus` when told to run "asynchronously", 408
//!   when a rule says a statement times out, 422 with a `QueryFailureStatus` when a
//!   statement fails — of a multi-statement request, the documented wrapper (code 100132,
//!   SQLSTATE P0000, "… failed on statement "…" (at line L, position P).\n<error> …") —
//!   and 429/500/502/503/504 when told to. A resubmitted `requestId` with `retry=true`
//!   gets the first submission's statement back without running it again only when that
//!   one succeeded; otherwise it runs again ("Submitting a request").
//! - Transactions: a failed statement inside `BEGIN … COMMIT` aborts the transaction only
//!   after `ALTER SESSION SET TRANSACTION_ABORT_ON_ERROR = TRUE`. Without it the failed
//!   statement alone is undone and the transaction stays open ("Transactions"); what the
//!   end of the request then does to it is not documented, so the fake takes the outcome
//!   that hurts: the statements before the failure are committed.
//! - `GET /api/v2/statements/{handle}[?partition=N]`: 202 (or 429, as the docs allow)
//!   while "running", then the result; `partition` N ≥ 1 of
//!   `resultSetMetaData.partitionInfo` is gzip-compressed (`Content-Encoding: gzip`) and
//!   carries no metadata; partition 0 carries `numRows`.
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
use serde_json::{Value, json};
use sqlparser::dialect::SnowflakeDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

/// What a statement does in the fake.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Returns these columns and rows (every cell as text, as `jsonv2` does).
    Rows(Vec<&'static str>, Vec<Vec<Option<String>>>),
    /// Fails with a 422 carrying this code, SQLSTATE and message.
    Fail(&'static str, &'static str, &'static str),
    /// Runs past the request's `timeout`: Snowflake cancels it and answers 408.
    TimeOut,
}

/// The account's objects a request's context fields must name exactly, and the tokens it
/// accepts besides key-pair JWTs.
#[derive(Debug, Clone)]
struct Account {
    warehouses: Vec<String>,
    databases: Vec<String>,
    schemas: Vec<String>,
    roles: Vec<String>,
    /// (token type, token) pairs issued by the test.
    tokens: Vec<(&'static str, String)>,
}

impl Default for Account {
    fn default() -> Self {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect();
        Self {
            warehouses: names(&["CURFLOW_WH"]),
            databases: names(&["FINOPS"]),
            schemas: names(&["CUR"]),
            roles: names(&["CURFLOW"]),
            tokens: Vec::new(),
        }
    }
}

/// The session parameters the SQL API accepts in a request's `parameters` ("SQL API
/// reference": "The SQL API only supports the session parameters listed").
const SESSION_PARAMETERS: [&str; 13] = [
    "binary_output_format",
    "client_result_chunk_size",
    "date_output_format",
    "multi_statement_count",
    "query_tag",
    "rows_per_resultset",
    "time_output_format",
    "timestamp_ltz_output_format",
    "timestamp_ntz_output_format",
    "timestamp_output_format",
    "timestamp_tz_output_format",
    "timezone",
    "use_cached_result",
];

/// The session time zone when a request sets none: the SQL API ignores the account's and
/// user's TIMEZONE ("Handling responses") and Snowflake's default is this.
const DEFAULT_TIME_ZONE: &str = "America/Los_Angeles";

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
    /// Whether the statements ran (a de-duplicated resubmission did not).
    pub ran: bool,
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
    /// Statuses to answer the next status polls of a running statement with.
    poll_throttle: VecDeque<u16>,
    /// POSTs whose statements run but whose answer is lost (a 503 instead).
    lost_answers: usize,
    account: Account,
    /// 202 answers (POST and status polls) before a statement is done.
    async_polls: usize,
    /// Rows per result partition.
    partition_rows: usize,
    received: Vec<Received>,
    executed: Vec<String>,
    /// Request id → the handle of its statement.
    by_request: HashMap<String, String>,
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

    /// A new session in `database`.`schema`, in `time_zone`.
    fn open(&mut self, database: &Value, schema: &Value, time_zone: &str) -> Result<u64, String> {
        let answer = self.call(
            &json!({"op": "open", "database": database, "schema": schema, "timezone": time_zone}),
        )?;
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
            account: Account::default(),
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

    /// Statements containing `needle` get `answer` (the latest matching rule wins, so a
    /// test can override what its setup scripted).
    pub fn answer(&self, needle: &'static str, answer: Answer) {
        self.with(|s| s.rules.push((needle, answer)));
    }

    /// The next POSTs are answered with these statuses (e.g. 429, 503) first.
    pub fn throttle(&self, statuses: &[u16]) {
        self.with(|s| s.throttle.extend(statuses));
    }

    /// The next status polls of a running statement are answered with these statuses
    /// (429: the docs' "still running"; 5xx) before they are served.
    pub fn throttle_polls(&self, statuses: &[u16]) {
        self.with(|s| s.poll_throttle.extend(statuses));
    }

    /// The next `count` POSTs run, but their answer is lost on the way (a 503).
    pub fn lose_answers(&self, count: usize) {
        self.with(|s| s.lost_answers = count);
    }

    /// Issues a token of `kind` (`PROGRAMMATIC_ACCESS_TOKEN` or `OAUTH`) for the user.
    pub fn issue_token(&self, kind: &'static str, token: &str) {
        self.with(|s| s.account.tokens.push((kind, token.to_owned())));
    }

    /// Statement handles cancelled, in order.
    pub fn cancelled(&self) -> Vec<String> {
        self.with(|s| s.cancelled.clone())
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
                .open(&json!(database), &json!(schema), DEFAULT_TIME_ZONE)
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
    // A later partition's body is gzip-compressed, whatever the client asked for
    // ("Handling responses": "the body contains JSON data in compressed form (using gzip)").
    let (_, params) = query(&target);
    let later_partition = params
        .get("partition")
        .is_some_and(|p| p.parse::<usize>().is_ok_and(|n| n > 0));
    let (payload, encoding) = if status == 200 && later_partition {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(answer.to_string().as_bytes())?;
        (gzip.finish()?, "Content-Encoding: gzip\r\n")
    } else {
        (answer.to_string().into_bytes(), "")
    };
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        408 => "Request Timeout",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    stream.write_all(&payload)?;
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

/// Checks the request's credentials as Snowflake does; the reason when they are refused.
fn check_auth(state: &State, headers: &HashMap<String, String>) -> Result<(), String> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("no Bearer token")?;
    // "If you omit the X-Snowflake-Authorization-Token-Type header, Snowflake determines the
    // token type by examining the token."
    let kind = match headers.get("x-snowflake-authorization-token-type") {
        Some(kind) => kind.as_str(),
        None if token.split('.').count() == 3 => "KEYPAIR_JWT",
        None => state
            .account
            .tokens
            .iter()
            .find(|(_, t)| t == token)
            .map_or("OAUTH", |(kind, _)| *kind),
    };
    match kind {
        "KEYPAIR_JWT" => check_jwt(state, token),
        "PROGRAMMATIC_ACCESS_TOKEN" | "OAUTH" => {
            if state
                .account
                .tokens
                .iter()
                .any(|(k, t)| *k == kind && t == token)
            {
                Ok(())
            } else {
                // A server may quote what it was given: curflow must not repeat it.
                Err(format!("not a valid {kind} token of this user: {token}"))
            }
        }
        other => Err(format!("unknown token type {other}")),
    }
}

/// Checks a key-pair JWT as Snowflake does; the reason when it is refused.
fn check_jwt(state: &State, jwt: &str) -> Result<(), String> {
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
    if let Err(reason) = check_auth(state, headers) {
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
        ("GET", ["api", "v2", "statements", handle]) => {
            let running = state
                .statements
                .get(*handle)
                .is_some_and(|s| s.polls_left > 0);
            if running && let Some(busy) = state.poll_throttle.pop_front() {
                return (busy, query_status(handle, "Too many requests."));
            }
            status(state, handle, &params)
        }
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

/// A `QueryStatus` of a statement that has not finished.
fn query_status(handle: &str, message: &str) -> Value {
    json!({
        "code": "333334", "sqlState": "01000", "message": message,
        "statementHandle": handle, "statementStatusUrl": format!("/api/v2/statements/{handle}"),
    })
}

/// One statement of a request's text: itself, and where it starts (line 1-based, position
/// 0-based), as Snowflake's multi-statement error names it.
#[derive(Debug, Clone)]
struct Piece {
    text: String,
    line: u64,
    position: u64,
}

/// The statements of a request's text, split at `;` tokens by sqlparser's Snowflake
/// tokenizer (quotes and comments as Snowflake reads them); `None` when it cannot
/// tokenize the text.
fn split(text: &str) -> Option<Vec<Piece>> {
    let tokens = Tokenizer::new(&SnowflakeDialect {}, text)
        .tokenize_with_location()
        .ok()?;
    // Byte offset of each line's start, to cut the text at token locations.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |line: u64, column: u64| {
        let start = line_starts[(line - 1) as usize];
        start
            + text[start..]
                .char_indices()
                .nth((column - 1) as usize)
                .map_or(text.len() - start, |(i, _)| i)
    };
    let mut pieces = Vec::new();
    let mut first: Option<(u64, u64)> = None;
    for token in tokens {
        let at = (token.span.start.line, token.span.start.column);
        match token.token {
            Token::SemiColon => {
                if let Some((line, column)) = first.take() {
                    let text = text[offset(line, column)..offset(at.0, at.1)].trim_end();
                    pieces.push(Piece {
                        text: text.to_owned(),
                        line,
                        position: column - 1,
                    });
                }
            }
            Token::Whitespace(_) | Token::EOF => {}
            _ => {
                first.get_or_insert(at);
            }
        }
    }
    if let Some((line, column)) = first {
        pieces.push(Piece {
            text: text[offset(line, column)..].trim_end().to_owned(),
            line,
            position: column - 1,
        });
    }
    Some(pieces)
}

/// Refuses a request whose context fields do not name the account's objects exactly.
fn check_context(account: &Account, body: &Value) -> Result<(), (&'static str, String)> {
    let fields: [(&str, &[String], &str); 4] = [
        ("warehouse", &account.warehouses, "390201"),
        ("database", &account.databases, "390201"),
        ("schema", &account.schemas, "390201"),
        ("role", &account.roles, "390189"),
    ];
    for (field, names, code) in fields {
        if let Some(value) = body.get(field) {
            let value = value.as_str().unwrap_or_default();
            if !names.iter().any(|n| n == value) {
                return Err((
                    code,
                    format!("The requested {field} '{value}' does not exist or not authorized."),
                ));
            }
        }
    }
    Ok(())
}

fn submit(state: &mut State, params: &HashMap<String, String>, body: &[u8]) -> (u16, Value) {
    if let Some(status) = state.throttle.pop_front() {
        return (status, json!({"message": "throttled by the fake"}));
    }
    let request_id = params.get("requestId").cloned().unwrap_or_default();
    let retry = params.get("retry").is_some_and(|v| v == "true");
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(pieces) = split(body["statement"].as_str().unwrap_or_default()) else {
        return (
            422,
            failure("001003", "42000", "SQL compilation error: syntax error", ""),
        );
    };
    let statements: Vec<String> = pieces.iter().map(|p| p.text.clone()).collect();
    state.received.push(Received {
        request_id: request_id.clone(),
        retry,
        statements: statements.clone(),
        body: body.clone(),
        ran: false,
    });
    // "Snowflake does not execute the statement again if the statement has already been
    // executed successfully" — with retry=true, and only then.
    if retry && let Some(previous) = state.by_request.get(&request_id).cloned() {
        let succeeded = state
            .statements
            .get(&previous)
            .is_some_and(|s| s.outcome.is_ok());
        if succeeded {
            return status(state, &previous, &HashMap::new());
        }
    }
    if let Err((code, message)) = check_context(&state.account, &body) {
        return (422, failure(code, "08004", &message, ""));
    }
    let parameters = body["parameters"].as_object().cloned().unwrap_or_default();
    if let Some(unknown) = parameters
        .keys()
        .find(|k| !SESSION_PARAMETERS.contains(&k.to_ascii_lowercase().as_str()))
    {
        return (
            400,
            json!({"code": "391917", "message": format!("Unsupported session parameter {unknown}: the SQL API only supports the session parameters it lists.")}),
        );
    }
    let parameter = |name: &str| {
        parameters
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    state.next += 1;
    let handle = format!("01b2c3d4-0000-{:04}-0000-{:012}", state.next, state.next);
    let expected = parameter("MULTI_STATEMENT_COUNT")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1);
    let time_zone = parameter("TIMEZONE")
        .unwrap_or(DEFAULT_TIME_ZONE)
        .to_owned();
    if let Some(received) = state.received.last_mut() {
        received.ran = true;
    }
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
        run(state, &pieces, &handle, &body, &time_zone)
    };
    state.statements.insert(
        handle.clone(),
        Statement {
            polls_left: state.async_polls,
            outcome,
        },
    );
    state.by_request.insert(request_id, handle.clone());
    if state.lost_answers > 0 {
        state.lost_answers -= 1;
        return (503, json!({"message": "the answer was lost on the way"}));
    }
    status(state, &handle, &HashMap::new())
}

/// Runs a request's statements: in one fakesnow session when the fake executes them (see
/// [`run_statements`]), ended whatever happens.
fn run(
    state: &mut State,
    pieces: &[Piece],
    handle: &str,
    body: &Value,
    time_zone: &str,
) -> Result<Rows, (u16, Value)> {
    let session = match state.executor.as_mut() {
        Some(executor) => Some(
            executor
                .open(&body["database"], &body["schema"], time_zone)
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
    let result = run_statements(state, pieces, handle, session.map(|s| (s, &bindings[..])));
    if let (Some(executor), Some(session)) = (state.executor.as_mut(), session) {
        executor.close(session);
    }
    result
}

/// A statement's text in upper case with single spaces, to recognise session and
/// transaction statements.
fn normalized(statement: &str) -> String {
    statement
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

/// The transaction state of one request's session.
#[derive(Default)]
struct Transaction {
    /// `ALTER SESSION SET TRANSACTION_ABORT_ON_ERROR = TRUE` was run.
    abort_on_error: bool,
    /// Inside `BEGIN … COMMIT`: the statements that succeeded since `BEGIN`.
    open: Option<Vec<String>>,
}

/// "Runs" statements: records them and picks each one's answer (a rule's, else fakesnow's
/// in `session` with its bindings, else "executed successfully"); stops at a failure,
/// which in a multi-statement request is reported in Snowflake's wrapper error.
fn run_statements(
    state: &mut State,
    pieces: &[Piece],
    handle: &str,
    session: Option<(u64, &[String])>,
) -> Result<Rows, (u16, Value)> {
    let mut children = Vec::new();
    let mut last = (
        vec!["status".to_owned()],
        vec![vec![Some("Statement executed successfully.".to_owned())]],
    );
    let mut transaction = Transaction::default();
    for piece in pieces {
        let statement = &piece.text;
        state.executed.push(statement.clone());
        let answer = state
            .rules
            .iter()
            .rev()
            .find(|(needle, _)| statement.contains(needle))
            .map(|(_, a)| a.clone());
        let text = normalized(statement);
        let session_setting = text.strip_prefix("ALTER SESSION SET TRANSACTION_ABORT_ON_ERROR = ");
        let outcome = match (answer, session_setting) {
            (Some(Answer::Fail(code, sql_state, message)), _) => {
                Err((code.to_owned(), sql_state.to_owned(), message.to_owned()))
            }
            (Some(Answer::TimeOut), _) => {
                return Err((
                    408,
                    query_status(
                        handle,
                        "Statement reached its statement or warehouse timeout of 3,600 second(s) and was canceled.",
                    ),
                ));
            }
            (Some(Answer::Rows(columns, rows)), _) => {
                Ok((columns.iter().map(|c| (*c).to_owned()).collect(), rows))
            }
            // fakesnow does not implement this session parameter: the fake keeps it.
            (None, Some(value)) => {
                transaction.abort_on_error = value == "TRUE";
                Ok((
                    vec!["status".to_owned()],
                    vec![vec![Some("Statement executed successfully.".to_owned())]],
                ))
            }
            (None, None) => match (session, state.executor.as_mut()) {
                (Some((session, bindings)), Some(executor)) => {
                    match executor.run(session, statement, bindings) {
                        Ok(result) => result,
                        Err(e) => Err(("000000".to_owned(), "XX000".to_owned(), e)),
                    }
                }
                _ => Ok((
                    vec!["status".to_owned()],
                    vec![vec![Some("Statement executed successfully.".to_owned())]],
                )),
            },
        };
        last = match outcome {
            Ok(result) => result,
            Err((code, sql_state, message)) => {
                if let (Some(done), Some((session, _))) = (transaction.open.take(), session)
                    && !transaction.abort_on_error
                {
                    keep_what_ran_before(state, session, &done);
                }
                if pieces.len() == 1 {
                    return Err((422, failure(&code, &sql_state, &message, handle)));
                }
                let shown: String = statement.chars().take(30).collect();
                let message = format!(
                    "JavaScript execution error: Uncaught Execution of multiple statements failed on statement \"{shown}...\" (at line {}, position {}).\n{message} in SYSTEM$MULTISTMT at '    throw `Execution of multiple statements failed on statement {{0}} (at line {{1}}, position {{2}}).`.replace('{{1}}', LINES[i])' position 4\nstackstrace: \nSYSTEM$MULTISTMT line: 10",
                    piece.line, piece.position
                );
                return Err((422, failure("100132", "P0000", &message, handle)));
            }
        };
        match text.as_str() {
            "BEGIN" | "BEGIN TRANSACTION" | "START TRANSACTION" => {
                transaction.open = Some(Vec::new());
            }
            "COMMIT" | "ROLLBACK" => transaction.open = None,
            _ => {
                if let Some(done) = transaction.open.as_mut() {
                    done.push(statement.clone());
                }
            }
        }
        if pieces.len() > 1 {
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
    if pieces.len() > 1 {
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

/// A statement failed inside a transaction without `TRANSACTION_ABORT_ON_ERROR`: only it
/// is undone, and the transaction's earlier statements stay (fakesnow's DuckDB aborts the
/// whole transaction, so they are run again and committed).
fn keep_what_ran_before(state: &mut State, session: u64, done: &[String]) {
    let Some(executor) = state.executor.as_mut() else {
        return;
    };
    let _ = executor.run(session, "ROLLBACK", &[]);
    let _ = executor.run(session, "BEGIN TRANSACTION", &[]);
    for statement in done {
        let _ = executor.run(session, statement, &[]);
    }
    let _ = executor.run(session, "COMMIT", &[]);
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
            query_status(
                handle,
                "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
            ),
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
