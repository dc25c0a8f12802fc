//! Keeping the staging store an exact mirror of each payer's current CUR delivery.
//!
//! Four steps, each in its own module: [`discover`] lists a source period and reads its
//! manifest (the legacy CUR layout in `legacy`), [`plan`] compares that with what is staged
//! and with the ledger (a pure function), [`copy`] carries out a plan, and [`ledger`]
//! remembers what was staged and verified. The order of the steps is the pipeline's
//! business, not theirs. [`lease`] keeps two runs for one payer apart; [`progress`] shows
//! copies as they go.

mod copy;
mod discover;
mod lease;
mod ledger;
mod legacy;
mod plan;
pub mod progress;

pub use copy::{CopyError, Transferred, copy_all, delete_all};
pub use discover::{DeliveryState, DiscoverError, SourcePeriod, discover};
pub use lease::{Lease, LeaseError};
pub use ledger::{Ledger, LedgerError, StagedFile};
pub use plan::{Plan, plan};

use crate::task::{BillingPeriod, PayerId};

/// Where a payer-period is staged, relative to the staging root:
/// `year=YYYY/month=M/payer-<id>` (the month without a leading zero, as the seed wrote it).
pub fn staged_folder(payer: &PayerId, period: BillingPeriod) -> String {
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
            staged_folder(&payer, period),
            "year=2025/month=7/payer-671238551718"
        );
    }
}
