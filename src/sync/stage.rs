//! Staging a payer's periods: plan → lease → copy → delete → ledger, in that order.
//!
//! A [`PayerSync`] is one payer's session of a run. For each period, [`PayerSync::stage`]
//! discovers the source's delivery, plans it against the staged copy and the ledger, and —
//! unless only a plan was asked for — takes the payer's lease (once per run, and only when
//! something is to be written), plans again under it, copies, deletes the stale files and
//! writes the ledger. What it staged comes back as a [`StagedDelivery`], which records in
//! the ledger that the analytics succeeded on it ([`StagedDelivery::mark_analysed`]).
//! [`PayerSync::release`] gives the lease back at the end of the run.

use std::time::Duration;

use chrono::Utc;

use super::copy::{copy_all, delete_all};
use super::layout::{self, DeliveryState, Layout, SourcePeriod};
use super::lease::{Fence, Lease};
use super::ledger::{Ledger, StagedFile};
use super::plan::{Plan, plan};
use super::{Error, staged_folder};
use crate::storage::Location;
use crate::task::{BillingPeriod, PayerId};

/// File counts of a sync, planned or done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Files copied (or to copy).
    pub copied_files: usize,
    /// Bytes copied (or to copy).
    pub copied_bytes: u64,
    /// Stale staged files deleted (or to delete).
    pub deleted_files: usize,
    /// Files already staged and verified.
    pub unchanged_files: usize,
    /// Their bytes.
    pub unchanged_bytes: u64,
}

impl SyncCounts {
    /// What `plan` would move.
    fn planned(plan: &Plan) -> Self {
        Self {
            copied_files: plan.copies.len(),
            copied_bytes: plan.copy_bytes(),
            deleted_files: plan.deletes.len(),
            unchanged_files: plan.unchanged,
            unchanged_bytes: plan.unchanged_bytes,
        }
    }
}

/// What a period is staged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Say what `Analyse` would stage; change nothing.
    Plan,
    /// Mirror the source; whether the analytics ran on the staged copy does not matter.
    Stage,
    /// Mirror the source for the analytics: a staged copy the analytics have not yet
    /// succeeded on is handed back again, even when it mirrors the source.
    Analyse,
}

/// What [`PayerSync::stage`] did with a period.
#[derive(Debug)]
pub enum StageOutcome {
    /// The source cannot be staged now (no data, a delivery in progress, a legacy report
    /// being rewritten); the staged copy is left as it was.
    NotReady {
        /// Why, in a sentence.
        reason: String,
    },
    /// The staged copy mirrors the delivery (and, for `Analyse`, was analysed): nothing to do.
    AlreadySynchronized,
    /// `Plan`: what staging would do.
    Planned {
        /// The files it would move.
        counts: SyncCounts,
        /// Whether the delivery is empty (its manifest names no data files).
        empty: bool,
    },
    /// Staged, or already staged but not yet analysed; ready for the analytics.
    Staged(Box<StagedDelivery>),
}

/// A payer-period mirrored in staging and recorded in its ledger.
#[derive(Debug)]
pub struct StagedDelivery {
    /// What staging did.
    pub counts: SyncCounts,
    /// The payer.
    pub payer: PayerId,
    /// The billing period.
    pub period: BillingPeriod,
    /// The staged folder.
    pub location: Location,
    /// The layout of the staged files (never `Auto`).
    pub layout: Layout,
    /// The ledger as written for these files.
    ledger: Ledger,
    /// The staging root the ledger lives in.
    staging: Location,
    /// The lease's check, made before the ledger and the final tables change.
    pub fence: Fence,
}

impl StagedDelivery {
    /// Whether the delivery holds no data file: its manifest named none (an empty month),
    /// so the staged folder holds nothing and the period's final tables are to hold nothing.
    pub fn is_empty(&self) -> bool {
        self.ledger.files.is_empty()
    }

    /// Records in the ledger that the analytics succeeded on exactly these files, so the
    /// next run finds the period already synchronized.
    pub async fn mark_analysed(&mut self) -> Result<(), Error> {
        self.fence.confirm()?;
        self.ledger.analytics_succeeded_at = Some(Utc::now());
        self.ledger
            .write(&self.staging, &self.payer, self.period)
            .await?;
        Ok(())
    }
}

/// One payer's staging session of a run: its source, where it goes, and its lease once
/// taken.
#[derive(Debug)]
pub struct PayerSync {
    payer: PayerId,
    export: Location,
    layout: Layout,
    staging: Location,
    concurrency: usize,
    lease_ttl: Duration,
    lease: Option<Lease>,
}

