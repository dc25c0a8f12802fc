//! The plain-text summary printed at the end of a run: one block per payer, one line per
//! billing period, totals a FinOps engineer can check against the CUR. It is the last
//! sink of a run ([`Summary`]), and the only one of a plan.

use std::fmt::Write;

use futures::FutureExt;

use super::notify::notification_body;
use super::sink::{Published, Sink, SinkFuture, Stage};
use super::{Output, PeriodOutcome, RunReport, Status, SyncCounts, Totals, empty_delivery};

/// Bytes in the units people read, powers of 1000 as the progress bar shows them: 1.2 MB,
/// 3.4 GB.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Dollars with cents and thousands separators: $12,345.67. Every amount curflow prints
/// goes through here, so every command rounds alike.
pub fn dollars(amount: f64) -> String {
    let cents = (amount * 100.0).round() as i64;
    let (sign, cents) = if cents < 0 {
        ("-", -cents)
    } else {
        ("", cents)
    };
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}${grouped}.{:02}", cents % 100)
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn counts_line(verb: &str, c: &SyncCounts) -> String {
    format!(
        "{} {verb} ({}), {} deleted, {} unchanged",
        plural(c.copied_files, "file"),
        human_bytes(c.copied_bytes),
        c.deleted_files,
        c.unchanged_files
    )
}

/// Renders the report as text.
pub fn render_summary(report: &RunReport) -> String {
    let mut out = String::new();
    let task = &report.task;
    let periods: Vec<String> =
        report
            .periods
            .iter()
            .map(|p| p.period.to_string())
            .fold(Vec::new(), |mut acc, p| {
                if !acc.contains(&p) {
                    acc.push(p);
                }
                acc
            });
    let _ = writeln!(
        out,
        "curflow {}: env {}, task month {}, periods {}, {}",
        if report.dry_run { "plan" } else { "run" },
        task.env,
        task.period,
        periods.join(", "),
        plural(task.payers.listed().len(), "payer")
    );
    let mut current = None;
    for p in &report.periods {
        if current != Some(&p.payer) {
            let _ = writeln!(out, "payer {}", p.payer);
            current = Some(&p.payer);
        }
        let line = match &p.outcome {
            PeriodOutcome::AlreadySynchronized => "Already synchronized".to_owned(),
            PeriodOutcome::Planned {
                counts,
                empty: true,
            } => format!(
                "empty delivery: the manifest names no data files; to delete {}, then {} to be cleared from the final tables",
                counts.deleted_files, p.period
            ),
            PeriodOutcome::Planned {
                counts,
                empty: false,
            } => format!(
                "to copy {} ({}), to delete {}, unchanged {}; analytics to run",
                plural(counts.copied_files, "file"),
                human_bytes(counts.copied_bytes),
                counts.deleted_files,
                counts.unchanged_files,
            ),
            PeriodOutcome::Empty { counts } => {
                let mut line = empty_delivery(p.period);
                if counts.deleted_files > 0 {
                    let _ = write!(
                        line,
                        "; {} deleted",
                        plural(counts.deleted_files, "staged file")
                    );
                }
                line
            }
            PeriodOutcome::Synchronized { counts, analytics } => {
                let mut line = if counts.copied_files + counts.deleted_files == 0 {
                    "staged copy up to date".to_owned()
                } else {
                    format!("synchronized: {}", counts_line("copied", counts))
                };
                match (&analytics.totals, analytics.failure()) {
                    (_, Some(failed)) => {
                        let _ = write!(
                            line,
                            "\n           analytics FAILED at {}: {}",
                            failed.name,
                            one_line(failed.error.as_deref().unwrap_or_default())
                        );
                    }
                    (Some(t), None) => {
                        let waste: Vec<String> = t
                            .tables
                            .iter()
                            .map(|table| {
                                format!(
                                    "{} waste {} ({} hourly rows)",
                                    table.label,
                                    dollars(table.unused_cost),
                                    table.rows
                                )
                            })
                            .collect();
                        let _ = write!(line, "\n           {}", waste.join(", "));
                        if t.mismatches.is_empty() {
                            line.push_str(", every commitment reconciles");
                        }
                        for m in &t.mismatches {
                            let _ = write!(
                                line,
                                "\n           does not reconcile: {} {}: fee lines {}, hourly rows {}",
                                m.kind,
                                m.commitment_arn,
                                dollars(m.expected),
                                dollars(m.computed)
                            );
                        }
                    }
                    (None, None) if analytics.statements.is_empty() => {
                        line.push_str("; analytics not run (--stage-only)");
                    }
                    (None, None) => {}
                }
                line
            }
            PeriodOutcome::Skipped { reason } => format!("skipped: {reason}"),
            PeriodOutcome::Failed { error } => format!("FAILED: {}", one_line(error)),
            PeriodOutcome::Interrupted => "interrupted: not done (the next run does it)".to_owned(),
        };
        let _ = writeln!(out, "  {}  {line}", p.period);
    }
    for payer in &report.inactive {
        let _ = writeln!(
            out,
            "payer {payer}\n  inactive in the payer configuration: skipped"
        );
    }
    let status = match report.status() {
        Status::Success => "success".to_owned(),
        Status::AnalyticsFailed => {
            "copies done, analytics failed (on_sql_error = \"warn\")".to_owned()
        }
        Status::Failed => "FAILED".to_owned(),
        Status::Interrupted(signal) => format!(
            "INTERRUPTED by {}: {} not done; the next run does them",
            signal.name(),
            plural(
                Totals::of(&report.periods).periods_interrupted,
                "payer-period"
            )
        ),
    };
    let _ = writeln!(out, "status: {status}");
    out
}

/// The summary on stdout, as a sink: text, or the notification's JSON body. A run that
/// ended on a fatal error has no text summary (`main` prints its one `error:` line on
/// stderr instead); its JSON document is printed, carrying the error.
pub(super) struct Summary(pub(super) Output);

impl Sink for Summary {
    fn stage(&self) -> Stage {
        Stage::Summary
    }

    fn name(&self) -> &'static str {
        "summary"
    }

    /// Never errors.
    fn send<'a>(&'a self, report: &'a RunReport, _earlier: &'a Published) -> SinkFuture<'a> {
        async move {
            match self.0 {
                Output::Text if report.fatal.is_none() => print!("{}", render_summary(report)),
                Output::Text => {}
                Output::Json => println!("{:#}", notification_body(report)),
            }
            Ok(())
        }
        .boxed()
    }
}

/// `text` with its control characters escaped (a newline as `\n`, ESC as `\u{1b}`): a line
/// that names something from outside (a settings key, a server's message) stays one line
/// and cannot move the cursor or colour the terminal.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_bytes_read_naturally() {
        assert_eq!(dollars(1234567.891), "$1,234,567.89");
        assert_eq!(dollars(0.004), "$0.00");
        assert_eq!(dollars(-12.5), "-$12.50");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(2_500_000), "2.5 MB");
    }
}
