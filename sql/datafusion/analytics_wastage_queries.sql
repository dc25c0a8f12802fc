-- Commitment wastage analytics (DataFusion dialect): hourly Reserved Instance and Savings
-- Plans waste of one payer-period, attributed to applications. docs/analytics.md and
-- DESIGN.md §3 define every number. These statements build what every final table
-- selects from; each final table's own statement is its own file beside this one
-- (<table>.sql, run after these in the registry's order), and curflow then replaces the
-- payer-period in each final table with the table of the same name so created.
--
-- Input: cur_line_items, the staged CUR 2.0 files of the period. Placeholders are filled
-- by curflow's typed renderer: #startyear, #startmonth, #billing_period, #payer_id,
-- #payers_ids, #application_tag.

-- Every hour of the billing period, UTC.
CREATE TABLE billing_hours AS
SELECT unnest(generate_series(
         CAST(make_date(#startyear, #startmonth, 1) AS TIMESTAMP),
         CAST(make_date(#startyear, #startmonth, 1) AS TIMESTAMP) + INTERVAL '1 month' - INTERVAL '1 hour',
         INTERVAL '1 hour')) AS usage_hour;

-- One row per reservation, from its RIFee line(s). Size-flexible RIs are measured in
-- normalized units; the others (normalized units absent or zero) in reserved units.
CREATE TABLE ri_commitments AS
WITH fee AS (
  SELECT reservation_reservation_a_r_n AS commitment_arn,
         max(line_item_usage_account_id) AS owner_account_id,
         max(product_region_code) AS region,
         max(line_item_product_code) AS product_code,
         max(reservation_start_time) AS start_time,
         max(reservation_end_time) AS end_time,
         sum(COALESCE(TRY_CAST(reservation_total_reserved_normalized_units AS DOUBLE), 0)) AS normalized_units,
         sum(COALESCE(TRY_CAST(reservation_total_reserved_units AS DOUBLE), 0)) AS reserved_units,
         sum(COALESCE(reservation_amortized_upfront_fee_for_billing_period, 0)
             + COALESCE(line_item_unblended_cost, 0)) AS period_cost,
         sum(COALESCE(reservation_unused_amortized_upfront_fee_for_billing_period, 0)
             + COALESCE(reservation_unused_recurring_fee, 0)) AS reported_unused_cost
  FROM cur_line_items
  WHERE line_item_line_item_type = 'RIFee'
    AND bill_payer_account_id IN (#payers_ids)
    AND reservation_reservation_a_r_n IS NOT NULL
  GROUP BY reservation_reservation_a_r_n
), bounds AS (
  SELECT min(usage_hour) AS period_start, max(usage_hour) + INTERVAL '1 hour' AS period_end
  FROM billing_hours
)
SELECT commitment_arn, owner_account_id, region, product_code,
       normalized_units > 0 AS size_flexible,
       CASE WHEN normalized_units > 0 THEN normalized_units ELSE reserved_units END AS total_units,
       period_cost,
       reported_unused_cost,
       greatest(COALESCE(date_trunc('hour', CAST(start_time AS TIMESTAMP)), period_start), period_start) AS active_from,
       least(COALESCE(CAST(end_time AS TIMESTAMP), period_end), period_end) AS active_until
FROM fee CROSS JOIN bounds;

-- RI use per reservation, hour and application, in the reservation's unit.
CREATE TABLE ri_use AS
SELECT c.commitment_arn,
       CAST(date_trunc('hour', u.line_item_usage_start_date) AS TIMESTAMP) AS usage_hour,
       COALESCE(NULLIF(u.resource_tags[#application_tag], ''), '(untagged)') AS application,
       sum(CASE WHEN c.size_flexible THEN u.line_item_normalized_usage_amount
                ELSE u.line_item_usage_amount END) AS used
FROM cur_line_items u
JOIN ri_commitments c ON u.reservation_reservation_a_r_n = c.commitment_arn
WHERE u.line_item_line_item_type = 'DiscountedUsage'
  AND u.bill_payer_account_id IN (#payers_ids)
GROUP BY 1, 2, 3;

-- Savings Plans: the recurring fee lines are hourly already.
CREATE TABLE sp_fee_hours AS
SELECT savings_plan_savings_plan_a_r_n AS commitment_arn,
       CAST(date_trunc('hour', line_item_usage_start_date) AS TIMESTAMP) AS usage_hour,
       max(line_item_usage_account_id) AS owner_account_id,
       max(product_region_code) AS region,
       max(line_item_product_code) AS product_code,
       sum(COALESCE(savings_plan_total_commitment_to_date, 0)) AS commitment,
       sum(COALESCE(savings_plan_used_commitment, 0)) AS used_commitment
FROM cur_line_items
WHERE line_item_line_item_type = 'SavingsPlanRecurringFee'
  AND bill_payer_account_id IN (#payers_ids)
  AND savings_plan_savings_plan_a_r_n IS NOT NULL
GROUP BY 1, 2;

-- Savings Plans use per plan, hour and application (the commitment each line consumed).
CREATE TABLE sp_use AS
SELECT savings_plan_savings_plan_a_r_n AS commitment_arn,
       CAST(date_trunc('hour', line_item_usage_start_date) AS TIMESTAMP) AS usage_hour,
       COALESCE(NULLIF(resource_tags[#application_tag], ''), '(untagged)') AS application,
       sum(savings_plan_savings_plan_effective_cost) AS used
FROM cur_line_items
WHERE line_item_line_item_type = 'SavingsPlanCoveredUsage'
  AND bill_payer_account_id IN (#payers_ids)
  AND savings_plan_savings_plan_a_r_n IS NOT NULL
GROUP BY 1, 2, 3;

-- Every commitment-hour, RI and SP alike: capacity, use, and what went unused.
-- RI capacity is the period's reserved units spread evenly over the active hours; its
-- rate is the period's cost per reserved unit.
CREATE TABLE commitment_hours AS
WITH ri_active AS (
  SELECT c.commitment_arn, h.usage_hour
  FROM ri_commitments c
  JOIN billing_hours h ON h.usage_hour >= c.active_from AND h.usage_hour < c.active_until
), ri_active_count AS (
  SELECT commitment_arn, count(*) AS active_hours FROM ri_active GROUP BY commitment_arn
), ri_hour_use AS (
  SELECT commitment_arn, usage_hour, sum(used) AS used FROM ri_use GROUP BY 1, 2
), ri AS (
  SELECT 'ri' AS kind, a.commitment_arn, a.usage_hour,
         c.owner_account_id, c.region, c.product_code,
         c.total_units / n.active_hours AS capacity,
         COALESCE(u.used, 0) AS used,
         greatest(c.total_units / n.active_hours - COALESCE(u.used, 0), 0) AS unused,
         c.period_cost / NULLIF(c.total_units, 0) AS rate
  FROM ri_active a
  JOIN ri_active_count n ON n.commitment_arn = a.commitment_arn
  JOIN ri_commitments c ON c.commitment_arn = a.commitment_arn
  LEFT JOIN ri_hour_use u ON u.commitment_arn = a.commitment_arn AND u.usage_hour = a.usage_hour
), sp_hour_use AS (
  SELECT commitment_arn, usage_hour, sum(used) AS used FROM sp_use GROUP BY 1, 2
), sp AS (
  SELECT 'sp' AS kind, f.commitment_arn, f.usage_hour,
         f.owner_account_id, f.region, f.product_code,
         f.commitment AS capacity,
         COALESCE(u.used, 0) AS used,
         greatest(f.commitment - f.used_commitment, 0) AS unused,
         1.0 AS rate
  FROM sp_fee_hours f
  LEFT JOIN sp_hour_use u ON u.commitment_arn = f.commitment_arn AND u.usage_hour = f.usage_hour
)
SELECT * FROM ri
UNION ALL
SELECT * FROM sp;

-- Use per commitment, hour and application, RI and SP alike.
CREATE TABLE commitment_use AS
SELECT 'ri' AS kind, commitment_arn, usage_hour, application, used FROM ri_use WHERE used > 0
UNION ALL
SELECT 'sp' AS kind, commitment_arn, usage_hour, application, used FROM sp_use WHERE used > 0;

-- Each commitment-hour's waste, shared among applications: by their use in that hour
-- ('hour'); in an hour without use, by their use over the period ('period'); a commitment
-- never used in the period gets one '(unallocated)' row ('unallocated').
CREATE TABLE attributed_hours AS
WITH period_use AS (
  SELECT kind, commitment_arn, application, sum(used) AS used
  FROM commitment_use GROUP BY 1, 2, 3
), period_total AS (
  SELECT kind, commitment_arn, sum(used) AS used FROM period_use GROUP BY 1, 2
)
SELECT h.kind, h.commitment_arn, h.usage_hour, h.owner_account_id, h.region, h.product_code,
       u.application, u.used AS app_used, u.used / h.used AS share, 'hour' AS attribution,
       h.capacity, h.unused, h.rate
FROM commitment_hours h
JOIN commitment_use u
  ON u.kind = h.kind AND u.commitment_arn = h.commitment_arn AND u.usage_hour = h.usage_hour
WHERE h.used > 0
UNION ALL
SELECT h.kind, h.commitment_arn, h.usage_hour, h.owner_account_id, h.region, h.product_code,
       p.application, 0.0, p.used / t.used, 'period',
       h.capacity, h.unused, h.rate
FROM commitment_hours h
JOIN period_total t ON t.kind = h.kind AND t.commitment_arn = h.commitment_arn
JOIN period_use p ON p.kind = h.kind AND p.commitment_arn = h.commitment_arn
WHERE h.used = 0 AND t.used > 0
UNION ALL
SELECT h.kind, h.commitment_arn, h.usage_hour, h.owner_account_id, h.region, h.product_code,
       '(unallocated)', 0.0, 1.0, 'unallocated',
       h.capacity, h.unused, h.rate
FROM commitment_hours h
LEFT JOIN period_total t ON t.kind = h.kind AND t.commitment_arn = h.commitment_arn
WHERE h.used = 0 AND t.used IS NULL;
