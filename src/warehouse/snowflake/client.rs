//! A thin client of the Snowflake SQL API v2 (`/api/v2/statements`).
//!
//! One POST per request, with a fresh `requestId`. Throttling (429) and unavailability
//! (500, 502, 503, 504, connection failures) are retried with exponential backoff and
//! jitter; a resubmitted POST says `retry=true`, which ("Submitting a request") keeps
//! Snowflake from running it again only when the first submission already succeeded, so
//! every request curflow sends is safe to run twice. A 202 is polled at its
//! `statementStatusUrl` until the statement ends; a 429 or 5xx on a poll means it is still
//! running ("Handling responses"), so polling goes on until the statement's own timeout,
//! and a statement the client gives up on is cancelled. Every request runs in UTC
//! (`TIMEZONE`: the SQL API ignores the account's and user's setting and would use
//! America/Los_Angeles). Results come back whole: every partition of
//! `resultSetMetaData.partitionInfo` is fetched with `?partition=N` (gzip-compressed after
//! the first), and the rows must add up to `numRows`. A multi-statement request
//! (`MULTI_STATEMENT_COUNT`) answers the handles of its statements, whose results are read
//! with [`Client::results`]; when one fails, Snowflake's wrapper error (100132) says where,
//! and [`SqlApiError::Statement`] carries that place.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::auth::{Credentials, KeyError};
use crate::retry::RetryPolicy;

/// Snowflake stops a statement running longer than this (the request's `timeout`).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long past [`STATEMENT_TIMEOUT`] curflow keeps polling for Snowflake's own 408
/// before it cancels the statement itself.
const POLL_GRACE: Duration = Duration::from_secs(120);
/// The session time zone of every request: CUR's timestamps are UTC, and a local
/// timestamp (a Parquet timestamp can load as `TIMESTAMP_LTZ`) turned into the final
/// tables' `TIMESTAMP_NTZ` keeps its wall-clock time in this zone.
const SESSION_TIME_ZONE: &str = "UTC";
/// The code of a 200 answer whose result set was too large to send whole.
const RESULT_TOO_LARGE: &str = "391908";
/// The code of a failed multi-statement request (Snowflake's wrapper of the inner error).
const MULTI_STATEMENT_FAILED: &str = "100132";
/// First wait between two polls of a running statement; doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(5);
/// How long a TCP connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer may stay silent before the attempt is abandoned.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// A request to the SQL API failed. Messages carry Snowflake's code, SQLSTATE and
/// statement handle, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum SqlApiError {
    /// 401/403: the credentials were refused.
    #[error(
        "Snowflake refused to sign in user {user} (HTTP {status}, code {code}: {message}){hint}"
    )]
    Unauthorized {
        /// The user.
        user: String,
        /// The HTTP status.
        status: u16,
        /// Snowflake's error code.
        code: String,
        /// Snowflake's message.
        message: String,
        /// What to check.
        hint: String,
    },
    /// 422: a statement failed.
    #[error(
        "statement failed: {message} (code {code}, SQLSTATE {sql_state}, statement handle {handle})"
    )]
    Statement {
        /// Snowflake's error code.
        code: String,
        /// The SQLSTATE.
        sql_state: String,
        /// Snowflake's message: of a multi-statement request, the failed statement's own.
        message: String,
        /// The statement handle, for `QUERY_HISTORY`.
        handle: String,
        /// Of a multi-statement request: the line (1-based) of the request text where the
        /// failed statement starts, as Snowflake's wrapper error names it.
        line: Option<usize>,
    },
    /// 408: Snowflake stopped a statement that ran past its timeout.
    #[error(
        "statement timed out in Snowflake (statement handle {handle}): {message}; use a larger warehouse or split the period"
    )]
    Timeout {
        /// The statement handle.
        handle: String,
        /// Snowflake's message.
        message: String,
    },
    /// The statement ran past curflow's deadline and was cancelled.
    #[error("statement {handle} was still running after {waited:?} and was cancelled")]
    Cancelled {
        /// The statement handle.
        handle: String,
        /// How long curflow waited.
        waited: Duration,
    },
    /// Throttled or unavailable on every attempt.
    #[error(
        "Snowflake answered HTTP {status} on all {attempts} attempts ({message}); try again later"
    )]
    Unavailable {
        /// The last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The last message.
        message: String,
    },
    /// Snowflake could not be reached.
    #[error("cannot reach Snowflake at {url}: {reason}")]
    Connect {
        /// The endpoint, without query.
        url: String,
        /// What failed.
        reason: String,
    },
    /// A result that did not arrive whole.
    #[error("incomplete result of statement {handle}: {reason}; nothing was read from it")]
    Incomplete {
        /// The statement handle.
        handle: String,
        /// What was missing.
        reason: String,
    },
    /// An answer the SQL API does not document.
    #[error("unexpected answer from Snowflake (HTTP {status}): {reason}")]
    Protocol {
        /// The HTTP status.
        status: u16,
        /// What was wrong with it.
        reason: String,
    },
    /// The key could not sign a JWT.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// What a finished statement returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ResultSet {
    /// Column names, as Snowflake reports them (upper-case unless quoted).
    pub columns: Vec<String>,
    /// Rows of every partition; each cell is Snowflake's text form, `None` for SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// The statement handle.
    pub handle: String,
    /// A multi-statement request's statement handles, in order.
    pub handles: Vec<String>,
}

