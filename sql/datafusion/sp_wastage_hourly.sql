-- sp_wastage_hourly (DataFusion dialect): hourly Savings Plans waste per plan and
-- application, for one payer-period. curflow runs it after analytics_wastage_queries.sql,
-- whose tables it reads, and then replaces the payer-period in the final table
-- sp_wastage_hourly with the table of the same name created here.

CREATE TABLE sp_wastage_hourly AS
SELECT #payer_id AS payer_id, #billing_period AS billing_period, usage_hour,
       commitment_arn AS savings_plan_arn, owner_account_id, region, product_code, application,
       capacity * share AS commitment,
       app_used AS used_commitment,
       unused * share AS unused_commitment,
       unused * share AS unused_cost,
       attribution, now() AS processed_at
FROM attributed_hours
WHERE kind = 'sp';
