//! A thin client of the Snowflake SQL API v2 (`/api/v2/statements`).
//!
//! One POST per request, with a fresh `requestId` so that a retried POST (`retry=true`)
//! never runs the statements twice. Throttling (429) and unavailability (500, 502, 503,
//! 504, connection failures) are retried with exponential backoff and jitter. A 202 is
//! polled at its `statementStatusUrl` until the statement ends; a statement still running
//! past the deadline is cancelled. Results come back whole: every partition of
//! `resultSetMetaData.partitionInfo` is fetched with `?partition=N`. A multi-statement
//! request (`MULTI_STATEMENT_COUNT`) answers the handles of its statements, whose results
//! are read with [`Client::results`].

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::auth::{Credentials, KeyError};
use crate::retry::RetryPolicy;

/// Statements running longer than this are cancelled (and Snowflake's own `timeout`
/// parameter says the same).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(3600);
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
        /// Snowflake's message.
        message: String,
        /// The statement handle, for `QUERY_HISTORY`.
        handle: String,
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
        if count != 1 {
            body["parameters"] = json!({ "MULTI_STATEMENT_COUNT": count.to_string() });
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
    /// running it again.
    async fn send(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), SqlApiError> {
        let attempts = self.retry.max_attempts.max(1);
        let mut last = (0u16, String::new());
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(self.retry.wait_before(attempt)).await;
            }
            let mut url = url.clone();
            if attempt > 1 && method == Method::POST {
                url.query_pairs_mut().append_pair("retry", "true");
            }
            let (authorization, kind) = self.credentials.headers()?;
            let mut request = self
                .http
                .request(method.clone(), url)
                .header("Authorization", authorization.expose())
                .header("X-Snowflake-Authorization-Token-Type", kind)
                .header("Accept", "application/json")
                .header("User-Agent", concat!("curflow/", env!("CARGO_PKG_VERSION")));
            if let Some(body) = body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body.to_string());
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    if matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504) {
                        tracing::debug!(
                            status = status.as_u16(),
                            attempt,
                            "Snowflake busy; retrying"
                        );
                        last = (status.as_u16(), text_or_message(&answer));
                        continue;
                    }
                    return Ok((status, answer));
                }
                Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                    tracing::debug!(error = %e, attempt, "Snowflake unreachable; retrying");
                    last = (0, e.to_string());
                }
                Err(e) => {
                    return Err(SqlApiError::Connect {
                        url: self.base.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Err(match last {
            (0, reason) => SqlApiError::Connect {
                url: self.base.to_string(),
                reason: format!("{reason} (after {attempts} attempts)"),
            },
            (status, message) => SqlApiError::Unavailable {
                status,
                attempts,
                message,
            },
        })
    }

    /// Follows a statement to its end: polls while 202, then reads every partition.
    async fn finish(&self, status: StatusCode, answer: Value) -> Result<ResultSet, SqlApiError> {
        let (mut status, mut answer) = (status, answer);
        let started = Instant::now();
        let mut wait = FIRST_POLL;
        while status == StatusCode::ACCEPTED {
            let handle = text(&answer, "statementHandle");
            if started.elapsed() > STATEMENT_TIMEOUT {
                self.cancel(&handle).await?;
                return Err(SqlApiError::Cancelled {
                    handle,
                    waited: started.elapsed(),
                });
            }
            let path = match answer.get("statementStatusUrl").and_then(Value::as_str) {
                Some(path) => path.to_owned(),
                None => format!("/api/v2/statements/{handle}"),
            };
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_POLL);
            (status, answer) = self.send(Method::GET, self.url(&path)?, None).await?;
        }
        if status != StatusCode::OK {
            return Err(self.failure(status, &answer));
        }
        let mut result = ResultSet {
            columns: answer["resultSetMetaData"]["rowType"]
                .as_array()
                .map(|cols| cols.iter().map(|c| text(c, "name")).collect())
                .unwrap_or_default(),
            rows: rows(&answer),
            handle: text(&answer, "statementHandle"),
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
            let mut url = self.url(&format!("/api/v2/statements/{}", result.handle))?;
            url.query_pairs_mut()
                .append_pair("partition", &partition.to_string());
            let (status, page) = self.send(Method::GET, url, None).await?;
            if status != StatusCode::OK {
                return Err(self.failure(status, &page));
            }
            result.rows.extend(rows(&page));
        }
        Ok(result)
    }

    /// The error an unsuccessful answer stands for.
    fn failure(&self, status: StatusCode, answer: &Value) -> SqlApiError {
        let (code, message) = (text(answer, "code"), text_or_message(answer));
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
            422 => SqlApiError::Statement {
                code,
                sql_state: text(answer, "sqlState"),
                message,
                handle: text(answer, "statementHandle"),
            },
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

/// The `data` rows of an answer, cells as text (`None` for SQL NULL).
fn rows(answer: &Value) -> Vec<Vec<Option<String>>> {
    answer["data"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .map(|cells| {
                            cells
                                .iter()
                                .map(|c| match c {
                                    Value::Null => None,
                                    Value::String(s) => Some(s.clone()),
                                    other => Some(other.to_string()),
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}
