//! The synthetic payer as data: its accounts, its commitments (RIs and Savings Plans) and
//! every hour's use of each commitment (drawn once from the seed by `draw`).
//!
//! Everything the data files and the ground truth say about commitments comes from here, so
//! both always agree. Commitment use is made of dyadic quantities (quarter hours, powers-of-two
//! normalization factors, eighths of a dollar) so that sums are exact in `f64` whichever order
//! an engine adds them in.

use std::ops::Range;

use super::catalog::{EC2, EC2_RI_FEE, Family, RDS, RDS_RI_FEE, Region, Service, Size};
use super::period::Period;

/// Savings Plans rate as a fraction of the on-demand rate.
const SP_DISCOUNT: f64 = 0.72;

/// The service a reservation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Product {
    Ec2,
    Rds,
}

impl Product {
    /// `line_item_product_code`.
    pub(crate) fn code(self) -> &'static str {
        self.usage().code
    }

    /// What the reservation's `DiscountedUsage` lines are.
    pub(crate) fn usage(self) -> &'static Service {
        match self {
            Product::Ec2 => &EC2,
            Product::Rds => &RDS,
        }
    }

    /// What the reservation's `RIFee` line is.
    pub(crate) fn fee(self) -> &'static Service {
        match self {
            Product::Ec2 => &EC2_RI_FEE,
            Product::Rds => &RDS_RI_FEE,
        }
    }
}

/// What the `RIFee` line says in `reservation_total_reserved_normalized_units`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Normalization {
    /// Size-flexible: normalized units, and use is counted in normalized units.
    Flexible,
    /// Not size-flexible, reported as `"0"`: use is counted in usage hours.
    Zero,
    /// Not size-flexible, reported as null: use is counted in usage hours.
    Null,
}

/// One usage line that consumed a commitment in one hour.
#[derive(Debug, Clone)]
pub(crate) struct Use {
    /// Minutes after the hour at which the line starts (proves engines truncate to the hour).
    pub(crate) minute: u32,
    /// `user_application`, absent on untagged lines.
    pub(crate) app: Option<&'static str>,
    pub(crate) team: &'static str,
    pub(crate) family: &'static Family,
    pub(crate) size: &'static Size,
    /// `line_item_usage_amount` (instance hours).
    pub(crate) amount: f64,
    /// Commitment consumed: normalized units (flexible RI), usage hours (other RIs) or
    /// dollars of effective cost (Savings Plans).
    pub(crate) units: f64,
    /// Index into [`Model::accounts`] of the account that ran the usage.
    pub(crate) account: usize,
    pub(crate) region: &'static Region,
    /// Seed of the line's resource id.
    pub(crate) resource: u64,
}

/// A Reserved Instance as the model knows it.
#[derive(Debug)]
pub(crate) struct Reservation {
    pub(crate) arn: String,
    /// Index into [`Model::accounts`] of the owner.
    pub(crate) owner: usize,
    pub(crate) region: &'static Region,
    pub(crate) product: Product,
    pub(crate) family: &'static Family,
    pub(crate) size: &'static Size,
    pub(crate) count: u32,
    pub(crate) normalization: Normalization,
    pub(crate) offering_class: &'static str,
    pub(crate) purchase_option: &'static str,
    /// Availability zone of a zonal reservation.
    pub(crate) zone: Option<String>,
    /// Real term, which may extend beyond the period.
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    /// Hours of the period in which the reservation is active.
    pub(crate) active: Range<u32>,
    pub(crate) amortized_upfront: f64,
    pub(crate) recurring_fee: f64,
    /// Use per hour of the period (empty outside `active`).
    pub(crate) hours: Vec<Vec<Use>>,
}

impl Reservation {
    /// Whether use and capacity are counted in normalized units.
    pub(crate) fn flexible(&self) -> bool {
        self.normalization == Normalization::Flexible
    }

    /// Capacity per active hour, in the units use is counted in.
    pub(crate) fn units_per_hour(&self) -> f64 {
        let count = f64::from(self.count);
        if self.flexible() {
            count * self.size.factor
        } else {
            count
        }
    }
}

/// A Savings Plan as the model knows it.
#[derive(Debug)]
pub(crate) struct SavingsPlan {
    pub(crate) arn: String,
    pub(crate) owner: usize,
    pub(crate) region: &'static Region,
    /// Hourly commitment in dollars.
    pub(crate) commitment: f64,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) active: Range<u32>,
    pub(crate) hours: Vec<Vec<Use>>,
}

/// The whole synthetic payer for one period.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) payer: String,
    pub(crate) period: Period,
    /// The payer first, then its linked accounts.
    pub(crate) accounts: Vec<String>,
    pub(crate) reservations: Vec<Reservation>,
    pub(crate) savings_plans: Vec<SavingsPlan>,
    /// Base of every random stream derived for this payer and period.
    pub(crate) base: u64,
}

/// Savings Plans price of one hour of `size`.
pub(crate) fn sp_rate(size: &Size) -> f64 {
    size.od_rate * SP_DISCOUNT
}
