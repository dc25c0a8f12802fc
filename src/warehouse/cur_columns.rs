//! The columns of the staged CUR that the analytics read, and which of them a staged file
//! must hold.
//!
//! An engine reads a column that a file lacks as null — DataFusion unifies a listing's
//! files by name, Snowflake's external table does the same — and a null cost, ARN or line
//! item type becomes a silently wrong waste figure. So before an engine reads, each staged
//! file is checked here (from `inspect`) against [`ANALYTICS_COLUMNS`]. Which of them a
//! file must hold depends on its layout ([`Layout::always_has`]): a column every file of
//! the layout has whatever the usage (all of CUR 2.0's; the legacy report's line item and
//! bill columns) is required in every file; a column the legacy report writes only with
//! some usage (a payer without RIs has no `reservation_*` columns) is required in every
//! file once any file of the delivery has it, as are the legacy tag columns. That never
//! refuses a delivery AWS writes, and always refuses a file that would read as nulls where
//! its siblings have values.

use std::collections::{BTreeMap, HashSet};

use crate::sync::Layout;

/// Every column of the staged CUR that the analytics (`sql/<dialect>/*.sql`, both
/// dialects) read, by its CUR 2.0 name; `resource_tags` is the map the legacy tag columns
/// become. A unit test fails when a SQL file reads a CUR column this list lacks, or the
/// list holds one no SQL file reads.
pub(super) const ANALYTICS_COLUMNS: [&str; 22] = [
    "bill_payer_account_id",
    "line_item_line_item_type",
    "line_item_normalized_usage_amount",
    "line_item_product_code",
    "line_item_unblended_cost",
    "line_item_usage_account_id",
    "line_item_usage_amount",
    "line_item_usage_start_date",
    "product_region_code",
    "reservation_amortized_upfront_fee_for_billing_period",
    "reservation_end_time",
    "reservation_reservation_a_r_n",
    "reservation_start_time",
    "reservation_total_reserved_normalized_units",
    "reservation_total_reserved_units",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
    "reservation_unused_recurring_fee",
    "resource_tags",
    "savings_plan_savings_plan_a_r_n",
    "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment",
];

/// The columns every staged file of one delivery must hold, worked out once from the
/// delivery's columns, then asked of each file.
pub(super) struct Requirement<'a> {
    layout: Layout,
    /// Each column of the delivery's files, and the first file holding it.
    delivery: &'a BTreeMap<String, String>,
    /// The analytics columns the layout always writes or some file of the delivery has,
    /// and the legacy tag columns the delivery has.
    required: Vec<String>,
}

impl<'a> Requirement<'a> {
    /// What a file of a delivery in `layout` must hold; `delivery` maps each column of the
    /// delivery's files to the first file holding it.
    pub(super) fn new(layout: Layout, delivery: &'a BTreeMap<String, String>) -> Self {
        let names: Vec<String> = delivery.keys().cloned().collect();
        let tag_columns = layout.tag_columns(&names).into_iter().map(|t| t.column);
        let required = ANALYTICS_COLUMNS
            .iter()
            .map(|c| (*c).to_owned())
            .filter(|c| layout.always_has(c) || delivery.contains_key(c))
            .chain(tag_columns)
            .collect();
        Self {
            layout,
            delivery,
            required,
        }
    }

