"""Runs curflow's rendered Snowflake analytics through fakesnow (Snowflake SQL emulated on
DuckDB) and writes the result tables as Parquet, for tests/it/snowflake.rs to compare with
the generator's ground truth.

    python fakesnow_analytics.py STATEMENTS_JSON DATA_DIR OUT_DIR

STATEMENTS_JSON holds the statements curflow sends after its cur_line_items view (the
rendered sql/snowflake script, split as curflow splits it). fakesnow has no stages or
external tables, so the staged Parquet files of DATA_DIR are loaded into a plain table
cur_line_items instead (resource_tags, a Parquet map, becomes an OBJECT as INFER_SCHEMA
makes it). Every statement then runs through the Snowflake connector API, unchanged.
"""

import glob
import json
import os
import sys

import fakesnow
import pyarrow as pa
import pyarrow.parquet as pq
import snowflake.connector


def main(statements_json, data_dir, out_dir):
    with open(statements_json) as f:
        statements = json.load(f)
    files = sorted(glob.glob(os.path.join(data_dir, "**", "*.parquet"), recursive=True))
    if not files:
        sys.exit(f"no Parquet files under {data_dir}")
    with fakesnow.patch():
        conn = snowflake.connector.connect(database="finops", schema="cur")
        cur = conn.cursor()
        cur.execute("CREATE DATABASE IF NOT EXISTS finops")
        cur.execute("CREATE SCHEMA IF NOT EXISTS finops.cur")
        cur.execute("USE SCHEMA finops.cur")
        staged = pq.read_table(files)
        duck = conn._duck_conn
        duck.register("staged", staged)
        columns = ", ".join(
            f"to_json({c}) AS {c}" if c == "resource_tags" else c for c in staged.schema.names
        )
        duck.execute(f"CREATE TABLE finops.cur.cur_line_items AS SELECT {columns} FROM staged")
        for i, statement in enumerate(statements):
            try:
                cur.execute(statement)
            except Exception as e:  # name the statement that fakesnow could not run
                sys.exit(f"statement {i + 1} failed in fakesnow: {e}\n{statement}")
        for table in ["new_ri_wastage_hourly", "new_sp_wastage_hourly"]:
            cur.execute(f"SELECT * FROM {table}")
            rows = cur.fetchall()
            if not rows:
                sys.exit(f"{table} is empty")
            names = [d[0].lower() for d in cur.description]
            result = pa.table({n: [row[i] for row in rows] for i, n in enumerate(names)})
            hour = result.schema.get_field_index("usage_hour")
            result = result.set_column(
                hour, "usage_hour", result["usage_hour"].cast(pa.timestamp("us", tz="UTC"))
            )
            pq.write_table(result, os.path.join(out_dir, f"{table[len('new_'):]}.parquet"))
    print("ok")


if __name__ == "__main__":
    main(*sys.argv[1:4])
