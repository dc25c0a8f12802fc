-- Commitment wastage analytics (Snowflake dialect): hourly Reserved Instance and Savings
-- Plans waste of one payer-period, attributed to applications. The same logic, statement
-- for statement, as sql/datafusion/analytics_wastage_queries.sql; docs/analytics.md and
-- DESIGN.md §3 define every number.
--
-- curflow sends these statements in one multi-statement SQL API request (one session, so
-- the temporary tables live exactly as long as the run), preceded by a temporary view
-- cur_line_items over the period's external table and followed by one transaction that
-- replaces the payer-period in each final table with the new_<table> that its own file
-- (<table>.sql beside this one, run after these statements) creates. Placeholders are filled
-- by curflow's typed renderer: #startyear, #startmonth, #billing_period, #payer_id,
-- #payers_ids, #application_tag. Timestamps are UTC (TIMESTAMP_NTZ), as CUR writes them.

-- Every hour of the billing period, UTC.
CREATE OR REPLACE TEMPORARY TABLE billing_hours AS
SELECT usage_hour
FROM (
  SELECT DATEADD(hour, ROW_NUMBER() OVER (ORDER BY SEQ4()) - 1,
                 TIMESTAMP_NTZ_FROM_PARTS(#startyear, #startmonth, 1, 0, 0, 0)) AS usage_hour
  FROM TABLE(GENERATOR(ROWCOUNT => 744))
)
WHERE usage_hour < DATEADD(month, 1, TIMESTAMP_NTZ_FROM_PARTS(#startyear, #startmonth, 1, 0, 0, 0));

-- One row per reservation, from its RIFee line(s). Size-flexible RIs are measured in
-- normalized units; the others (normalized units absent or zero) in reserved units.
CREATE OR REPLACE TEMPORARY TABLE ri_commitments AS
WITH fee AS (
  SELECT reservation_reservation_a_r_n AS commitment_arn,
         MAX(line_item_usage_account_id) AS owner_account_id,
         MAX(product_region_code) AS region,
         MAX(line_item_product_code) AS product_code,
         MAX(reservation_start_time) AS start_time,
         MAX(reservation_end_time) AS end_time,
         SUM(COALESCE(TRY_CAST(reservation_total_reserved_normalized_units AS DOUBLE), 0)) AS normalized_units,
         SUM(COALESCE(TRY_CAST(reservation_total_reserved_units AS DOUBLE), 0)) AS reserved_units,
         SUM(COALESCE(reservation_amortized_upfront_fee_for_billing_period, 0)
             + COALESCE(line_item_unblended_cost, 0)) AS period_cost,
         SUM(COALESCE(reservation_unused_amortized_upfront_fee_for_billing_period, 0)
             + COALESCE(reservation_unused_recurring_fee, 0)) AS reported_unused_cost
  FROM cur_line_items
  WHERE line_item_line_item_type = 'RIFee'
    AND bill_payer_account_id IN (#payers_ids)
    AND reservation_reservation_a_r_n IS NOT NULL
  GROUP BY reservation_reservation_a_r_n
), times AS (
  -- CUR writes the reservation's start and end as UTC text, 2025-07-15T06:00:00.000Z.
  -- AUTO detection does not list a trailing Z (a failed TRY_CAST would spread the
  -- reservation over the whole period), so the text is read in that one form, and any
  -- other fails the run naming the value.
  SELECT commitment_arn,
         TO_TIMESTAMP_NTZ(REPLACE(NULLIF(start_time, ''), 'Z', ''), 'YYYY-MM-DD"T"HH24:MI:SS.FF3') AS start_at,
         TO_TIMESTAMP_NTZ(REPLACE(NULLIF(end_time, ''), 'Z', ''), 'YYYY-MM-DD"T"HH24:MI:SS.FF3') AS end_at
  FROM fee
), bounds AS (
  SELECT MIN(usage_hour) AS period_start, DATEADD(hour, 1, MAX(usage_hour)) AS period_end
  FROM billing_hours
)
SELECT commitment_arn, owner_account_id, region, product_code,
       normalized_units > 0 AS size_flexible,
       CASE WHEN normalized_units > 0 THEN normalized_units ELSE reserved_units END AS total_units,
       period_cost,
       reported_unused_cost,
       GREATEST(COALESCE(DATE_TRUNC('hour', start_at), period_start), period_start) AS active_from,
       LEAST(COALESCE(end_at, period_end), period_end) AS active_until
FROM fee JOIN times USING (commitment_arn) CROSS JOIN bounds;

-- RI use per reservation, hour and application, in the reservation's unit.
CREATE OR REPLACE TEMPORARY TABLE ri_use AS
SELECT c.commitment_arn,
       DATE_TRUNC('hour', u.line_item_usage_start_date) AS usage_hour,
       COALESCE(NULLIF(u.resource_tags[#application_tag]::VARCHAR, ''), '(untagged)') AS application,
       SUM(CASE WHEN c.size_flexible THEN u.line_item_normalized_usage_amount
                ELSE u.line_item_usage_amount END) AS used
FROM cur_line_items u
JOIN ri_commitments c ON u.reservation_reservation_a_r_n = c.commitment_arn
WHERE u.line_item_line_item_type = 'DiscountedUsage'
  AND u.bill_payer_account_id IN (#payers_ids)
GROUP BY 1, 2, 3;

-- Savings Plans: the recurring fee lines are hourly already.
CREATE OR REPLACE TEMPORARY TABLE sp_fee_hours AS
SELECT savings_plan_savings_plan_a_r_n AS commitment_arn,
       DATE_TRUNC('hour', line_item_usage_start_date) AS usage_hour,
       MAX(line_item_usage_account_id) AS owner_account_id,
       MAX(product_region_code) AS region,
       MAX(line_item_product_code) AS product_code,
       SUM(COALESCE(savings_plan_total_commitment_to_date, 0)) AS commitment,
       SUM(COALESCE(savings_plan_used_commitment, 0)) AS used_commitment
FROM cur_line_items
WHERE line_item_line_item_type = 'SavingsPlanRecurringFee'
  AND bill_payer_account_id IN (#payers_ids)
  AND savings_plan_savings_plan_a_r_n IS NOT NULL
GROUP BY 1, 2;

-- Savings Plans use per plan, hour and application (the commitment each line consumed).
CREATE OR REPLACE TEMPORARY TABLE sp_use AS
SELECT savings_plan_savings_plan_a_r_n AS commitment_arn,
       DATE_TRUNC('hour', line_item_usage_start_date) AS usage_hour,
       COALESCE(NULLIF(resource_tags[#application_tag]::VARCHAR, ''), '(untagged)') AS application,
       SUM(savings_plan_savings_plan_effective_cost) AS used
FROM cur_line_items
WHERE line_item_line_item_type = 'SavingsPlanCoveredUsage'
  AND bill_payer_account_id IN (#payers_ids)
  AND savings_plan_savings_plan_a_r_n IS NOT NULL
GROUP BY 1, 2, 3;

-- Every commitment-hour, RI and SP alike: capacity, use, and what went unused.
-- RI capacity is the period's reserved units spread evenly over the active hours; its
-- rate is the period's cost per reserved unit.
CREATE OR REPLACE TEMPORARY TABLE commitment_hours AS
WITH ri_active AS (
  SELECT c.commitment_arn, h.usage_hour
  FROM ri_commitments c
  JOIN billing_hours h ON h.usage_hour >= c.active_from AND h.usage_hour < c.active_until
), ri_active_count AS (
  SELECT commitment_arn, COUNT(*) AS active_hours FROM ri_active GROUP BY commitment_arn
), ri_hour_use AS (
  SELECT commitment_arn, usage_hour, SUM(used) AS used FROM ri_use GROUP BY 1, 2
), ri AS (
  SELECT 'ri' AS kind, a.commitment_arn, a.usage_hour,
         c.owner_account_id, c.region, c.product_code,
         c.total_units / n.active_hours AS capacity,
         COALESCE(u.used, 0) AS used,
         GREATEST(c.total_units / n.active_hours - COALESCE(u.used, 0), 0) AS unused,
         c.period_cost / NULLIF(c.total_units, 0) AS rate
  FROM ri_active a
  JOIN ri_active_count n ON n.commitment_arn = a.commitment_arn
  JOIN ri_commitments c ON c.commitment_arn = a.commitment_arn
  LEFT JOIN ri_hour_use u ON u.commitment_arn = a.commitment_arn AND u.usage_hour = a.usage_hour
), sp_hour_use AS (
  SELECT commitment_arn, usage_hour, SUM(used) AS used FROM sp_use GROUP BY 1, 2
), sp AS (
  SELECT 'sp' AS kind, f.commitment_arn, f.usage_hour,
         f.owner_account_id, f.region, f.product_code,
         f.commitment AS capacity,
         COALESCE(u.used, 0) AS used,
         GREATEST(f.commitment - f.used_commitment, 0) AS unused,
         1.0 AS rate
  FROM sp_fee_hours f
  LEFT JOIN sp_hour_use u ON u.commitment_arn = f.commitment_arn AND u.usage_hour = f.usage_hour
)
SELECT * FROM ri
UNION ALL
SELECT * FROM sp;

-- Use per commitment, hour and application, RI and SP alike.
CREATE OR REPLACE TEMPORARY TABLE commitment_use AS
SELECT 'ri' AS kind, commitment_arn, usage_hour, application, used FROM ri_use WHERE used > 0
UNION ALL
SELECT 'sp' AS kind, commitment_arn, usage_hour, application, used FROM sp_use WHERE used > 0;

-- Each commitment-hour's waste, shared among applications: by their use in that hour
-- ('hour'); in an hour without use, by their use over the period ('period'); a commitment
-- never used in the period gets one '(unallocated)' row ('unallocated').
CREATE OR REPLACE TEMPORARY TABLE attributed_hours AS
WITH period_use AS (
  SELECT kind, commitment_arn, application, SUM(used) AS used
  FROM commitment_use GROUP BY 1, 2, 3
), period_total AS (
  SELECT kind, commitment_arn, SUM(used) AS used FROM period_use GROUP BY 1, 2
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
