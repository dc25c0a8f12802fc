#!/usr/bin/env python3
"""Analytics benchmark: curflow's embedded warehouse against DuckDB running the same SQL
(bench/duckdb_analytics.py) on the same staged Parquet files, side by side.

  bench/analytics.py [--rows 1000000 10000000] [--rounds 5] [--memory-limit 2GiB]
                     [--commitment-sets 1]

For each size, `curflow generate` writes one payer-month (cached under
$BENCH_DIR/analytics, default ~/.cache/curflow/bench/analytics) with --commitment-sets
sets of 10 commitments (more sets: larger intermediate and final tables), and a first
`curflow run` stages it on local disk. Then each round times, as whole processes:
  curflow: `curflow run` over the already-staged month. Before each run (untimed) the
           ledger's analytics_succeeded_at is cleared, so that the run re-runs the
           analytics and replaces the month in the Delta tables, and nothing is copied;
  duckdb:  the same statements in DuckDB over the staged files, the final tables written
           as Parquet.
Prints each run, then a table: median seconds and peak memory, and curflow's over DuckDB's
(median and range of the per-round ratios). Exits 1 when the result totals differ (rows
and Σ unused_cost of the RI and SP tables, to the cent; reconciliation rows) or a run fails.
Run bench/setup.sh first; the curflow binary comes from $BENCH_CURFLOW_BIN or
$CARGO_TARGET_DIR/release/curflow.
"""
import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

PAYER = "671238551718"
PERIOD = "2025-07"


def generated(curflow, rows, seed, sets):
    """The generated month (export root), made once per size, seed and commitment sets."""
    name = f"rows-{rows}-seed-{seed}" + (f"-sets-{sets}" if sets > 1 else "")
    base = common.BENCH_DIR / "analytics" / name
    export = base / "source"
    if not (base / "complete").exists():
        subprocess.run(["rm", "-rf", str(base)], check=True)
        base.mkdir(parents=True)
        print(f"generating {rows:,} rows ...", flush=True)
        subprocess.run([str(curflow), "generate", "--out", str(export), "--payer", PAYER, "--year", "2025",
                        "--month", "7", "--rows", str(rows), "--seed", str(seed),
                        "--commitment-sets", str(sets)], check=True,
                       stdout=subprocess.DEVNULL)
        (base / "complete").touch()
    return base


def totals_of(con, table_sql):
    """Rows and Σ unused_cost of the RI and SP tables, and reconciliation rows."""
    out = {}
    for kind in ("ri", "sp"):
        rows, cost = con.execute(f"SELECT count(*), sum(unused_cost) FROM {table_sql(kind + '_wastage_hourly')} "
                                 f"WHERE payer_id = '{PAYER}' AND billing_period = '{PERIOD}'").fetchone()
        out[f"{kind}_rows"] = rows
        out[f"{kind}_unused_cost"] = cost or 0.0
    out["reconciliation_rows"] = con.execute(
        f"SELECT count(*) FROM {table_sql('commitment_reconciliation')} "
        f"WHERE payer_id = '{PAYER}' AND billing_period = '{PERIOD}'").fetchone()[0]
    return out


def same_totals(a, b):
    """Same row counts, and sums equal to the cent (summation order moves the last bits)."""
    return a.keys() == b.keys() and all(
        math.isclose(a[k], b[k], rel_tol=0, abs_tol=0.005) if isinstance(a[k], float) else a[k] == b[k] for k in a)


def delta_totals(warehouse):
    import deltalake
    import duckdb
    con = duckdb.connect()
    for name in ("ri_wastage_hourly", "sp_wastage_hourly", "commitment_reconciliation"):
        con.register(name, deltalake.DeltaTable(str(warehouse / name)).to_pyarrow_table())
    return totals_of(con, lambda t: t)


def parquet_totals(out):
    import duckdb
    con = duckdb.connect()
    return totals_of(con, lambda t: f"read_parquet('{out / (t + '.parquet')}')")


