#!/usr/bin/env python3
"""Fleet benchmark: one curflow run over many payers × 2 billing periods, against the
peers (s5cmd, rclone, `aws s3 sync`), which mirror one payer per invocation, on the same
local S3 server.

  bench/fleet.py [--payers 100] [--files 10] [--changed 0] [--rounds 3] [--warmup 1] [--only ...]
                 [--payer-concurrency N]

Each payer has its own bucket holding a CUR 2.0 export (`cur/cur2`) of two billing periods
(2025-07 and 2025-06), each `--files` data files of 1 KiB and its manifest. Every tool
first mirrors every payer into a staging bucket (untimed). Then each timed run has
`--changed` payers with a new delivery of 2025-07 (written untimed before the run: new
file names, a new manifest, the old files gone), and every other payer-period unchanged:

- curflow: one `run --stage-only --payer all` (no analytics, which the peers do not do),
  with the default settings (`payer_concurrency`, `concurrency`) and `keep_superseded =
  "0s"` so that its staging mirrors the sources exactly, as the peers' do;
- each peer: one `sync` per payer (the whole export), the invocations one after another
  in one shell, timed together: their summed time.

Prints each run, then a table: median seconds, CPU seconds, peak memory, the requests the
server answered during the run (moto's access log, retries included) and per payer-period,
and curflow's time over each peer's. Exits 1 when, after any run, a tool's staged data
files (names, sizes, ETags, per payer and period) differ from the sources, or when any
run fails. Run bench/setup.sh first.
"""
import argparse
import concurrent.futures
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from copy_sync import S5CMD  # noqa: E402

PERIODS = ["2025-07", "2025-06"]
EXPORT = "cur/cur2"
STAGING = "bench-staging"


def payer_id(i):
    return f"{100000000000 + i}"


def bucket(i):
    return f"bench-payer-{i:03d}"


def deliver(s3, i, period, files, delivery):
    """Delivery number `delivery` of one payer-period: `files` data files of 1 KiB whose
    names carry the delivery, and the manifest naming them; the previous files deleted."""
    data = f"{EXPORT}/data/BILLING_PERIOD={period}"
    old = [{"Key": o["Key"]} for o in s3.list_objects_v2(Bucket=bucket(i), Prefix=data + "/").get("Contents", [])]
    names = [f"cur2-{delivery:05d}-{n:05d}.snappy.parquet" for n in range(files)]
    for n, name in enumerate(names):
        body = f"{i}/{period}/{delivery}/{n}".encode().ljust(1024, b".")
        s3.put_object(Bucket=bucket(i), Key=f"{data}/{name}", Body=body)
    manifest = {"executionId": f"bench-{delivery}", "dataFiles": [f"s3://{bucket(i)}/{data}/{n}" for n in names]}
    s3.put_object(Bucket=bucket(i), Key=f"{EXPORT}/metadata/BILLING_PERIOD={period}/cur2-Manifest.json",
                  Body=json.dumps(manifest).encode())
    if old:
        s3.delete_objects(Bucket=bucket(i), Delete={"Objects": old, "Quiet": True})


