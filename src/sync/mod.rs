//! Keeping the staging store an exact mirror of each payer's current CUR delivery.
//!
//! [`PayerSync`] (in `stage`) owns the order of sync's own steps — plan → lease → copy →
//! ledger → sweep — and hands back what it staged; each step is its own module: `layout`
//! knows how a source is laid out ([`Layout`]: one module per layout, plus discovery of a
//! period and its manifest), `deliveries` names each delivery's staged folder and says when
//! a superseded one may go, `plan` compares the source with that folder (a pure function),
//! `copy` carries out a plan, `ledger` remembers what was staged and verified and points
//! readers at it, and `lease` keeps two runs for one payer apart. [`progress`] shows copies
//! as they go. What happens to a staged period next is the pipeline's business.

mod copy;
mod deliveries;
mod layout;
mod lease;
mod ledger;
mod plan;
pub mod progress;
mod stage;

pub use copy::{CopyError, Transfers};
pub use layout::{DiscoverError, Layout, TagColumn};
pub use lease::{Fence, LeaseError};
pub use ledger::LedgerError;
pub use stage::{Intent, PayerSync, StageOutcome, StagedDelivery, StagingRules, SyncCounts};

use crate::storage::StorageError;
use crate::task::{BillingPeriod, PayerId};

/// Staging a payer-period failed; readers still read what the previous ledger points at.
/// Each variant's message is its source's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovering the source's delivery failed.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// Listing the staged copy failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Reading or writing the ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The payer's lease could not be taken, or was lost.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// A copy or deletion failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
}

/// Where a payer-period's deliveries are staged (each in a folder of its own, see
/// `deliveries`), relative to the staging root: `year=YYYY/month=M/payer-<id>` (the month
/// without a leading zero, as the seed wrote it).
fn period_folder(payer: &PayerId, period: BillingPeriod) -> String {
    format!(
        "year={}/month={}/payer-{}",
        period.year(),
        period.month(),
        payer
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_layout_matches_the_seed() {
        let payer = PayerId::parse("671238551718").unwrap();
        let period = BillingPeriod::new(2025, 7).unwrap();
        assert_eq!(
            period_folder(&payer, period),
            "year=2025/month=7/payer-671238551718"
        );
    }
}
