//! The typed SQL renderer: fills a template's `#placeholders` from validated values.
//!
//! This is the only place where values reach SQL text. Each placeholder has a type and a
//! rendering (an integer, a quoted literal, a list of quoted literals); the values come from
//! [`crate::task`] and [`crate::settings`], which already refused anything else. A
//! placeholder the renderer does not know is an error, so a typo in a template cannot leave
//! a `#name` in the SQL sent to the engine.

use crate::task::{BillingPeriod, PayerId};

/// The values a template may use.
#[derive(Debug, Clone)]
pub struct Params {
    /// The billing period analysed (`#startyear`, `#startmonth`, `#billing_period`).
    pub period: BillingPeriod,
    /// The payer analysed (`#payer_id`, and `#payers_ids` as the seed wrote it).
    pub payer: PayerId,
    /// The application tag key (`#application_tag`).
    pub application_tag: String,
}

/// A template could not be rendered: a bug in the templates, caught before any SQL runs.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template uses a placeholder the renderer does not know.
    #[error(
        "SQL template {template}: unknown placeholder #{name} (known: #startyear, #startmonth, #billing_period, #payer_id, #payers_ids, #application_tag)"
    )]
    UnknownPlaceholder {
        /// The template's name.
        template: String,
        /// The placeholder, without `#`.
        name: String,
    },
    /// A final table has no SQL file in a dialect.
    #[error("no SQL file {path}: every final table needs one in every dialect")]
    MissingFile {
        /// The file that should exist.
        path: String,
    },
}

/// A single-quoted SQL string literal. Callers pass validated values; quotes are doubled
/// regardless, so the literal can never end early.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Replaces every `#name` in `template` (named `template_name` in errors).
pub(super) fn render(
    template_name: &str,
    template: &str,
    params: &Params,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('#') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..len];
        let value = match name {
            "startyear" => params.period.year().to_string(),
            "startmonth" => params.period.month().to_string(),
            "billing_period" => literal(&params.period.to_string()),
            "payer_id" | "payers_ids" => literal(params.payer.as_str()),
            "application_tag" => literal(&params.application_tag),
            _ => {
                return Err(RenderError::UnknownPlaceholder {
                    template: template_name.to_owned(),
                    name: name.to_owned(),
                });
            }
        };
        out.push_str(&value);
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            period: BillingPeriod::new(2025, 7).unwrap(),
            payer: PayerId::parse("671238551718").unwrap(),
            application_tag: "user_application".into(),
        }
    }

    #[test]
    fn fills_every_placeholder_with_typed_values() {
        let sql = render(
            "t",
            "WHERE y = #startyear AND m = #startmonth AND p IN (#payers_ids) AND t[#application_tag] AND b = #billing_period",
            &params(),
        )
        .unwrap();
        assert_eq!(
            sql,
            "WHERE y = 2025 AND m = 7 AND p IN ('671238551718') AND t['user_application'] AND b = '2025-07'"
        );
    }

    #[test]
    fn unknown_placeholders_and_quotes_cannot_slip_through() {
        assert!(render("t", "SELECT #startmonthx", &params()).is_err());
        let mut p = params();
        p.application_tag = "a'b".into();
        assert_eq!(render("t", "#application_tag", &p).unwrap(), "'a''b'");
    }
}
