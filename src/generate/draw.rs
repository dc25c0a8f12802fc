//! Draws the synthetic payer from the seed: its accounts, which commitments it holds (every
//! class the analytics must handle), their terms and fees, and, through `usage`, their use.

use std::ops::Range;

use super::catalog::{C5, DB_R5, EC2_FAMILIES, Family, M5, R5, REGIONS, T3};
use super::model::{Model, Normalization, Product, Reservation, SavingsPlan, sp_rate};
use super::period::{HOUR_MS, Period};
use super::rng::{Rng, hash_str, mix};
use super::usage::{Profile, Users, plan_hours, use_line};

const DAY_MS: i64 = 24 * HOUR_MS;

/// When a commitment's term lies relative to the period.
#[derive(Debug, Clone, Copy)]
enum Timing {
    WholePeriod,
    StartsInside,
    EndsInside,
}

struct RiSpec {
    product: Product,
    family: &'static Family,
    size: usize,
    count: Range<u64>,
    normalization: Normalization,
    class: &'static str,
    option: &'static str,
    upfront_share: f64,
    zonal: bool,
    timing: Timing,
    /// `None`: never used in the period.
    profile: Option<Profile>,
}

const BUSY: Profile = Profile {
    idle: 0.1,
    full: 0.2,
    idle_block: 5,
};
const QUIET: Profile = Profile {
    idle: 0.4,
    full: 0.05,
    idle_block: 12,
};

fn ri_specs() -> [RiSpec; 7] {
    use Normalization::*;
    let ec2 = |family, size, count, option, upfront_share, timing, profile| RiSpec {
        product: Product::Ec2,
        family,
        size,
        count,
        normalization: Flexible,
        class: "standard",
        option,
        upfront_share,
        zonal: false,
        timing,
        profile,
    };
    [
        ec2(
            &M5,
            1,
            2..5,
            "Partial Upfront",
            0.5,
            Timing::WholePeriod,
            Some(BUSY),
        ),
        ec2(
            &C5,
            2,
            2..4,
            "All Upfront",
            1.0,
            Timing::WholePeriod,
            Some(QUIET),
        ),
        ec2(
            &R5,
            1,
            2..4,
            "No Upfront",
            0.0,
            Timing::StartsInside,
            Some(BUSY),
        ),
        ec2(
            &T3,
            3,
            3..7,
            "Partial Upfront",
            0.5,
            Timing::EndsInside,
            Some(QUIET),
        ),
        RiSpec {
            product: Product::Rds,
            family: &DB_R5,
            size: 0,
            count: 2..3,
            normalization: Zero,
            class: "standard",
            option: "Partial Upfront",
            upfront_share: 0.5,
            zonal: false,
            timing: Timing::WholePeriod,
            profile: Some(BUSY),
        },
        RiSpec {
            product: Product::Ec2,
            family: &M5,
            size: 0,
            count: 3..4,
            normalization: Null,
            class: "convertible",
            option: "No Upfront",
            upfront_share: 0.0,
            zonal: true,
            timing: Timing::WholePeriod,
            profile: Some(QUIET),
        },
        ec2(
            &C5,
            1,
            1..2,
            "Partial Upfront",
            0.5,
            Timing::WholePeriod,
            None,
        ),
    ]
}

/// Savings Plans: hourly commitment, timing and use.
const SP_SPECS: [(f64, Timing, Option<Profile>); 3] = [
    (
        10.0,
        Timing::WholePeriod,
        Some(Profile {
            idle: 0.03,
            full: 0.3,
            idle_block: 4,
        }),
    ),
    (
        4.0,
        Timing::WholePeriod,
        Some(Profile {
            idle: 0.35,
            full: 0.05,
            idle_block: 10,
        }),
    ),
    (2.5, Timing::StartsInside, None),
];

