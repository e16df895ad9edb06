"""Server time to open, answer and close a data query through the real views, with a floor
measured in the same run: the same client asking a trivial page (the home page).

Runs in-process with Django's test client against a dedicated PostgreSQL database that it
drops and recreates (its name must contain "bench"). Human-readable lines first; the last line
is one JSON object with query_action_median_ms (the median over every open, answer and close),
open_median_ms, answer_median_ms, close_median_ms, answer_with_value_median_ms, floor_median_ms
and the queries each action ran.

    python bench/queries.py [--participants 500] [--rounds 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench_queries"


def _crf_bench():
    """bench/crf_entry.py's set-up (environment, database, trial), loaded by path: bench/ is
    not a package, and on sys.path its randomization.py would shadow the app."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("crf_entry", REPO / "bench" / "crf_entry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(client, method, url, data=None, expect=302):
    start = time.perf_counter()
    response = getattr(client, method)(url, data or {})
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == expect, (url, response.status_code)
    return elapsed, response


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_QUERIES_DATABASE_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    crf_bench = _crf_bench()
    crf_bench.setup_environment(args.database_url)
    crf_bench.recreate_database(args.database_url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from assessments import services
    from assessments.models import DataQuery, Visit
    from imrtrial.models import Membership, Role
    from tests.factories import make_user

    call_command("migrate", verbosity=0)
    trial, assessor = crf_bench.build_trial(args.participants)
    dm = make_user("bench-dm")
    Membership.objects.create(user=dm, trial=trial, role=Role.DATA_MANAGER)
    visits = list(
        Visit.objects.filter(participant__trial=trial, timepoint__code="post").order_by("pk")[
            : args.rounds + 1
        ]
    )
    if len(visits) < args.rounds + 1:
        raise SystemExit("--participants must exceed --rounds")
    entries = [
        services.save_entry(v, "gaf_f", {"gaf_f": "55"}, by=assessor, kind="single", complete=True)
        for v in visits
    ]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    managers, assessors = Client(), Client()
    managers.force_login(dm)
    assessors.force_login(assessor)
    key = trial.key
    managers.get("/")  # warm up templates, URL resolver, session
    assessors.get("/")

    times = {"open": [], "answer": [], "answer_with_value": [], "close": [], "floor": []}
    counts = {}

    def round_trip(n, visit, entry):
        new = f"/trials/{key}/visits/{visit.pk}/queries/new/"
        data = {"entry": entry.pk, "item": "gaf_f", "category": "range", "text": "55 or 65?"}
        with CaptureQueriesContext(connection) as q:
            ms, _ = timed(managers, "post", new, data)
        times["open"].append(ms)
        counts["open"] = len(q.captured_queries)
        query = DataQuery.objects.latest("pk")
        answer = {"text": "As on the source document."}
        kind = "answer"
        if n % 2:  # every other answer corrects the value through the form's save path
            answer |= {"value": "65", "version": entry.version}
            kind = "answer_with_value"
        with CaptureQueriesContext(connection) as q:
            ms, _ = timed(assessors, "post", f"/trials/{key}/queries/{query.pk}/answer/", answer)
        times[kind].append(ms)
        counts[kind] = len(q.captured_queries)
        with CaptureQueriesContext(connection) as q:
            ms, _ = timed(
                managers,
                "post",
                f"/trials/{key}/queries/{query.pk}/act/",
                {"action": "close", "text": "Thank you."},
            )
        times["close"].append(ms)
        counts["close"] = len(q.captured_queries)
        ms, _ = timed(managers, "get", "/", expect=200)
        times["floor"].append(ms)

    round_trip(0, visits[0], entries[0])  # warm-up round, not counted
    times = {k: [] for k in times}
    for n, (visit, entry) in enumerate(zip(visits[1:], entries[1:], strict=True), start=1):
        round_trip(n, visit, entry)
    assert DataQuery.objects.filter(status="closed").count() == len(visits)

    median = {k: round(statistics.median(v), 2) for k, v in times.items()}
    actions = times["open"] + times["answer"] + times["answer_with_value"] + times["close"]
    result = {
        "participants": args.participants,
        "rounds": args.rounds,
        "query_action_median_ms": round(statistics.median(actions), 2),
        "open_median_ms": median["open"],
        "answer_median_ms": median["answer"],
        "answer_with_value_median_ms": median["answer_with_value"],
        "close_median_ms": median["close"],
        "floor_median_ms": median["floor"],
        "queries_per_open": counts["open"],
        "queries_per_answer": counts["answer"],
        "queries_per_answer_with_value": counts["answer_with_value"],
        "queries_per_close": counts["close"],
        "goal": {"query_action_median_ms": 40},
    }
    print(
        f"Through the views, median ms: open {median['open']}, answer {median['answer']} "
        f"(with a corrected value {median['answer_with_value']}), close {median['close']}; "
        f"the home page {median['floor']} (floor)"
    )
    print(
        f"Queries: open {counts['open']}, answer {counts['answer']} "
        f"({counts['answer_with_value']} with a value), close {counts['close']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
