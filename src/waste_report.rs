//! The `curflow report` command: reads one payer-month's waste back from the final tables,
//! prints the top commitments and applications, and writes the HTML report.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::report::{Output, dollars, render_html};
use crate::settings::Settings;
use crate::task::{BillingPeriod, PayerId};
use crate::warehouse::{self, WarehouseError, WasteBreakdown, WasteReader};

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The warehouse cannot be opened or its final tables cannot be read.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// Nothing was analysed for this payer-month.
    #[error(
        "no waste recorded for payer {payer} in {period}: run `curflow run` for that month first"
    )]
    Empty {
        /// The payer.
        payer: PayerId,
        /// The billing period.
        period: BillingPeriod,
    },
    /// The HTML file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The default file name of the HTML report.
pub fn default_path(payer: &PayerId, period: BillingPeriod) -> PathBuf {
    PathBuf::from(format!("curflow-waste-{payer}-{period}.html"))
}

/// Reads the breakdown, writes the HTML to `html`, and returns what to print: the text
/// summary, or with [`Output::Json`] the breakdown as one JSON document.
pub async fn run(
    settings: &Settings,
    payer: &PayerId,
    period: BillingPeriod,
    html: &Path,
    output: Output,
) -> Result<String, ReportError> {
    let breakdown = warehouse::open(&settings.warehouse)
        .await?
        .breakdown(payer, period)
        .await?;
    if breakdown.top_commitments.is_empty() {
        return Err(ReportError::Empty {
            payer: payer.clone(),
            period,
        });
    }
    std::fs::write(html, render_html(&breakdown)).map_err(|source| ReportError::Write {
        path: html.to_owned(),
        source,
    })?;
    Ok(match output {
        Output::Text => render_text(&breakdown, html),
        Output::Json => format!("{:#}\n", render_json(&breakdown, html)),
    })
}

/// The version of [`render_json`]'s layout; raised on any change a consumer could notice
/// (fields are only added within a version).
const JSON_VERSION: u32 = 1;

/// The breakdown as `curflow report --output json` prints it (docs/analytics.md): amounts
/// in USD as numbers, the top commitments and every application, largest first.
fn render_json(b: &WasteBreakdown, html: &Path) -> serde_json::Value {
    let commitments: Vec<_> = b
        .top_commitments
        .iter()
        .map(|c| json!({"kind": c.kind, "arn": c.arn, "unused_cost": c.unused_cost}))
        .collect();
    let applications: Vec<_> = b
        .applications
        .iter()
        .map(|a| {
            json!({
                "application": a.application,
                "ri_unused_cost": a.ri_unused_cost,
                "sp_unused_cost": a.sp_unused_cost,
            })
        })
        .collect();
    json!({
        "schema_version": JSON_VERSION,
        "payer_id": b.payer.as_str(),
        "billing_period": b.period.to_string(),
        "hours": b.hours,
        "ri_unused_cost": b.ri_unused_cost,
        "sp_unused_cost": b.sp_unused_cost,
        "top_commitments": commitments,
        "applications": applications,
        "html": html.display().to_string(),
    })
}

fn render_text(b: &WasteBreakdown, html: &Path) -> String {
    let mut out = String::new();
    let column = |v: f64| format!("{:>13}", dollars(v));
    let _ = writeln!(
        out,
        "Commitment waste, payer {}, {}: {} (Reserved Instances {}, Savings Plans {})",
        b.payer,
        b.period,
        dollars(b.ri_unused_cost + b.sp_unused_cost),
        dollars(b.ri_unused_cost),
        dollars(b.sp_unused_cost)
    );
    let _ = writeln!(out, "Top commitments:");
    for c in &b.top_commitments {
        let _ = writeln!(
            out,
            "  {}  {}  {}",
            column(c.unused_cost),
            c.kind.to_uppercase(),
            c.arn
        );
    }
    let _ = writeln!(out, "Top applications:");
    for a in b.applications.iter().take(10) {
        let _ = writeln!(
            out,
            "  {}  {} (RI {}, SP {})",
            column(a.ri_unused_cost + a.sp_unused_cost),
            a.application,
            dollars(a.ri_unused_cost),
            dollars(a.sp_unused_cost)
        );
    }
    let _ = writeln!(out, "HTML report: {}", html.display());
    out
}
