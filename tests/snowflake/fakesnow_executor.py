"""Executes the SQL that curflow sends to the Snowflake SQL API fake (tests/it/snowflake_fake.rs)
in fakesnow (Snowflake SQL emulated on DuckDB), so that the fake answers with computed rows.

    python fakesnow_executor.py S3_ENDPOINT

One long-lived process per fake. It reads one JSON request per line on stdin and writes one
JSON answer per line on stdout:

    {"op": "open", "database": "FINOPS", "schema": "CUR",
     "timezone": "America/Los_Angeles"}                         -> {"session": 1}
    {"op": "run", "session": 1, "sql": "...", "bindings": [..]}  -> {"columns": [..], "rows": [[..]]}
                                                                  or {"error": {"code", "sqlState", "message"}}
    {"op": "close", "session": 1}                                -> {"closed": 1}

A session is one SQL API request: its statements run in order on one fakesnow connection (a
DuckDB connection of its own), so its temporary tables and views end with it and a
transaction left open by a failed statement is rolled back when it closes. Permanent tables
(the final tables, the payer table) live in the one in-memory database for as long as the
process does.

fakesnow has no external tables and cannot read a stage's S3 URL, so this translates:
- CREATE ... STAGE name URL = 's3://bucket/prefix/' ...: remembered (and passed on);
- CREATE OR REPLACE EXTERNAL TABLE name ... LOCATION = @stage/ ...: a plain table of that
  name with the staged files' columns and no rows (REFRESH_ON_CREATE = FALSE);
- ALTER EXTERNAL TABLE name REFRESH: the table reloaded with every Parquet file under the
  stage's URL, read from the S3 server, as an external table reads them (the
  non-vectorized Parquet scanner, the only one external tables use):
  - resource_tags (a Parquet map) becomes {"key_value": [{"key": …, "value": …}, …]}
    ("CREATE FILE FORMAT", USE_VECTORIZED_SCANNER = FALSE);
  - a timestamp (UTC, without a zone in the file) becomes a local timestamp read in the
    session's time zone, which the column's TIMESTAMP_NTZ keeps as wall-clock time: right
    only in a UTC session;
- CLUSTER BY (...) of CREATE TABLE is dropped (fakesnow ignores it noisily; DuckDB has none).
Everything else runs through the Snowflake connector API unchanged, `?` bound to the
request's bindings. Cells come back as text, as the SQL API's jsonv2 format gives them.
"""

import datetime
import decimal
import io
import json
import re
import sys

import boto3
import fakesnow
import fakesnow.instance
import pyarrow as pa
import pyarrow.parquet as pq
import snowflake.connector

STAGE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?STAGE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.$]+)\s+URL\s*=\s*'([^']*)'",
    re.IGNORECASE,
)
EXTERNAL_TABLE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?EXTERNAL\s+TABLE\s+([\w.$]+)\s.*\sLOCATION\s*=\s*@([\w.$]+)(/[^\s]*)?",
    re.IGNORECASE | re.DOTALL,
)
REFRESH = re.compile(r"^\s*ALTER\s+EXTERNAL\s+TABLE\s+([\w.$]+)\s+REFRESH\s*$", re.IGNORECASE)
CLUSTER_BY = re.compile(r"\s+CLUSTER\s+BY\s*\([^)]*\)\s*$", re.IGNORECASE)


class Failure(Exception):
    """A statement failed as Snowflake would fail it: code, SQLSTATE, message."""

    def __init__(self, code, sql_state, message):
        super().__init__(message)
        self.code, self.sql_state, self.message = code, sql_state, message