impl ResultSet {
    /// The cell of `row` in column `name` (case-insensitive).
    pub(super) fn cell(&self, row: usize, name: &str) -> Option<&str> {
        let i = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))?;
        self.rows.get(row)?.get(i)?.as_deref()
    }
}

/// Session context sent with every request.
#[derive(Debug, Clone)]
pub(super) struct Context {
    /// Role, if any.
    pub role: Option<String>,
    /// Virtual warehouse.
    pub warehouse: String,
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
}

/// The SQL API client of one account and user.
#[derive(Debug)]
pub(super) struct Client {
    http: reqwest::Client,
    base: url::Url,
    user: String,
    credentials: Credentials,
    context: Context,
    retry: RetryPolicy,
}

fn text(body: &Value, key: &str) -> String {
    body.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl Client {
    /// A client for `base` (the account URL) signing in with `credentials`, retrying
    /// throttled and failed requests per `retry`.
    pub(super) fn new(
        base: url::Url,
        user: String,
        credentials: Credentials,
        context: Context,
        retry: RetryPolicy,
    ) -> Result<Self, SqlApiError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| SqlApiError::Connect {
                url: base.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base,
            user,
            credentials,
            context,
            retry,
        })
    }

    /// Runs `statement` (`count` statements separated by `;`, or one with `?` bound to
    /// `bindings` as text) and returns its result once it has finished.
    pub(super) async fn execute(
        &self,
        statement: &str,
        count: usize,
        bindings: &[&str],
    ) -> Result<ResultSet, SqlApiError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut url = self.url("/api/v2/statements")?;
        url.query_pairs_mut().append_pair("requestId", &request_id);
        let mut body = json!({
            "statement": statement,
            "timeout": STATEMENT_TIMEOUT.as_secs(),
            "warehouse": self.context.warehouse,
            "database": self.context.database,
            "schema": self.context.schema,
        });
        if let Some(role) = &self.context.role {
            body["role"] = json!(role);
        }
        body["parameters"] = json!({ "TIMEZONE": SESSION_TIME_ZONE });
        if count != 1 {
            body["parameters"]["MULTI_STATEMENT_COUNT"] = json!(count.to_string());
        }
        if !bindings.is_empty() {
            let bound: serde_json::Map<String, Value> = bindings
                .iter()
                .enumerate()
                .map(|(i, v)| ((i + 1).to_string(), json!({"type": "TEXT", "value": v})))
                .collect();
            body["bindings"] = Value::Object(bound);
        }
        let (status, answer) = self.send(Method::POST, url, Some(&body)).await?;
        self.finish(status, answer).await
    }

    /// The result of an earlier statement (e.g. one of a multi-statement request).
    pub(super) async fn results(&self, handle: &str) -> Result<ResultSet, SqlApiError> {
        let url = self.url(&format!("/api/v2/statements/{handle}"))?;
        let (status, answer) = self.send(Method::GET, url, None).await?;
        self.finish(status, answer).await
    }

    /// Asks Snowflake to stop a running statement.
    pub(super) async fn cancel(&self, handle: &str) -> Result<(), SqlApiError> {
        let url = self.url(&format!("/api/v2/statements/{handle}/cancel"))?;
        let (status, answer) = self.send(Method::POST, url, None).await?;
        match status {
            StatusCode::OK => Ok(()),
            _ => Err(self.failure(status, &answer)),
        }
    }

    fn url(&self, path: &str) -> Result<url::Url, SqlApiError> {
        self.base.join(path).map_err(|e| SqlApiError::Protocol {
            status: 0,
            reason: format!("bad URL {path}: {e}"),
        })
    }

    /// One request, retried on throttling and unavailability. A retried POST says so
    /// (`retry=true`), so Snowflake answers the first submission's statement instead of
    /// running it again when that one succeeded.
    async fn send(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), SqlApiError> {
        let attempts = self.retry.max_attempts.max(1);
        // Why the last attempt did not get an answer: throttled or unavailable (the status
        // and message), or not reached (the reason).
        let mut last: Result<(u16, String), String> = Err(String::new());
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(self.retry.wait_before(attempt)).await;
            }
            let mut url = url.clone();
            if attempt > 1 && method == Method::POST {
                url.query_pairs_mut().append_pair("retry", "true");
            }
            last = match self.attempt(method.clone(), url, body).await? {
                Attempt::Answer(status, answer) => return Ok((status, answer)),
                Attempt::Busy(status, message) => Ok((status, message)),
                Attempt::Unreachable(reason) => Err(reason),
            };
            tracing::debug!(attempt, "Snowflake busy or unreachable; retrying");
        }
        Err(match last {
            Err(reason) => SqlApiError::Connect {
                url: self.base.to_string(),
                reason: format!("{reason} (after {attempts} attempts)"),
            },
            Ok((status, message)) => SqlApiError::Unavailable {
                status,
                attempts,
                message: self.credentials.redact(&message),
            },
        })
    }

    /// One HTTP request: its answer, or why it may be tried again (throttled, unavailable,
    /// unreachable). A body that is not JSON is kept as text (error pages are not JSON).
    async fn attempt(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<Attempt, SqlApiError> {
        let (authorization, kind) = self.credentials.headers()?;
        let mut request = self
            .http
            .request(method, url)
            .header("Authorization", authorization.expose())
            .header("X-Snowflake-Authorization-Token-Type", kind)
            .header("Accept", "application/json")
            .header("User-Agent", concat!("curflow/", env!("CARGO_PKG_VERSION")));
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                return Ok(Attempt::Unreachable(e.to_string()));
            }
            Err(e) => {
                return Err(SqlApiError::Connect {
                    url: self.base.to_string(),
                    reason: e.to_string(),
                });
            }
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return Ok(Attempt::Unreachable(e.to_string())),
        };
        let answer = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504) {
            return Ok(Attempt::Busy(status.as_u16(), text_or_message(&answer)));
        }
        Ok(Attempt::Answer(status, answer))
    }

    /// Follows a statement to its end: polls while it runs, then reads every partition.
    async fn finish(&self, status: StatusCode, answer: Value) -> Result<ResultSet, SqlApiError> {
        let (status, answer) = if status == StatusCode::ACCEPTED {
            let handle = text(&answer, "statementHandle");
            let path = match answer.get("statementStatusUrl").and_then(Value::as_str) {
                Some(path) => path.to_owned(),
                None => format!("/api/v2/statements/{handle}"),
            };
            let polled = self.poll(&handle, &path).await;
            // An answer that is not the statement's end (its result, its failure, its
            // timeout) leaves it running, and it may still commit: ask Snowflake to stop it.
            let ended =
                matches!(&polled, Ok((status, _)) if matches!(status.as_u16(), 200 | 408 | 422));
            if !ended && let Err(cancel) = self.cancel(&handle).await {
                tracing::warn!(%handle, error = %cancel, "could not cancel an abandoned statement");
            }
            polled?
        } else {
            (status, answer)
        };
        if status != StatusCode::OK {
            return Err(self.failure(status, &answer));
        }
        let handle = text(&answer, "statementHandle");
        if text(&answer, "code") == RESULT_TOO_LARGE {
            return Err(SqlApiError::Incomplete {
                handle,
                reason: format!(
                    "Snowflake answered code {RESULT_TOO_LARGE} (the result set is too large to send whole)"
                ),
            });
        }
        let incomplete = |reason: String| SqlApiError::Incomplete {
            handle: handle.clone(),
            reason,
        };
        let mut result = ResultSet {
            columns: answer["resultSetMetaData"]["rowType"]
                .as_array()
                .map(|cols| cols.iter().map(|c| text(c, "name")).collect())
                .unwrap_or_default(),
            rows: rows(&answer).map_err(|e| incomplete(format!("partition 0: {e}")))?,
            handle: handle.clone(),
            handles: answer["statementHandles"]
                .as_array()
                .map(|hs| {
                    hs.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        };
        let partitions = answer["resultSetMetaData"]["partitionInfo"]
            .as_array()
            .map_or(1, Vec::len);
        for partition in 1..partitions {
            let mut url = self.url(&format!("/api/v2/statements/{handle}"))?;
            url.query_pairs_mut()
                .append_pair("partition", &partition.to_string());
            let (status, page) = self.send(Method::GET, url, None).await?;
            if status != StatusCode::OK {
                return Err(self.failure(status, &page));
            }
            result.rows.extend(
                rows(&page).map_err(|e| incomplete(format!("partition {partition}: {e}")))?,
            );
        }
        if let Some(announced) = answer["resultSetMetaData"]["numRows"].as_u64()
            && announced != result.rows.len() as u64
        {
            return Err(incomplete(format!(
                "resultSetMetaData.numRows is {announced} but its {partitions} partitions held {} rows",
                result.rows.len()
            )));
        }
        Ok(result)
    }

    /// Polls a running statement at `path` until it ends (any answer but 202), waiting
    /// longer between polls up to [`MAX_POLL`]. A 429 or 5xx on a poll, or a poll that
    /// does not get through, means only that the statement has not finished, so polling
    /// goes on until the statement's own timeout (plus [`POLL_GRACE`]), then cancels it.
    async fn poll(&self, handle: &str, path: &str) -> Result<(StatusCode, Value), SqlApiError> {
        let started = Instant::now();
        let mut wait = FIRST_POLL;
        loop {
            if started.elapsed() > STATEMENT_TIMEOUT + POLL_GRACE {
                return Err(SqlApiError::Cancelled {
                    handle: handle.to_owned(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_POLL);
            match self.attempt(Method::GET, self.url(path)?, None).await? {
                Attempt::Answer(StatusCode::ACCEPTED, _) => {}
                Attempt::Answer(status, answer) => return Ok((status, answer)),
                Attempt::Busy(status, _) => {
                    tracing::debug!(%handle, status, "statement still running (busy poll)");
                }
                Attempt::Unreachable(reason) => {
                    tracing::debug!(%handle, %reason, "poll did not get through; polling on");
                }
            }
        }
    }

    /// The error an unsuccessful answer stands for. Snowflake's message is kept, without
    /// the credential curflow sent, should the server quote it.
    fn failure(&self, status: StatusCode, answer: &Value) -> SqlApiError {
        let (code, message) = (
            text(answer, "code"),
            self.credentials.redact(&text_or_message(answer)),
        );
        match status.as_u16() {
            401 | 403 => SqlApiError::Unauthorized {
                user: self.user.clone(),
                status: status.as_u16(),
                code,
                message,
                hint: match self.credentials.fingerprint() {
                    Some(fp) => format!(
                        "; check that the user's RSA_PUBLIC_KEY is the public half of the configured private key ({fp}, as DESCRIBE USER shows in RSA_PUBLIC_KEY_FP) and that this machine's clock is right"
                    ),
                    None => "; the token may be expired, revoked or for another user".into(),
                },
            },
            422 => {
                let (line, message) = match failed_statement(&message) {
                    Some((line, inner)) if code == MULTI_STATEMENT_FAILED => (Some(line), inner),
                    _ => (None, message),
                };
                SqlApiError::Statement {
                    code,
                    sql_state: text(answer, "sqlState"),
                    message,
                    handle: text(answer, "statementHandle"),
                    line,
                }
            }
            408 => SqlApiError::Timeout {
                handle: text(answer, "statementHandle"),
                message,
            },
            other => SqlApiError::Protocol {
                status: other,
                reason: message,
            },
        }
    }
}

fn text_or_message(answer: &Value) -> String {
    match answer {
        Value::String(s) => s.chars().take(300).collect(),
        other => text(other, "message"),
    }
}

/// The `data` rows of an answer, cells as text (`None` for SQL NULL); an answer without
/// them (a body that did not decode) is an error, never zero rows.
fn rows(answer: &Value) -> Result<Vec<Vec<Option<String>>>, String> {
    // A later partition carries no metadata: its body is the `data` object, or the bare
    // array of rows.
    let data = answer.get("data").unwrap_or(answer);
    let Some(rows) = data.as_array() else {
        return Err(match answer {
            Value::String(text) => format!(
                "the body is not JSON ({} bytes, starting {:?})",
                text.len(),
                text.chars().take(16).collect::<String>()
            ),
            _ => "the answer has no data array".to_owned(),
        });
    };
    rows.iter()
        .map(|row| {
            let cells = row.as_array().ok_or("a row is not an array")?;
            Ok(cells
                .iter()
                .map(|c| match c {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect())
        })
        .collect()
}

/// How one attempt at a request went.
enum Attempt {
    /// Answered (any status but the ones below).
    Answer(StatusCode, Value),
    /// Throttled or unavailable: the status and message.
    Busy(u16, String),
    /// Not answered: why.
    Unreachable(String),
}

/// Where Snowflake's multi-statement wrapper error ("Execution of multiple statements
/// failed on statement "…" (at line L, position P).\n<the statement's error> in
/// SYSTEM$MULTISTMT at …") says the failed statement starts, and that statement's own
/// error; `None` for any other message.
fn failed_statement(message: &str) -> Option<(usize, String)> {
    let after = &message[message.find("failed on statement ")?..];
    let at = after.find("(at line ")? + "(at line ".len();
    let digits: String = after[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let line = digits.parse().ok()?;
    let inner = after[at..].split_once(").")?.1.trim_start();
    let inner = inner
        .split(" in SYSTEM$MULTISTMT at ")
        .next()
        .unwrap_or(inner);
    Some((line, inner.trim().to_owned()))
}
