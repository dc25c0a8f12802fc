"""What the benchmark scripts share: where the peers are installed, the local S3 server, and
side-by-side timing (every command run in turn, round after round, so that a machine
whose speed drifts slows them all alike; medians and ratios, never single runs).

Each run is timed from outside, as a whole process, by GNU time (`/usr/bin/time`): elapsed
wall time, CPU time (user + system, the tool's own work), and peak memory as the kernel's
maximum resident set size of the process.
"""
import operator
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(os.environ.get("BENCH_DIR", Path.home() / ".cache/curflow/bench"))
VENV_BIN = BENCH_DIR / "venv/bin"
S3S_FS = BENCH_DIR / "cargo/bin/s3s-fs"
# An access-log line of the server: `127.0.0.1 - - [date] "GET /bucket?... HTTP/1.1" 200 -`.
REQUEST_LINE = re.compile(r'"(?:\x1b\[[0-9;]*m)*(?:GET|PUT|POST|HEAD|DELETE) \S+ HTTP/1\.1')
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
               "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


def curflow_binary():
    """The release binary: $BENCH_CURFLOW_BIN, else $CARGO_TARGET_DIR (or the README's default)."""
    if "BENCH_CURFLOW_BIN" in os.environ:
        return Path(os.environ["BENCH_CURFLOW_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/curflow/target"))
    binary = target / "release/curflow"
    if not binary.exists():
        sys.exit(f"{binary} is missing: build it with `cargo build --release` (or set BENCH_CURFLOW_BIN)")
    return binary


def require_peers(server=None):
    """Exits with a clear message when bench/setup.sh has not installed the peers (and the
    S3 server `server`, if one is needed)."""
    if not (VENV_BIN / "aws").exists() or not shutil.which("rclone") or (server == "s3s-fs" and not S3S_FS.exists()):
        sys.exit(f"the peers are not installed under {BENCH_DIR}: run bench/setup.sh first")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """A local S3 server on loopback: `s3s-fs` (a Rust server over a directory) or moto's
    server (Python, in memory). Stopped on exit from the `with` block."""

    def __init__(self, kind, workdir):
        self.kind = kind
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.data = Path(workdir) / f"s3-{kind}"
        self.proc = None

    def __enter__(self):
        log = open(self.data.with_suffix(".log"), "w")
        if self.kind == "s3s-fs":
            shutil.rmtree(self.data, ignore_errors=True)
            self.data.mkdir(parents=True)
            cmd = [str(S3S_FS), "--host", "127.0.0.1", "--port", str(self.port),
                   "--access-key", CREDENTIALS["AWS_ACCESS_KEY_ID"],
                   "--secret-key", CREDENTIALS["AWS_SECRET_ACCESS_KEY"], str(self.data)]
        elif self.kind == "moto":
            cmd = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]
        else:
            sys.exit(f"unknown server {self.kind!r}: s3s-fs or moto")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"{self.kind} exited at start; see {log.name}")
                time.sleep(0.05)
        sys.exit(f"{self.kind} did not listen on port {self.port}; see {log.name}")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait()

    def requests(self):
        """Requests the server has answered so far, from its access log (one line per
        request, retries included): the count a proxy in front of it would see, without a
        proxy's delay in every timed run. moto only; None for s3s-fs, which logs none."""
        if self.kind != "moto":
            return None
        count = lambda: sum(1 for line in self.data.with_suffix(".log").read_text(errors="replace").splitlines()
                            if REQUEST_LINE.search(line))
        # The server logs a request after answering it: wait until the count stands still.
        seen = count()
        while True:
            time.sleep(0.2)
            now = count()
            if now == seen:
                return now
            seen = now

    def version(self):
        if self.kind == "s3s-fs":
            return subprocess.run([str(S3S_FS), "--version"], capture_output=True, text=True).stdout.strip()
        return "moto_server " + subprocess.run([str(VENV_BIN / "python"), "-c", "import moto; print(moto.__version__)"],
                                               capture_output=True, text=True).stdout.strip()


