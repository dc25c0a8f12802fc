//! Turns an hour's [`Line`]s into an Arrow record batch with all 125 CUR 2.0 columns:
//! the columns the analytics read, plus cheap plausible values for the others.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, MapBuilder, MapFieldNames, RecordBatch, StringArray, StringBuilder,
    TimestampMillisecondArray, new_null_array,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;

use super::lines::{Commitment, Kind, Line, Tags};
use super::model::{Model, Normalization, Product, Reservation, SavingsPlan};
use super::period::{HOUR_MS, iso_ms};
use super::rng::mix;
use super::schema::{COLUMNS, cur_schema};
use super::truth::RiFacts;

/// Encodes lines of one payer and period into record batches of the CUR 2.0 schema.
pub(crate) struct Encoder<'m> {
    model: &'m Model,
    schema: SchemaRef,
    /// Seed of `identity_line_item_id`; it changes with the delivery, as AWS's row ids do.
    id_base: u64,
    invoice_id: String,
    payer_name: String,
}

impl<'m> Encoder<'m> {
    /// An encoder for `model`'s lines in delivery `delivery`.
    pub(crate) fn new(model: &'m Model, delivery: u32) -> Self {
        Self {
            model,
            schema: cur_schema(),
            id_base: mix(model.base ^ mix(u64::from(delivery))),
            invoice_id: format!("{}", 1_000_000_000 + mix(model.base) % 9_000_000_000),
            payer_name: format!("curflow payer {}", model.payer),
        }
    }

