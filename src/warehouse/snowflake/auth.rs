//! Signing in to the SQL API: a key-pair JWT, a programmatic access token or an OAuth token.
//!
//! The key-pair JWT is RS256 over `{"iss": "ACCOUNT.USER.SHA256:<fingerprint>", "sub":
//! "ACCOUNT.USER", "iat", "exp"}`, where the fingerprint is the base64 SHA-256 of the
//! public key's DER (SubjectPublicKeyInfo) — what `DESCRIBE USER` shows as
//! `RSA_PUBLIC_KEY_FP`. Snowflake accepts at most an hour; curflow signs for
//! [`JWT_LIFETIME`] and signs again [`JWT_RENEW_BEFORE`] ahead of expiry, so a long run never
//! sends a lapsed token. No key, token or JWT ever reaches a log line or an error.

use std::sync::Mutex;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::config::AuthKind;
use crate::secrets::Secret;

/// How long a signed JWT is valid (Snowflake refuses more than one hour).
pub(super) const JWT_LIFETIME: i64 = 59 * 60;
/// A JWT is signed again when it has less than this left (seconds).
pub(super) const JWT_RENEW_BEFORE: i64 = 5 * 60;

/// The private key could not be used. Never quotes the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM block of a supported kind.
    #[error(
        "the Snowflake private key is not an unencrypted PEM RSA key (expected -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----){0}"
    )]
    NotPem(&'static str),
    /// PEM, but the key inside was refused.
    #[error("the Snowflake private key could not be read: {0}")]
    Rejected(String),
    /// Signing failed.
    #[error("could not sign the Snowflake JWT")]
    Sign,
}

/// What the `Authorization` header carries.
pub(super) enum Credentials {
    /// JWTs signed with the user's key, renewed as they near expiry.
    KeyPair(KeyPairSigner),
    /// A token used as it is.
    Token {
        /// PAT or OAuth.
        kind: AuthKind,
        /// The token.
        token: Secret,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::KeyPair(signer) => write!(f, "KeyPair({})", signer.issuer),
            Credentials::Token { kind, .. } => write!(f, "Token({kind:?}, ***)"),
        }
    }
}

impl Credentials {
    /// The `(Authorization, X-Snowflake-Authorization-Token-Type)` values for a request now.
    pub(super) fn headers(&self) -> Result<(Secret, &'static str), KeyError> {
        match self {
            Credentials::KeyPair(signer) => Ok((
                signer.token_at(chrono::Utc::now().timestamp())?,
                "KEYPAIR_JWT",
            )),
            Credentials::Token { kind, token } => Ok((
                Secret::new(format!("Bearer {}", token.expose())),
                match kind {
                    AuthKind::Oauth => "OAUTH",
                    _ => "PROGRAMMATIC_ACCESS_TOKEN",
                },
            )),
        }
    }

    /// `text` (a message from Snowflake) without the credential curflow sent: the token,
    /// or the JWTs signed so far, should a server quote what it was given.
    pub(super) fn redact(&self, text: &str) -> String {
        match self {
            Credentials::Token { token, .. } => token.redact(text),
            Credentials::KeyPair(signer) => {
                let current = signer.current.lock().unwrap_or_else(|e| e.into_inner());
                match current.as_ref() {
                    Some((bearer, _)) => {
                        let jwt = bearer.expose().trim_start_matches("Bearer ");
                        Secret::new(jwt).redact(text)
                    }
                    None => text.to_owned(),
                }
            }
        }
    }

    /// The public key fingerprint, for error messages (`SHA256:…`), if key-pair.
    pub(super) fn fingerprint(&self) -> Option<&str> {
        match self {
            Credentials::KeyPair(signer) => Some(&signer.fingerprint),
            Credentials::Token { .. } => None,
        }
    }
}

/// Signs JWTs for one user with one key; keeps the current one until it nears expiry.
pub(super) struct KeyPairSigner {
    key: RsaKeyPair,
    /// `ACCOUNT.USER`.
    subject: String,
    /// `ACCOUNT.USER.SHA256:<fingerprint>`.
    issuer: String,
    /// `SHA256:<fingerprint>`.
    fingerprint: String,
    /// The current `Bearer <jwt>` and its expiry (Unix seconds).
    current: Mutex<Option<(Secret, i64)>>,
}