def data_files(s3, bucket_name, prefix):
    """{(period, file name): (size, ETag)} of the `.parquet` files under `prefix`."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_name, Prefix=prefix):
        for o in page.get("Contents", []):
            key = o["Key"]
            if not key.endswith(".parquet") or "/_curflow/" in "/" + key:
                continue
            period = next((p for p in PERIODS if f"BILLING_PERIOD={p}" in key
                           or f"year={p[:4]}/month={int(p[5:])}/" in key), None)
            out[(period, key.rsplit("/", 1)[1])] = (o["Size"], o["ETag"].strip('"'))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--payers", type=int, default=100)
    ap.add_argument("--files", type=int, default=10, help="data files per payer-period")
    ap.add_argument("--changed", type=int, default=0, help="payers with a new delivery before each run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--only", help="comma-separated tools (default: all)")
    ap.add_argument("--payer-concurrency", type=int, help="curflow's payer_concurrency (default: its own)")
    args = ap.parse_args()
    common.require_peers("moto")
    workdir = Path(tempfile.mkdtemp(prefix="curflow-bench-fleet-"))
    log = workdir / "runs.log"
    with common.S3Server("moto", workdir) as server:
        print(f"{server.version()} at {server.endpoint}; work dir {workdir}", flush=True)
        s3 = common.s3_client(server.endpoint)
        s3.create_bucket(Bucket=STAGING)

        def make(i):
            s3.create_bucket(Bucket=bucket(i))
            for period in PERIODS:
                deliver(s3, i, period, args.files, 1)

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(make, range(args.payers)))
        deliveries = {"n": 1}

        def restate():
            """A new delivery of 2025-07 for the first `--changed` payers (untimed)."""
            deliveries["n"] += 1
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda i: deliver(s3, i, PERIODS[0], args.files, deliveries["n"]),
                              range(args.changed)))

        env = {k: v for k, v in os.environ.items() if not k.startswith("CURFLOW_") and k != "TASK_INPUT_JSON"}
        env.update(common.CREDENTIALS)
        for name in ("AWS_PROFILE", "AWS_CA_BUNDLE", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        ep = server.endpoint
        settings = workdir / "curflow.toml"
        settings.write_text(
            f'[bench]\nstaging = "s3://{STAGING}/curflow"\nwarehouse_dir = "{workdir}/warehouse"\n'
            'periods = 2\nkeep_superseded = "0s"\n'
            + (f"payer_concurrency = {args.payer_concurrency}\n" if args.payer_concurrency else "")
            + "".join(f'[[bench.payers]]\npayer_id = "{payer_id(i)}"\nsource = "s3://{bucket(i)}/{EXPORT}"\n'
                      for i in range(args.payers)))
        curflow_cmd = [str(common.curflow_binary()), "run", "--stage-only", "--config", str(settings),
                       "--env", "bench", "--year", "2025", "--month", "7", "--payer", "all"]
        curflow_env = dict(env, AWS_ENDPOINT_URL=ep, AWS_ALLOW_HTTP="true", CURFLOW_LOG="warn")
        aws_config = workdir / "aws-config"
        aws_config.write_text("[default]\ns3 =\n  max_concurrent_requests = 64\n  max_queue_size = 10000\n")
        rclone_env = dict(env, RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Other",
                          RCLONE_CONFIG_BENCH_ENDPOINT=ep, RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE="true",
                          RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=env["AWS_ACCESS_KEY_ID"],
                          RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=env["AWS_SECRET_ACCESS_KEY"],
                          RCLONE_CONFIG_BENCH_REGION="us-east-1")
        # One invocation per payer, as a peer mirrors one bucket at a time (the copy
        # benchmark's settings for each).
        per_payer = {
            "s5cmd": (lambda i: f"{S5CMD} --endpoint-url {ep} --numworkers 256 --log error sync --delete "
                                f"'s3://{bucket(i)}/{EXPORT}/*' s3://{STAGING}/s5cmd/{bucket(i)}/", env),
            "rclone": (lambda i: f"rclone sync bench:{bucket(i)}/{EXPORT} bench:{STAGING}/rclone/{bucket(i)} "
                                 "--fast-list --checksum --transfers 64 --checkers 64 --s3-no-check-bucket --s3-no-head",
                       rclone_env),
            "aws": (lambda i: f"{common.VENV_BIN / 'aws'} --endpoint-url {ep} --only-show-errors s3 sync --delete "
                              f"s3://{bucket(i)}/{EXPORT}/ s3://{STAGING}/aws/{bucket(i)}/",
                    dict(env, AWS_CONFIG_FILE=str(aws_config))),
        }

        def peer(name):
            line, tool_env = per_payer[name]
            script = workdir / f"{name}.sh"
            script.write_text("set -e\n" + "".join(line(i) + "\n" for i in range(args.payers)))

            def prepare(r):
                restate()
                return ["sh", str(script)], tool_env
            return prepare

        def curflow(r):
            restate()
            return curflow_cmd, curflow_env

        def mirrors(name):
            """After each run (untimed): the problems with the tool's staging, where a
            payer's data files (names, sizes, ETags, by period) differ from its source's."""
            def check(r):
                problems = []
                for i in range(args.payers):
                    want = data_files(s3, bucket(i), f"{EXPORT}/data/")
                    if name == "curflow":
                        got = {}
                        for period in PERIODS:
                            got.update(data_files(s3, STAGING, f"curflow/year={period[:4]}/month={int(period[5:])}"
                                                               f"/payer-{payer_id(i)}/"))
                    else:
                        got = data_files(s3, STAGING, f"{name}/{bucket(i)}/")
                    if got != want:
                        problems.append(f"{name} {bucket(i)} after run {r + 1}: "
                                        + common.describe_difference(want, got))
                return problems
            return check

        contenders = [common.Contender("curflow", curflow, mirrors("curflow"))]
        contenders += [common.Contender(name, peer(name), mirrors(name)) for name in per_payer]
        contenders = [c for c in contenders if not args.only or c.name in args.only.split(",")]
        for c in contenders:  # everything staged once, untimed
            common.timed(*c.prepare(-1), log=log)
        common.side_by_side(contenders, args.rounds, warmup=args.warmup, log=log, server=server)

        payer_periods = args.payers * len(PERIODS)
        ours = next((c for c in contenders if c.name == "curflow"), None)
        rows = []
        for c in contenders:
            requests = common.median_requests(c)
            row = [c.name, "1 run" if c.name == "curflow" else f"{args.payers} runs",
                   f"{common.median_wall(c):.2f}", f"{common.median_cpu(c):.2f}", f"{common.median_peak(c):.0f}",
                   f"{requests:,.0f}", f"{requests / payer_periods:.2f}"]
            if ours is None or c is ours:
                row.append("1" if c is ours else "-")
            else:
                med, lo, hi = common.ratio_range(ours, c, lambda s: s.wall)
                row.append(f"{med:.2f} ({lo:.2f}-{hi:.2f})")
            rows.append(row)
        print(f"\n{args.payers} payers x {len(PERIODS)} periods, {args.files} files each, "
              f"{args.changed} payers with a new delivery per run; median of {args.rounds} rounds")
        common.print_table(["tool", "invocations", "seconds", "CPU s", "peak MiB", "requests",
                            "requests / payer-period", "curflow time / tool time"], rows)

        problems = [p for c in contenders for p in c.outputs if p]
        for p in problems:
            print("DIFFERENT:", p)
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
