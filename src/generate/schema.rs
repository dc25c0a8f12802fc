//! The CUR 2.0 (Data Exports) column list and its Arrow schema, as the generator writes it.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// The type of a CUR 2.0 column, as AWS documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnType {
    /// `string` → Utf8.
    Str,
    /// `double` → Float64.
    F64,
    /// `timestamp` → Timestamp(Millisecond, None), values in UTC.
    Ts,
    /// `map<string,string>` → Map(Utf8 → Utf8).
    MapStr,
    /// `map<string,double>` → Map(Utf8 → Float64).
    MapF64,
}

use ColumnType::*;

/// The 125 CUR 2.0 columns in export order (`shared/reference/cur2-columns.tsv`).
pub(crate) const COLUMNS: [(&str, ColumnType); 125] = [
    ("bill_bill_type", Str),
    ("bill_billing_entity", Str),
    ("bill_billing_period_end_date", Ts),
    ("bill_billing_period_start_date", Ts),
    ("bill_invoice_id", Str),
    ("bill_invoicing_entity", Str),
    ("bill_payer_account_id", Str),
    ("bill_payer_account_name", Str),
    ("cost_category", MapStr),
    ("discount", MapF64),
    ("discount_bundled_discount", F64),
    ("discount_total_discount", F64),
    ("identity_line_item_id", Str),
    ("identity_time_interval", Str),
    ("line_item_availability_zone", Str),
    ("line_item_blended_cost", F64),
    ("line_item_blended_rate", Str),
    ("line_item_currency_code", Str),
    ("line_item_legal_entity", Str),
    ("line_item_line_item_description", Str),
    ("line_item_line_item_type", Str),
    ("line_item_net_unblended_cost", F64),
    ("line_item_net_unblended_rate", Str),
    ("line_item_normalization_factor", F64),
    ("line_item_normalized_usage_amount", F64),
    ("line_item_operation", Str),
    ("line_item_product_code", Str),
    ("line_item_resource_id", Str),
    ("line_item_tax_type", Str),
    ("line_item_unblended_cost", F64),
    ("line_item_unblended_rate", Str),
    ("line_item_usage_account_id", Str),
    ("line_item_usage_account_name", Str),
    ("line_item_usage_amount", F64),
    ("line_item_usage_end_date", Ts),
    ("line_item_usage_start_date", Ts),
    ("line_item_usage_type", Str),
    ("pricing_currency", Str),
    ("pricing_lease_contract_length", Str),
    ("pricing_offering_class", Str),
    ("pricing_public_on_demand_cost", F64),
    ("pricing_public_on_demand_rate", Str),
    ("pricing_purchase_option", Str),
    ("pricing_rate_code", Str),
    ("pricing_rate_id", Str),
    ("pricing_term", Str),
    ("pricing_unit", Str),
    ("product", MapStr),
    ("product_comment", Str),
    ("product_fee_code", Str),
    ("product_fee_description", Str),
    ("product_from_location", Str),
    ("product_from_location_type", Str),
    ("product_from_region_code", Str),
    ("product_instance_family", Str),
    ("product_instance_type", Str),
    ("product_instancesku", Str),
    ("product_location", Str),
    ("product_location_type", Str),
    ("product_operation", Str),
    ("product_pricing_unit", Str),
    ("product_product_family", Str),
    ("product_region_code", Str),
    ("product_servicecode", Str),
    ("product_sku", Str),
    ("product_to_location", Str),
    ("product_to_location_type", Str),
    ("product_to_region_code", Str),
    ("product_usagetype", Str),
    ("reservation_amortized_upfront_cost_for_usage", F64),
    ("reservation_amortized_upfront_fee_for_billing_period", F64),
    ("reservation_availability_zone", Str),
    ("reservation_effective_cost", F64),
    ("reservation_end_time", Str),
    ("reservation_modification_status", Str),
    ("reservation_net_amortized_upfront_cost_for_usage", F64),
    (
        "reservation_net_amortized_upfront_fee_for_billing_period",
        F64,
    ),
    ("reservation_net_effective_cost", F64),
    ("reservation_net_recurring_fee_for_usage", F64),
    (
        "reservation_net_unused_amortized_upfront_fee_for_billing_period",
        F64,
    ),
    ("reservation_net_unused_recurring_fee", F64),
    ("reservation_net_upfront_value", F64),
    ("reservation_normalized_units_per_reservation", Str),
    ("reservation_number_of_reservations", Str),
    ("reservation_recurring_fee_for_usage", F64),
    ("reservation_reservation_a_r_n", Str),
    ("reservation_start_time", Str),
    ("reservation_subscription_id", Str),
    ("reservation_total_reserved_normalized_units", Str),
    ("reservation_total_reserved_units", Str),
    ("reservation_units_per_reservation", Str),
    (
        "reservation_unused_amortized_upfront_fee_for_billing_period",
        F64,
    ),
    ("reservation_unused_normalized_unit_quantity", F64),
    ("reservation_unused_quantity", F64),
    ("reservation_unused_recurring_fee", F64),
    ("reservation_upfront_value", F64),
    ("resource_tags", MapStr),
    (
        "savings_plan_amortized_upfront_commitment_for_billing_period",
        F64,
    ),
    ("savings_plan_end_time", Str),
    ("savings_plan_instance_type_family", Str),
    (
        "savings_plan_net_amortized_upfront_commitment_for_billing_period",
        F64,
    ),
    (
        "savings_plan_net_recurring_commitment_for_billing_period",
        F64,
    ),
    ("savings_plan_net_savings_plan_effective_cost", F64),
    ("savings_plan_offering_type", Str),
    ("savings_plan_payment_option", Str),
    ("savings_plan_purchase_term", Str),
    ("savings_plan_recurring_commitment_for_billing_period", F64),
    ("savings_plan_region", Str),
    ("savings_plan_savings_plan_a_r_n", Str),
    ("savings_plan_savings_plan_effective_cost", F64),
    ("savings_plan_savings_plan_rate", F64),
    ("savings_plan_start_time", Str),
    ("savings_plan_total_commitment_to_date", F64),
    ("savings_plan_used_commitment", F64),
    ("split_line_item_actual_usage", F64),
    ("split_line_item_net_split_cost", F64),
    ("split_line_item_net_unused_cost", F64),
    ("split_line_item_parent_resource_id", Str),
    ("split_line_item_public_on_demand_split_cost", F64),
    ("split_line_item_public_on_demand_unused_cost", F64),
    ("split_line_item_reserved_usage", F64),
    ("split_line_item_split_cost", F64),
    ("split_line_item_split_usage", F64),
    ("split_line_item_split_usage_ratio", F64),
    ("split_line_item_unused_cost", F64),
];

impl ColumnType {
    /// The Arrow type the generator writes for this column.
    pub(crate) fn data_type(self) -> DataType {
        match self {
            Str => DataType::Utf8,
            F64 => DataType::Float64,
            Ts => DataType::Timestamp(TimeUnit::Millisecond, None),
            MapStr => map_type(DataType::Utf8),
            MapF64 => map_type(DataType::Float64),
        }
    }
}

/// A map as Parquet readers return it: non-null Utf8 `key`, nullable `value`, entries named
/// `key_value`.
pub(crate) fn map_type(value: DataType) -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", value, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
        false,
    )
}

/// The Arrow schema of the data files: every column, every one nullable.
pub(crate) fn cur_schema() -> SchemaRef {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|(name, ty)| Field::new(*name, ty.data_type(), true))
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_matches_the_reference_list() {
        let schema = cur_schema();
        assert_eq!(schema.fields().len(), 125);
        assert_eq!(schema.field(0).name(), "bill_bill_type");
        assert_eq!(schema.field(124).name(), "split_line_item_unused_cost");
        let mut names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 125, "column names are unique");
    }
}
