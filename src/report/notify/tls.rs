//! What an `amqps://` connection to the broker trusts: the system's roots (lapin's rustls
//! with the platform verifier), plus the CA file `notify.ca_file` names, read and checked
//! while settings are validated so that a wrong path is refused before anything runs. Also
//! how a refused broker certificate is told apart from the other connection failures: it
//! does not get better by retrying, and the operator has one thing to do about it.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};

use lapin::tcp::OwnedTLSConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::values::{Refusal, refuse};

/// The CA certificate(s) `notify.ca_file` names, trusted in addition to the system roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedCa {
    /// The file, as configured (for messages).
    pub path: PathBuf,
    /// Its PEM text, holding at least one certificate.
    pem: String,
}

impl TrustedCa {
    /// Reads `path`; refuses (as `notify.ca_file`) a file that cannot be read or holds no
    /// PEM certificate, since every TLS connection would then fail.
    pub(super) fn load(path: &Path) -> Result<Self, Refusal> {
        let shown = format!("\"{}\"", path.display());
        let pem = std::fs::read_to_string(path).map_err(|e| {
            refuse(
                "notify.ca_file",
                &shown,
                &format!(
                    "cannot be read ({e}): name a readable PEM file holding the broker's CA certificate"
                ),
            )
        })?;
        let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
            .and_then(|c| {
                if c.is_empty() {
                    Err("no \"BEGIN CERTIFICATE\" block".to_owned())
                } else {
                    Ok(c)
                }
            });
        if let Err(why) = certificates {
            return Err(refuse(
                "notify.ca_file",
                &shown,
                &format!(
                    "is not a PEM certificate file ({why}): name the broker's CA certificate in PEM form"
                ),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            pem,
        })
    }
}

/// lapin's TLS settings for one connection: the configured CA, if any, on top of the system
/// roots. Only an `amqps://` URL uses them; `amqp://` stays plaintext.
pub(super) fn tls_config(ca: Option<&TrustedCa>) -> OwnedTLSConfig {
    OwnedTLSConfig {
        identity: None,
        cert_chain: ca.map(|ca| ca.pem.clone()),
    }
}

/// rustls' reason when the broker's certificate was refused (`invalid peer certificate:
/// UnknownIssuer`), or `None` for every other failure. The rustls error sits inside one or
/// more `io::Error`s, whose `source()` skips the error they wrap, hence `get_ref`.
pub(super) fn refused_certificate(error: &lapin::Error) -> Option<String> {
    let lapin::ErrorKind::IOError(io) = error.kind() else {
        return None;
    };
    let mut current: &(dyn StdError + 'static) = io.get_ref()?;
    loop {
        if let Some(rustls::Error::InvalidCertificate(_)) = current.downcast_ref::<rustls::Error>()
        {
            return Some(current.to_string());
        }
        current = match current.downcast_ref::<std::io::Error>() {
            Some(inner) => inner.get_ref()?,
            None => current.source()?,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_or_not_pem_is_refused_naming_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let refusal = TrustedCa::load(&missing).unwrap_err();
        assert_eq!(refusal.key, "notify.ca_file");
        assert_eq!(refusal.value, format!("\"{}\"", missing.display()));
        assert!(refusal.reason.contains("cannot be read"), "{refusal}");

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let refusal = TrustedCa::load(&junk).unwrap_err();
        assert!(
            refusal.reason.contains("not a PEM certificate"),
            "{refusal}"
        );
    }

    #[test]
    fn only_a_refused_certificate_is_recognised() {
        let refused = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let wrapped = lapin::Error::from(std::io::Error::other(refused));
        assert_eq!(
            refused_certificate(&wrapped).as_deref(),
            Some("invalid peer certificate: UnknownIssuer")
        );
        let reset = lapin::Error::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(refused_certificate(&reset), None);
    }
}
