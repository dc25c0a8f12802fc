//! The ground truth: hourly RI and Savings Plans waste per commitment, hour and application,
//! computed from the model by plain arithmetic (never SQL), so analytics can be checked
//! against it to the cent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::model::{Model, Reservation, Use};

/// Application of usage lines without a `user_application` tag.
pub const UNTAGGED: &str = "(untagged)";
/// Application of the waste of a commitment nobody used in the period.
pub const UNALLOCATED: &str = "(unallocated)";
/// `product_code` of Savings Plans truth rows (as on `SavingsPlanRecurringFee` lines).
pub(crate) const SAVINGS_PLAN_PRODUCT: &str = "ComputeSavingsPlans";

/// How an hour's waste was shared among applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribution {
    /// In proportion to each application's use of the commitment in that hour.
    Hour,
    /// The commitment was idle that hour: in proportion to use over the whole period.
    Period,
    /// The commitment was never used in the period: all to `(unallocated)`.
    Unallocated,
}

impl Attribution {
    /// The value of the `attribution` column: `hour`, `period` or `unallocated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribution::Hour => "hour",
            Attribution::Period => "period",
            Attribution::Unallocated => "unallocated",
        }
    }
}

impl std::fmt::Display for Attribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `ri_wastage_hourly` as the analytics must produce it (without `processed_at`).
#[derive(Debug, Clone, PartialEq)]
pub struct RiTruthRow {
    /// Payer account id.
    pub payer_id: String,
    /// `YYYY-MM`.
    pub billing_period: String,
    /// Start of the hour, UTC.
    pub usage_hour: DateTime<Utc>,
    /// `reservation_reservation_a_r_n`.
    pub reservation_arn: String,
    /// Account that owns the reservation (its `RIFee` line's usage account).
    pub owner_account_id: String,
    /// `product_region_code` of the `RIFee` line.
    pub region: String,
    /// `AmazonEC2` or `AmazonRDS`.
    pub product_code: String,
    /// `user_application` tag value, `(untagged)` or `(unallocated)`.
    pub application: String,
    /// This application's share of the hour's capacity (normalized units when size-flexible,
    /// else instance hours).
    pub reserved_units: f64,
    /// Units this application used in the hour (0 for `period` and `unallocated` rows).
    pub used_units: f64,
    /// This application's share of the hour's unused units.
    pub unused_units: f64,
    /// This application's share of the hour's unused cost, in USD.
    pub unused_cost: f64,
    /// How the share was decided.
    pub attribution: Attribution,
}

/// One row of `sp_wastage_hourly` as the analytics must produce it (without `processed_at`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpTruthRow {
    /// Payer account id.
    pub payer_id: String,
    /// `YYYY-MM`.
    pub billing_period: String,
    /// Start of the hour, UTC.
    pub usage_hour: DateTime<Utc>,
    /// `savings_plan_savings_plan_a_r_n`.
    pub savings_plan_arn: String,
    /// Account that owns the plan.
    pub owner_account_id: String,
    /// `product_region_code` of the plan's `SavingsPlanRecurringFee` lines.
    pub region: String,
    /// Always `ComputeSavingsPlans`.
    pub product_code: String,
    /// `user_application` tag value, `(untagged)` or `(unallocated)`.
    pub application: String,
    /// This application's share of the hourly commitment, in USD.
    pub commitment: f64,
    /// Effective cost this application ran under the plan in the hour (0 for `period` and
    /// `unallocated` rows).
    pub used_commitment: f64,
    /// This application's share of the unused commitment, in USD.
    pub unused_commitment: f64,
    /// Equal to `unused_commitment`: unused Savings Plans commitment is paid for regardless.
    pub unused_cost: f64,
    /// How the share was decided.
    pub attribution: Attribution,
}

/// Every truth row of one payer and period, commitments in model order, then hours, then
/// applications in byte order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroundTruth {
    /// Rows of `ri_wastage_hourly`.
    pub ri: Vec<RiTruthRow>,
    /// Rows of `sp_wastage_hourly`.
    pub sp: Vec<SpTruthRow>,
}

