"""Server time to validate and save a complete PANSS through the real view, queries per save,
and the assessor's worklist render time with 2,000 participants.

Runs in-process with Django's test client against a dedicated PostgreSQL database that it
drops and recreates (its name must contain "bench"). Human-readable lines first; the last line
is one JSON object with median_save_ms, p99_save_ms, queries_per_save (the statements that read
or write data, and the same count at the end of the run, to show it does not grow with the
data; transaction control is counted apart), worklist_ms.

    python bench/crf_entry.py [--participants 2000] [--saves 300]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench_crf"


def setup_environment(database_url):
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ.setdefault("RANDOMIZATION_SECRET", "bench-only-randomization-secret-xxxxxxxx")
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "imrtrial.settings"


def recreate_database(database_url):
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: the name must contain 'bench'")
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def build_trial(n_participants):
    """The Danish preset with n randomized participants whose post-treatment window is open."""
    from django.utils import timezone

    from assessments.services import schedule_visits
    from imrtrial.models import Membership, Participant, Role
    from imrtrial.trialconfig import create_trial, parse, resolve
    from tests.factories import make_user

    trial = create_trial(parse(resolve("danish").read_text()))
    trial.status = "open"
    trial.save(update_fields=["status"])
    assessor = make_user("bench-assessor")
    Membership.objects.create(user=assessor, trial=trial, role=Role.ASSESSOR)
    sites = list(trial.sites.all())
    randomized_on = timezone.localdate() - dt.timedelta(days=270)
    Participant.objects.bulk_create(
        Participant(
            trial=trial,
            site=sites[i % len(sites)],
            participant_id=f"DK-{i:05d}",
            status="randomized",
            randomized_on=randomized_on,
            factor_levels={"diagnosis": "schizophrenia"},
        )
        for i in range(n_participants)
    )
    schedule_visits(trial)
    return trial, assessor


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def queries(statements):
    """The statements that read or write data: all but transaction control."""
    return [s for s in statements if not s.startswith(TRANSACTION_CONTROL)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=2000)
    parser.add_argument("--saves", type=int, default=300)
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_CRF_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="write cProfile stats of the timed saves to FILE"
    )
    args = parser.parse_args()
    setup_environment(args.database_url)
    recreate_database(args.database_url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from assessments import registry
    from assessments.models import FormEntry, Visit

    call_command("migrate", verbosity=0)
    # The pages use hashed static files (DEBUG off), as in production: collected here, so the
    # benchmark runs from a fresh clone with nothing done by hand.
    call_command("collectstatic", verbosity=0, interactive=False)
    trial, assessor = build_trial(args.participants)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have done on a live database
    client = Client()
    client.force_login(assessor)
    client.get("/")  # warm up templates, URL resolver, session
    panss = registry.get("panss")
    post = {f"item_{item.code}": str(1 + n % 7) for n, item in enumerate(panss.items)}
    post["complete"] = "1"
    visits = list(
        Visit.objects.filter(participant__trial=trial, timepoint__code="post").order_by("pk")[
            : args.saves + 3
        ]
    )
    if len(visits) < args.saves + 3:
        raise SystemExit("--participants must exceed --saves by at least 3")

    body = urlencode(post)  # as a browser posts the form (bench/load.py does too)

    def save(visit):
        url = reverse("assessments:entry", args=[trial.key, visit.pk, "panss", "single"])
        start = time.perf_counter()
        response = client.post(url, body, content_type="application/x-www-form-urlencoded")
        elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 302, response.status_code
        # The visit page the browser goes to next shows (and so clears) the "complete" message;
        # kept, the messages cookie would grow by one message per save.
        client.cookies.pop("messages", None)
        return elapsed

    def statements(visit):
        """The SQL one save sends, read at once (a CaptureQueriesContext read later sees the
        log of later requests: this benchmark reported the worklist's count as the save's)."""
        with CaptureQueriesContext(connection) as captured:
            save(visit)
        return [q["sql"] for q in captured.captured_queries]

    first = statements(visits[0])  # the process's first save: its caches fill
    second = statements(visits[1])
    profiler = cProfile.Profile() if args.profile else None
    cpu_start = time.process_time()
    if profiler:
        profiler.enable()
    times = [save(v) for v in visits[2:-1]]
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / len(times)
    last = statements(visits[-1])
    assert FormEntry.objects.filter(instrument="panss", status="complete").count() == len(visits)

    worklist_url = reverse("assessments:worklist", args=[trial.key])
    client.get(worklist_url)
    worklist = []
    for _ in range(7):
        start = time.perf_counter()
        response = client.get(worklist_url)
        worklist.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as wl_queries:
        client.get(worklist_url)

    times.sort()
    result = {
        "participants": args.participants,
        "saves": len(times),
        "median_save_ms": round(statistics.median(times), 2),
        "p99_save_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        # A running server's saves: after the process's first, which fills the per-process
        # caches of the trial's quality rules and schedule (reported apart).
        "queries_per_save": len(queries(second)),
        "queries_per_save_at_end": len(queries(last)),
        "queries_first_save_of_process": len(queries(first)),
        # This process's CPU per save (client, view, template, psycopg): the part of the time
        # a busy machine does not inflate.
        "cpu_ms_per_save": round(cpu_ms, 2),
        # BEGIN, COMMIT, SAVEPOINT, RELEASE: round trips too, but no query of data.
        "transaction_statements_per_save": len(second) - len(queries(second)),
        "worklist_ms": round(statistics.median(worklist), 2),
        "worklist_queries": len(wl_queries.captured_queries),
        "goal": {
            "median_save_ms": 30,
            "p99_save_ms": 100,
            "queries_per_save": 10,
            "worklist_ms": 200,
        },
    }
    print(
        f"PANSS save through the view: median {result['median_save_ms']} ms, "
        f"p99 {result['p99_save_ms']} ms, {result['queries_per_save']} queries "
        f"({result['queries_per_save_at_end']} after {len(times)} saves) and "
        f"{result['transaction_statements_per_save']} transaction statements"
    )
    print(
        f"Worklist with {args.participants} participants: {result['worklist_ms']} ms, "
        f"{result['worklist_queries']} queries"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
