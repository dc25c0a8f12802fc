//! The per-payer lease: two runs for the same payer never change its staging at once.
//!
//! The lease is one object in staging, `_curflow/locks/payer-<id>`, holding its holder's
//! token and an expiry. Every change to it is atomic on every store curflow supports
//! ([`Location::write_if`]: a conditional put on S3, an OS-locked compare-and-swap on a
//! filesystem): it is created only if absent, and renewed, taken over once expired, or
//! released only if it still has the ETag read, so two runs can never both hold it.
//!
//! The holder knows how long the lease is surely its own: until the expiry of its last
//! successful write (no other run takes it over before then). That is the *fence*:
//! before each step that changes what readers see (a copy over a staged file, a delete,
//! the ledger, a final-table commit) the holder checks [`Fence::confirm`], which refuses
//! when less than a third of the time-to-live is left. A holder whose renewals fail thus
//! stops within two thirds of the time-to-live, before anyone can take over, and the
//! payer-period it was staging fails with nothing half-done (the ledger is written last).
//! Renewal runs every sixth of the time-to-live, so a renewal that takes up to half of it
//! (a slow or throttled store) still lands before the fence would refuse; a crashed run
//! blocks the next one for at most one time-to-live (default 60 s). The times are the
//! hosts' clocks: they must agree to well within a third of the time-to-live, as
//! NTP-synchronised hosts do.
//!
//! Release is a conditional write too, of an expired lease (a delete cannot be made
//! conditional on every store); a lease dropped without release (a panic, a signal in the
//! middle of taking it) is released in the background ([`cleanup`]). Runs that find
//! nothing to change never take it, and so never write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::storage::{Location, StorageError, cleanup};
use crate::task::PayerId;

/// The lease could not be taken or released, or was lost while held.
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
    /// This run's lease was taken over, or could not be renewed in time: it stopped before
    /// the next change to staging or the final tables.
    #[error(
        "payer {payer}: this run's lease {url} {why}; it stopped before changing anything more, and the next run redoes the period"
    )]
    Lost {
        /// The payer.
        payer: PayerId,
        /// What happened to it.
        why: &'static str,
        /// The lease object.
        url: String,
    },
    /// Reading or writing the lease object failed.
    #[error("lease for payer {payer}: {source}")]
    Storage {
        /// The payer.
        payer: PayerId,
        /// The store's error (boxed: the fence's `Result` stays small).
        #[source]
        source: Box<StorageError>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    token: String,
    holder: String,
    expires_at: DateTime<Utc>,
}

/// What a lease is for its holder: until when it is surely its own, and whether another
/// run took it. Shared by the lease, its renewal and every [`Fence`].
#[derive(Debug)]
struct Tenure {
    payer: PayerId,
    url: String,
    /// Microseconds since the epoch of the expiry last written successfully.
    until: AtomicI64,
    taken_over: AtomicBool,
    /// Time that must be left for a step to start.
    margin: chrono::Duration,
}

/// The check a lease holder makes before each change to staging or the final tables;
/// cheap (no request), so it is made before every single one.
#[derive(Debug, Clone)]
pub struct Fence(Option<Arc<Tenure>>);

impl Fence {
    /// No lease to check: for callers that publish without staging (tests of a warehouse).
    pub fn none() -> Self {
        Self(None)
    }

    /// `Ok` while the lease is this run's for at least a third of its time-to-live more.
    pub fn confirm(&self) -> Result<(), LeaseError> {
        let Some(tenure) = &self.0 else {
            return Ok(());
        };
        let lost = |why| LeaseError::Lost {
            payer: tenure.payer.clone(),
            why,
            url: tenure.url.clone(),
        };
        if tenure.taken_over.load(Ordering::SeqCst) {
            return Err(lost("was taken over by another run"));
        }
        let until = DateTime::from_timestamp_micros(tenure.until.load(Ordering::SeqCst))
            .unwrap_or_default();
        if until - Utc::now() < tenure.margin {
            return Err(lost(
                "could not be renewed in time (is the staging store reachable?)",
            ));
        }
        Ok(())
    }
}

