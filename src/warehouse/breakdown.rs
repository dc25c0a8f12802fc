//! Where a payer-month's commitment waste went, read back from the final tables: totals,
//! the top commitments, applications, and waste per hour and application. Both warehouses
//! fill it with the same calls, so the report reads the same whichever holds the tables.

use chrono::{DateTime, Utc};

use crate::task::{BillingPeriod, PayerId};

/// One commitment's waste over a payer-month.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitmentWaste {
    /// `ri` or `sp`.
    pub kind: &'static str,
    /// The reservation or Savings Plan ARN.
    pub arn: String,
    /// Σ unused cost, USD.
    pub unused_cost: f64,
}

/// One application's share of the waste over a payer-month.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationWaste {
    /// The application tag value, `(untagged)` or `(unallocated)`.
    pub application: String,
    /// Its share of RI waste, USD.
    pub ri_unused_cost: f64,
    /// Its share of Savings Plans waste, USD.
    pub sp_unused_cost: f64,
}

/// Where a payer-month's commitment waste went, read back from the final tables.
#[derive(Debug, Clone, PartialEq)]
pub struct WasteBreakdown {
    /// The payer.
    pub payer: PayerId,
    /// The billing period.
    pub period: BillingPeriod,
    /// Hours in the period.
    pub hours: usize,
    /// Σ RI unused cost.
    pub ri_unused_cost: f64,
    /// Σ SP unused cost.
    pub sp_unused_cost: f64,
    /// Commitments by waste, largest first (at most 10).
    pub top_commitments: Vec<CommitmentWaste>,
    /// Applications by waste, largest first.
    pub applications: Vec<ApplicationWaste>,
    /// (hour index from the period start, application, unused cost), RI and SP together.
    pub hourly: Vec<(usize, String, f64)>,
}

impl WasteBreakdown {
    /// Nothing recorded yet for `payer`'s `period`.
    pub fn new(payer: PayerId, period: BillingPeriod) -> Self {
        let hours = usize::try_from((period.end() - period.start()).num_hours()).unwrap_or(0);
        Self {
            payer,
            period,
            hours,
            ri_unused_cost: 0.0,
            sp_unused_cost: 0.0,
            top_commitments: Vec::new(),
            applications: Vec::new(),
            hourly: Vec::new(),
        }
    }

    /// The total waste of `kind` (`ri` or `sp`) over the month.
    pub fn set_total(&mut self, kind: &'static str, unused_cost: f64) {
        if kind == "ri" {
            self.ri_unused_cost = unused_cost;
        } else {
            self.sp_unused_cost = unused_cost;
        }
    }

    /// One commitment of `kind` and its waste over the month.
    pub fn add_commitment(&mut self, kind: &'static str, arn: String, unused_cost: f64) {
        self.top_commitments.push(CommitmentWaste {
            kind,
            arn,
            unused_cost,
        });
    }

    /// An application's share of the month's waste of `kind`.
    pub fn add_application(&mut self, kind: &'static str, application: String, unused_cost: f64) {
        let index = match self
            .applications
            .iter()
            .position(|a| a.application == application)
        {
            Some(index) => index,
            None => {
                self.applications.push(ApplicationWaste {
                    application,
                    ri_unused_cost: 0.0,
                    sp_unused_cost: 0.0,
                });
                self.applications.len() - 1
            }
        };
        let entry = &mut self.applications[index];
        if kind == "ri" {
            entry.ri_unused_cost += unused_cost;
        } else {
            entry.sp_unused_cost += unused_cost;
        }
    }

    /// An application's waste in the hour starting at `hour`.
    pub fn add_hour(&mut self, hour: DateTime<Utc>, application: String, unused_cost: f64) {
        let index = usize::try_from((hour - self.period.start()).num_hours()).unwrap_or(usize::MAX);
        self.hourly.push((index, application, unused_cost));
    }

    /// Orders commitments and applications by waste, largest first (ties by name, so that
    /// two reads of the same tables print the same), and keeps the top ten commitments.
    pub fn finish(mut self) -> Self {
        self.top_commitments.sort_by(|a, b| {
            b.unused_cost
                .total_cmp(&a.unused_cost)
                .then_with(|| a.arn.cmp(&b.arn))
        });
        self.top_commitments.truncate(10);
        self.applications.sort_by(|a, b| {
            (b.ri_unused_cost + b.sp_unused_cost)
                .total_cmp(&(a.ri_unused_cost + a.sp_unused_cost))
                .then_with(|| a.application.cmp(&b.application))
        });
        self
    }

    /// Hourly waste of the `top` most wasteful applications, each a value per hour, and the
    /// rest summed as `other`.
    pub fn hourly_by_application(&self, top: usize) -> Vec<(String, Vec<f64>)> {
        let mut names: Vec<String> = self
            .applications
            .iter()
            .take(top)
            .map(|a| a.application.clone())
            .collect();
        let has_other = self.applications.len() > top;
        if has_other {
            names.push("other".to_owned());
        }
        let mut series: Vec<(String, Vec<f64>)> = names
            .into_iter()
            .map(|n| (n, vec![0.0; self.hours]))
            .collect();
        for (hour, application, cost) in &self.hourly {
            let index = series
                .iter()
                .position(|(name, _)| name == application)
                .or(if has_other {
                    Some(series.len() - 1)
                } else {
                    None
                });
            if let (Some(i), true) = (index, *hour < self.hours) {
                series[i].1[*hour] += cost;
            }
        }
        series
    }
}
