#!/usr/bin/env python3
"""The wastage analytics of one staged payer-period in DuckDB: the peer of curflow's
embedded warehouse in bench/analytics.py.

  duckdb_analytics.py STAGED_DIR OUT_DIR PAYER_ID YYYY-MM [APPLICATION_TAG]

Runs the project's own sql/datafusion/ files (analytics_wastage_queries.sql, then one file
per final table, in curflow's order), statement by statement, over the period's Parquet files (unified by column name, as curflow does), with
the placeholders filled as curflow's renderer fills them (DuckDB reads the rest of the
DataFusion dialect as it is); then writes the three final tables as Parquet under OUT_DIR (curflow
writes them as Delta tables) and prints their totals as JSON. Using the same file, not a
hand-kept copy, keeps the two engines on exactly the same SQL.
"""
import json
import re
import sys
from pathlib import Path

import duckdb

FINAL = ("ri_wastage_hourly", "sp_wastage_hourly", "commitment_reconciliation")
SQL_DIR = Path(__file__).resolve().parent.parent / "sql/datafusion"
SQL = [SQL_DIR / f"{name}.sql" for name in ("analytics_wastage_queries", *FINAL)]


def statements(payer, period, tag):
    year, month = (int(x) for x in period.split("-"))
    # Values checked here (12 digits, a month, a tag of safe characters) before any is spliced.
    assert re.fullmatch(r"\d{12}", payer) and 1 <= month <= 12 and re.fullmatch(r"[\w:.+/=@-]+", tag)
    values = {"#startyear": str(year), "#startmonth": str(month), "#billing_period": f"'{period}'",
              "#payers_ids": f"'{payer}'", "#payer_id": f"'{payer}'", "#application_tag": f"'{tag}'"}
    lines = (line for path in SQL for line in path.read_text().splitlines())
    text = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
    for name in sorted(values, key=len, reverse=True):
        text = text.replace(name, values[name])
    return [s.strip() for s in text.split(";") if s.strip()]


def main():
    staged, out, payer, period = sys.argv[1:5]
    tag = sys.argv[5] if len(sys.argv) > 5 else "user_application"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = str(Path(staged) / "*.parquet").replace("'", "''")
    con.execute(f"CREATE VIEW cur_line_items AS SELECT * FROM read_parquet('{files}', union_by_name = true)")
    for statement in statements(payer, period, tag):
        con.execute(statement)
    totals = {}
    for table in FINAL:
        target = str(out / f"{table}.parquet").replace("'", "''")
        con.execute(f"COPY {table} TO '{target}' (FORMAT parquet)")
    for kind in ("ri", "sp"):
        rows, cost = con.execute(f"SELECT count(*), sum(unused_cost) FROM {kind}_wastage_hourly").fetchone()
        totals[f"{kind}_rows"] = rows
        totals[f"{kind}_unused_cost"] = cost or 0.0
    totals["reconciliation_rows"] = con.execute("SELECT count(*) FROM commitment_reconciliation").fetchone()[0]
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
