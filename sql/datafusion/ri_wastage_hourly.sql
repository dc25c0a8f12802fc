-- ri_wastage_hourly (DataFusion dialect): hourly Reserved Instance waste per reservation
-- and application, for one payer-period. curflow runs it after
-- analytics_wastage_queries.sql, whose tables it reads, and then replaces the payer-period
-- in the final table ri_wastage_hourly with the table of the same name created here.

CREATE TABLE ri_wastage_hourly AS
SELECT #payer_id AS payer_id, #billing_period AS billing_period, usage_hour,
       commitment_arn AS reservation_arn, owner_account_id, region, product_code, application,
       capacity * share AS reserved_units,
       app_used AS used_units,
       unused * share AS unused_units,
       unused * rate * share AS unused_cost,
       attribution, now() AS processed_at
FROM attributed_hours
WHERE kind = 'ri';