/// The account part of a JWT's claims: upper-case, without a locator's region
/// (`xy12345.us-east-1` → `XY12345`).
pub(super) fn jwt_account(account: &str) -> String {
    account
        .split('.')
        .next()
        .unwrap_or(account)
        .to_ascii_uppercase()
}

/// `SHA256:<base64 of the SHA-256 of the public key's DER>`.
pub(super) fn fingerprint(public_key_der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public_key_der);
    format!("SHA256:{}", STANDARD.encode(digest.as_ref()))
}

impl KeyPairSigner {
    /// A signer from a PEM private key (PKCS#8 or PKCS#1, unencrypted).
    pub(super) fn from_pem(account: &str, user: &str, pem: &Secret) -> Result<Self, KeyError> {
        let text = pem.expose();
        if text.contains("ENCRYPTED PRIVATE KEY") {
            return Err(KeyError::NotPem(
                "; it is encrypted: store the unencrypted key in the secret (Secrets Manager encrypts it at rest)",
            ));
        }
        let pkcs8 = text.contains("-----BEGIN PRIVATE KEY-----");
        if !pkcs8 && !text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            return Err(KeyError::NotPem(""));
        }
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .flat_map(|l| l.trim().chars())
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| KeyError::NotPem("; its base64 body is damaged"))?;
        let key = if pkcs8 {
            RsaKeyPair::from_pkcs8(&der)
        } else {
            RsaKeyPair::from_der(&der)
        }
        .map_err(|e| KeyError::Rejected(e.to_string()))?;
        let public = key
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Rejected("no public key".into()))?;
        let fingerprint = fingerprint(public.as_ref());
        let subject = format!("{}.{}", jwt_account(account), user.to_ascii_uppercase());
        Ok(Self {
            issuer: format!("{subject}.{fingerprint}"),
            subject,
            fingerprint,
            key,
            current: Mutex::new(None),
        })
    }

    /// `Bearer <jwt>` valid at `now` (Unix seconds) for at least [`JWT_RENEW_BEFORE`].
    pub(super) fn token_at(&self, now: i64) -> Result<Secret, KeyError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, expires)) = current.as_ref()
            && expires - now > JWT_RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        let expires = now + JWT_LIFETIME;
        let token = Secret::new(format!("Bearer {}", self.sign(now, expires)?));
        *current = Some((token.clone(), expires));
        Ok(token)
    }

    /// A JWT issued at `iat`, expiring at `exp`.
    fn sign(&self, iat: i64, exp: i64) -> Result<String, KeyError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": self.issuer,
            "sub": self.subject,
            "iat": iat,
            "exp": exp,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| KeyError::Sign)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    fn pem() -> (Secret, Vec<u8>) {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let public = key.public_key().as_der().unwrap().as_ref().to_vec();
        (
            Secret::new(format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                lines.join("\n")
            )),
            public,
        )
    }

    #[test]
    fn signs_verifiable_claims_and_renews_before_expiry() {
        let (pem, public) = pem();
        let signer = KeyPairSigner::from_pem("xy12345.us-east-1", "curflow", &pem).unwrap();
        let token = signer.token_at(1_000_000).unwrap();
        let jwt = token.expose().strip_prefix("Bearer ").unwrap().to_owned();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "XY12345.CURFLOW");
        assert_eq!(
            claims["iss"],
            format!("XY12345.CURFLOW.{}", fingerprint(&public))
        );
        assert_eq!(claims["exp"], 1_000_000 + JWT_LIFETIME);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .unwrap();
        // Kept while it has time left, signed again before it lapses.
        assert_eq!(signer.token_at(1_000_000 + 600).unwrap(), token);
        let later = signer
            .token_at(1_000_000 + JWT_LIFETIME - JWT_RENEW_BEFORE + 1)
            .unwrap();
        assert_ne!(later, token);
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let err = KeyPairSigner::from_pem("a", "u", &Secret::new("hunter2"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("PEM") && !err.contains("hunter2"), "{err}");
        let enc = Secret::new(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
        );
        let err = KeyPairSigner::from_pem("a", "u", &enc)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("encrypted"), "{err}");
        let creds = Credentials::Token {
            kind: AuthKind::Pat,
            token: Secret::new("hunter2"),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