    /// The schema of every batch.
    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// One batch holding `lines`; `first_seq` is the month-wide position of the first line.
    pub(crate) fn encode(
        &self,
        lines: &[Line<'m>],
        first_seq: u64,
    ) -> Result<RecordBatch, ArrowError> {
        let mut columns = Vec::with_capacity(COLUMNS.len());
        for (name, ty) in COLUMNS {
            let array = match self.column(name, lines, first_seq)? {
                Some(array) => array,
                None => new_null_array(&ty.data_type(), lines.len()),
            };
            columns.push(array);
        }
        RecordBatch::try_new(self.schema.clone(), columns)
    }

    /// The array of column `name`, or `None` for columns left null.
    fn column(
        &self,
        name: &str,
        lines: &[Line<'m>],
        first_seq: u64,
    ) -> Result<Option<ArrayRef>, ArrowError> {
        let n = lines.len();
        let period = &self.model.period;
        let array = match name {
            "bill_bill_type" => constant("Anniversary", n),
            "bill_billing_entity" => constant("AWS", n),
            "bill_billing_period_start_date" => millis(lines, |_| Some(period.start_ms)),
            "bill_billing_period_end_date" => millis(lines, |_| Some(period.end_ms)),
            "bill_invoice_id" => constant(&self.invoice_id, n),
            "bill_invoicing_entity" | "line_item_legal_entity" => {
                constant("Amazon Web Services, Inc.", n)
            }
            "bill_payer_account_id" => constant(&self.model.payer, n),
            "bill_payer_account_name" => constant(&self.payer_name, n),
            "identity_line_item_id" => {
                let mut seq = first_seq;
                formatted(lines, |_, b| {
                    let _ = write!(
                        b,
                        "{:016x}{:016x}",
                        mix(self.id_base ^ seq),
                        mix(!self.id_base ^ seq)
                    );
                    seq += 1;
                    true
                })
            }
            "identity_time_interval" => {
                let mut last: Option<(i64, i64, String)> = None;
                formatted(lines, |l, b| {
                    let start = l.start_ms - l.start_ms.rem_euclid(HOUR_MS);
                    match &last {
                        Some((s, e, text)) if *s == start && *e == l.end_ms => b.push_str(text),
                        _ => {
                            let text =
                                format!("{}/{}", interval_end(start), interval_end(l.end_ms));
                            b.push_str(&text);
                            last = Some((start, l.end_ms, text));
                        }
                    }
                    true
                })
            }
            "line_item_availability_zone" | "reservation_availability_zone" => {
                utf8(lines, |l| l.zone)
            }
            "line_item_blended_cost" | "line_item_unblended_cost" => float(lines, |l| Some(l.cost)),
            "line_item_blended_rate" | "line_item_unblended_rate" => {
                formatted(lines, |l, b| number(l.rate, b))
            }
            "line_item_currency_code" | "pricing_currency" => constant("USD", n),
            "line_item_line_item_description" => formatted(lines, describe),
            "line_item_line_item_type" => utf8(lines, |l| Some(l.kind.as_str())),
            "line_item_normalization_factor" => float(lines, |l| l.normalization_factor),
            "line_item_normalized_usage_amount" => float(lines, |l| l.normalized_usage_amount),
            "line_item_operation" | "product_operation" => utf8(lines, |l| {
                Some(l.service.operation).filter(|o| !o.is_empty())
            }),
            "line_item_product_code" | "product_servicecode" => {
                utf8(lines, |l| Some(l.service.code))
            }
            "line_item_resource_id" => formatted(lines, |l, b| {
                match (l.service.resource_prefix, l.resource) {
                    (Some(prefix), Some(id)) => {
                        let _ = write!(b, "{prefix}{:017x}", id >> 4);
                        true
                    }
                    _ => false,
                }
            }),
            "line_item_tax_type" => {
                utf8(lines, |l| (l.kind == Kind::Tax).then_some("US Sales Tax"))
            }
            "line_item_usage_account_id" => utf8(lines, |l| Some(l.account)),
            "line_item_usage_amount" => float(lines, |l| l.usage_amount),
            "line_item_usage_start_date" => millis(lines, |l| Some(l.start_ms)),
            "line_item_usage_end_date" => millis(lines, |l| Some(l.end_ms)),
            "line_item_usage_type" | "product_usagetype" => formatted(lines, usage_type),
            "pricing_lease_contract_length" => utf8(lines, |l| match (ri(l), sp(l)) {
                (Some(ri), _) if ri.product == Product::Rds => Some("3yr"),
                (Some(_), _) | (_, Some(_)) => Some("1yr"),
                _ => None,
            }),
            "pricing_offering_class" => utf8(lines, |l| ri(l).map(|ri| ri.offering_class)),
            "pricing_purchase_option" => utf8(lines, |l| {
                ri(l)
                    .map(|ri| ri.purchase_option)
                    .or(sp(l).map(|_| "No Upfront"))
            }),
            "pricing_term" => utf8(lines, |l| match l.kind {
                Kind::Usage => Some("OnDemand"),
                Kind::DiscountedUsage | Kind::RiFee => Some("Reserved"),
                _ => None,
            }),
            "pricing_public_on_demand_cost" => float(lines, |l| l.public_cost),
            "pricing_public_on_demand_rate" => formatted(lines, |l, b| number(l.public_rate, b)),
            "pricing_unit" | "product_pricing_unit" => {
                utf8(lines, |l| l.usage_amount.map(|_| l.service.unit))
            }
            "product_instance_family" => utf8(lines, |l| l.size.map(|(f, _)| f.name)),
            "product_instance_type" => utf8(lines, |l| l.size.map(|(_, s)| s.name)),
            "product_location" => utf8(lines, |l| l.region.map(|r| r.location)),
            "product_region_code" => utf8(lines, |l| l.region.map(|r| r.code)),
            "product_product_family" => utf8(lines, |l| Some(l.service.family)),
            "reservation_reservation_a_r_n" => utf8(lines, |l| ri(l).map(|ri| ri.arn.as_str())),
            "reservation_start_time" => {
                formatted(lines, |l, b| fee_text(l, b, |ri, _| iso_ms(ri.start_ms)))
            }
            "reservation_end_time" => {
                formatted(lines, |l, b| fee_text(l, b, |ri, _| iso_ms(ri.end_ms)))
            }
            "reservation_total_reserved_normalized_units" => formatted(lines, |l, b| {
                fee_text(l, b, |ri, f| normalized(ri, f.total_reserved))
            }),
            "reservation_normalized_units_per_reservation" => formatted(lines, |l, b| {
                fee_text(l, b, |ri, f| {
                    normalized(ri, ri.size.factor * f64::from(f.active_hours))
                })
            }),
            "reservation_total_reserved_units" => formatted(lines, |l, b| {
                fee_text(l, b, |_, f| f.total_reserved_units.to_string())
            }),
            "reservation_number_of_reservations" => {
                formatted(lines, |l, b| fee_text(l, b, |ri, _| ri.count.to_string()))
            }
            "reservation_units_per_reservation" => formatted(lines, |l, b| {
                fee_text(l, b, |_, f| f.active_hours.to_string())
            }),
            "reservation_amortized_upfront_fee_for_billing_period" => {
                float(lines, |l| ri_fee(l).map(|(ri, _)| ri.amortized_upfront))
            }
            "reservation_unused_amortized_upfront_fee_for_billing_period" => {
                float(lines, |l| ri_fee(l).map(|(ri, f)| f.unused_split(ri).0))
            }
            "reservation_unused_recurring_fee" => {
                float(lines, |l| ri_fee(l).map(|(ri, f)| f.unused_split(ri).1))
            }
            "reservation_unused_quantity" => float(lines, |l| {
                ri_fee(l).map(|(ri, f)| {
                    if ri.flexible() {
                        f.unused_units / ri.size.factor
                    } else {
                        f.unused_units
                    }
                })
            }),
            "reservation_unused_normalized_unit_quantity" => float(lines, |l| {
                ri_fee(l).and_then(|(ri, f)| ri.flexible().then_some(f.unused_units))
            }),
            "reservation_effective_cost" => float(lines, |l| ri_use(l).map(|(_, cost, _)| cost)),
            "reservation_amortized_upfront_cost_for_usage" => float(lines, |l| {
                ri_use(l).map(|(_, cost, upfront)| cost * upfront)
            }),
            "reservation_recurring_fee_for_usage" => float(lines, |l| {
                ri_use(l).map(|(_, cost, upfront)| cost * (1.0 - upfront))
            }),
            "resource_tags" => tags(lines)?,
            "savings_plan_savings_plan_a_r_n" => utf8(lines, |l| match l.commitment {
                Commitment::SpNegation(sp) => Some(sp.arn.as_str()),
                _ => sp(l).map(|sp| sp.arn.as_str()),
            }),
            "savings_plan_start_time" => {
                formatted(lines, |l, b| sp_text(l, b, |sp| iso_ms(sp.start_ms)))
            }
            "savings_plan_end_time" => {
                formatted(lines, |l, b| sp_text(l, b, |sp| iso_ms(sp.end_ms)))
            }
            "savings_plan_offering_type" => utf8(lines, |l| sp(l).map(|_| "ComputeSavingsPlans")),
            "savings_plan_payment_option" => utf8(lines, |l| sp(l).map(|_| "No Upfront")),
            "savings_plan_purchase_term" => utf8(lines, |l| sp(l).map(|_| "1yr")),
            "savings_plan_region" => utf8(lines, |l| sp(l).map(|sp| sp.region.location)),
            "savings_plan_total_commitment_to_date"
            | "savings_plan_recurring_commitment_for_billing_period" => {
                float(lines, |l| sp_fee(l).map(|(sp, _)| sp.commitment))
            }
            "savings_plan_amortized_upfront_commitment_for_billing_period" => {
                float(lines, |l| sp_fee(l).map(|_| 0.0))
            }
            "savings_plan_used_commitment" => float(lines, |l| sp_fee(l).map(|(_, used)| used)),
            "savings_plan_savings_plan_effective_cost" => float(lines, |l| match l.commitment {
                Commitment::SpUse(_, cost, _) => Some(cost),
                _ => None,
            }),
            "savings_plan_savings_plan_rate" => float(lines, |l| match l.commitment {
                Commitment::SpUse(_, _, rate) => Some(rate),
                _ => None,
            }),
            _ => return Ok(None),
        };
        Ok(Some(array))
    }
}

/// The reservation a fee or discounted-usage line belongs to.
fn ri<'m>(l: &Line<'m>) -> Option<&'m Reservation> {
    match l.commitment {
        Commitment::RiFee(ri, _) | Commitment::RiUse(ri, _, _) => Some(ri),
        _ => None,
    }
}

