//! `[<env>.snowflake]`: which Snowflake account, objects and credentials curflow uses.
//!
//! Read with the rest of the profile by `settings` and validated here, once: every
//! identifier that later appears in SQL text (payer table, storage integration) must be a
//! plain Snowflake identifier, and the credential is only ever a reference (Secrets
//! Manager, environment variable or file), read when the warehouse is opened.

use serde::Deserialize;

use crate::secrets::SecretRef;
use crate::values::Refusal;

/// The default payer configuration table (the seed's).
fn default_payer_table() -> String {
    "aws_az_share.metadata.pro_refresh_config".into()
}

/// `[<env>.snowflake]` as written; every key optional here, required ones checked in
/// [`SnowflakeProfile::resolve`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnowflakeProfile {
    /// Account identifier, `ORGNAME-ACCOUNTNAME` or an account locator (`xy12345` or
    /// `xy12345.us-east-1`). Required.
    account: Option<String>,
    /// The user curflow signs in as. Required.
    user: Option<String>,
    /// Role for every statement. Default: the user's default role.
    /// Role, warehouse, database and schema are identifiers as SQL writes them: unquoted
    /// (`curflow_wh`, meaning `CURFLOW_WH`) or quoted (`'"My WH"'`, exactly that name).
    role: Option<String>,
    /// Virtual warehouse that runs the statements. Required.
    warehouse: Option<String>,
    /// Database of the stages, external tables and final tables. Required.
    database: Option<String>,
    /// Schema of the same. Required.
    schema: Option<String>,
    /// SQL API base URL. Default: `https://<account>.snowflakecomputing.com`.
    base_url: Option<String>,
    /// Payer configuration table, `[database.][schema.]table`.
    /// Default: `aws_az_share.metadata.pro_refresh_config`.
    payer_table: Option<String>,
    /// Storage integration that lets Snowflake read the staging bucket (no keys in SQL).
    /// Required.
    storage_integration: Option<String>,
    /// `key_pair` (default), `pat` (programmatic access token) or `oauth`.
    auth: Option<AuthKind>,
    /// `key_pair`: where the unencrypted PKCS#8 PEM private key is kept:
    /// `{ secret = "name", key = "field" }`, `{ env = "VAR" }` or `{ file = "/path" }`.
    private_key: Option<SecretRef>,
    /// `pat` / `oauth`: where the token is kept, as for `private_key`.
    token: Option<SecretRef>,
}

/// How curflow proves who it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// A JWT signed with the user's RSA private key (`KEYPAIR_JWT`).
    #[default]
    KeyPair,
    /// A programmatic access token (`PROGRAMMATIC_ACCESS_TOKEN`).
    Pat,
    /// An OAuth access token (`OAUTH`).
    Oauth,
}

/// The validated credential reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSettings {
    /// Key-pair JWT; the PEM private key is read from here.
    KeyPair {
        /// Where the private key is kept.
        private_key: SecretRef,
    },
    /// A bearer token of this kind, read from `token`.
    Token {
        /// PAT or OAuth.
        kind: AuthKind,
        /// Where the token is kept.
        token: SecretRef,
    },
}

/// `[<env>.snowflake]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnowflakeSettings {
    /// Account identifier as written.
    pub account: String,
    /// User name as written.
    pub user: String,
    /// Role, if set: the name as Snowflake stores it (what `SHOW ROLES` lists), which is
    /// what the SQL API's case-sensitive request fields must hold.
    pub role: Option<String>,
    /// Virtual warehouse, as stored.
    pub warehouse: String,
    /// Database, as stored.
    pub database: String,
    /// Schema, as stored.
    pub schema: String,
    /// SQL API base URL.
    pub base_url: url::Url,
    /// Payer table, validated dotted identifier.
    pub payer_table: String,
    /// Storage integration name.
    pub storage_integration: String,
    /// Credentials.
    pub auth: AuthSettings,
}

/// `snowflake.<key> = value` refused, because `reason`.
fn refuse(key: &str, value: &str, reason: &str) -> Refusal {
    crate::values::refuse(&format!("snowflake.{key}"), value, reason)
}

