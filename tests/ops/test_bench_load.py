"""bench/load.py runs end to end on a tiny load: people log in, randomize and enter CRFs
through gunicorn, and its JSON summary comes last."""

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
KEYS = {"users", "requests", "errors", "p50_ms", "p99_ms", "throughput", "workers"}


@pytest.fixture
def bench_database_url():
    """A database of the bench's own on the test server (the bench drops and recreates it),
    named after this process and dropped after."""
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    if not parts.scheme.startswith("postgres"):
        pytest.skip("the bench needs PostgreSQL")
    name = f"imrtrial_bench_load_pytest_{os.getpid()}"
    yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_a_short_run_randomizes_and_saves_through_the_pages_without_errors(bench_database_url):
    env = {k: v for k, v in os.environ.items() if k != "BENCH_LOAD_DATABASE_URL"}
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "--users", "4", "--seconds", "4"]
        + ["--think", "0.2", "--ramp", "0.5", "--participants", "20", "--workers", "2"]
        + ["--database-url", bench_database_url],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) > 1  # human-readable lines come first
    result = json.loads(lines[-1])
    assert set(result) >= KEYS
    assert (result["users"], result["workers"]) == (4, 2)
    assert result["errors"] == 0, run.stdout[-3000:]
    # Both kinds of people got through their whole workflow, and the rows say so.
    assert result["randomized"] > 0 and result["allocations"] == result["randomized"]
    assert result["allocation_anomalies"] == 0
    assert 0 < result["crf_completed"] == result["crf_complete_in_db"]
    assert result["requests"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]
    # The workers' own CPU count per step (bench/gunicorn_steps.py) reached the bench.
    by_step = result["server_cpu_ms_by_step"]
    assert {"screen_page", "worklist", "entry_post"} <= set(by_step), by_step
    assert all(ms > 0 for ms in by_step.values()), by_step
