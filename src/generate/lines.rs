//! The CUR line items of each hour: commitment fees and use from the model, plus noise
//! (on-demand usage, tax, credits, Savings Plans negations) that must not change any result.
//!
//! Lines are produced one hour at a time so that a month of ten million rows never sits in
//! memory; only the (small) commitment part of the month is precomputed, in the model.

use super::catalog::{
    APPS, CLOUDWATCH, DATA_TRANSFER, EC2, EC2_FAMILIES, Family, LAMBDA, RDS, REGIONS, Region, S3,
    SP_FEE, Service, Size, TEAMS,
};
use super::model::{Model, Normalization, Reservation, SavingsPlan, Use, sp_rate};
use super::period::HOUR_MS;
use super::rng::Rng;
use super::truth::{RiFacts, Truth, sp_used};

/// `line_item_line_item_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Usage,
    DiscountedUsage,
    RiFee,
    SavingsPlanCoveredUsage,
    SavingsPlanRecurringFee,
    SavingsPlanNegation,
    Tax,
    Credit,
}

impl Kind {
    /// The value CUR writes.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Usage => "Usage",
            Kind::DiscountedUsage => "DiscountedUsage",
            Kind::RiFee => "RIFee",
            Kind::SavingsPlanCoveredUsage => "SavingsPlanCoveredUsage",
            Kind::SavingsPlanRecurringFee => "SavingsPlanRecurringFee",
            Kind::SavingsPlanNegation => "SavingsPlanNegation",
            Kind::Tax => "Tax",
            Kind::Credit => "Credit",
        }
    }
}

/// `resource_tags` of a line.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tags {
    /// No map at all.
    Null,
    /// A map with `user_team`, `user_environment` and, unless absent, `user_application`.
    Map {
        app: Option<&'static str>,
        team: &'static str,
        env: &'static str,
    },
}

/// What a line says about a commitment.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Commitment<'m> {
    None,
    RiFee(&'m Reservation, &'m RiFacts),
    /// `units` consumed at the reservation's rate.
    RiUse(&'m Reservation, &'m RiFacts, f64),
    /// Used commitment in the fee's hour.
    SpFee(&'m SavingsPlan, f64),
    /// Effective cost and Savings Plans rate.
    SpUse(&'m SavingsPlan, f64, f64),
    SpNegation(&'m SavingsPlan),
}

/// One CUR line item, with only the fields the generator fills.
#[derive(Debug, Clone)]
pub(crate) struct Line<'m> {
    pub(crate) kind: Kind,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) account: &'m str,
    pub(crate) service: &'static Service,
    pub(crate) region: Option<&'static Region>,
    pub(crate) zone: Option<&'m str>,
    pub(crate) size: Option<(&'static Family, &'static Size)>,
    pub(crate) usage_amount: Option<f64>,
    pub(crate) normalization_factor: Option<f64>,
    pub(crate) normalized_usage_amount: Option<f64>,
    /// `line_item_unblended_cost` (also the blended cost).
    pub(crate) cost: f64,
    pub(crate) rate: Option<f64>,
    pub(crate) public_cost: Option<f64>,
    pub(crate) public_rate: Option<f64>,
    pub(crate) resource: Option<u64>,
    pub(crate) tags: Tags,
    pub(crate) commitment: Commitment<'m>,
}

/// Environment tag values.
const ENVS: [&str; 3] = ["prod", "prod", "staging"];

/// Every line of the month, produced hour by hour.
pub(crate) struct Plan<'m> {
    model: &'m Model,
    truth: &'m Truth,
    /// On-demand `Usage` lines that fill the month up to the requested rows.
    noise: u64,
}

impl<'m> Plan<'m> {
    /// The month of `model` with about `rows` lines (never fewer than the commitments need).
    pub(crate) fn new(model: &'m Model, truth: &'m Truth, rows: u64) -> Self {
        let mut fixed = (model.reservations.len() + month_lines(model).len()) as u64;
        for ri in &model.reservations {
            fixed += ri.hours.iter().map(|h| h.len() as u64).sum::<u64>();
        }
        for sp in &model.savings_plans {
            fixed += sp.active.len() as u64;
            for u in sp.hours.iter().flatten() {
                fixed += if negated(u) { 2 } else { 1 };
            }
        }
        Self {
            model,
            truth,
            noise: rows.saturating_sub(fixed),
        }
    }