/// Period-level numbers of one reservation, which its `RIFee` line reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RiFacts {
    /// Active hours in the period (`A`).
    pub(crate) active_hours: u32,
    /// Reserved units over the period: normalized when size-flexible, else instance hours.
    pub(crate) total_reserved: f64,
    /// Instance hours reserved over the period (`count × A`).
    pub(crate) total_reserved_units: f64,
    /// Capacity per hour (`C`).
    pub(crate) capacity: f64,
    /// Cost per reserved unit (`R`).
    pub(crate) rate: f64,
    /// Σ over active hours of `max(C − U(h), 0)`.
    pub(crate) unused_units: f64,
    /// Σ over active hours of unused units × `R`: what the `RIFee` line reports as unused.
    pub(crate) unused_cost: f64,
}

impl RiFacts {
    /// The unused cost split like the fees: (unused amortized upfront, unused recurring).
    pub(crate) fn unused_split(&self, ri: &Reservation) -> (f64, f64) {
        let fees = ri.amortized_upfront + ri.recurring_fee;
        if fees <= 0.0 {
            return (0.0, 0.0);
        }
        let upfront = self.unused_cost * ri.amortized_upfront / fees;
        (upfront, self.unused_cost - upfront)
    }
}

/// The truth rows together with the per-reservation facts the `RIFee` lines need.
#[derive(Debug)]
pub(crate) struct Truth {
    pub(crate) rows: GroundTruth,
    /// One per reservation, in model order.
    pub(crate) ri: Vec<RiFacts>,
}

/// One application's part of one hour of a commitment.
struct Part {
    application: String,
    share: f64,
    used: f64,
    attribution: Attribution,
}

/// Applications' use of one commitment, per hour and over the period.
struct Usage<'a> {
    hours: &'a [Vec<Use>],
    period: BTreeMap<&'static str, f64>,
    period_total: f64,
}

impl<'a> Usage<'a> {
    fn new(hours: &'a [Vec<Use>]) -> Self {
        let mut period = BTreeMap::new();
        let mut period_total = 0.0;
        for u in hours.iter().flatten() {
            *period.entry(u.app.unwrap_or(UNTAGGED)).or_insert(0.0) += u.units;
            period_total += u.units;
        }
        Self {
            hours,
            period,
            period_total,
        }
    }

    /// Total use in hour `h` and how the hour's waste is shared.
    fn hour(&self, h: u32) -> (f64, Vec<Part>) {
        let mut by_app: BTreeMap<&'static str, f64> = BTreeMap::new();
        let mut total = 0.0;
        for u in self.hours.get(h as usize).into_iter().flatten() {
            *by_app.entry(u.app.unwrap_or(UNTAGGED)).or_insert(0.0) += u.units;
            total += u.units;
        }
        let parts = if total > 0.0 {
            by_app
                .into_iter()
                .map(|(app, used)| Part {
                    application: app.to_owned(),
                    share: used / total,
                    used,
                    attribution: Attribution::Hour,
                })
                .collect()
        } else if self.period_total > 0.0 {
            self.period
                .iter()
                .map(|(app, used)| Part {
                    application: (*app).to_owned(),
                    share: used / self.period_total,
                    used: 0.0,
                    attribution: Attribution::Period,
                })
                .collect()
        } else {
            vec![Part {
                application: UNALLOCATED.to_owned(),
                share: 1.0,
                used: 0.0,
                attribution: Attribution::Unallocated,
            }]
        };
        (total, parts)
    }
}

