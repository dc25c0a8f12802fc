//! Staging a payer's periods: plan → lease → copy → ledger → sweep, in that order.
//!
//! A [`PayerSync`] is one payer's session of a run. For each period, [`PayerSync::stage`]
//! discovers the source's delivery, plans it against the delivery's staged folder (see
//! `deliveries`: one folder per delivery, named after its content), and — unless only a
//! plan was asked for — takes the payer's lease (once per run, and only when something is
//! to be written), plans again under it, copies, and writes the ledger, which switches
//! readers to the new folder in one PUT. Then it deletes what was superseded
//! `keep_superseded` ago. What it staged comes back as a [`StagedDelivery`], which records
//! in the ledger that the analytics succeeded on it ([`StagedDelivery::mark_analysed`]).
//! [`PayerSync::release`] gives the lease back at the end of the run.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::copy::{Transfers, copy_all, delete_all};
use super::deliveries::{self, PeriodListing};
use super::layout::{self, DeliveryState, Layout, SourcePeriod};
use super::lease::{Fence, Lease};
use super::ledger::{Ledger, StagedFile};
use super::plan::{Plan, plan};
use super::{Error, period_folder};
use crate::storage::Location;
use crate::task::{BillingPeriod, PayerId};

/// File counts of a sync, planned or done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Files copied (or to copy).
    pub copied_files: usize,
    /// Bytes copied (or to copy).
    pub copied_bytes: u64,
    /// Staged files deleted (or to delete): superseded deliveries once kept long enough,
    /// and files that do not belong in the current one.
    pub deleted_files: usize,
    /// Files already staged and verified.
    pub unchanged_files: usize,
    /// Their bytes.
    pub unchanged_bytes: u64,
}