fn ri_fee<'m>(l: &Line<'m>) -> Option<(&'m Reservation, &'m RiFacts)> {
    match l.commitment {
        Commitment::RiFee(ri, facts) => Some((ri, facts)),
        _ => None,
    }
}

/// A discounted-usage line's reservation, effective cost and upfront share of it.
fn ri_use<'m>(l: &Line<'m>) -> Option<(&'m Reservation, f64, f64)> {
    match l.commitment {
        Commitment::RiUse(ri, facts, units) => {
            let fees = ri.amortized_upfront + ri.recurring_fee;
            let upfront = if fees > 0.0 {
                ri.amortized_upfront / fees
            } else {
                0.0
            };
            Some((ri, units * facts.rate, upfront))
        }
        _ => None,
    }
}

/// The Savings Plan of a fee or covered-usage line (negations excluded).
fn sp<'m>(l: &Line<'m>) -> Option<&'m SavingsPlan> {
    match l.commitment {
        Commitment::SpFee(sp, _) | Commitment::SpUse(sp, _, _) => Some(sp),
        _ => None,
    }
}

fn sp_fee<'m>(l: &Line<'m>) -> Option<(&'m SavingsPlan, f64)> {
    match l.commitment {
        Commitment::SpFee(sp, used) => Some((sp, used)),
        _ => None,
    }
}

/// Writes a text of an `RIFee` line; false (null) on other lines or when the text is empty.
fn fee_text(l: &Line<'_>, b: &mut String, text: impl Fn(&Reservation, &RiFacts) -> String) -> bool {
    match ri_fee(l) {
        Some((ri, facts)) => {
            b.push_str(&text(ri, facts));
            !b.is_empty()
        }
        None => false,
    }
}

