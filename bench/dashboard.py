"""Server time and queries per page of the record status dashboard over a large trial.

Builds the Danish preset with --participants randomized participants x 3 visits, every
instrument of every visit entered in mixed states (single entries draft, complete, verified,
locked; paper forms first-entered, awaiting reconciliation or reconciled; some visits missed),
and --queries waiting data queries, with bulk_create (not through the services, for speed).
Then renders dashboard pages through the real view with Django's test client as a data
manager: the first, a middle and the last page, and filtered pages (a state, a visit, needs my
action). Queries per page are counted on a trial of a tenth of the size first, then at full
size. The floor is a trivial page (the home page) measured in the same run.

Runs against a dedicated PostgreSQL database that it drops and recreates (its name must contain
"bench"). The last line is one JSON object.

    python bench/dashboard.py [--participants 5000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from crf_entry import recreate_database, setup_environment  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench_dashboard"
REPEATS = 5  # renders of each page; the median is kept


def build(n_participants, n_queries, *, key, seed=13):
    """A trial of the Danish preset with its forms in mixed states; returns (trial, data
    manager)."""
    from django.utils import timezone

    from assessments import registry
    from assessments.models import DataQuery, FormEntry, Visit
    from assessments.services import DOUBLE_ENTRY_RATERS, schedule_visits
    from imrtrial.models import Membership, Participant, Role
    from imrtrial.trialconfig import create_trial, parse, resolve
    from tests.factories import make_user

    rng = random.Random(seed)
    config = parse(resolve("danish").read_text())
    config["key"] = key
    trial = create_trial(config)
    trial.status = "open"
    trial.save(update_fields=["status"])
    dm = make_user(f"{key}-dm")
    Membership.objects.create(user=dm, trial=trial, role=Role.DATA_MANAGER)
    assessors = [make_user(f"{key}-assessor{i}") for i in range(2)]
    for a in assessors:
        Membership.objects.create(user=a, trial=trial, role=Role.ASSESSOR)
    sites = list(trial.sites.all())
    today = timezone.localdate()
    randomized_on = today - dt.timedelta(days=700)  # every visit's window has passed
    Participant.objects.bulk_create(
        Participant(
            trial=trial,
            site=sites[i % len(sites)],
            participant_id=f"{key.upper()}-{i:05d}",
            status="randomized",
            randomized_on=randomized_on,
            factor_levels={"diagnosis": "schizophrenia"},
        )
        for i in range(n_participants)
    )
    schedule_visits(trial)
    visits = list(Visit.objects.filter(participant__trial=trial).select_related("timepoint"))
    entries, missed, done = [], [], []
    first, second = assessors
    single_states = ["draft", "complete", "complete", "verified", "verified", "locked", None]
    for visit in visits:
        if rng.random() < 0.04:
            missed.append(visit.pk)
            continue
        all_counted = True
        for code in visit.timepoint.instruments:
            common = {
                "participant_id": visit.participant_id,
                "visit": visit,
                "instrument": code,
                "timepoint": visit.timepoint.code,
                "values": {},
                "status": "complete",
            }
            if registry.get(code).rater in DOUBLE_ENTRY_RATERS:
                stage = rng.choice(["none", "first", "both", "final", "final", "final"])
                if stage != "none":
                    entries.append(FormEntry(**common, kind="first", entered_by=first))
                if stage in ("both", "final"):
                    entries.append(FormEntry(**common, kind="second", entered_by=second))
                if stage == "final":
                    status = rng.choice(["complete", "verified", "locked"])
                    entries.append(
                        FormEntry(**{**common, "status": status}, kind="final", entered_by=dm)
                    )
                else:
                    all_counted = False
            else:
                status = rng.choice(single_states)
                if status:
                    entries.append(
                        FormEntry(**{**common, "status": status}, kind="single", entered_by=first)
                    )
                if status in (None, "draft"):
                    all_counted = False
        if all_counted:
            done.append(visit.pk)
        if len(entries) > 20000:
            FormEntry.objects.bulk_create(entries, batch_size=5000)
            entries = []
    FormEntry.objects.bulk_create(entries, batch_size=5000)
    Visit.objects.filter(pk__in=missed).update(missed=True)
    Visit.objects.filter(pk__in=done).update(completed_on=today - dt.timedelta(days=300))
    counted = list(
        FormEntry.objects.filter(
            participant__trial=trial, kind__in=["single", "final"]
        ).values_list("pk", "participant_id", "visit_id")
    )
    now = timezone.now()
    DataQuery.objects.bulk_create(
        DataQuery(
            participant_id=pid,
            visit_id=vid,
            entry_id=pk,
            category="range",
            status=rng.choice(["open", "open", "answered"]),
            opened_by=dm,
            opened_at=now - dt.timedelta(days=rng.randint(0, 60)),
        )
        for pk, pid, vid in rng.sample(counted, min(n_queries, len(counted)))
    )
    return trial, dm


def measure(client, url, params, repeats=REPEATS):
    """(median ms, queries, status) of rendering the page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, params)  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(url, params)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, params, response.status_code)
    with CaptureQueriesContext(connection) as ctx:
        client.get(url, params)
    return statistics.median(times), len(ctx.captured_queries)