/// A held lease; [`Lease::release`] gives it back. Dropping it stops the renewal and
/// releases it in the background.
#[derive(Debug)]
pub(super) struct Lease {
    claim: Claim,
    tenure: Arc<Tenure>,
    renewal: tokio::task::JoinHandle<()>,
}

/// The lease object this run holds, or may hold (the answer to taking it was lost, or a
/// signal dropped the attempt): what releasing it needs. Dropped while `armed`, it is
/// released in the background ([`cleanup`]), so it does not block the next run for its
/// time-to-live.
#[derive(Debug)]
struct Claim {
    staging: Location,
    key: String,
    token: String,
    armed: bool,
}

impl Claim {
    /// Releases the lease now, if it is still this run's.
    async fn release(&mut self) -> Result<(), StorageError> {
        self.armed = false;
        release_if_ours(&self.staging, &self.key, &self.token).await
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.armed {
            let (staging, key, token) =
                (self.staging.clone(), self.key.clone(), self.token.clone());
            cleanup::spawn(async move {
                let _ = release_if_ours(&staging, &key, &token).await;
            });
        }
    }
}

/// Tries at taking the lease before giving up (a lost answer, a concurrent takeover).
const ATTEMPTS: u32 = 5;

fn key(payer: &PayerId) -> String {
    format!("_curflow/locks/payer-{payer}")
}

/// The lease's body for `token`, expiring at `expires_at`.
fn holder_body(token: &str, expires_at: DateTime<Utc>) -> Vec<u8> {
    let holder = Holder {
        token: token.to_owned(),
        holder: format!(
            "{}:{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
            std::process::id()
        ),
        expires_at,
    };
    serde_json::to_vec(&holder).unwrap_or_default()
}

/// The expiry of a lease written now for `ttl`: taken before the request is sent, so the
/// holder never believes it holds the lease longer than another run will wait.
fn expiry(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default()
}