/// A plain (unquoted) Snowflake identifier: a letter or `_`, then letters, digits, `_`, `$`.
pub(super) fn is_identifier(text: &str) -> bool {
    let mut bytes = text.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        && text.len() <= 255
}

/// The name Snowflake stores for an identifier written as in SQL: an unquoted one
/// upper-cased ("Identifier requirements": unquoted identifiers are stored and resolved
/// as upper case), a quoted one as written inside its quotes (`""` standing for `"`).
/// `None` when it is neither.
pub(super) fn stored_name(written: &str) -> Option<String> {
    if is_identifier(written) {
        return Some(written.to_ascii_uppercase());
    }
    let inner = written.strip_prefix('"')?.strip_suffix('"')?;
    let name = inner.replace("\"\"", "\"");
    let lone_quote = name.matches('"').count() * 2 != inner.matches('"').count();
    (!name.is_empty() && name.len() <= 255 && !lone_quote && !name.chars().any(char::is_control))
        .then_some(name)
}

impl SnowflakeProfile {
    /// Applies defaults and checks every value.
    pub(crate) fn resolve(self) -> Result<SnowflakeSettings, Refusal> {
        let required = |key: &str, value: Option<String>| {
            value.ok_or_else(|| refuse(key, "(missing)", "required when warehouse = \"snowflake\""))
        };
        let identifier = |key: &str, value: String| {
            if is_identifier(&value) {
                Ok(value)
            } else {
                Err(refuse(
                    key,
                    &format!("\"{value}\""),
                    "must be a plain Snowflake identifier (letters, digits, _ and $, not starting with a digit)",
                ))
            }
        };
        let account = required("account", self.account)?;
        if account.is_empty()
            || !account
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(refuse(
                "account",
                &format!("\"{account}\""),
                "must be an account identifier such as MYORG-MYACCOUNT or xy12345.us-east-1",
            ));
        }
        let user = required("user", self.user)?;
        if user.is_empty() || user.len() > 255 || user.chars().any(|c| c.is_control() || c == '"') {
            return Err(refuse(
                "user",
                &format!("\"{user}\""),
                "must be a Snowflake user name",
            ));
        }
        let context = |key: &str, value: String| {
            stored_name(&value).ok_or_else(|| {
                refuse(
                    key,
                    &format!("{value:?}"),
                    "must be a Snowflake identifier: unquoted (letters, digits, _ and $, not starting with a digit; Snowflake reads it upper-case) or in double quotes (exactly that name)",
                )
            })
        };
        let role = self.role.map(|r| context("role", r)).transpose()?;
        let warehouse = context("warehouse", required("warehouse", self.warehouse)?)?;
        let database = context("database", required("database", self.database)?)?;
        let schema = context("schema", required("schema", self.schema)?)?;
        let storage_integration = identifier(
            "storage_integration",
            required("storage_integration", self.storage_integration)?,
        )?;
        let payer_table = self.payer_table.unwrap_or_else(default_payer_table);
        let parts: Vec<&str> = payer_table.split('.').collect();
        if parts.len() > 3 || !parts.iter().all(|p| is_identifier(p)) {
            return Err(refuse(
                "payer_table",
                &format!("\"{payer_table}\""),
                "must be [database.][schema.]table of plain identifiers",
            ));
        }
        let base_url = match self.base_url {
            Some(text) => {
                let url = url::Url::parse(&text).map_err(|e| {
                    refuse(
                        "base_url",
                        &format!("\"{text}\""),
                        &format!("not a URL: {e}"),
                    )
                })?;
                let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
                if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
                    return Err(refuse(
                        "base_url",
                        &format!("\"{text}\""),
                        "must be an https:// URL (http:// only on loopback, for tests)",
                    ));
                }
                url
            }
            None => {
                // Hostnames cannot hold `_`: Snowflake's URLs write it as `-`.
                let host = account.to_ascii_lowercase().replace('_', "-");
                url::Url::parse(&format!("https://{host}.snowflakecomputing.com"))
                    .map_err(|e| refuse("account", &format!("\"{account}\""), &e.to_string()))?
            }
        };
        let auth = match (self.auth.unwrap_or_default(), self.private_key, self.token) {
            (AuthKind::KeyPair, Some(private_key), None) => AuthSettings::KeyPair { private_key },
            (kind @ (AuthKind::Pat | AuthKind::Oauth), None, Some(token)) => {
                AuthSettings::Token { kind, token }
            }
            (AuthKind::KeyPair, _, _) => {
                return Err(refuse(
                    "private_key",
                    "(missing or with token)",
                    "auth = \"key_pair\" needs private_key = { secret = \"name\", key = \"field\" }, { env = \"VAR\" } or { file = \"/path\" } and no token",
                ));
            }
            (_, _, _) => {
                return Err(refuse(
                    "token",
                    "(missing or with private_key)",
                    "auth = \"pat\" or \"oauth\" needs token = { secret = \"name\", key = \"field\" }, { env = \"VAR\" } or { file = \"/path\" } and no private_key",
                ));
            }
        };
        Ok(SnowflakeSettings {
            account,
            user,
            role,
            warehouse,
            database,
            schema,
            base_url,
            payer_table,
            storage_integration,
            auth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(text: &str) -> Result<SnowflakeSettings, Refusal> {
        toml::from_str::<SnowflakeProfile>(text).unwrap().resolve()
    }

    const BASE: &str = "account = \"myorg-acct_1\"\nuser = \"curflow\"\nwarehouse = \"WH\"\ndatabase = \"FINOPS\"\nschema = \"CUR\"\nstorage_integration = \"CURFLOW_S3\"\n";

    #[test]
    fn defaults_and_key_pair() {
        let s = profile(&format!("{BASE}private_key = {{ env = \"SF_KEY\" }}\n")).unwrap();
        assert_eq!(
            s.base_url.as_str(),
            "https://myorg-acct-1.snowflakecomputing.com/"
        );
        assert_eq!(s.payer_table, "aws_az_share.metadata.pro_refresh_config");
        assert_eq!(
            s.auth,
            AuthSettings::KeyPair {
                private_key: SecretRef::Env {
                    env: "SF_KEY".into()
                }
            }
        );
    }

    #[test]
    fn refuses_what_would_reach_sql_or_leak() {
        let key = "private_key = { env = \"K\" }\n";
        let err =
            profile(&format!("{BASE}{key}payer_table = \"a.b; drop table x\"\n")).unwrap_err();
        assert_eq!(err.key, "snowflake.payer_table");
        let err = profile(&format!("{BASE}auth = \"pat\"\n{key}")).unwrap_err();
        assert_eq!(err.key, "snowflake.token");
        let err = profile(&format!(
            "{BASE}{key}base_url = \"http://snowflake.example\"\n"
        ))
        .unwrap_err();
        assert_eq!(err.key, "snowflake.base_url");
        let err = profile("user = \"u\"\n").unwrap_err();
        assert_eq!(err.key, "snowflake.account");
        assert!(is_identifier("CUR_2025$X") && !is_identifier("1abc") && !is_identifier("a-b"));
        let err = profile(&BASE.replace("\"WH\"", "\"my wh\"")).unwrap_err();
        assert_eq!(err.key, "snowflake.warehouse");
    }

    /// The SQL API's context fields are case-sensitive: they get the stored name.
    #[test]
    fn context_names_are_sent_as_snowflake_stores_them() {
        assert_eq!(stored_name("curflow_wh").as_deref(), Some("CURFLOW_WH"));
        assert_eq!(stored_name("\"My WH\"").as_deref(), Some("My WH"));
        assert_eq!(stored_name("\"a\"\"b\"").as_deref(), Some("a\"b"));
        for bad in ["my wh", "1wh", "\"\"", "\"a\"b\"", "\"open", "\"a\nb\""] {
            assert_eq!(stored_name(bad), None, "{bad}");
        }
        let s = profile(&format!(
            "{}private_key = {{ env = \"K\" }}\n",
            BASE.replace("\"WH\"", "'\"Mixed Wh\"'")
                .replace("\"FINOPS\"", "\"finops\"")
        ))
        .unwrap();
        assert_eq!(
            (s.warehouse.as_str(), s.database.as_str()),
            ("Mixed Wh", "FINOPS")
        );
    }
}