def pages(trial, n_participants):
    """The pages measured: (name, query string)."""
    from assessments.status_views import PER_PAGE

    last = max(1, -(-n_participants // PER_PAGE))
    return [
        ("first", {}),
        ("middle", {"page": str(max(1, last // 2))}),
        ("last", {"page": str(last)}),
        ("state", {"state": "awaiting_reconciliation"}),
        ("visit+state", {"visit": "post", "state": "draft", "page": "2"}),
        ("needs my action", {"mine": "1", "page": "3"}),
    ]


def run(client, trial, dm, n_participants):
    from django.urls import reverse

    client.force_login(dm)
    url = reverse("assessments:status", args=[trial.key])
    results = {}
    for name, params in pages(trial, n_participants):
        results[name] = measure(client, url, params)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DASHBOARD_DATABASE_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    setup_environment(args.database_url)
    recreate_database(args.database_url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from assessments.models import DataQuery, FormEntry

    call_command("migrate", verbosity=0)
    tenth = max(args.participants // 10, 1)
    started = time.perf_counter()
    small_trial, small_dm = build(tenth, args.queries // 10, key="tenth")
    trial, dm = build(args.participants, args.queries, key="full")
    build_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have done on a live database
    client = Client()
    client.force_login(dm)
    floor = [measure(client, "/", {})[0] for _ in range(3)]
    small = run(client, small_trial, small_dm, tenth)
    full = run(client, trial, dm, args.participants)
    waiting = DataQuery.objects.open().filter(participant__trial=trial).count()
    forms = FormEntry.objects.filter(participant__trial=trial).count()
    for name, (ms, queries) in full.items():
        print(
            f"{name:>16}: {ms:7.1f} ms, {queries} queries "
            f"(at a tenth: {small[name][0]:.1f} ms, {small[name][1]} queries)"
        )
    median_ms = statistics.median(ms for ms, _ in full.values())
    queries = sorted({q for _, q in full.values()})
    queries_tenth = sorted({q for _, q in small.values()})
    print(
        f"{args.participants} participants, {forms} form entries, {waiting} waiting queries "
        f"(built in {build_s:.0f} s); floor (home page) {statistics.median(floor):.1f} ms"
    )
    result = {
        "participants": args.participants,
        "open_queries": waiting,
        "form_entries": forms,
        "median_page_ms": round(median_ms, 1),
        "max_page_ms": round(max(ms for ms, _ in full.values()), 1),
        "pages": {name: round(ms, 1) for name, (ms, _) in full.items()},
        "queries_per_page": max(queries),
        "queries_per_page_at_tenth": max(queries_tenth),
        "queries_per_page_by_page": {name: q for name, (_, q) in full.items()},
        "queries_equal_at_both_sizes": {n: q for n, (_, q) in full.items()}
        == {n: q for n, (_, q) in small.items()},
        "floor_ms": round(statistics.median(floor), 1),
        "goal": {"median_page_ms": 300},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
