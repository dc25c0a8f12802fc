#!/usr/bin/env python3
"""Copy benchmark: curflow against s5cmd, rclone and `aws s3 sync`, side by side, on the
same local S3 server and the same objects, cross-bucket (server-side copies).

  bench/copy_sync.py copy  [--objects 2000 --mib 1] [--rounds 5] [--warmup 1] [--server moto|s3s-fs]
  bench/copy_sync.py noop  [--objects 10000] [--rounds 5] [--warmup 1] [--server moto|s3s-fs]

`copy`: a billing period of N objects of M MiB in a CUR 2.0 export layout
(data/BILLING_PERIOD=2025-07/ + its manifest) in one bucket, mirrored into a fresh, empty
prefix of another bucket by each tool in turn (the prefix is emptied again after each run,
untimed). curflow runs `run --stage-only` (the copy, its verification and the ledger,
without the analytics, which the peers do not do).
`noop`: the same with every object already staged by each tool: a run that has nothing to
copy (curflow `run --stage-only`, `s5cmd sync`, `rclone sync`, `aws s3 sync`).

Prints each run, then a table: median seconds, objects/s, MB/s, peak memory, requests the
server answered (from moto's access log, retries included), and curflow's time over each
peer's (median and range of the per-round ratios); CPU s is the tool's own user + system
time. Exits 1 when a tool's
destination differs from curflow's (names, sizes, ETags) or when any run fails.
Run bench/setup.sh first; the curflow binary comes from $BENCH_CURFLOW_BIN or
$CARGO_TARGET_DIR/release/curflow.
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

PAYER = "671238551718"
PERIOD = "2025-07"
SRC, DST = "bench-payer-cur", "bench-staging"
EXPORT = "cur/cur2"
DATA = f"{EXPORT}/data/BILLING_PERIOD={PERIOD}"
S5CMD = common.VENV_BIN.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages/s5cmd/bin/s5cmd"


def make_source(s3, objects, size):
    """The export: `objects` data files of `size` random bytes, and the manifest naming them."""
    s3.create_bucket(Bucket=SRC)
    s3.create_bucket(Bucket=DST)
    names = [f"cur2-00001-{i:05d}.snappy.parquet" for i in range(objects)]
    block = os.urandom(size)

    def put(i_name):
        i, name = i_name
        # Distinct contents (a different first 8 bytes) so that no tool can deduplicate.
        s3.put_object(Bucket=SRC, Key=f"{DATA}/{name}", Body=i.to_bytes(8, "big") + block[8:])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, enumerate(names)))
    manifest = {"executionId": "bench-1",
                "dataFiles": [f"s3://{SRC}/{DATA}/{n}" for n in names]}
    s3.put_object(Bucket=SRC, Key=f"{EXPORT}/metadata/BILLING_PERIOD={PERIOD}/cur2-Manifest.json",
                  Body=json.dumps(manifest).encode())


def listing(s3, bucket, prefix):
    """{file name: (size, ETag, last modified)} under the prefix, curflow's own `_curflow/`
    objects aside."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            if "/_curflow/" in "/" + o["Key"]:
                continue
            out[o["Key"].rsplit("/", 1)[1]] = (o["Size"], o.get("ETag", "(none listed)").strip('"'), o["LastModified"])
    return out


def comparable(objects):
    """Names and sizes, and the ETag where it is the content's MD5 (not a multipart ETag)."""
    return {k: (size, etag if "-" not in etag else "multipart") for k, (size, etag, _) in objects.items()}


def empty_prefix(s3, bucket, prefix):
    keys = [{"Key": o["Key"]} for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[i:i + 1000], "Quiet": True})