/// Computes the truth of `model`.
pub(crate) fn compute(model: &Model) -> Truth {
    let mut rows = GroundTruth::default();
    let mut facts = Vec::with_capacity(model.reservations.len());
    let payer = &model.payer;
    let billing_period = model.period.label();
    let hour = |h: u32| {
        DateTime::<Utc>::from_timestamp_millis(model.period.hour_ms(h)).unwrap_or_default()
    };
    for ri in &model.reservations {
        let f = ri_facts(ri);
        let usage = Usage::new(&ri.hours);
        let mut unused_units = 0.0;
        let mut unused_cost = 0.0;
        for h in ri.active.clone() {
            let (used, parts) = usage.hour(h);
            let unused = (f.capacity - used).max(0.0);
            let cost = unused * f.rate;
            unused_units += unused;
            unused_cost += cost;
            rows.ri.extend(parts.into_iter().map(|p| RiTruthRow {
                payer_id: payer.clone(),
                billing_period: billing_period.clone(),
                usage_hour: hour(h),
                reservation_arn: ri.arn.clone(),
                owner_account_id: model.accounts[ri.owner].clone(),
                region: ri.region.code.to_owned(),
                product_code: ri.product.code().to_owned(),
                application: p.application,
                reserved_units: f.capacity * p.share,
                used_units: p.used,
                unused_units: unused * p.share,
                unused_cost: cost * p.share,
                attribution: p.attribution,
            }));
        }
        facts.push(RiFacts {
            unused_units,
            unused_cost,
            ..f
        });
    }
    for sp in &model.savings_plans {
        let usage = Usage::new(&sp.hours);
        for h in sp.active.clone() {
            let (used, parts) = usage.hour(h);
            let unused = sp.commitment - used;
            rows.sp.extend(parts.into_iter().map(|p| SpTruthRow {
                payer_id: payer.clone(),
                billing_period: billing_period.clone(),
                usage_hour: hour(h),
                savings_plan_arn: sp.arn.clone(),
                owner_account_id: model.accounts[sp.owner].clone(),
                region: sp.region.code.to_owned(),
                product_code: SAVINGS_PLAN_PRODUCT.to_owned(),
                application: p.application,
                commitment: sp.commitment * p.share,
                used_commitment: p.used,
                unused_commitment: unused * p.share,
                unused_cost: unused * p.share,
                attribution: p.attribution,
            }));
        }
    }
    Truth { rows, ri: facts }
}

/// Capacity and rate of a reservation, exactly as the analytics derive them from its
/// `RIFee` line (total reserved spread over the active hours; fees over total reserved).
fn ri_facts(ri: &Reservation) -> RiFacts {
    let active_hours = ri.active.len() as u32;
    let a = f64::from(active_hours);
    let total_reserved = ri.units_per_hour() * a;
    let total_reserved_units = f64::from(ri.count) * a;
    let (capacity, rate) = if active_hours == 0 {
        (0.0, 0.0)
    } else {
        (
            total_reserved / a,
            (ri.amortized_upfront + ri.recurring_fee) / total_reserved,
        )
    };
    RiFacts {
        active_hours,
        total_reserved,
        total_reserved_units,
        capacity,
        rate,
        unused_units: 0.0,
        unused_cost: 0.0,
    }
}

