-- commitment_reconciliation (Snowflake dialect): per commitment, what the fee lines report
-- against the hourly rows, for one payer-period. curflow runs it after
-- analytics_wastage_queries.sql, whose tables it reads, and then replaces the payer-period
-- in the final table commitment_reconciliation with the new_* table created here. An RI's
-- unused fees on its RIFee line, a Savings Plan's used commitment on its fee lines, each
-- against what the hourly rows add up to.

CREATE OR REPLACE TEMPORARY TABLE new_commitment_reconciliation AS
SELECT #payer_id AS payer_id, #billing_period AS billing_period, 'ri' AS kind,
       c.commitment_arn, c.reported_unused_cost AS expected,
       COALESCE(w.unused_cost, 0) AS computed, SYSDATE() AS processed_at
FROM ri_commitments c
LEFT JOIN (SELECT reservation_arn, SUM(unused_cost) AS unused_cost
           FROM new_ri_wastage_hourly GROUP BY reservation_arn) w
  ON w.reservation_arn = c.commitment_arn
UNION ALL
SELECT #payer_id, #billing_period, 'sp', f.commitment_arn, f.used_commitment,
       COALESCE(u.used, 0), SYSDATE()
FROM (SELECT commitment_arn, SUM(used_commitment) AS used_commitment
      FROM sp_fee_hours GROUP BY commitment_arn) f
LEFT JOIN (SELECT commitment_arn, SUM(used) AS used FROM sp_use GROUP BY commitment_arn) u
  ON u.commitment_arn = f.commitment_arn;