impl Lease {
    /// Takes the payer's lease for `ttl`, renewed every sixth of it while held.
    pub(super) async fn acquire(
        staging: &Location,
        payer: &PayerId,
        ttl: Duration,
    ) -> Result<Self, LeaseError> {
        let key = key(payer);
        let storage = |source| LeaseError::Storage {
            payer: payer.clone(),
            source: Box::new(source),
        };
        let token = format!(
            "{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        // Dropped before the lease is handed over (a signal stopped the run mid-way, a
        // request failed): a lease this run may have taken, without hearing so, is released.
        let mut claim = Claim {
            staging: staging.clone(),
            key: key.clone(),
            token: token.clone(),
            armed: true,
        };
        let mut taken = None;
        let mut held_by = None;
        for attempt in 0..ATTEMPTS {
            let expires_at = expiry(ttl);
            let body = holder_body(&token, expires_at);
            let created = match staging.write_if(&key, body, None).await {
                Ok(created) => created,
                // A create whose answer was lost may have succeeded: look again.
                Err(e) if attempt + 1 < ATTEMPTS => {
                    tracing::warn!(%payer, error = %e, "could not take the lease; trying again");
                    continue;
                }
                Err(e) => return Err(storage(e)),
            };
            if created {
                taken = Some(expires_at);
                break;
            }
            let Some((bytes, e_tag)) = staging.read_tagged(&key).await.map_err(storage)? else {
                continue;
            };
            match serde_json::from_slice::<Holder>(&bytes) {
                Ok(current) if current.token == token => {
                    taken = Some(current.expires_at);
                    break;
                }
                Ok(current) if current.expires_at > Utc::now() => {
                    held_by = Some(current);
                    break;
                }
                _ => {
                    tracing::info!(%payer, "taking over an expired or released lease");
                    let expires_at = expiry(ttl);
                    let body = holder_body(&token, expires_at);
                    if staging
                        .write_if(&key, body, e_tag.as_deref())
                        .await
                        .map_err(storage)?
                    {
                        taken = Some(expires_at);
                        break;
                    }
                }
            }
        }
        let url = staging.url().join(&key).to_string();
        let Some(expires_at) = taken else {
            // Another run's lease, as read: nothing of this run's to release.
            claim.armed = false;
            let current = held_by.unwrap_or_else(|| Holder {
                token: String::new(),
                holder: "unknown".into(),
                expires_at: Utc::now(),
            });
            return Err(LeaseError::Held {
                payer: payer.clone(),
                holder: current.holder,
                until: current.expires_at,
                url,
            });
        };
        let tenure = Arc::new(Tenure {
            payer: payer.clone(),
            url,
            until: AtomicI64::new(expires_at.timestamp_micros()),
            taken_over: AtomicBool::new(false),
            margin: chrono::Duration::from_std(ttl / 3).unwrap_or_default(),
        });
        let renewal = tokio::spawn(renew(staging.clone(), key, token, ttl, Arc::clone(&tenure)));
        Ok(Self {
            claim,
            tenure,
            renewal,
        })
    }

    /// The check to make before each change while this lease is held.
    pub(super) fn fence(&self) -> Fence {
        Fence(Some(Arc::clone(&self.tenure)))
    }

    /// Stops renewing and releases the lease if it is still this run's.
    pub(super) async fn release(mut self) -> Result<(), LeaseError> {
        self.renewal.abort();
        self.claim
            .release()
            .await
            .map_err(|source| LeaseError::Storage {
                payer: self.tenure.payer.clone(),
                source: Box::new(source),
            })
    }
}

impl Drop for Lease {
    /// Stops the renewal; the [`Claim`] releases the lease unless it was released.
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Writes an expired lease over `key` if it still holds `token`, conditionally on the
/// ETag read, so a lease another run has taken meanwhile is left alone.
async fn release_if_ours(staging: &Location, key: &str, token: &str) -> Result<(), StorageError> {
    let Some((bytes, e_tag)) = staging.read_tagged(key).await? else {
        return Ok(());
    };
    if serde_json::from_slice::<Holder>(&bytes).is_ok_and(|h| h.token == token) {
        let released = holder_body("", DateTime::UNIX_EPOCH);
        staging.write_if(key, released, e_tag.as_deref()).await?;
    }
    Ok(())
}

/// Pushes the expiry forward every sixth of `ttl` (sooner again after a failure), as long
/// as the lease is still ours, and keeps `tenure` up to date.
async fn renew(staging: Location, key: String, token: String, ttl: Duration, tenure: Arc<Tenure>) {
    let retry = (ttl / 10).min(Duration::from_secs(2));
    let mut wait = ttl / 6;
    loop {
        tokio::time::sleep(wait).await;
        wait = retry;
        let current = match staging.read_tagged(&key).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                tracing::warn!(%key, "the lease was deleted by someone else");
                tenure.taken_over.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the lease to renew it");
                continue;
            }
        };
        if !serde_json::from_slice::<Holder>(&current.0).is_ok_and(|h| h.token == token) {
            tracing::warn!(%key, "the lease was taken over by another run");
            tenure.taken_over.store(true, Ordering::SeqCst);
            return;
        }
        let expires_at = expiry(ttl);
        match staging
            .write_if(&key, holder_body(&token, expires_at), current.1.as_deref())
            .await
        {
            Ok(true) => {
                tenure
                    .until
                    .store(expires_at.timestamp_micros(), Ordering::SeqCst);
                wait = ttl / 6;
            }
            // Changed since it was read: the next round sees by whom.
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not renew the lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StoreUrl;

    fn local_staging() -> (tempfile::TempDir, Location, PayerId) {
        let dir = tempfile::tempdir().unwrap();
        let staging =
            Location::local(&StoreUrl::parse(dir.path().to_str().unwrap()).unwrap()).unwrap();
        (dir, staging, PayerId::parse("111111111111").unwrap())
    }

    async fn holder(staging: &Location, payer: &PayerId) -> Holder {
        serde_json::from_slice(&staging.read(&key(payer)).await.unwrap().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_expired_leases_are_taken_over() {
        let (_dir, staging, payer) = local_staging();
        let first = Lease::acquire(&staging, &payer, Duration::from_secs(60))
            .await
            .unwrap();
        let err = Lease::acquire(&staging, &payer, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(matches!(err, LeaseError::Held { .. }), "{err}");
        first.release().await.unwrap();
        assert!(
            holder(&staging, &payer).await.expires_at < Utc::now(),
            "released"
        );
        let second = Lease::acquire(&staging, &payer, Duration::from_secs(60))
            .await
            .unwrap();
        second.release().await.unwrap();
        // A crashed holder: an expired lease is taken over.
        staging
            .write(&key(&payer), holder_body("dead", Utc::now()))
            .await
            .unwrap();
        let third = Lease::acquire(&staging, &payer, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(holder(&staging, &payer).await.token, third.claim.token);
        third.release().await.unwrap();
    }

    /// Runs racing to take over one expired lease on a local folder: exactly one wins,
    /// every time. (The delete-then-create this replaced let several win.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_takeovers_on_a_filesystem_have_one_winner() {
        let (_dir, staging, payer) = local_staging();
        for round in 0..20 {
            staging
                .write(&key(&payer), holder_body("dead", Utc::now()))
                .await
                .unwrap();
            let racers = (0..8).map(|_| {
                let (staging, payer) = (staging.clone(), payer.clone());
                tokio::spawn(async move {
                    Lease::acquire(&staging, &payer, Duration::from_secs(60)).await
                })
            });
            let results = futures::future::join_all(racers).await;
            let mut won = Vec::new();
            for result in results {
                match result.unwrap() {
                    Ok(lease) => won.push(lease),
                    Err(LeaseError::Held { .. }) => {}
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
            assert_eq!(
                won.len(),
                1,
                "round {round}: {} runs hold the lease",
                won.len()
            );
            assert_eq!(holder(&staging, &payer).await.token, won[0].claim.token);
            won.pop().unwrap().release().await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_lease_taken_over_fails_its_fence() {
        let (_dir, staging, payer) = local_staging();
        let lease = Lease::acquire(&staging, &payer, Duration::from_millis(600))
            .await
            .unwrap();
        let fence = lease.fence();
        fence.confirm().unwrap();
        staging
            .write(
                &key(&payer),
                holder_body("intruder", expiry(Duration::from_secs(60))),
            )
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let err = loop {
            match fence.confirm() {
                Err(e) => break e,
                Ok(()) if started.elapsed() < Duration::from_secs(5) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(()) => panic!("the fence still confirms a lease another run took"),
            }
        };
        assert!(err.to_string().contains("taken over"), "{err}");
        // Its release leaves the new holder's lease alone.
        lease.release().await.unwrap();
        assert_eq!(holder(&staging, &payer).await.token, "intruder");
    }

    #[test]
    fn a_fence_refuses_when_too_little_time_is_left() {
        let tenure = |left: chrono::Duration| {
            Fence(Some(Arc::new(Tenure {
                payer: PayerId::parse("111111111111").unwrap(),
                url: "file:///s/_curflow/locks/payer-111111111111".into(),
                until: AtomicI64::new((Utc::now() + left).timestamp_micros()),
                taken_over: AtomicBool::new(false),
                margin: chrono::Duration::seconds(20),
            })))
        };
        tenure(chrono::Duration::seconds(40)).confirm().unwrap();
        let err = tenure(chrono::Duration::seconds(19)).confirm().unwrap_err();
        assert!(
            err.to_string().contains("could not be renewed in time"),
            "{err}"
        );
        Fence::none().confirm().unwrap();
    }

    /// A lease dropped unreleased (a panic, a signal while it was being taken) is released
    /// in the background, so it does not block the next run for its time-to-live.
    #[tokio::test]
    async fn a_dropped_lease_is_released() {
        let (_dir, staging, payer) = local_staging();
        drop(
            Lease::acquire(&staging, &payer, Duration::from_secs(60))
                .await
                .unwrap(),
        );
        cleanup::finish(Duration::from_secs(5)).await;
        assert!(holder(&staging, &payer).await.expires_at < Utc::now());
        Lease::acquire(&staging, &payer, Duration::from_secs(60))
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
    }
}