impl PayerSync {
    /// A session for `payer`, whose opened `export` is laid out as `layout`, staging into
    /// the `staging` root with at most `concurrency` transfers at a time and a lease of
    /// `lease_ttl` (renewed while held). Nothing is read or written until [`Self::stage`].
    pub fn new(
        payer: PayerId,
        export: Location,
        layout: Layout,
        staging: Location,
        concurrency: usize,
        lease_ttl: Duration,
    ) -> Self {
        Self {
            payer,
            export,
            layout,
            staging,
            concurrency,
            lease_ttl,
            lease: None,
        }
    }

    /// Stages one period for `intent`. Errors leave the staged copy as the previous ledger
    /// describes it: copies are verified before any stale file is deleted, and the ledger
    /// is written last.
    pub async fn stage(
        &mut self,
        period: BillingPeriod,
        intent: Intent,
    ) -> Result<StageOutcome, Error> {
        let payer = &self.payer;
        let discovered = layout::discover(&self.export, self.layout, period).await?;
        if let Some(reason) = self.not_ready(&discovered) {
            if intent == Intent::Analyse
                && discovered.state.in_progress()
                && let Some(delivery) = self.unanalysed(&discovered).await?
            {
                return Ok(StageOutcome::Staged(delivery));
            }
            return Ok(StageOutcome::NotReady { reason });
        }
        let staged = self.staging.child(&staged_folder(payer, period));
        let (ledger, plan) = self.compare(&discovered, &staged).await?;
        let analytics_done = ledger
            .as_ref()
            .is_some_and(|l| l.analytics_succeeded_at.is_some());
        if plan.is_empty() && (analytics_done || intent == Intent::Stage) {
            tracing::info!(%payer, %period, "Already synchronized");
            return Ok(StageOutcome::AlreadySynchronized);
        }
        if intent == Intent::Plan {
            return Ok(StageOutcome::Planned {
                counts: SyncCounts::planned(&plan),
                empty: discovered.state == DeliveryState::Empty,
            });
        }
        // Another run may have changed the staged copy before the lease was ours.
        let (ledger, plan) = if self.lease.is_none() {
            self.lease = Some(Lease::acquire(&self.staging, payer, self.lease_ttl).await?);
            self.compare(&discovered, &staged).await?
        } else {
            (ledger, plan)
        };
        // A copy killed on local disk leaves a file no listing shows; under the lease no
        // other run is writing here, so what is left is garbage.
        let removed = staged.remove_interrupted_writes("").await?;
        if removed > 0 {
            tracing::info!(%payer, %period, files = removed, "removed files of an interrupted copy");
        }
        let (ledger, counts) = match ledger {
            Some(ledger) if plan.is_empty() => (ledger, SyncCounts::planned(&plan)),
            _ => self.mirror(&discovered, &staged, &plan).await?,
        };
        Ok(StageOutcome::Staged(self.delivery(
            (period, staged),
            discovered.layout,
            ledger,
            counts,
        )))
    }

    /// The staged delivery in `staged`, as `ledger` records it, for the analytics.
    fn delivery(
        &self,
        (period, staged): (BillingPeriod, Location),
        layout: Layout,
        ledger: Ledger,
        counts: SyncCounts,
    ) -> Box<StagedDelivery> {
        Box::new(StagedDelivery {
            counts,
            payer: self.payer.clone(),
            period,
            location: staged,
            layout,
            ledger,
            staging: self.staging.clone(),
            fence: self.fence(),
        })
    }

    /// The check before each change to this payer's staging or final tables: the lease's
    /// [`Fence`], or none for a session that holds no lease (it changes nothing).
    fn fence(&self) -> Fence {
        self.lease.as_ref().map_or_else(Fence::none, Lease::fence)
    }

    /// Gives the lease back, if this run took it; a failure is logged, as the lease
    /// expires by itself.
    pub async fn release(self) {
        if let Some(lease) = self.lease
            && let Err(error) = lease.release().await
        {
            tracing::warn!(payer = %self.payer, error = %error, "could not release the lease; it expires by itself");
        }
    }

    /// Why a discovered period cannot be staged now (logged when it needs watching), or
    /// `None` when it can.
    fn not_ready(&self, discovered: &SourcePeriod) -> Option<String> {
        let (payer, period) = (&self.payer, discovered.period);
        match &discovered.state {
            DeliveryState::Ready | DeliveryState::Empty => None,
            DeliveryState::NoData => Some(format!(
                "no data at {}",
                self.export.url().join(&discovered.folder)
            )),
            DeliveryState::Incomplete { missing } => {
                tracing::warn!(%payer, %period, missing = missing.len(), "delivery in progress");
                Some(format!(
                    "delivery in progress: the manifest names {} file(s) not yet present (first: {}); the next run stages it",
                    missing.len(),
                    missing.first().map(String::as_str).unwrap_or_default()
                ))
            }
            DeliveryState::Rewriting { newer, manifest } => {
                tracing::warn!(%payer, %period, newer = newer.len(), "delivery being rewritten");
                Some(format!(
                    "delivery being rewritten: {} file(s) the manifest names were written after it (first: {}; manifest {manifest}); the staged copy is kept and the next run stages the new delivery",
                    newer.len(),
                    newer.first().map(String::as_str).unwrap_or_default()
                ))
            }
            DeliveryState::Updating { status } => {
                tracing::warn!(%payer, %period, %status, "legacy report still UPDATING");
                Some(format!(
                    "the report is still being updated ({status} says UPDATING); the staged copy is kept and the next run stages it"
                ))
            }
        }
    }