fn sp_text(l: &Line<'_>, b: &mut String, text: impl Fn(&SavingsPlan) -> String) -> bool {
    match sp(l) {
        Some(sp) => {
            b.push_str(&text(sp));
            true
        }
        None => false,
    }
}

/// Normalized units as the `RIFee` line reports them: the number, `"0"`, or empty (null).
fn normalized(ri: &Reservation, units: f64) -> String {
    match ri.normalization {
        Normalization::Flexible => units.to_string(),
        Normalization::Zero => "0".to_owned(),
        Normalization::Null => String::new(),
    }
}

fn number(value: Option<f64>, b: &mut String) -> bool {
    match value {
        Some(v) => {
            let _ = write!(b, "{v}");
            true
        }
        None => false,
    }
}

/// An end of `identity_time_interval`: `YYYY-MM-DDTHH:MM:SSZ`.
fn interval_end(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn usage_type(l: &Line<'_>, b: &mut String) -> bool {
    if matches!(l.kind, Kind::Tax | Kind::Credit) {
        return false;
    }
    if l.kind != Kind::SavingsPlanRecurringFee {
        b.push_str(l.region.map_or("", |r| r.usage_prefix));
    }
    b.push_str(l.service.usage_type);
    if let Some((_, size)) = l.size {
        b.push(':');
        b.push_str(size.name);
    }
    true
}

fn describe(l: &Line<'_>, b: &mut String) -> bool {
    let size = l.size.map_or("", |(_, s)| s.name);
    let _ = match l.kind {
        Kind::Usage if l.size.is_some() => {
            write!(
                b,
                "${} per On Demand Linux {size} Instance Hour",
                l.rate.unwrap_or_default()
            )
        }
        Kind::Usage => write!(b, "{} {} usage", l.service.code, l.service.usage_type),
        Kind::DiscountedUsage => write!(b, "{size} reserved instance applied"),
        Kind::RiFee => write!(b, "Reservation fee for {size}"),
        Kind::SavingsPlanCoveredUsage => write!(b, "Savings Plans covered usage of {size}"),
        Kind::SavingsPlanRecurringFee => write!(b, "1 year No Upfront Compute Savings Plan"),
        Kind::SavingsPlanNegation => {
            write!(
                b,
                "SavingsPlanNegation used by AccountId : {} and UsageSku : {size}",
                l.account
            )
        }
        Kind::Tax => write!(b, "Tax for product code {}", l.service.code),
        Kind::Credit => write!(b, "AWS promotional credit"),
    };
    true
}

fn tags(lines: &[Line<'_>]) -> Result<ArrayRef, ArrowError> {
    let names = MapFieldNames {
        entry: "key_value".to_owned(),
        key: "key".to_owned(),
        value: "value".to_owned(),
    };
    let mut map = MapBuilder::with_capacity(
        Some(names),
        StringBuilder::new(),
        StringBuilder::new(),
        lines.len(),
    );
    for l in lines {
        match l.tags {
            Tags::Null => map.append(false)?,
            Tags::Map { app, team, env } => {
                if let Some(app) = app {
                    map.keys().append_value("user_application");
                    map.values().append_value(app);
                }
                map.keys().append_value("user_team");
                map.values().append_value(team);
                map.keys().append_value("user_environment");
                map.values().append_value(env);
                map.append(true)?;
            }
        }
    }
    Ok(Arc::new(map.finish()))
}

fn constant(value: &str, n: usize) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(value, n)))
}

fn utf8<'l, 'm: 'l>(
    lines: &'l [Line<'m>],
    f: impl Fn(&'l Line<'m>) -> Option<&'l str>,
) -> ArrayRef {
    Arc::new(lines.iter().map(f).collect::<StringArray>())
}

fn float(lines: &[Line<'_>], f: impl Fn(&Line<'_>) -> Option<f64>) -> ArrayRef {
    Arc::new(lines.iter().map(f).collect::<Float64Array>())
}

fn millis(lines: &[Line<'_>], f: impl Fn(&Line<'_>) -> Option<i64>) -> ArrayRef {
    Arc::new(lines.iter().map(f).collect::<TimestampMillisecondArray>())
}

/// A string column whose values are written into a reused buffer; `f` returns false for null.
fn formatted(lines: &[Line<'_>], mut f: impl FnMut(&Line<'_>, &mut String) -> bool) -> ArrayRef {
    let mut builder = StringBuilder::with_capacity(lines.len(), lines.len() * 24);
    let mut buf = String::new();
    for l in lines {
        buf.clear();
        if f(l, &mut buf) {
            builder.append_value(&buf);
        } else {
            builder.append_null();
        }
    }
    Arc::new(builder.finish())
}
