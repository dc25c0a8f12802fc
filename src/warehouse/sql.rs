//! The analytics SQL of every dialect, compiled in by `build.rs` from `sql/<dialect>/`.
//!
//! A dialect's analytics are its shared statements (`analytics_wastage_queries.sql`: the
//! commitment-hours every final table selects from), then one file per final table, named
//! after it, in the registry's order ([`super::tables::FINAL_TABLES`]). Each file is filled
//! by the typed renderer ([`super::render`]) before it reaches an engine.

use super::render::{Params, RenderError, render};
use super::tables::FINAL_TABLES;

include!(concat!(env!("OUT_DIR"), "/sql_files.rs"));

/// The file of statements every final table's own file reads from.
const SHARED: &str = "analytics_wastage_queries";

/// One SQL file, rendered for a payer-period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Script {
    /// Where it comes from, `sql/<dialect>/<name>.sql`.
    pub path: String,
    /// Its statements, placeholders filled.
    pub text: String,
}

/// The text of `sql/<dialect>/<name>.sql`.
fn file(dialect: &str, name: &str) -> Result<&'static str, RenderError> {
    FILES
        .iter()
        .find(|(d, n, _)| *d == dialect && *n == name)
        .map(|(_, _, text)| *text)
        .ok_or_else(|| RenderError::MissingFile {
            path: format!("sql/{dialect}/{name}.sql"),
        })
}

/// The analytics of `dialect` for the payer-period of `params`, file by file, in the order
/// they run.
pub(super) fn analytics(dialect: &str, params: &Params) -> Result<Vec<Script>, RenderError> {
    std::iter::once(SHARED)
        .chain(FINAL_TABLES.iter().map(|table| table.name))
        .map(|name| {
            let path = format!("sql/{dialect}/{name}.sql");
            let text = render(&path, file(dialect, name)?, params)?;
            Ok(Script { path, text })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every dialect that has analytics has a file for every final table: a table added to
    /// the registry without its SQL fails here, not in a run.
    #[test]
    fn every_dialect_has_every_final_table() {
        let mut dialects: Vec<&str> = FILES.iter().map(|(d, _, _)| *d).collect();
        dialects.dedup();
        assert_eq!(dialects, ["datafusion", "snowflake"]);
        let params = Params {
            period: crate::task::BillingPeriod::new(2025, 7).unwrap(),
            payer: crate::task::PayerId::parse("671238551718").unwrap(),
            application_tag: "user_application".into(),
        };
        for dialect in dialects {
            let scripts = analytics(dialect, &params).unwrap();
            assert_eq!(scripts.len(), FINAL_TABLES.len() + 1, "{dialect}");
            for (script, table) in scripts[1..].iter().zip(&FINAL_TABLES) {
                assert!(script.text.contains(table.name), "{}", script.path);
            }
        }
        assert!(file("datafusion", "no_such_table").is_err());
    }
}