def bench_size(curflow, rows, rounds, seed, memory_limit, sets):
    base = generated(curflow, rows, seed, sets)
    run_dir = base / "runs"
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    run_dir.mkdir()
    settings = run_dir / "curflow.toml"
    settings.write_text(f"""[local]
staging = "{run_dir}/staging"
warehouse_dir = "{run_dir}/warehouse"
periods = 1
{f'memory_limit = "{memory_limit}"' if memory_limit else ""}
[[local.payers]]
payer_id = "{PAYER}"
source = "{base}/source"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CURFLOW_") and k != "TASK_INPUT_JSON"}
    env["CURFLOW_LOG"] = "warn"
    run = [str(curflow), "run", "--config", str(settings), "--year", "2025", "--month", "7", "--payer", PAYER]
    log = run_dir / "runs.log"
    print(f"staging {rows:,} rows (untimed first run) ...", flush=True)
    common.timed(run, env, log)
    ledger = run_dir / f"staging/_curflow/ledger/payer-{PAYER}/{PERIOD}.json"
    # The delivery's folder, as the ledger names it (relative to the staging root).
    staged = run_dir / "staging" / json.loads(ledger.read_text())["folder"]

    def curflow_prepare(_round):
        state = json.loads(ledger.read_text())
        state["analytics_succeeded_at"] = None
        ledger.write_text(json.dumps(state))
        return run, env

    def curflow_check(_round):
        if json.loads(ledger.read_text())["analytics_succeeded_at"] is None:
            sys.exit("curflow's run did not run the analytics (the ledger says so)")
        return delta_totals(run_dir / "warehouse")

    duckdb_out = run_dir / "duckdb"
    duckdb_cmd = [str(common.VENV_BIN / "python"), str(Path(__file__).resolve().parent / "duckdb_analytics.py"),
                  str(staged), str(duckdb_out), PAYER, PERIOD]
    contenders = [common.Contender("curflow", curflow_prepare, curflow_check),
                  common.Contender("duckdb", lambda _r: (duckdb_cmd, env), lambda _r: parquet_totals(duckdb_out))]
    common.side_by_side(contenders, rounds, log=log)
    return contenders


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--memory-limit", help="curflow's memory_limit setting (default: curflow's own default)")
    ap.add_argument("--commitment-sets", type=int, default=1,
                    help="sets of 10 commitments in the generated month (default 1)")
    args = ap.parse_args()
    common.require_peers()
    curflow = common.curflow_binary()
    results = []
    problems = []
    for rows in args.rows:
        contenders = bench_size(curflow, rows, args.rounds, args.seed, args.memory_limit, args.commitment_sets)
        results.append((rows, contenders))
        problems += [f"{rows:,} rows: {p}" for p in common.same_outputs(contenders, same_totals)]
        print(f"{rows:,} rows: totals {json.dumps(contenders[0].outputs[0])}", flush=True)
    table = []
    for rows, (ours, duck) in results:
        t_med, t_lo, t_hi = common.ratio_range(ours, duck, lambda s: s.wall)
        m_med, m_lo, m_hi = common.ratio_range(ours, duck, lambda s: s.peak_mib)
        table.append([f"{rows:,}", f"{common.median_wall(ours):.2f}", f"{common.median_wall(duck):.2f}",
                      f"{t_med:.2f} ({t_lo:.2f}-{t_hi:.2f})", f"{common.median_cpu(ours):.2f}", f"{common.median_cpu(duck):.2f}",
                      f"{common.median_peak(ours):.0f}",
                      f"{common.median_peak(duck):.0f}", f"{m_med:.2f} ({m_lo:.2f}-{m_hi:.2f})"])
    print(f"\nanalytics, median of {args.rounds} rounds")
    common.print_table(["rows", "curflow s", "duckdb s", "time ratio", "curflow CPU s", "duckdb CPU s", "curflow peak MiB", "duckdb peak MiB",
                        "peak ratio"], table)
    for p in problems:
        print("DIFFERENT:", p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
