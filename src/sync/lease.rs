//! The per-payer lease: two runs for the same payer never change its staging at once.
//!
//! The lease is one object in staging, `_curflow/locks/payer-<id>`, created with a
//! conditional put (`If-None-Match: *`) so only one run can take it. It carries an expiry and
//! is renewed in the background while held, so a crashed run blocks the next one for at most
//! one time-to-live. An expired lease is taken over with `If-Match` on its ETag, so two runs
//! cannot both take over the same stale lease. Runs that find nothing to change never take
//! it, and so never write.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::storage::{Location, StorageError};
use crate::task::PayerId;

/// The lease could not be taken or released.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another run holds it.
    #[error(
        "payer {payer} is being synchronized by another run ({holder}) until {until}; this run leaves it alone — retry after that time, or delete {url} if that run is known to be dead"
    )]
    Held {
        /// The payer.
        payer: PayerId,
        /// Who holds it (host and process id).
        holder: String,
        /// When the lease expires unless renewed.
        until: DateTime<Utc>,
        /// The lease object.
        url: String,
    },
    /// Reading or writing the lease object failed.
    #[error("lease for payer {payer}: {source}")]
    Storage {
        /// The payer.
        payer: PayerId,
        /// The store's error.
        #[source]
        source: StorageError,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    token: String,
    holder: String,
    expires_at: DateTime<Utc>,
}

/// A held lease; [`Lease::release`] gives it back. Dropping it stops the renewal, and the
/// lease then expires by itself.
#[derive(Debug)]
pub(super) struct Lease {
    staging: Location,
    key: String,
    payer: PayerId,
    token: String,
    renewal: tokio::task::JoinHandle<()>,
}

/// Tries at taking the lease before giving up (a lost answer, a concurrent takeover).
const ATTEMPTS: u32 = 5;

fn key(payer: &PayerId) -> String {
    format!("_curflow/locks/payer-{payer}")
}

fn holder_body(token: &str, ttl: Duration) -> Vec<u8> {
    let holder = Holder {
        token: token.to_owned(),
        holder: format!(
            "{}:{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
            std::process::id()
        ),
        expires_at: Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default(),
    };
    serde_json::to_vec(&holder).unwrap_or_default()
}

impl Lease {
    /// Takes the payer's lease for `ttl`, renewed every third of it while held.
    pub(super) async fn acquire(
        staging: &Location,
        payer: &PayerId,
        ttl: Duration,
    ) -> Result<Self, LeaseError> {
        let key = key(payer);
        let storage = |source| LeaseError::Storage {
            payer: payer.clone(),
            source,
        };
        let token = format!(
            "{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let mut taken = false;
        let mut held_by = None;
        for attempt in 0..ATTEMPTS {
            let created = match staging.write_if(&key, holder_body(&token, ttl), None).await {
                Ok(created) => created,
                // A create whose answer was lost may have succeeded: look again.
                Err(e) if attempt + 1 < ATTEMPTS => {
                    tracing::warn!(%payer, error = %e, "could not take the lease; trying again");
                    continue;
                }
                Err(e) => return Err(storage(e)),
            };
            if created {
                taken = true;
                break;
            }
            let Some((bytes, e_tag)) = staging.read_tagged(&key).await.map_err(storage)? else {
                continue;
            };
            match serde_json::from_slice::<Holder>(&bytes) {
                Ok(current) if current.token == token => {
                    taken = true;
                    break;
                }
                Ok(current) if current.expires_at > Utc::now() => {
                    held_by = Some(current);
                    break;
                }
                _ => {
                    tracing::warn!(%payer, "taking over an expired or unreadable lease");
                    if staging
                        .write_if(&key, holder_body(&token, ttl), e_tag.as_deref())
                        .await
                        .map_err(storage)?
                    {
                        taken = true;
                        break;
                    }
                }
            }
        }
        if !taken {
            let current = held_by.unwrap_or_else(|| Holder {
                token: String::new(),
                holder: "unknown".into(),
                expires_at: Utc::now(),
            });
            return Err(LeaseError::Held {
                payer: payer.clone(),
                holder: current.holder,
                until: current.expires_at,
                url: staging.url().join(&key).to_string(),
            });
        }
        let renewal = tokio::spawn(renew(staging.clone(), key.clone(), token.clone(), ttl));
        Ok(Self {
            staging: staging.clone(),
            key,
            payer: payer.clone(),
            token,
            renewal,
        })
    }

    /// Stops renewing and deletes the lease if it is still this run's.
    pub(super) async fn release(self) -> Result<(), LeaseError> {
        self.renewal.abort();
        let storage = |source| LeaseError::Storage {
            payer: self.payer.clone(),
            source,
        };
        if let Some((bytes, _)) = self.staging.read_tagged(&self.key).await.map_err(storage)?
            && serde_json::from_slice::<Holder>(&bytes).is_ok_and(|h| h.token == self.token)
        {
            self.staging.delete(&self.key).await.map_err(storage)?;
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Pushes the expiry forward every third of `ttl`, as long as the lease is still ours.
async fn renew(staging: Location, key: String, token: String, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let current = match staging.read_tagged(&key).await {
            Ok(Some(current)) => current,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the lease to renew it");
                continue;
            }
        };
        if !serde_json::from_slice::<Holder>(&current.0).is_ok_and(|h| h.token == token) {
            tracing::warn!(%key, "the lease was taken over by another run");
            return;
        }
        if let Err(e) = staging
            .write_if(&key, holder_body(&token, ttl), current.1.as_deref())
            .await
        {
            tracing::warn!(error = %e, "could not renew the lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StoreUrl;

    #[tokio::test]
    async fn one_holder_at_a_time_and_expired_leases_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let staging =
            Location::local(&StoreUrl::parse(dir.path().to_str().unwrap()).unwrap()).unwrap();
        let payer = PayerId::parse("111111111111").unwrap();
        let first = Lease::acquire(&staging, &payer, Duration::from_secs(60))
            .await
            .unwrap();
        let err = Lease::acquire(&staging, &payer, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(matches!(err, LeaseError::Held { .. }), "{err}");
        first.release().await.unwrap();
        let second = Lease::acquire(&staging, &payer, Duration::from_secs(60))
            .await
            .unwrap();
        drop(second);
        // A crashed holder: an expired lease is taken over.
        staging
            .write(&key(&payer), holder_body("dead", Duration::ZERO))
            .await
            .unwrap();
        Lease::acquire(&staging, &payer, Duration::from_secs(60))
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
        assert!(staging.read(&key(&payer)).await.unwrap().is_none());
    }
}
