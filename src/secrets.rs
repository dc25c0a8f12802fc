//! Secrets: where a credential comes from ([`SecretRef`]) and the value itself ([`Secret`]).
//!
//! Settings files never hold secrets (DESIGN.md §3): a setting that needs one names an AWS
//! Secrets Manager secret (optionally a key of its JSON value), an environment variable or a
//! file. The value is read only when it is needed and is carried in a [`Secret`], whose
//! `Debug` and `Display` print `***`, so that no log line, error or `{:?}` can leak it.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// What a secret is wrapped in: prints as `***`, its text is reached only through
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret text, for the one call that needs it (a connection, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `***`: for error messages of
    /// libraries that might echo what they were given.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret comes from, as written in the settings: one of
/// `{ secret = "name-or-arn", key = "field" }`, `{ env = "VARIABLE" }`, `{ file = "/path" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretRef {
    /// An AWS Secrets Manager secret (name or ARN). With `key`, its value is a JSON object
    /// and the secret is that field (how RDS-style and most hand-made secrets are stored).
    SecretsManager {
        /// The secret's name or ARN.
        secret: String,
        /// The field of the JSON value to use; the whole value when absent.
        #[serde(default)]
        key: Option<String>,
        /// The secret's region. Default: the environment's (`AWS_REGION`).
        #[serde(default)]
        region: Option<String>,
    },
    /// An environment variable (e.g. injected by ECS from Secrets Manager).
    Env {
        /// The variable's name.
        env: String,
    },
    /// A file (e.g. a mounted Kubernetes or Docker secret); surrounding whitespace is trimmed.
    File {
        /// The file's path.
        file: PathBuf,
    },
}

/// A setting that may carry a secret: a plain value when it holds none (an AMQP URL
/// without a password), else a [`SecretRef`]. Settings validation refuses a plain value
/// that holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SecretSetting {
    /// Written in the settings; checked to hold no credential.
    Plain(String),
    /// Read from elsewhere when needed.
    Ref(SecretRef),
}

impl SecretSetting {
    /// The value, read now if it lives elsewhere.
    pub async fn read(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSetting::Plain(text) => Ok(Secret::new(text.as_str())),
            SecretSetting::Ref(r) => r.read().await,
        }
    }
}

/// A secret could not be read. Messages name where it was looked for, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set (or not Unicode).
    #[error("environment variable {name} is not set; set it or point the setting elsewhere")]
    EnvMissing {
        /// The variable.
        name: String,
    },
    /// The file cannot be read.
    #[error("cannot read secret file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Secrets Manager refused or failed the request.
    #[error(
        "cannot read secret \"{secret}\" from AWS Secrets Manager: {message}; {}",
        if *transient {
            "the service did not answer or failed; a later run retries"
        } else {
            "the task role needs secretsmanager:GetSecretValue on it"
        }
    )]
    SecretsManager {
        /// The secret's name or ARN.
        secret: String,
        /// The service's error, without the value.
        message: String,
        /// The service could not be reached, timed out, throttled or failed by itself: the
        /// same settings may work a moment later.
        transient: bool,
    },
    /// The secret has no text value, is not a JSON object, or lacks the key.
    #[error("secret \"{secret}\": {problem}")]
    Shape {
        /// The secret's name or ARN.
        secret: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::SecretsManager {
                secret,
                key: Some(key),
                ..
            } => {
                write!(f, "Secrets Manager secret \"{secret}\" key \"{key}\"")
            }
            SecretRef::SecretsManager {
                secret, key: None, ..
            } => write!(f, "Secrets Manager secret \"{secret}\""),
            SecretRef::Env { env } => write!(f, "environment variable {env}"),
            SecretRef::File { file } => write!(f, "file {}", file.display()),
        }
    }
}

impl SecretRef {
    /// Reads the secret now.
    pub async fn read(&self) -> Result<Secret, SecretError> {
        match self {
            SecretRef::Env { env } => std::env::var(env)
                .map(Secret)
                .map_err(|_| SecretError::EnvMissing { name: env.clone() }),
            SecretRef::File { file } => std::fs::read_to_string(file)
                .map(|text| Secret(text.trim().to_owned()))
                .map_err(|source| SecretError::File {
                    path: file.clone(),
                    source,
                }),
            SecretRef::SecretsManager {
                secret,
                key,
                region,
            } => {
                let value = secrets_manager_value(secret, region.as_deref()).await?;
                match key {
                    None => Ok(value),
                    Some(key) => json_field(secret, &value, key),
                }
            }
        }
    }
}

impl SecretError {
    /// Whether reading the secret again later may succeed with the same settings (a
    /// failure of the service or the network, not of the settings or permissions).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SecretError::SecretsManager {
                transient: true,
                ..
            }
        )
    }
}

/// Whether a GetSecretValue failure is the service's or the network's rather than the
/// request's: no answer, a timeout, throttling, or the service's own internal error.
fn is_transient(
    error: &aws_sdk_secretsmanager::error::SdkError<
        aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError,
    >,
) -> bool {
    use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            matches!(service.err(), GetSecretValueError::InternalServiceError(_))
                || service.err().code() == Some("ThrottlingException")
        }
        _ => false,
    }
}

/// The text value of a Secrets Manager secret.
async fn secrets_manager_value(secret: &str, region: Option<&str>) -> Result<Secret, SecretError> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    let client = aws_sdk_secretsmanager::Client::new(&loader.load().await);
    let output = client
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| SecretError::SecretsManager {
            secret: secret.to_owned(),
            message: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            transient: is_transient(&e),
        })?;
    output
        .secret_string()
        .map(Secret::new)
        .ok_or_else(|| SecretError::Shape {
            secret: secret.to_owned(),
            problem: "has no text value (SecretString); store the value as text or JSON".to_owned(),
        })
}

/// `value` parsed as a JSON object, and its string field `key`.
fn json_field(secret: &str, value: &Secret, key: &str) -> Result<Secret, SecretError> {
    let shape = |problem: String| SecretError::Shape {
        secret: secret.to_owned(),
        problem,
    };
    // The parser's message could quote the value: do not pass it on.
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(value.expose())
        .map_err(|_| shape(format!("is not a JSON object, so key \"{key}\" cannot be read; drop `key` to use the whole value")))?;
    match object.get(key) {
        Some(serde_json::Value::String(text)) => Ok(Secret::new(text.as_str())),
        Some(_) => Err(shape(format!("key \"{key}\" is not a string"))),
        None => {
            let keys: Vec<&String> = object.keys().collect();
            Err(shape(format!("has no key \"{key}\" (keys: {keys:?})")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.redact("password hunter2 refused"), "password *** refused");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn json_keys_and_refs() {
        let v = Secret::new(r#"{"url": "amqp://u:p@h/v", "n": 1}"#);
        assert_eq!(
            json_field("s", &v, "url").unwrap().expose(),
            "amqp://u:p@h/v"
        );
        let err = json_field("s", &v, "nope").unwrap_err().to_string();
        assert!(
            err.contains("\"nope\"") && err.contains("url") && !err.contains("u:p"),
            "{err}"
        );
        let err = json_field("s", &Secret::new("amqp://u:p@h"), "url")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("u:p"), "{err}");
        let r: SecretRef = toml::from_str("secret = \"prod/amqp\"\nkey = \"url\"").unwrap();
        assert_eq!(
            r.to_string(),
            "Secrets Manager secret \"prod/amqp\" key \"url\""
        );
        let r: SecretRef = toml::from_str("env = \"AMQP_URL\"").unwrap();
        assert_eq!(
            r,
            SecretRef::Env {
                env: "AMQP_URL".into()
            }
        );
    }
}