def s3_client(endpoint):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                        config=Config(max_pool_connections=32, s3={"addressing_style": "path"}))


@dataclass
class Sample:
    wall: float
    cpu: float
    peak_mib: float
    requests: int = None


def timed(cmd, env=None, log=None):
    """Runs one command under GNU time; returns its wall time and peak resident memory
    (time's own figures: a child of this Python process would inherit its memory peak).
    A non-zero exit ends the benchmark: a tool that failed measured nothing."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as figures:
        out = open(log, "ab") if log else subprocess.DEVNULL
        code = subprocess.call(["/usr/bin/time", "-o", figures.name, "-f", "%e %U %S %M", *map(str, cmd)],
                               env=env, stdout=out, stderr=out)
        lines = figures.read().split("\n")
    if code != 0:
        sys.exit(f"exit {code}: {' '.join(map(str, cmd))}" + (f" (output in {log})" if log else ""))
    wall, user, system, peak_kib = lines[-2].split() if lines[-1] == "" else lines[-1].split()
    return Sample(float(wall), float(user) + float(system), int(peak_kib) / 1024)


@dataclass
class Contender:
    """A tool in a side-by-side comparison. `prepare(round)` runs untimed before each timed
    run and returns the command to time; `check(round)` runs untimed after it and returns
    what its output looks like (compared across tools), or raises."""
    name: str
    prepare: object
    check: object = None
    samples: list = field(default_factory=list)
    outputs: list = field(default_factory=list)


def side_by_side(contenders, rounds, warmup=1, log=None, server=None):
    """`warmup` uncounted rounds, then `rounds` counted ones; in each round every contender
    runs once, the order rotating from round to round. With `server`, each sample also
    holds the requests the server answered during the timed run."""
    for r in range(warmup + rounds):
        order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
        for c in order:
            cmd, env = c.prepare(r)
            before = server.requests() if server else None
            sample = timed(cmd, env, log)
            if before is not None:
                sample.requests = server.requests() - before
            if r >= warmup:
                c.samples.append(sample)
            if c.check:
                c.outputs.append(c.check(r))
            print(f"  round {r + 1 - warmup if r >= warmup else 'warm-up'}: {c.name:<10} "
                  f"{sample.wall:8.2f} s {sample.cpu:8.2f} s CPU {sample.peak_mib:8.0f} MiB"
                  + (f" {sample.requests:8d} requests" if sample.requests is not None else ""), flush=True)


def median_wall(c):
    return statistics.median(s.wall for s in c.samples)


def median_cpu(c):
    return statistics.median(s.cpu for s in c.samples)


def median_peak(c):
    return statistics.median(s.peak_mib for s in c.samples)


def median_requests(c):
    """The median requests of the counted runs, or None when the server does not log them."""
    counts = [s.requests for s in c.samples if s.requests is not None]
    return statistics.median(counts) if counts else None


def ratio_range(ours, theirs, figure):
    """Median and range of the pairwise ratios ours/theirs (same round)."""
    ratios = [figure(a) / figure(b) for a, b in zip(ours.samples, theirs.samples)]
    return statistics.median(ratios), min(ratios), max(ratios)


def same_outputs(contenders, equal=operator.eq):
    """Every contender's checks gave the same output (by `equal`), in every round. Returns
    the differences, one line each."""
    reference = contenders[0]
    problems = []
    for c in contenders:
        for r, out in enumerate(c.outputs):
            if not equal(out, reference.outputs[0]):
                problems.append(f"{c.name} (run {r + 1}) differs from {reference.name}: "
                                f"{describe_difference(reference.outputs[0], out)}")
    return problems


def describe_difference(expected, got):
    if isinstance(expected, dict) and isinstance(got, dict):
        missing = sorted(set(expected) - set(got))[:3]
        extra = sorted(set(got) - set(expected))[:3]
        changed = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])[:3]
        return f"missing {missing}, extra {extra}, different {[(k, expected[k], got[k]) for k in changed]}"
    return f"expected {expected}, got {got}"


def print_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).rjust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    for row in rows:
        print(line(row))