/// Used commitment of a Savings Plan in hour `h`: Σ covered effective cost.
pub(crate) fn sp_used(hours: &[Vec<Use>], h: u32) -> f64 {
    // A fold from +0.0: an empty `sum()` of floats is -0.0, which would print as "-0".
    hours
        .get(h as usize)
        .into_iter()
        .flatten()
        .fold(0.0, |used, u| used + u.units)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};

    use super::super::draw::build;
    use super::super::period::Period;
    use super::*;

    fn july() -> (Model, Truth) {
        let model = build("123456789012", Period::new(2025, 7).unwrap(), 11, 1);
        let truth = compute(&model);
        (model, truth)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn ri_rows_reconcile_with_the_fee_lines() {
        let (model, truth) = july();
        for (ri, facts) in model.reservations.iter().zip(&truth.ri) {
            let rows: Vec<&RiTruthRow> = truth
                .rows
                .ri
                .iter()
                .filter(|r| r.reservation_arn == ri.arn)
                .collect();
            let unused: f64 = rows.iter().map(|r| r.unused_cost).sum();
            assert!(
                close(unused, facts.unused_cost),
                "{}: {unused} vs {}",
                ri.arn,
                facts.unused_cost
            );
            let (upfront, recurring) = facts.unused_split(ri);
            assert!(close(upfront + recurring, facts.unused_cost));
            assert!(upfront >= 0.0 && recurring >= 0.0);
            let hours: std::collections::BTreeSet<_> = rows.iter().map(|r| r.usage_hour).collect();
            assert_eq!(
                hours.len(),
                ri.active.len(),
                "{}: a row group per active hour",
                ri.arn
            );
            assert!(rows.iter().all(|r| r.product_code == ri.product.code()));
        }
        let total: f64 = truth.ri.iter().map(|f| f.unused_cost).sum();
        assert!(total > 0.0);
    }

    #[test]
    fn shares_of_each_hour_add_up_to_the_hour() {
        let (model, truth) = july();
        let mut ri_hours: BTreeMap<(&str, DateTime<Utc>), Vec<&RiTruthRow>> = BTreeMap::new();
        for r in &truth.rows.ri {
            ri_hours
                .entry((&r.reservation_arn, r.usage_hour))
                .or_default()
                .push(r);
        }
        for ((arn, _), rows) in &ri_hours {
            let (ri, facts) = model
                .reservations
                .iter()
                .zip(&truth.ri)
                .find(|(ri, _)| ri.arn == *arn)
                .unwrap();
            let kind = rows[0].attribution;
            assert!(rows.iter().all(|r| r.attribution == kind));
            let used: f64 = rows.iter().map(|r| r.used_units).sum();
            let unused = (facts.capacity - used).max(0.0);
            let sum = |f: fn(&RiTruthRow) -> f64| rows.iter().map(|r| f(r)).sum::<f64>();
            assert!(close(sum(|r| r.reserved_units), ri.units_per_hour()));
            assert!(close(sum(|r| r.unused_units), unused));
            assert!(close(sum(|r| r.unused_cost), unused * facts.rate));
            assert_eq!(kind == Attribution::Hour, used > 0.0);
        }
        let mut sp_hours: BTreeMap<(&str, DateTime<Utc>), Vec<&SpTruthRow>> = BTreeMap::new();
        for r in &truth.rows.sp {
            sp_hours
                .entry((&r.savings_plan_arn, r.usage_hour))
                .or_default()
                .push(r);
        }
        for ((arn, _), rows) in &sp_hours {
            let sp = model
                .savings_plans
                .iter()
                .find(|sp| sp.arn == *arn)
                .unwrap();
            let used: f64 = rows.iter().map(|r| r.used_commitment).sum();
            let sum = |f: fn(&SpTruthRow) -> f64| rows.iter().map(|r| f(r)).sum::<f64>();
            assert!(close(sum(|r| r.commitment), sp.commitment));
            assert!(close(sum(|r| r.unused_commitment), sp.commitment - used));
            assert!(close(sum(|r| r.unused_cost), sp.commitment - used));
        }
    }

    #[test]
    fn every_attribution_kind_appears_for_both_tables() {
        for seed in 0..8 {
            let model = build("123456789012", Period::new(2024, 2).unwrap(), seed, 1);
            assert_attributions(&compute(&model));
        }
        assert_attributions(&july().1);
    }

    fn assert_attributions(truth: &Truth) {
        for kind in [
            Attribution::Hour,
            Attribution::Period,
            Attribution::Unallocated,
        ] {
            assert!(
                truth.rows.ri.iter().any(|r| r.attribution == kind),
                "RI {kind}"
            );
            assert!(
                truth.rows.sp.iter().any(|r| r.attribution == kind),
                "SP {kind}"
            );
        }
        assert!(truth.rows.ri.iter().any(|r| r.application == UNTAGGED));
        assert!(
            truth
                .rows
                .ri
                .iter()
                .all(|r| r.attribution != Attribution::Unallocated
                    || (r.application == UNALLOCATED && r.used_units == 0.0))
        );
        // A fully used hour still has rows, with nothing unused.
        assert!(
            truth
                .rows
                .sp
                .iter()
                .any(|r| r.attribution == Attribution::Hour && r.unused_cost == 0.0)
        );
    }
}