    /// Appends every line of hour `h` of the period to `out`.
    pub(crate) fn hour(&self, h: u32, out: &mut Vec<Line<'m>>) {
        let model = self.model;
        let at = model.period.hour_ms(h);
        if h == 0 {
            for (ri, facts) in model.reservations.iter().zip(&self.truth.ri) {
                out.push(self.ri_fee(ri, facts));
            }
            out.extend(month_lines(model).into_iter().map(|t| t.line(model)));
        }
        for (ri, facts) in model.reservations.iter().zip(&self.truth.ri) {
            for u in ri.hours.get(h as usize).into_iter().flatten() {
                out.push(self.ri_use(ri, facts, u, at));
            }
        }
        for sp in &model.savings_plans {
            if sp.active.contains(&h) {
                out.push(self.sp_fee(sp, sp_used(&sp.hours, h), at));
            }
            for u in sp.hours.get(h as usize).into_iter().flatten() {
                let covered = self.sp_use(sp, u, at);
                if negated(u) {
                    let mut negation = covered.clone();
                    negation.kind = Kind::SavingsPlanNegation;
                    negation.cost = -covered.cost;
                    negation.commitment = Commitment::SpNegation(sp);
                    out.push(covered);
                    out.push(negation);
                } else {
                    out.push(covered);
                }
            }
        }
        let hours = u128::from(model.period.hours());
        let share = |h: u32| (u128::from(self.noise) * u128::from(h) / hours) as u64;
        let mut rng = Rng::derive(model.base, &[6, u64::from(h)]);
        for _ in share(h)..share(h + 1) {
            out.push(self.on_demand(&mut rng, at));
        }
    }