/// Draws the payer's model for `period` from `seed`; the same inputs give the same model.
/// Each of the `sets` (≥ 1) of commitments holds one reservation per RI spec and one
/// Savings Plan per SP spec, each drawn from its own index: the first set is the same
/// whatever `sets` is.
pub(crate) fn build(payer: &str, period: Period, seed: u64, sets: u32) -> Model {
    let base = mix(seed ^ hash_str(payer))
        ^ mix((i64::from(period.year) * 100 + i64::from(period.month)) as u64);
    let accounts = accounts(payer, base);
    let mut model = Model {
        payer: payer.to_owned(),
        period,
        accounts,
        reservations: Vec::new(),
        savings_plans: Vec::new(),
        base,
    };
    for set in 0..u64::from(sets) {
        let specs = ri_specs();
        let first = set * specs.len() as u64;
        for (k, spec) in (first..).zip(specs) {
            let ri = reservation(&model, k, spec);
            model.reservations.push(ri);
        }
        let first = set * SP_SPECS.len() as u64;
        for (k, (commitment, timing, profile)) in (first..).zip(SP_SPECS) {
            let sp = savings_plan(&model, k, commitment, timing, profile);
            model.savings_plans.push(sp);
        }
    }
    model
}

fn accounts(payer: &str, base: u64) -> Vec<String> {
    let mut rng = Rng::derive(base, &[1]);
    let mut ids = vec![payer.to_owned()];
    while ids.len() < 4 {
        let id = format!("{:012}", 100_000_000_000 + rng.below(900_000_000_000));
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// A random identifier shaped like a version-4 UUID.
pub(crate) fn uuid_like(rng: &mut Rng) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Real term of a commitment (`years` long) and its active hours in the period.
fn term(rng: &mut Rng, period: &Period, timing: Timing, years: i64) -> (i64, i64, Range<u32>) {
    let length = years * 365 * DAY_MS;
    let hours = period.hours();
    let (start, end) = match timing {
        Timing::WholePeriod => {
            let start = period.start_ms
                - (30 + rng.below(300) as i64) * DAY_MS
                - rng.below(24) as i64 * HOUR_MS;
            (start, start + length)
        }
        Timing::StartsInside => {
            let start = period.hour_ms(24 * (7 + rng.below(7) as u32) + rng.below(24) as u32);
            (start, start + length)
        }
        Timing::EndsInside => {
            let end = period.hour_ms(24 * (14 + rng.below(7) as u32) + rng.below(24) as u32);
            (end - length, end)
        }
    };
    let clip =
        |ms: i64| ((ms.clamp(period.start_ms, period.end_ms) - period.start_ms) / HOUR_MS) as u32;
    let active = clip(start)..clip(end).min(hours);
    (start, end, active)
}

fn reservation(model: &Model, k: u64, spec: RiSpec) -> Reservation {
    let mut rng = Rng::derive(model.base, &[2, k]);
    let region = rng.pick(&REGIONS);
    let owner = rng.below(model.accounts.len() as u64) as usize;
    let size = &spec.family.sizes[spec.size.min(spec.family.sizes.len() - 1)];
    let count = (spec.count.start + rng.below(spec.count.end - spec.count.start)) as u32;
    let years = if spec.product == Product::Rds { 3 } else { 1 };
    let (start_ms, end_ms, active) = term(&mut rng, &model.period, spec.timing, years);
    let id = match spec.product {
        Product::Ec2 => uuid_like(&mut rng),
        Product::Rds => format!("curflow-ri-{:08x}", rng.next_u64() >> 32),
    };
    let arn = match spec.product {
        Product::Ec2 => format!(
            "arn:aws:ec2:{}:{}:reserved-instances/{id}",
            region.code, model.accounts[owner]
        ),
        Product::Rds => format!(
            "arn:aws:rds:{}:{}:ri:{id}",
            region.code, model.accounts[owner]
        ),
    };
    let zone = spec
        .zonal
        .then(|| format!("{}{}", region.code, rng.pick(&['a', 'b', 'c'])));
    let mut ri = Reservation {
        arn,
        owner,
        region,
        product: spec.product,
        family: spec.family,
        size,
        count,
        normalization: spec.normalization,
        offering_class: spec.class,
        purchase_option: spec.option,
        zone,
        start_ms,
        end_ms,
        active,
        amortized_upfront: 0.0,
        recurring_fee: 0.0,
        hours: Vec::new(),
    };
    // Effective price per unit-hour: on-demand per unit less a 30–45 % discount.
    let od_per_unit = if ri.flexible() {
        size.od_rate / size.factor
    } else {
        size.od_rate
    };
    let rate = od_per_unit * (0.55 + 0.15 * rng.unit());
    let period_cost = rate * ri.units_per_hour() * f64::from(ri.active.len() as u32);
    ri.amortized_upfront = period_cost * spec.upfront_share;
    ri.recurring_fee = period_cost - ri.amortized_upfront;
    let users = Users::choose(&mut rng, model.accounts.len());
    let capacity = ri.units_per_hour();
    // Quantum of use: a quarter hour of the smallest size, so every sum is exact.
    let quantum = if ri.flexible() {
        0.25 * spec.family.sizes[0].factor
    } else {
        0.25
    };
    let (flexible, family, region) = (ri.flexible(), ri.family, ri.region);
    ri.hours = plan_hours(
        model.period.hours(),
        Rng::derive(model.base, &[3, k]),
        &ri.active,
        spec.profile,
        capacity,
        quantum,
        |rng, units| {
            let size = if flexible {
                &family.sizes[rng.below(family.sizes.len() as u64) as usize]
            } else {
                size
            };
            let amount = if flexible { units / size.factor } else { units };
            use_line(rng, &users, family, size, amount, units, region)
        },
    );
    ri
}

fn savings_plan(
    model: &Model,
    k: u64,
    commitment: f64,
    timing: Timing,
    profile: Option<Profile>,
) -> SavingsPlan {
    let mut rng = Rng::derive(model.base, &[4, k]);
    let region = rng.pick(&REGIONS);
    let owner = rng.below(model.accounts.len() as u64) as usize;
    let (start_ms, end_ms, active) = term(&mut rng, &model.period, timing, 1);
    let id = uuid_like(&mut rng);
    let arn = format!(
        "arn:aws:savingsplans::{}:savingsplan/{id}",
        model.accounts[owner]
    );
    let users = Users::choose(&mut rng, model.accounts.len());
    let hours = plan_hours(
        model.period.hours(),
        Rng::derive(model.base, &[5, k]),
        &active,
        profile,
        commitment,
        0.125,
        |rng, units| {
            let family = *rng.pick(&EC2_FAMILIES);
            let size = &family.sizes[rng.below(family.sizes.len() as u64) as usize];
            let amount = units / sp_rate(size);
            let region = rng.pick(&REGIONS);
            use_line(rng, &users, family, size, amount, units, region)
        },
    );
    SavingsPlan {
        arn,
        owner,
        region,
        commitment,
        start_ms,
        end_ms,
        active,
        hours,
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::Use;
    use super::*;

    fn july() -> Model {
        build("123456789012", Period::new(2025, 7).unwrap(), 7, 1)
    }

    fn used_hours(hours: &[Vec<Use>]) -> usize {
        hours.iter().filter(|h| !h.is_empty()).count()
    }

    /// Models for several seeds, payers and months (February included): the classes must
    /// not depend on luck.
    fn many() -> Vec<Model> {
        let mut models = Vec::new();
        for seed in 0..8 {
            for (year, month) in [(2024, 2), (2025, 7), (2025, 12)] {
                let payer = if seed % 2 == 0 {
                    "123456789012"
                } else {
                    "999999999999"
                };
                models.push(build(payer, Period::new(year, month).unwrap(), seed, 1));
            }
        }
        models
    }

    #[test]
    fn every_class_of_commitment_exists() {
        for m in many() {
            assert_classes(&m);
        }
    }

    fn assert_classes(m: &Model) {
        let hours = m.period.hours();
        let ris = &m.reservations;
        assert!(ris.len() >= 5);
        let flexible: Vec<_> = ris.iter().filter(|r| r.flexible()).collect();
        assert!(flexible.len() >= 3, "several size-flexible RIs");
        assert!(ris.iter().any(|r| r.normalization == Normalization::Zero));
        assert!(ris.iter().any(|r| r.normalization == Normalization::Null));
        assert!(ris.iter().any(|r| r.product == Product::Rds));
        assert!(
            ris.iter()
                .any(|r| r.active.start > 0 && r.active.end == hours),
            "one starts mid-month"
        );
        assert!(
            ris.iter()
                .any(|r| r.active.start == 0 && r.active.end < hours),
            "one ends mid-month"
        );
        let never: Vec<_> = ris.iter().filter(|r| used_hours(&r.hours) == 0).collect();
        assert_eq!(never.len(), 1, "exactly one RI is never used");
        for ri in ris.iter().filter(|r| used_hours(&r.hours) > 0) {
            assert!(
                used_hours(&ri.hours) < ri.active.len(),
                "{} has idle hours",
                ri.arn
            );
            assert_eq!(
                (ri.start_ms - m.period.start_ms) % HOUR_MS,
                0,
                "terms start on the hour"
            );
        }
        let sps = &m.savings_plans;
        assert!(sps.len() >= 3);
        let full = |sp: &SavingsPlan| {
            sp.hours
                .iter()
                .any(|h| h.iter().map(|u| u.units).sum::<f64>() == sp.commitment)
        };
        assert!(sps.iter().any(full), "one plan is fully used in some hours");
        assert!(sps.iter().any(|sp| {
            let used = used_hours(&sp.hours);
            used > 0 && used < sp.active.len()
        }));
        assert!(
            sps.iter().any(|sp| used_hours(&sp.hours) == 0),
            "one plan is never used"
        );
    }

    #[test]
    fn use_never_exceeds_capacity_and_stays_in_active_hours() {
        for m in many() {
            assert_within_capacity(&m);
        }
    }

    fn assert_within_capacity(m: &Model) {
        for ri in &m.reservations {
            for (h, uses) in ri.hours.iter().enumerate() {
                let total: f64 = uses.iter().map(|u| u.units).sum();
                assert!(total <= ri.units_per_hour(), "{} hour {h}", ri.arn);
                assert!(uses.is_empty() || ri.active.contains(&(h as u32)));
                for u in uses {
                    let expected = if ri.flexible() {
                        u.amount * u.size.factor
                    } else {
                        u.amount
                    };
                    assert_eq!(u.units, expected, "units are exact");
                    assert!(u.minute < 60);
                }
            }
        }
        for sp in &m.savings_plans {
            for uses in &sp.hours {
                assert!(uses.iter().map(|u| u.units).sum::<f64>() <= sp.commitment);
            }
        }
    }

    #[test]
    fn some_lines_are_untagged_and_start_inside_the_hour() {
        let m = july();
        let uses: Vec<&Use> = m
            .reservations
            .iter()
            .flat_map(|r| r.hours.iter().flatten())
            .collect();
        assert!(uses.iter().any(|u| u.app.is_none()));
        assert!(uses.iter().any(|u| u.app.is_some()));
        assert!(uses.iter().any(|u| u.minute > 0));
        let total: usize = uses.len()
            + m.savings_plans
                .iter()
                .map(|s| s.hours.iter().flatten().count())
                .sum::<usize>();
        assert!(
            total < 10_000,
            "commitment lines stay a few thousand: {total}"
        );
    }

    #[test]
    fn accounts_are_distinct_twelve_digit_ids() {
        let m = july();
        assert_eq!(m.accounts[0], "123456789012");
        for a in &m.accounts {
            assert_eq!(a.len(), 12);
            assert!(a.bytes().all(|b| b.is_ascii_digit()));
        }
        let mut sorted = m.accounts.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), m.accounts.len());
    }

    #[test]
    fn more_sets_add_commitments_and_keep_the_first_set() {
        let period = Period::new(2025, 7).unwrap();
        let one = build("123456789012", period, 7, 1);
        let three = build("123456789012", period, 7, 3);
        assert_eq!(three.reservations.len(), 3 * one.reservations.len());
        assert_eq!(three.savings_plans.len(), 3 * one.savings_plans.len());
        let arns = |m: &Model| -> Vec<String> {
            m.reservations
                .iter()
                .map(|r| r.arn.clone())
                .chain(m.savings_plans.iter().map(|s| s.arn.clone()))
                .collect()
        };
        let mut distinct = arns(&three);
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), arns(&three).len());
        let first_set: Vec<String> = three.reservations[..one.reservations.len()]
            .iter()
            .map(|r| r.arn.clone())
            .chain(
                three.savings_plans[..one.savings_plans.len()]
                    .iter()
                    .map(|s| s.arn.clone()),
            )
            .collect();
        assert_eq!(first_set, arns(&one));
        assert_within_capacity(&three);
    }
}