impl SyncCounts {
    /// What `plan` would move, and `swept` files of superseded deliveries deleted.
    fn planned(plan: &Plan, swept: usize) -> Self {
        Self {
            copied_files: plan.copies.len(),
            copied_bytes: plan.copy_bytes(),
            deleted_files: plan.deletes.len() + swept,
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
    /// The delivery's staged folder: what the analytics read.
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

/// How every payer's staging session works (from the settings). The payers of one run
/// share one value's clones, and with them the run-wide cap of [`Transfers`].
#[derive(Debug, Clone)]
pub struct StagingRules {
    /// Transfers at a time, per payer-period and across the run.
    pub transfers: Transfers,
    /// The payer lease's time-to-live (renewed while held).
    pub lease_ttl: Duration,
    /// How long a superseded delivery stays for its readers.
    pub keep_superseded: Duration,
    /// How long a period whose manifest is unchanged is trusted without a full comparison
    /// of the source with staging; zero: every run compares in full (`--verify`).
    pub verify_every: Duration,
}

impl StagingRules {
    /// Whether a staged copy last compared in full at `synced_at` may go uncompared now.
    fn trusts(&self, synced_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        let every = chrono::Duration::from_std(self.verify_every).unwrap_or(chrono::Duration::MAX);
        // Past the end of time (a duration chrono cannot add) is never reached.
        let trusted_until = |t: DateTime<Utc>| t.checked_add_signed(every);
        !self.verify_every.is_zero()
            && synced_at.is_some_and(|t| trusted_until(t).is_none_or(|until| now < until))
    }

    /// Whether a full comparison that found the staged copy complete is worth recording,
    /// so that runs trust it again for `verify_every` (not when every run compares).
    fn records(&self, synced_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        !self.verify_every.is_zero() && !self.trusts(synced_at, now)
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
    rules: StagingRules,
    lease: Option<Lease>,
}

/// A period's source delivery compared with what its payer-period folder holds.
#[derive(Debug)]
struct Compared {
    /// The delivery's folder, relative to the staging root.
    folder: String,
    /// The payer-period folder.
    period_folder: Location,
    /// The period's ledger, if there is one.
    ledger: Option<Ledger>,
    /// The payer-period folder's listing, split around the delivery's folder.
    listing: PeriodListing,
    /// From the source to the delivery's folder.
    plan: Plan,
}

impl Compared {
    /// Whether the delivery's folder holds it whole and the ledger names it: readers read it.
    fn published(&self) -> bool {
        self.plan.is_empty()
            && self
                .ledger
                .as_ref()
                .is_some_and(|l| l.folder == self.folder)
    }

    /// Whether staging has nothing to do for `intent`: the delivery published and (for
    /// `Analyse`) analysed.
    fn staged_for(&self, intent: Intent) -> bool {
        self.published()
            && (intent == Intent::Stage
                || self
                    .ledger
                    .as_ref()
                    .is_some_and(|l| l.analytics_succeeded_at.is_some()))
    }

    /// What else the payer-period folder holds, and since when it is superseded.
    fn superseded(&self, now: DateTime<Utc>) -> BTreeMap<String, DateTime<Utc>> {
        let recorded = self.ledger.as_ref().map(|l| &l.superseded);
        self.listing
            .superseded(recorded.unwrap_or(&BTreeMap::new()), now)
    }

    /// Whether the ledger records every superseded entry as it is, and none is due.
    fn swept(&self, keep: Duration, now: DateTime<Utc>) -> bool {
        let superseded = self.superseded(now);
        self.ledger.as_ref().map(|l| &l.superseded) == Some(&superseded)
            && deliveries::due(&superseded, keep, now).is_empty()
    }

    /// The files of superseded entries due by `now`.
    fn due_files(&self, keep: Duration, now: DateTime<Utc>) -> Vec<String> {
        self.listing
            .files_of(&deliveries::due(&self.superseded(now), keep, now))
    }
}

impl PayerSync {
    /// A session for `payer`, whose opened `export` is laid out as `layout`, staging into
    /// the `staging` root by `rules`. Nothing is read or written until [`Self::stage`].
    pub fn new(
        payer: PayerId,
        export: Location,
        layout: Layout,
        staging: Location,
        rules: StagingRules,
    ) -> Self {
        Self {
            payer,
            export,
            layout,
            staging,
            rules,
            lease: None,
        }
    }

    /// Stages one period for `intent`. Errors leave readers where the previous ledger
    /// points: a delivery is copied into a folder of its own, the ledger that switches
    /// readers to it is written only once every copy verified, and a superseded delivery
    /// is deleted only after that, once kept for `keep_superseded`.
    pub async fn stage(
        &mut self,
        period: BillingPeriod,
        intent: Intent,
    ) -> Result<StageOutcome, Error> {
        let payer = &self.payer;
        // Read once for the checks before the lease; read again under it.
        let ledger = Ledger::read(&self.staging, payer, period).await?;
        if self.unchanged(period, intent, ledger.as_ref()).await? {
            tracing::info!(%payer, %period, "Already synchronized");
            return Ok(StageOutcome::AlreadySynchronized);
        }
        let discovered = layout::discover(&self.export, self.layout, period).await?;
        if let Some(reason) = self.not_ready(&discovered) {
            if intent == Intent::Analyse
                && discovered.state.in_progress()
                && let Some(delivery) = self.unanalysed(&discovered, ledger.as_ref()).await?
            {
                return Ok(StageOutcome::Staged(delivery));
            }
            return Ok(StageOutcome::NotReady { reason });
        }
        let compared = self.compare(&discovered, ledger).await?;
        let (keep, now) = (self.rules.keep_superseded, Utc::now());
        let settled = compared.staged_for(intent) && compared.swept(keep, now);
        let record = |ledger: &Ledger| self.record_due(ledger, &discovered, now);
        if settled && (intent == Intent::Plan || !compared.ledger.as_ref().is_some_and(record)) {
            tracing::info!(%payer, %period, "Already synchronized");
            return Ok(StageOutcome::AlreadySynchronized);
        }
        if intent == Intent::Plan {
            return Ok(StageOutcome::Planned {
                counts: SyncCounts::planned(&compared.plan, compared.due_files(keep, now).len()),
                empty: discovered.state == DeliveryState::Empty,
            });
        }
        // Another run may have changed the staged copy before the lease was ours.
        let compared = if self.lease.is_none() {
            self.lease = Some(Lease::acquire(&self.staging, payer, self.rules.lease_ttl).await?);
            let ledger = Ledger::read(&self.staging, payer, period).await?;
            self.compare(&discovered, ledger).await?
        } else {
            compared
        };
        // A copy killed on local disk leaves a file no listing shows; under the lease no
        // other run is writing here, so what is left is garbage.
        let removed = compared.period_folder.remove_interrupted_writes("").await?;
        if removed > 0 {
            tracing::info!(%payer, %period, files = removed, "removed files of an interrupted copy");
        }
        let done = compared.staged_for(intent);
        let (mut ledger, mut counts) = match &compared.ledger {
            Some(ledger) if compared.published() => {
                (ledger.clone(), SyncCounts::planned(&compared.plan, 0))
            }
            _ => self.mirror(&discovered, &compared).await?,
        };
        counts.deleted_files += self.sweep(period, &mut ledger, &compared).await?;
        if self.record_due(&ledger, &discovered, Utc::now()) {
            // Compared in full and complete: runs may trust its stamp again.
            ledger.stamp = discovered.stamp.clone();
            ledger.layout = Some(discovered.layout);
            ledger.synced_at = Some(Utc::now());
            self.fence().confirm()?;
            ledger.write(&self.staging, payer, period).await?;
        }
        if done {
            tracing::info!(%payer, %period, "Already synchronized");
            return Ok(StageOutcome::AlreadySynchronized);
        }
        let location = self.staging.child(&ledger.folder);
        Ok(StageOutcome::Staged(self.delivery(
            (period, location),
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
    /// finished writing. `ledger` is the one read before; the delivery is taken under the
    /// lease, as publishing needs it.
    async fn unanalysed(
        &mut self,
        discovered: &SourcePeriod,
        ledger: Option<&Ledger>,
    ) -> Result<Option<Box<StagedDelivery>>, Error> {
        let (payer, period) = (&self.payer, discovered.period);
        let unanalysed = |ledger: &Ledger| ledger.analytics_succeeded_at.is_none();
        if !ledger.is_some_and(unanalysed) {
            return Ok(None);
        }
        if self.lease.is_none() {
            self.lease = Some(Lease::acquire(&self.staging, payer, self.rules.lease_ttl).await?);
        }
        // Read again under the lease: another run may have analysed it meanwhile.
        let Some(ledger) = Ledger::read(&self.staging, payer, period)
            .await?
            .filter(unanalysed)
        else {
            return Ok(None);
        };
        let staged = self.staging.child(&ledger.folder);
        let plan = plan(&ledger.staged_files(), &staged.list("").await?);
        if !plan.is_empty() {
            return Ok(None);
        }
        tracing::warn!(%payer, %period, "a new delivery is being written; analysing the staged one again, as its analytics never succeeded");
        let counts = SyncCounts::planned(&plan, 0);
        Ok(Some(self.delivery(
            (period, staged),
            discovered.layout,
            ledger,
            counts,
        )))
    }

    /// The manifest-first no-op: whether the period is already synchronized, as told by its
    /// ledger and one listing of its manifest's folder (two for a legacy report), without
    /// listing the source's data or staging. So it is when the ledger records the stamp the
    /// source still has, the analytics succeeded (unless only staging is asked for),
    /// nothing superseded is due for deletion, and the last full comparison is recent
    /// enough for `verify_every`.
    async fn unchanged(
        &self,
        period: BillingPeriod,
        intent: Intent,
        ledger: Option<&Ledger>,
    ) -> Result<bool, Error> {
        let Some(ledger) = ledger else {
            return Ok(false);
        };
        let (Some(layout), Some(stamp)) = (ledger.layout, ledger.stamp.as_ref()) else {
            return Ok(false);
        };
        let now = Utc::now();
        let trusted = self.rules.trusts(ledger.synced_at, now)
            && (self.layout == Layout::Auto || self.layout == layout)
            && (intent == Intent::Stage || ledger.analytics_succeeded_at.is_some())
            && deliveries::due(&ledger.superseded, self.rules.keep_superseded, now).is_empty();
        if !trusted {
            return Ok(false);
        }
        let current = layout::current_stamp(&self.export, layout, period).await?;
        Ok(current.as_ref() == Some(stamp))
    }

    /// Whether `ledger`, which a full comparison found to describe the staged copy, should
    /// be written again: it does not record the source's stamp or layout (a ledger from
    /// before stamps, a manifest rewritten for the same files), or the comparison was due.
    fn record_due(&self, ledger: &Ledger, discovered: &SourcePeriod, now: DateTime<Utc>) -> bool {
        ledger.stamp != discovered.stamp
            || ledger.layout != Some(discovered.layout)
            || self.rules.records(ledger.synced_at, now)
    }

    /// The source's delivery compared with its payer-period folder and the period's
    /// `ledger`.
    async fn compare(
        &self,
        discovered: &SourcePeriod,
        ledger: Option<Ledger>,
    ) -> Result<Compared, Error> {
        let period = period_folder(&self.payer, discovered.period);
        let name = deliveries::folder_name(&discovered.files);
        let period_folder = self.staging.child(&period);
        let listing = PeriodListing::split(period_folder.list("").await?, &name);
        let plan = plan(&discovered.files, &listing.current);
        Ok(Compared {
            folder: format!("{period}/{name}"),
            period_folder,
            ledger,
            listing,
            plan,
        })
    }

    /// Carries out the plan into the delivery's folder (copies, then deletions) and writes
    /// the ledger that points readers at it; the counts are of what was moved.
    async fn mirror(
        &self,
        discovered: &SourcePeriod,
        compared: &Compared,
    ) -> Result<(Ledger, SyncCounts), Error> {
        let (payer, period, plan) = (&self.payer, discovered.period, &compared.plan);
        let source = self.export.child(&discovered.folder);
        let staged = self.staging.child(&compared.folder);
        let fence = self.fence();
        let copied = copy_all(
            &source,
            &staged,
            &plan.copies,
            &self.rules.transfers,
            (payer, period),
            &fence,
        )
        .await?;
        let deleted = delete_all(&staged, &plan.deletes, &self.rules.transfers, &fence).await?;
        let counts = SyncCounts {
            copied_files: copied.files,
            copied_bytes: copied.bytes,
            deleted_files: deleted.files,
            ..SyncCounts::planned(plan, 0)
        };
        let ledger = Ledger {
            delivery: discovered.delivery.clone(),
            synced_at: Some(Utc::now()),
            analytics_succeeded_at: None,
            folder: compared.folder.clone(),
            files: discovered
                .files
                .iter()
                .map(|f| (f.key.clone(), StagedFile::from(f)))
                .collect(),
            superseded: compared.superseded(Utc::now()),
            layout: Some(discovered.layout),
            stamp: discovered.stamp.clone(),
            ..Ledger::default()
        };
        fence.confirm()?;
        ledger.write(&self.staging, payer, period).await?;
        tracing::info!(%payer, %period, files = copied.files, bytes = copied.bytes, folder = %compared.folder, "staged");
        Ok((ledger, counts))
    }

    /// Deletes what the payer-period folder holds besides the delivery `ledger` points at
    /// (written already: no reader is sent there any more) once kept for
    /// `keep_superseded`, and records in the ledger what stays and since when. Returns
    /// how many files it deleted.
    async fn sweep(
        &self,
        period: BillingPeriod,
        ledger: &mut Ledger,
        compared: &Compared,
    ) -> Result<usize, Error> {
        let (payer, now) = (&self.payer, Utc::now());
        let mut superseded = compared.listing.superseded(&ledger.superseded, now);
        let due = deliveries::due(&superseded, self.rules.keep_superseded, now);
        let files = compared.listing.files_of(&due);
        let fence = self.fence();
        let deleted = delete_all(
            &compared.period_folder,
            &files,
            &self.rules.transfers,
            &fence,
        )
        .await?;
        if !due.is_empty() {
            tracing::info!(%payer, %period, superseded = ?due, files = deleted.files, "deleted superseded deliveries");
        }
        superseded.retain(|name, _| !due.contains(name));
        if superseded != ledger.superseded {
            ledger.superseded = superseded;
            fence.confirm()?;
            ledger.write(&self.staging, payer, period).await?;
        }
        Ok(deleted.files)
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

    /// A session that deletes superseded deliveries as soon as it finds them.
    fn session(export: &Location, staging: &Location) -> PayerSync {
        keeping(export, staging, Duration::ZERO)
    }

    fn keeping(export: &Location, staging: &Location, keep: Duration) -> PayerSync {
        PayerSync::new(
            PayerId::parse("111111111111").unwrap(),
            export.clone(),
            Layout::Auto,
            staging.clone(),
            StagingRules {
                transfers: Transfers::new(4, 4),
                lease_ttl: Duration::from_secs(60),
                keep_superseded: keep,
                verify_every: Duration::from_secs(3600),
            },
        )
    }

    const PERIOD_FOLDER: &str = "year=2025/month=7/payer-111111111111";

    async fn names(loc: &Location) -> Vec<String> {
        let listed = loc.list("").await.unwrap();
        listed.into_iter().map(|o| o.key).collect()
    }

    fn staged(outcome: StageOutcome) -> StagedDelivery {
        match outcome {
            StageOutcome::Staged(delivery) => *delivery,
            other => panic!("not staged: {other:?}"),
        }
    }

    /// A full comparison is trusted for `verify_every`, then recorded again; with zero
    /// (`--verify`) never trusted and never recorded (no ledger write on every run).
    #[test]
    fn verify_every_decides_trust_and_when_to_record() {
        let rules = |hours: u64| StagingRules {
            transfers: Transfers::new(1, 1),
            lease_ttl: Duration::from_secs(60),
            keep_superseded: Duration::ZERO,
            verify_every: Duration::from_secs(hours * 3600),
        };
        let now = Utc::now();
        let ago = |hours: i64| Some(now - chrono::Duration::hours(hours));
        assert!(rules(24).trusts(ago(1), now) && !rules(24).records(ago(1), now));
        assert!(!rules(24).trusts(ago(25), now) && rules(24).records(ago(25), now));
        assert!(!rules(24).trusts(None, now) && rules(24).records(None, now));
        for synced in [ago(0), ago(1000), None] {
            assert!(!rules(0).trusts(synced, now) && !rules(0).records(synced, now));
        }
        // A setting past chrono's range trusts, and does not overflow.
        let forever = StagingRules {
            verify_every: Duration::MAX,
            ..rules(1)
        };
        assert!(forever.trusts(ago(1000), now));
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
        let folder = delivery.location.url().to_string();
        let period_folder = staging.url().join(PERIOD_FOLDER).to_string();
        assert!(
            folder.starts_with(&format!("{period_folder}/delivery-")),
            "{folder}"
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
        let expires_at: DateTime<Utc> = lease["expires_at"].as_str().unwrap().parse().unwrap();
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

    #[tokio::test]
    async fn a_new_delivery_gets_its_own_folder_and_the_old_one_stays_for_a_while() {
        let (_dirs, export, staging) = export_and_staging().await;
        let period = BillingPeriod::new(2025, 7).unwrap();
        let mut sync = keeping(&export, &staging, Duration::from_secs(3600));
        let mut first = staged(sync.stage(period, Intent::Analyse).await.unwrap());
        first.mark_analysed().await.unwrap();
        // A restatement: a new file name, a new manifest.
        let restated = "data/BILLING_PERIOD=2025-07/cur2-002-00001.snappy.parquet";
        export.write(restated, b"PAR1PAR1".to_vec()).await.unwrap();
        export
            .write(
                "metadata/BILLING_PERIOD=2025-07/cur2-Manifest.json",
                br#"{"executionId":"x2","dataFiles":["s3://b/cur2/data/BILLING_PERIOD=2025-07/cur2-002-00001.snappy.parquet"]}"#.to_vec(),
            )
            .await
            .unwrap();
        let second = staged(sync.stage(period, Intent::Analyse).await.unwrap());
        assert_ne!(second.location.url(), first.location.url());
        assert_eq!(
            names(&second.location).await,
            ["cur2-002-00001.snappy.parquet"]
        );
        // The superseded delivery stays whole for readers that resolved it before.
        assert_eq!(
            names(&first.location).await,
            ["cur2-001-00001.snappy.parquet"]
        );
        assert_eq!(second.counts.deleted_files, 0);
        let ledger = Ledger::read(&staging, &sync.payer, period)
            .await
            .unwrap()
            .unwrap();
        let old = first
            .location
            .url()
            .as_str()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(ledger.superseded.keys().collect::<Vec<_>>(), [&old]);
        assert!(ledger.folder.starts_with(PERIOD_FOLDER));
        assert_eq!(staging.child(&ledger.folder).url(), second.location.url());
        sync.release().await;
        // Once kept long enough (here: at once), the next run deletes it, folder and all.
        let mut sync = session(&export, &staging);
        let mut third = staged(sync.stage(period, Intent::Analyse).await.unwrap());
        assert_eq!(third.counts.deleted_files, 1);
        assert!(names(&first.location).await.is_empty());
        let local = |loc: &Location| {
            std::path::PathBuf::from(loc.url().as_str().trim_start_matches("file://"))
        };
        assert!(!local(&first.location).exists());
        assert_eq!(
            names(&third.location).await,
            ["cur2-002-00001.snappy.parquet"]
        );
        third.mark_analysed().await.unwrap();
        let ledger = Ledger::read(&staging, &sync.payer, period)
            .await
            .unwrap()
            .unwrap();
        assert!(ledger.superseded.is_empty());
        assert!(matches!(
            sync.stage(period, Intent::Analyse).await.unwrap(),
            StageOutcome::AlreadySynchronized
        ));
        sync.release().await;
    }
}
