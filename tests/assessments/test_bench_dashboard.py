"""bench/dashboard.py runs end to end on a tiny trial and ends with its JSON summary."""

import json
import subprocess
import sys

from tests.randomization.test_bench_randomization import REPO, bench_database_url  # noqa: F401

KEYS = {
    "participants",
    "open_queries",
    "median_page_ms",
    "queries_per_page",
    "queries_per_page_at_tenth",
    "floor_ms",
}


def test_a_tiny_run_prints_the_json_line_last(bench_database_url):  # noqa: F811
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "dashboard.py"),
            "--participants",
            "120",
            "--queries",
            "40",
            "--database-url",
            bench_database_url,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) > 1  # human-readable lines come first
    result = json.loads(lines[-1])
    assert set(result) >= KEYS
    assert result["participants"] == 120 and 0 < result["open_queries"] <= 40
    # The same number of queries per page at a tenth of the size and at full size.
    assert result["queries_per_page"] == result["queries_per_page_at_tenth"]
    assert result["queries_equal_at_both_sizes"] is True
    assert result["median_page_ms"] > 0 and result["floor_ms"] > 0
