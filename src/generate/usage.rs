//! How each commitment is used hour by hour: runs of idle hours, fully used hours, and
//! partly used ones split over one to three usage lines, applications and accounts.
//!
//! Amounts are whole multiples of a dyadic quantum (a quarter hour of the smallest size, or
//! an eighth of a dollar), so every sum is exact in `f64` whichever order an engine adds in.

use std::ops::Range;

use super::catalog::{APPS, Family, Region, Size, TEAMS};
use super::model::Use;
use super::rng::{Rng, hash_str};

/// Share of commitment use lines that carry no `user_application` tag.
const UNTAGGED_SHARE: f64 = 0.1;

/// How a commitment is used over its active hours.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Profile {
    /// Probability that an hour (outside the forced idle block) has no use.
    pub(crate) idle: f64,
    /// Probability that a used hour uses the whole capacity.
    pub(crate) full: f64,
    /// Length of a run of idle hours placed somewhere after the first active hour.
    pub(crate) idle_block: u32,
}

/// Who uses a commitment: two or three applications (the first the heaviest) in any account.
pub(crate) struct Users {
    apps: Vec<&'static str>,
    accounts: u64,
}

impl Users {
    pub(crate) fn choose(rng: &mut Rng, accounts: usize) -> Self {
        let mut pool: Vec<&'static str> = APPS.to_vec();
        let n = 2 + rng.below(2) as usize;
        let apps = (0..n)
            .map(|_| pool.remove(rng.below(pool.len() as u64) as usize))
            .collect();
        Self {
            apps,
            accounts: accounts as u64,
        }
    }
}

/// One use line of `units` of commitment, run as `amount` hours of `size`.
pub(crate) fn use_line(
    rng: &mut Rng,
    users: &Users,
    family: &'static Family,
    size: &'static Size,
    amount: f64,
    units: f64,
    region: &'static Region,
) -> Use {
    let r = rng.unit();
    let weighted = if r < 0.5 {
        0
    } else if r < 0.8 {
        1
    } else {
        2
    };
    let app = (!rng.chance(UNTAGGED_SHARE)).then(|| users.apps[weighted % users.apps.len()]);
    let team = TEAMS[(hash_str(app.unwrap_or("")) % TEAMS.len() as u64) as usize];
    let minute = if rng.chance(0.25) {
        1 + rng.below(59) as u32
    } else {
        0
    };
    let account = rng.below(users.accounts) as usize;
    Use {
        minute,
        app,
        team,
        family,
        size,
        amount,
        units,
        account,
        region,
        resource: rng.next_u64(),
    }
}

/// Use of one commitment in every hour of the period: idle hours (including one forced
/// run), fully used hours, and partly used ones split over one to three lines.
pub(crate) fn plan_hours(
    period_hours: u32,
    mut rng: Rng,
    active: &Range<u32>,
    profile: Option<Profile>,
    capacity: f64,
    quantum: f64,
    mut line: impl FnMut(&mut Rng, f64) -> Use,
) -> Vec<Vec<Use>> {
    let mut hours: Vec<Vec<Use>> = (0..period_hours).map(|_| Vec::new()).collect();
    let Some(profile) = profile else { return hours };
    let span = active.len() as u64;
    // The first active hour is always used, and a run of idle hours follows somewhere later.
    let block_len = u64::from(profile.idle_block).min(span.saturating_sub(2));
    let block_start = u64::from(active.start) + 1 + rng.below(span.saturating_sub(block_len + 1));
    let block = block_start..block_start + block_len;
    let quanta = (capacity / quantum).round() as u64;
    for h in active.clone() {
        let first = h == active.start;
        if !first && (block.contains(&u64::from(h)) || rng.chance(profile.idle)) {
            continue;
        }
        // Partly used hours use between one quantum and 95 % of the capacity.
        let partial = ((quanta as f64 * 0.95) as u64).max(1);
        let used = if rng.chance(profile.full) {
            quanta
        } else {
            (1 + rng.below(partial)).min(quanta)
        };
        // One line in half the used hours, two or three in the others.
        let r = rng.unit();
        let parts = if r < 0.5 {
            1
        } else if r < 0.8 {
            2
        } else {
            3
        };
        for units in split(&mut rng, used, parts) {
            let line = line(&mut rng, units as f64 * quantum);
            if let Some(slot) = hours.get_mut(h as usize) {
                slot.push(line);
            }
        }
    }
    hours
}

/// Splits `quanta` into at most `parts` positive integers that add up to it.
fn split(rng: &mut Rng, mut quanta: u64, parts: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for i in 0..parts {
        if quanta == 0 {
            break;
        }
        let take = if i + 1 == parts {
            quanta
        } else {
            (1 + rng.below(2 * quanta / (parts - i))).min(quanta)
        };
        out.push(take);
        quanta -= take;
    }
    out
}