    fn ri_fee(&self, ri: &'m Reservation, facts: &'m RiFacts) -> Line<'m> {
        let mut line = blank(
            self.model,
            Kind::RiFee,
            ri.product.fee(),
            self.model.period.start_ms,
            ri.owner,
        );
        line.end_ms = self.model.period.end_ms;
        line.region = Some(ri.region);
        line.zone = ri.zone.as_deref();
        line.size = Some((ri.family, ri.size));
        line.usage_amount = Some(facts.total_reserved_units);
        line.cost = ri.recurring_fee;
        line.rate = Some(if facts.total_reserved_units > 0.0 {
            ri.recurring_fee / facts.total_reserved_units
        } else {
            0.0
        });
        line.commitment = Commitment::RiFee(ri, facts);
        line
    }

    fn ri_use(&self, ri: &'m Reservation, facts: &'m RiFacts, u: &Use, at: i64) -> Line<'m> {
        let mut line = self.usage(Kind::DiscountedUsage, ri.product.usage(), u, at);
        line.zone = ri.zone.as_deref();
        (line.normalization_factor, line.normalized_usage_amount) = match ri.normalization {
            Normalization::Flexible => (Some(u.size.factor), Some(u.units)),
            Normalization::Zero => (None, Some(0.0)),
            Normalization::Null => (Some(u.size.factor), None),
        };
        line.cost = 0.0;
        line.rate = Some(0.0);
        line.commitment = Commitment::RiUse(ri, facts, u.units);
        line
    }

    fn sp_fee(&self, sp: &'m SavingsPlan, used: f64, at: i64) -> Line<'m> {
        let mut line = blank(
            self.model,
            Kind::SavingsPlanRecurringFee,
            &SP_FEE,
            at,
            sp.owner,
        );
        line.region = Some(sp.region);
        line.usage_amount = Some(1.0);
        line.cost = sp.commitment;
        line.rate = Some(sp.commitment);
        line.commitment = Commitment::SpFee(sp, used);
        line
    }

    fn sp_use(&self, sp: &'m SavingsPlan, u: &Use, at: i64) -> Line<'m> {
        let mut line = self.usage(Kind::SavingsPlanCoveredUsage, &EC2, u, at);
        line.normalization_factor = Some(u.size.factor);
        line.normalized_usage_amount = Some(u.amount * u.size.factor);
        line.commitment = Commitment::SpUse(sp, u.units, sp_rate(u.size));
        line
    }

    /// A line of commitment use, priced on demand (callers override what differs).
    fn usage(&self, kind: Kind, service: &'static Service, u: &Use, at: i64) -> Line<'m> {
        let mut line = blank(
            self.model,
            kind,
            service,
            at + i64::from(u.minute) * 60_000,
            u.account,
        );
        line.end_ms = at + HOUR_MS;
        line.region = Some(u.region);
        line.size = Some((u.family, u.size));
        line.usage_amount = Some(u.amount);
        line.cost = u.amount * u.size.od_rate;
        line.rate = Some(u.size.od_rate);
        line.public_cost = Some(line.cost);
        line.public_rate = Some(u.size.od_rate);
        line.resource = Some(u.resource);
        let env = ENVS[(u.resource % ENVS.len() as u64) as usize];
        line.tags = Tags::Map {
            app: u.app,
            team: u.team,
            env,
        };
        line
    }

    /// One on-demand line: mostly EC2, some storage, serverless, metrics and transfer.
    fn on_demand(&self, rng: &mut Rng, at: i64) -> Line<'m> {
        let account = rng.below(self.model.accounts.len() as u64) as usize;
        let r = rng.unit();
        let (service, size, amount) = if r < 0.55 {
            let family = *rng.pick(&EC2_FAMILIES);
            let size = &family.sizes[rng.below(family.sizes.len() as u64) as usize];
            (&EC2, Some((family, size)), 1.0)
        } else if r < 0.75 {
            (&S3, None, rng.unit() * 0.5)
        } else if r < 0.88 {
            (&LAMBDA, None, (rng.unit() * 10_000.0).round())
        } else if r < 0.94 {
            (&CLOUDWATCH, None, (1 + rng.below(20)) as f64 / 744.0)
        } else {
            (&DATA_TRANSFER, None, rng.unit() * 3.0)
        };
        let rate = size.map_or(service.rate, |(_, s)| s.od_rate);
        let mut line = blank(self.model, Kind::Usage, service, at, account);
        line.region = Some(rng.pick(&REGIONS));
        line.size = size;
        line.usage_amount = Some(amount);
        line.normalization_factor = size.map(|(_, s)| s.factor);
        line.normalized_usage_amount = size.map(|(_, s)| s.factor * amount);
        line.cost = amount * rate;
        line.rate = Some(rate);
        line.public_cost = Some(line.cost);
        line.public_rate = Some(rate);
        line.resource = service.resource_prefix.map(|_| rng.next_u64());
        let t = rng.unit();
        line.tags = if t < 0.15 {
            Tags::Null
        } else {
            let app = (t >= 0.25).then(|| *rng.pick(&APPS));
            let team = *rng.pick(&TEAMS);
            let env = *rng.pick(&ENVS);
            Tags::Map { app, team, env }
        };
        line
    }
}

/// A one-hour line of `kind` with nothing else filled in (callers set what applies).
fn blank<'m>(
    model: &'m Model,
    kind: Kind,
    service: &'static Service,
    start_ms: i64,
    account: usize,
) -> Line<'m> {
    Line {
        kind,
        start_ms,
        end_ms: start_ms + HOUR_MS,
        account: model
            .accounts
            .get(account)
            .map_or(model.payer.as_str(), String::as_str),
        service,
        region: None,
        zone: None,
        size: None,
        usage_amount: None,
        normalization_factor: None,
        normalized_usage_amount: None,
        cost: 0.0,
        rate: None,
        public_cost: None,
        public_rate: None,
        resource: None,
        tags: Tags::Null,
        commitment: Commitment::None,
    }
}

/// Whether a covered-usage line also gets a `SavingsPlanNegation` twin (one in four do).
fn negated(u: &Use) -> bool {
    u.resource.is_multiple_of(4)
}

/// A month-level line that is not a commitment fee: tax and credits.
struct MonthLine {
    kind: Kind,
    service: &'static Service,
    account: usize,
    cost: f64,
}

impl MonthLine {
    fn line<'m>(&self, model: &'m Model) -> Line<'m> {
        let mut line = blank(
            model,
            self.kind,
            self.service,
            model.period.start_ms,
            self.account,
        );
        line.end_ms = model.period.end_ms;
        line.cost = self.cost;
        line
    }
}

/// Tax per account on EC2 and RDS, and two credits (negative cost).
fn month_lines(model: &Model) -> Vec<MonthLine> {
    let mut rng = Rng::derive(model.base, &[7]);
    let mut lines = Vec::new();
    for account in 0..model.accounts.len() {
        for service in [&EC2, &RDS] {
            let cost = (rng.unit() * 5_000.0).round() / 100.0;
            lines.push(MonthLine {
                kind: Kind::Tax,
                service,
                account,
                cost,
            });
        }
    }
    for service in [&EC2, &S3] {
        let cost = -((1 + rng.below(50)) as f64);
        lines.push(MonthLine {
            kind: Kind::Credit,
            service,
            account: 0,
            cost,
        });
    }
    lines
}
