"""bench/randomization.py runs end to end on a tiny load and ends with its JSON summary."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "n",
    "clients",
    "throughput_per_s",
    "p50_ms",
    "p99_ms",
    "floor_throughput_per_s",
    "floor_p99_ms",
    "ratio_to_floor",
    "anomalies",
    "floor_anomalies",
}


@pytest.fixture
def bench_database_url():
    """A database of the bench's own on the test server (the bench drops and recreates it);
    named after this process so that two test sessions never share it, and dropped after."""
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    if not parts.scheme.startswith("postgres"):
        pytest.skip("the bench needs PostgreSQL")
    name = f"imrtrial_bench_pytest_{os.getpid()}"
    yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_short_run_allocates_everyone_once_and_prints_the_json_line_last(bench_database_url):
    env = {k: v for k, v in os.environ.items() if k != "BENCH_DATABASE_URL"}
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "randomization.py"),
            "--n",
            "48",
            "--clients",
            "3",
            "--database-url",
            bench_database_url,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) > 1  # human-readable lines come first
    result = json.loads(lines[-1])
    assert set(result) >= KEYS
    assert (result["n"], result["clients"]) == (48, 3)
    assert result["anomalies"] == 0, result["anomaly_detail"]
    assert result["floor_anomalies"] == 0, result["floor_anomaly_detail"]
    assert result["errors"] == result["floor_errors"] == 0
    assert result["throughput_per_s"] > 0 and result["floor_throughput_per_s"] > 0
    assert result["p50_ms"] <= result["p99_ms"]
