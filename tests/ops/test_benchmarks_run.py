"""Every benchmark in bench/ runs from this checkout, on a tiny size, and prints its JSON line
last: a benchmark that only fails when someone finally runs it at full size (bench/
quality_rules.py did, when the Danish preset's quality_rules stopped being its last section) is
found here instead. bench/randomization.py, bench/load.py and bench/dashboard.py have tests of
their own, which check their keys."""

import json
import subprocess
import sys

import pytest

from tests.randomization.test_bench_randomization import REPO, bench_database_url  # noqa: F401

# bench: (the tiny size's arguments, keys its JSON line must have)
TINY = {
    "api": (["--participants", "40"], set()),
    "audit_trail": (["--rows", "2000", "--repeats", "1"], set()),
    "crf_entry": (
        ["--participants", "30", "--saves", "10"],
        {"median_save_ms", "p99_save_ms", "queries_per_save", "cpu_ms_per_save"},
    ),
    "export": (
        ["--participants", "30"],
        {"csv_ratio_to_floor", "sav_ratio_to_floor", "odm_ratio_to_csv", "peak_mb"},
    ),
    "quality_rules": (["--participants", "60", "--saves", "4"], {"seconds", "peak_mb"}),
    "queries": (["--participants", "30", "--rounds", "3"], set()),
    "reminders": (["--participants", "60"], set()),
    "sdv_progress": (["--participants", "40"], set()),
    "sequence_quality": (["--n", "200"], set()),
}
TAKES_NO_DATABASE = {"sequence_quality"}


@pytest.mark.parametrize("bench", sorted(TINY))
def test_a_tiny_run_prints_its_json_line_last(bench, bench_database_url):  # noqa: F811
    arguments, keys = TINY[bench]
    if bench not in TAKES_NO_DATABASE:
        arguments = [*arguments, "--database-url", bench_database_url]
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / f"{bench}.py"), *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-2000:]
    last = json.loads(run.stdout.strip().splitlines()[-1])
    assert isinstance(last, dict) and last
    assert keys <= set(last), keys - set(last)