    /// Why staged file `file` (holding `columns`) cannot be analysed for want of columns,
    /// or `None` when it holds every column it must.
    pub(super) fn refusal(&self, file: &str, columns: &HashSet<String>) -> Option<String> {
        let missing: Vec<&str> = self
            .required
            .iter()
            .filter(|c| !columns.contains(*c))
            .map(String::as_str)
            .collect();
        let first = *missing.first()?;
        let advice = match self.delivery.get(first) {
            Some(sibling) if !self.layout.always_has(first) => format!(
                "{sibling} of the same delivery has it, so the delivery's files disagree; runs fail on this period until AWS delivers it again"
            ),
            _ => "check that the export includes every column docs/analytics.md lists; runs fail on this period until the delivery holds it".to_owned(),
        };
        Some(format!(
            "{file} has no column {}, which the analytics read (its rows would read as null); {advice}",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::warehouse::sql::FILES;
    use crate::warehouse::tables::FINAL_TABLES;

    /// How CUR column names begin (the CUR 2.0 column families).
    const CUR_FAMILIES: [&str; 11] = [
        "bill_",
        "cost_category",
        "discount_",
        "identity_",
        "line_item_",
        "pricing_",
        "product_",
        "reservation_",
        "resource_tags",
        "savings_plan_",
        "split_line_item_",
    ];

    /// The CUR columns the SQL files read: the words of a CUR family that are not a final
    /// table's own column (`reservation_arn`, `product_code`, …).
    fn read_by_sql() -> BTreeSet<String> {
        let outputs: HashSet<String> = FINAL_TABLES
            .iter()
            .flat_map(|t| {
                t.schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        FILES
            .iter()
            .flat_map(|(_, _, text)| {
                text.lines()
                    .filter(|line| !line.trim_start().starts_with("--"))
                    .flat_map(|line| line.split(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
                    .map(str::to_ascii_lowercase)
                    .collect::<Vec<_>>()
            })
            .filter(|word| CUR_FAMILIES.iter().any(|f| word.starts_with(f)))
            .filter(|word| !outputs.contains(word))
            .collect()
    }

    #[test]
    fn the_list_is_what_the_sql_reads() {
        let listed: BTreeSet<String> = ANALYTICS_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        assert_eq!(listed.len(), ANALYTICS_COLUMNS.len(), "no column twice");
        assert_eq!(read_by_sql(), listed);
    }

    fn set(columns: &[&str]) -> HashSet<String> {
        columns.iter().map(|c| (*c).to_owned()).collect()
    }

    /// The delivery of `files` (name, columns): each column's first file.
    fn delivery(files: &[(&str, &HashSet<String>)]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, columns) in files {
            for column in *columns {
                out.entry(column.clone())
                    .or_insert_with(|| (*name).to_owned());
            }
        }
        out
    }

    #[test]
    fn a_cur2_file_must_hold_every_column_the_analytics_read() {
        let full = set(&ANALYTICS_COLUMNS);
        let mut short = full.clone();
        short.remove("line_item_unblended_cost");
        short.remove("savings_plan_used_commitment");
        let all = delivery(&[("a.parquet", &full), ("b.parquet", &short)]);
        assert_eq!(
            Requirement::new(Layout::Cur2, &all).refusal("a.parquet", &full),
            None
        );
        assert_eq!(
            Requirement::new(Layout::Cur2, &all)
                .refusal("b.parquet", &short)
                .unwrap(),
            "b.parquet has no column line_item_unblended_cost, savings_plan_used_commitment, which the analytics read (its rows would read as null); check that the export includes every column docs/analytics.md lists; runs fail on this period until the delivery holds it"
        );
        // Alone in its delivery, too: CUR 2.0 always has the column.
        let alone = delivery(&[("b.parquet", &short)]);
        assert!(
            Requirement::new(Layout::Cur2, &alone)
                .refusal("b.parquet", &short)
                .is_some()
        );
    }

    #[test]
    fn a_legacy_file_must_hold_what_its_layout_always_writes_and_its_siblings_have() {
        // A payer without RIs, Savings Plans or tags: only the line items and the bill.
        let core: Vec<&str> = ANALYTICS_COLUMNS
            .iter()
            .copied()
            .filter(|c| c.starts_with("line_item_") || c.starts_with("bill_"))
            .collect();
        let bare = set(&core);
        let only = delivery(&[("a.parquet", &bare)]);
        assert_eq!(
            Requirement::new(Layout::Legacy, &only).refusal("a.parquet", &bare),
            None
        );
        let mut no_cost = bare.clone();
        no_cost.remove("line_item_unblended_cost");
        let alone = delivery(&[("a.parquet", &no_cost)]);
        assert!(
            Requirement::new(Layout::Legacy, &alone)
                .refusal("a.parquet", &no_cost)
                .unwrap()
                .contains("has no column line_item_unblended_cost, ")
        );
        // With RIs and a tag in one file, every file of the delivery must have them.
        let mut with_ri = bare.clone();
        with_ri.insert("reservation_reservation_a_r_n".into());
        with_ri.insert("resource_tags_user_application".into());
        let both = delivery(&[("a.parquet", &with_ri), ("b.parquet", &bare)]);
        assert_eq!(
            Requirement::new(Layout::Legacy, &both).refusal("a.parquet", &with_ri),
            None
        );
        assert_eq!(
            Requirement::new(Layout::Legacy, &both)
                .refusal("b.parquet", &bare)
                .unwrap(),
            "b.parquet has no column reservation_reservation_a_r_n, resource_tags_user_application, which the analytics read (its rows would read as null); a.parquet of the same delivery has it, so the delivery's files disagree; runs fail on this period until AWS delivers it again"
        );
    }
}