    /// The staged delivery of a period whose next delivery is still being written, when
    /// its analytics never succeeded (a run died between the final tables' commits, or
    /// the analytics failed) and the staged folder still holds exactly the files its
    /// ledger records: the final tables may hold that delivery in one table and the one
    /// before in another, and analysing it again makes them agree now, not once AWS has
    /// finished writing. Taken under the lease, as publishing needs it.
    async fn unanalysed(
        &mut self,
        discovered: &SourcePeriod,
    ) -> Result<Option<Box<StagedDelivery>>, Error> {
        let (payer, period) = (&self.payer, discovered.period);
        let unanalysed = |ledger: &Ledger| ledger.analytics_succeeded_at.is_none();
        if !Ledger::read(&self.staging, payer, period)
            .await?
            .is_some_and(|l| unanalysed(&l))
        {
            return Ok(None);
        }
        if self.lease.is_none() {
            self.lease = Some(Lease::acquire(&self.staging, payer, self.lease_ttl).await?);
        }
        // Read again under the lease: another run may have analysed it meanwhile.
        let Some(ledger) = Ledger::read(&self.staging, payer, period)
            .await?
            .filter(unanalysed)
        else {
            return Ok(None);
        };
        let staged = self.staging.child(&staged_folder(payer, period));
        let recorded = ledger.staged_files();
        let plan = plan(&recorded, &staged.list("").await?, Some(&ledger));
        if !plan.is_empty() {
            return Ok(None);
        }
        tracing::warn!(%payer, %period, "a new delivery is being written; analysing the staged one again, as its analytics never succeeded");
        let counts = SyncCounts::planned(&plan);
        Ok(Some(self.delivery(
            (period, staged),
            discovered.layout,
            ledger,
            counts,
        )))
    }

    /// The period's ledger and the plan from the source to the `staged` folder.
    async fn compare(
        &self,
        discovered: &SourcePeriod,
        staged: &Location,
    ) -> Result<(Option<Ledger>, Plan), Error> {
        let staged_files = staged.list("").await?;
        let ledger = Ledger::read(&self.staging, &self.payer, discovered.period).await?;
        let plan = plan(&discovered.files, &staged_files, ledger.as_ref());
        Ok((ledger, plan))
    }