def tools(server, workdir, s3, fresh_prefix):
    """The contenders. `fresh_prefix(name, round)` says where a run writes: a new prefix per
    run for `copy`, the same one for `noop`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CURFLOW_") and k != "TASK_INPUT_JSON"}
    env.update(common.CREDENTIALS)
    # Loopback over plain HTTP: no profile, no CA bundle (rclone refuses AWS_CA_BUNDLE here).
    for name in ("AWS_PROFILE", "AWS_CA_BUNDLE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    endpoint = server.endpoint
    curflow_bin = common.curflow_binary()
    settings = Path(workdir) / "curflow.toml"

    def curflow(r):
        prefix = fresh_prefix("curflow", r)
        # Best settings: concurrency 64 (the default is 16; more parallel copies keep the
        # server busy while curflow waits on each response).
        settings.write_text(f"""[bench]
staging = "s3://{DST}/{prefix}"
warehouse_dir = "{workdir}/warehouse"
concurrency = 64
periods = 1
[[bench.payers]]
payer_id = "{PAYER}"
source = "s3://{SRC}/{EXPORT}"
""")
        return ([str(curflow_bin), "run", "--stage-only", "--config", str(settings), "--env", "bench",
                 "--year", "2025", "--month", "7", "--payer", PAYER],
                dict(env, AWS_ENDPOINT_URL=endpoint, AWS_ALLOW_HTTP="true", CURFLOW_LOG="warn"))

    def s5cmd(r):
        # s5cmd's documented knob is --numworkers (default 256, the size of its worker pool).
        return ([str(S5CMD), "--endpoint-url", endpoint, "--numworkers", "256", "--log", "error", "sync",
                 f"s3://{SRC}/{DATA}/*", f"s3://{DST}/{fresh_prefix('s5cmd', r)}/"], env)

    rclone_env = dict(env, RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Other",
                      RCLONE_CONFIG_BENCH_ENDPOINT=endpoint, RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE="true",
                      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=env["AWS_ACCESS_KEY_ID"],
                      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=env["AWS_SECRET_ACCESS_KEY"],
                      RCLONE_CONFIG_BENCH_REGION="us-east-1")

    def rclone(r):
        # rclone's S3 documentation: --fast-list (one recursive listing) and --checksum
        # (compare ETags instead of a HEAD per object for the modification time);
        # --transfers/--checkers for parallelism; --s3-no-check-bucket and --s3-no-head
        # skip requests the copy does not need.
        return (["rclone", "sync", f"bench:{SRC}/{DATA}", f"bench:{DST}/{fresh_prefix('rclone', r)}",
                 "--fast-list", "--checksum", "--transfers", "64", "--checkers", "64",
                 "--s3-no-check-bucket", "--s3-no-head"], rclone_env)

    aws_config = Path(workdir) / "aws-config"
    # The AWS CLI's S3 configuration: max_concurrent_requests (default 10) and
    # max_queue_size; parts like curflow's: objects over 512 MiB (the CLI's threshold is
    # inclusive, hence one byte more) in parts of 128 MiB.
    aws_config.write_text("[default]\ns3 =\n  max_concurrent_requests = 64\n  max_queue_size = 10000\n"
                          f"  multipart_threshold = {512 * 2**20 + 1}\n  multipart_chunksize = 128MB\n")

    def aws(r):
        return ([str(common.VENV_BIN / "aws"), "--endpoint-url", endpoint, "--only-show-errors", "s3", "sync",
                 f"s3://{SRC}/{DATA}/", f"s3://{DST}/{fresh_prefix('aws', r)}/"],
                dict(env, AWS_CONFIG_FILE=str(aws_config)))

    return [("curflow", curflow), ("s5cmd", s5cmd), ("rclone", rclone), ("aws", aws)]


def report(contenders, objects, total_bytes, what):
    """The table: medians per tool, and curflow's time over each peer's, round by round."""
    ours = contenders[0]
    rows = []
    for c in contenders:
        wall = common.median_wall(c)
        requests = common.median_requests(c)
        row = [c.name, f"{wall:.2f}", f"{objects / wall:,.0f}" if objects / wall >= 10 else f"{objects / wall:.2f}", f"{total_bytes / 1e6 / wall:,.0f}",
               f"{common.median_cpu(c):.2f}", f"{common.median_cpu(c) * 1000 / objects:.2f}", f"{common.median_peak(c):.0f}",
               "-" if requests is None else f"{requests:,.0f}",
               "-" if requests is None else f"{requests / objects:.2f}"]
        if c is ours:
            row.append("1")
        else:
            med, lo, hi = common.ratio_range(ours, c, lambda s: s.wall)
            row.append(f"{med:.2f} ({lo:.2f}-{hi:.2f})")
        rows.append(row)
    print(f"\n{what}: {objects} objects, {total_bytes / 2**20:,.0f} MiB, median of {len(ours.samples)} rounds")
    common.print_table(["tool", "seconds", "objects/s", "MB/s", "CPU s", "CPU s / 1000 objects", "peak MiB",
                        "requests", "requests / object", "curflow time / tool time"], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["copy", "noop"])
    ap.add_argument("--objects", type=int)
    ap.add_argument("--mib", type=float, help="object size, MiB (copy; noop uses 1 KiB objects)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="uncounted rounds first")
    ap.add_argument("--server", default="moto", choices=["moto", "s3s-fs"],
                    help="moto: complete (the default); s3s-fs: faster, but its listings carry no ETag "
                         "and a HEAD on a folder key fails (docs/benchmarks.md)")
    ap.add_argument("--only", help="comma-separated tools (default: all)")
    args = ap.parse_args()
    common.require_peers(args.server)
    objects = args.objects or (2000 if args.mode == "copy" else 10000)
    size = int(args.mib * 2**20) if args.mode == "copy" and args.mib else (2**20 if args.mode == "copy" else 1024)
    workdir = tempfile.mkdtemp(prefix="curflow-bench-")
    log = Path(workdir) / "runs.log"
    with common.S3Server(args.server, workdir) as server:
        print(f"{server.version()} at {server.endpoint}; work dir {workdir}", flush=True)
        s3 = common.s3_client(server.endpoint)
        make_source(s3, objects, size)
        expected = comparable(listing(s3, SRC, DATA + "/"))
        if args.mode == "copy":
            fresh = lambda name, r: f"{name}-{r}"
        else:
            fresh = lambda name, r: f"noop-{name}"
        where = {"curflow": lambda r: f"{fresh('curflow', r)}/year=2025/month=7/payer-{PAYER}/"}
        contenders = []
        for name, prepare in tools(server, workdir, s3, fresh):
            if args.only and name not in args.only.split(","):
                continue
            prefix = where.get(name, lambda r, n=name: f"{fresh(n, r)}/")

            def check(r, prefix=prefix):
                got = listing(s3, DST, prefix(r))
                if args.mode == "copy":
                    empty_prefix(s3, DST, prefix(r).split("/")[0] + "/")
                return got

            contenders.append(common.Contender(name, prepare, check))
        if args.mode == "noop":
            # Stage everything once with each tool (untimed), and keep what it staged.
            staged = {}
            for c in contenders:
                cmd, env = c.prepare(0)
                common.timed(cmd, env, log)
                staged[c.name] = c.check(0)
                c.outputs.clear()
        common.side_by_side(contenders, args.rounds, warmup=args.warmup, log=log, server=server)
        report(contenders, objects, objects * size, "copy" if args.mode == "copy" else "no-op run")
        problems = []
        if args.mode == "noop":
            # Not one object rewritten (same ETag and last-modified time as when staged).
            problems += [f"{c.name}'s no-op run changed its staged copy" for c in contenders
                         if any(o != staged[c.name] for o in c.outputs)]
        for c in contenders:
            c.outputs = [comparable(o) for o in c.outputs]
        problems += [f"{c.name} staged {len(c.outputs[0])} objects, the source has {len(expected)}: "
                     + common.describe_difference(expected, c.outputs[0])
                     for c in contenders if c.outputs[0] != expected]
        problems += common.same_outputs(contenders)
        for p in problems:
            print("DIFFERENT:", p)
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