class Executor:
    def __init__(self, s3_endpoint):
        self.s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        self.fake = fakesnow.instance.FakeSnow()
        self.sessions = {}
        self.next_session = 0
        # Upper-case stage name -> its URL; upper-case external table name -> (stage, path).
        self.stages = {}
        self.external_tables = {}

    def open(self, database, schema, timezone):
        conn = self.fake.connect(database=database, schema=schema, paramstyle="qmark")
        conn._duck_conn.execute(f"SET TimeZone = '{timezone}'")
        self.next_session += 1
        self.sessions[self.next_session] = (conn, database, schema)
        return {"session": self.next_session}

    def close(self, session):
        conn, _, _ = self.sessions.pop(session)
        # A transaction a failed statement left open ends with the session, as in Snowflake.
        try:
            conn._duck_conn.execute("ROLLBACK")
        except Exception:
            pass
        conn.close()
        return {"closed": session}

    def run(self, session, sql, bindings):
        conn, database, schema = self.sessions[session]
        try:
            return self.statement(conn, database, schema, sql, bindings)
        except Failure as e:
            return {"error": {"code": e.code, "sqlState": e.sql_state, "message": e.message}}
        except snowflake.connector.errors.Error as e:
            code = f"{e.errno:06d}" if isinstance(e.errno, int) and e.errno > 0 else "100000"
            # The connector puts "002003 (42S02): " before the message; the API does not.
            message = re.sub(r"^\d{6} \(\w+\): ", "", e.msg or str(e))
            return {"error": {"code": code, "sqlState": e.sqlstate or "42000", "message": message}}
        except Exception as e:  # fakesnow or DuckDB failed outside the connector's errors
            return {"error": {"code": "100000", "sqlState": "XX000", "message": f"{type(e).__name__}: {e}"}}

    def statement(self, conn, database, schema, sql, bindings):
        stage = STAGE.match(sql)
        if stage:
            self.stages[stage.group(1).upper()] = stage.group(2)
        external = EXTERNAL_TABLE.match(sql)
        if external:
            name, stage_name, path = external.group(1), external.group(2).upper(), external.group(3) or ""
            if stage_name not in self.stages:
                raise Failure("002003", "02000", f"SQL compilation error: Stage '{stage_name}' does not exist or not authorized.")
            self.external_tables[name.upper()] = (stage_name, path)
            self.load(conn, database, schema, name, rows=False)
            return status(f"Table {name.upper()} successfully created.")
        refresh = REFRESH.match(sql)
        if refresh:
            name = refresh.group(1)
            if name.upper() not in self.external_tables:
                raise Failure("002003", "42S02", f"SQL compilation error: Table '{name.upper()}' does not exist or not authorized.")
            files = self.load(conn, database, schema, name, rows=True)
            return {"columns": ["file", "status", "description"], "rows": [[f, "REGISTERED_NEW", "File registered successfully."] for f in files]}
        sql = CLUSTER_BY.sub("", sql)
        cur = conn.cursor()
        cur.execute(sql, bindings or None)
        columns = [d[0] for d in cur.description] if cur.description else ["status"]
        rows = [[cell(v) for v in row] for row in cur.fetchall()]
        return {"columns": columns, "rows": rows}

    def load(self, conn, database, schema, name, rows):
        """(Re)creates external table `name` from the Parquet files under its stage's URL;
        with `rows` false, only their columns. Returns the files read."""
        stage, path = self.external_tables[name.upper()]
        url = self.stages[stage]
        match = re.match(r"^s3://([^/]+)/?(.*)$", url)
        if not match:
            raise Failure("091016", "22000", f"Remote file '{url}' was not found: the fake reads s3:// stages only.")
        bucket, prefix = match.group(1), match.group(2) + path.lstrip("/")
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))
        if not keys:
            raise Failure("002003", "02000", f"SQL compilation error: no files found at {url}{path.lstrip('/')} (INFER_SCHEMA).")
        tables = []
        for key in sorted(keys):
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            tables.append(pq.read_table(io.BytesIO(body)))
        staged = pa.concat_tables(tables, promote_options="default")
        duck = conn._duck_conn
        duck.register("curflow_staged", staged)
        try:
            columns = ", ".join(external_column(field) for field in staged.schema)
            limit = "" if rows else " LIMIT 0"
            duck.execute(
                f"CREATE OR REPLACE TABLE {database}.{schema}.{name} AS SELECT {columns} FROM curflow_staged{limit}"
            )
        finally:
            duck.unregister("curflow_staged")
        return [f"s3://{bucket}/{k}" for k in sorted(keys)]


def external_column(field):
    """A staged Parquet column as an external table reads it (see the module's note)."""
    name = field.name
    if name == "resource_tags":
        return f"CASE WHEN {name} IS NULL THEN NULL ELSE to_json({{'key_value': map_entries({name})}}) END AS {name}"
    if pa.types.is_timestamp(field.type):
        return f"CAST(timezone('UTC', CAST({name} AS TIMESTAMP)) AS TIMESTAMP) AS {name}"
    return name


def status(message):
    return {"columns": ["status"], "rows": [[message]]}


def cell(value):
    """A value as the SQL API's jsonv2 format writes it: text, or null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    if isinstance(value, datetime.datetime):
        # TIMESTAMP_NTZ: seconds since the epoch with nine decimals.
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}000"
    if isinstance(value, datetime.date):
        return str((value - datetime.date(1970, 1, 1)).days)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def main(s3_endpoint):
    # Answers go to the real stdout only: fakesnow and sqlglot print notes of their own,
    # which go to stderr with everything else.
    answers = sys.stdout
    sys.stdout = sys.stderr
    executor = Executor(s3_endpoint)

    def answer(value):
        answers.write(json.dumps(value) + "\n")
        answers.flush()

    answer({"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request["op"]
        if op == "open":
            answer(executor.open(request.get("database"), request.get("schema"), request["timezone"]))
        elif op == "run":
            answer(executor.run(request["session"], request["sql"], request.get("bindings") or []))
        elif op == "close":
            answer(executor.close(request["session"]))
        else:
            answer({"error": {"code": "000000", "sqlState": "XX000", "message": f"unknown op {op}"}})


if __name__ == "__main__":
    import atexit
    import shutil
    import tempfile
    import warnings

    # fakesnow warns on stderr about copies it makes; the fake shows stderr when it fails.
    warnings.simplefilter("ignore")
    # fakesnow makes a temporary folder per stage it sees: keep them in one folder of this
    # process, removed when it ends (its stdin closes with the test binary).
    tempfile.tempdir = tempfile.mkdtemp(prefix="curflow-fakesnow-")
    atexit.register(shutil.rmtree, tempfile.tempdir, True)
    main(sys.argv[1])