    /// Carries out `plan` (copies, then deletions) and writes the ledger of the delivery
    /// now staged; the counts are of what was moved.
    async fn mirror(
        &self,
        discovered: &SourcePeriod,
        staged: &Location,
        plan: &Plan,
    ) -> Result<(Ledger, SyncCounts), Error> {
        let (payer, period) = (&self.payer, discovered.period);
        let source = self.export.child(&discovered.folder);
        let fence = self.fence();
        let copied = copy_all(
            &source,
            staged,
            &plan.copies,
            self.concurrency,
            (payer, period),
            &fence,
        )
        .await?;
        let deleted = delete_all(staged, &plan.deletes, self.concurrency, &fence).await?;
        let counts = SyncCounts {
            copied_files: copied.files,
            copied_bytes: copied.bytes,
            deleted_files: deleted.files,
            ..SyncCounts::planned(plan)
        };
        let ledger = Ledger {
            delivery: discovered.delivery.clone(),
            synced_at: Some(Utc::now()),
            analytics_succeeded_at: None,
            files: discovered
                .files
                .iter()
                .map(|f| (f.key.clone(), StagedFile::from(f)))
                .collect(),
            ..Ledger::default()
        };
        fence.confirm()?;
        ledger.write(&self.staging, payer, period).await?;
        tracing::info!(%payer, %period, files = copied.files, bytes = copied.bytes, deleted = deleted.files, "staged");
        Ok((ledger, counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StoreUrl;
    use crate::sync::layout::tests::export_with;

    const DATA: &str = "data/BILLING_PERIOD=2025-07/cur2-001-00001.snappy.parquet";
    const MANIFEST: &str = r#"{"executionId":"x1","dataFiles":["s3://b/cur2/data/BILLING_PERIOD=2025-07/cur2-001-00001.snappy.parquet"]}"#;

    /// An export holding July's `DATA` and `MANIFEST`, and an empty staging root, both in
    /// temporary folders that live as long as the guards returned first.
    async fn export_and_staging() -> ((tempfile::TempDir, tempfile::TempDir), Location, Location) {
        let (source, export) = export_with(&[DATA], Some(MANIFEST)).await;
        let dir = tempfile::tempdir().unwrap();
        let staging =
            Location::local(&StoreUrl::parse(dir.path().to_str().unwrap()).unwrap()).unwrap();
        ((source, dir), export, staging)
    }

    fn session(export: &Location, staging: &Location) -> PayerSync {
        PayerSync::new(
            PayerId::parse("111111111111").unwrap(),
            export.clone(),
            Layout::Auto,
            staging.clone(),
            4,
            Duration::from_secs(60),
        )
    }

    fn staged(outcome: StageOutcome) -> StagedDelivery {
        match outcome {
            StageOutcome::Staged(delivery) => *delivery,
            other => panic!("not staged: {other:?}"),
        }
    }

    #[tokio::test]
    async fn plans_stages_and_remembers_the_analytics() {
        let (_dirs, export, staging) = export_and_staging().await;
        let period = BillingPeriod::new(2025, 7).unwrap();
        let mut sync = session(&export, &staging);
        let to_copy = SyncCounts {
            copied_files: 1,
            copied_bytes: 4,
            ..SyncCounts::default()
        };
        assert!(matches!(
            sync.stage(period, Intent::Plan).await.unwrap(),
            StageOutcome::Planned { counts, empty: false } if counts == to_copy
        ));
        assert!(sync.lease.is_none(), "a plan takes no lease");
        let delivery = staged(sync.stage(period, Intent::Analyse).await.unwrap());
        assert_eq!(delivery.counts, to_copy);
        assert_eq!(delivery.layout, Layout::Cur2);
        assert_eq!(
            delivery.location.url().to_string(),
            staging
                .url()
                .join("year=2025/month=7/payer-111111111111")
                .to_string()
        );
        assert_eq!(delivery.location.list("").await.unwrap().len(), 1);
        assert!(matches!(
            sync.stage(period, Intent::Stage).await.unwrap(),
            StageOutcome::AlreadySynchronized
        ));
        // Staged but not analysed: handed back for the analytics, with nothing to copy.
        let mut delivery = staged(sync.stage(period, Intent::Analyse).await.unwrap());
        assert_eq!(delivery.counts.copied_files, 0);
        assert_eq!(delivery.counts.unchanged_files, 1);
        delivery.mark_analysed().await.unwrap();
        assert!(matches!(
            sync.stage(period, Intent::Analyse).await.unwrap(),
            StageOutcome::AlreadySynchronized
        ));
        let other = BillingPeriod::new(2025, 6).unwrap();
        assert!(matches!(
            sync.stage(other, Intent::Analyse).await.unwrap(),
            StageOutcome::NotReady { reason } if reason.starts_with("no data at ")
        ));
        sync.release().await;
        let lease = staging
            .read("_curflow/locks/payer-111111111111")
            .await
            .unwrap()
            .unwrap();
        let lease: serde_json::Value = serde_json::from_slice(&lease).unwrap();
        let expires_at: chrono::DateTime<Utc> =
            lease["expires_at"].as_str().unwrap().parse().unwrap();
        assert!(expires_at < Utc::now(), "released: {lease}");
    }
    #[tokio::test]
    async fn an_empty_delivery_removes_the_staged_files() {
        let (_dirs, export, staging) = export_and_staging().await;
        let period = BillingPeriod::new(2025, 7).unwrap();
        let mut sync = session(&export, &staging);
        let mut delivery = staged(sync.stage(period, Intent::Analyse).await.unwrap());
        assert!(!delivery.is_empty());
        delivery.mark_analysed().await.unwrap();
        // AWS delivers July again, empty; the earlier data file is still in the source.
        export
            .write(
                "metadata/BILLING_PERIOD=2025-07/cur2-Manifest.json",
                br#"{"executionId":"x2","dataFiles":[]}"#.to_vec(),
            )
            .await
            .unwrap();
        assert!(matches!(
            sync.stage(period, Intent::Plan).await.unwrap(),
            StageOutcome::Planned { counts, empty: true } if counts.deleted_files == 1
        ));
        let mut delivery = staged(sync.stage(period, Intent::Analyse).await.unwrap());
        assert!(delivery.is_empty());
        assert_eq!(delivery.counts.deleted_files, 1);
        assert!(delivery.location.list("").await.unwrap().is_empty());
        delivery.mark_analysed().await.unwrap();
        assert!(matches!(
            sync.stage(period, Intent::Analyse).await.unwrap(),
            StageOutcome::AlreadySynchronized
        ));
        sync.release().await;
    }
}
