"""Server time of the SDV progress page and the forms list over a large trial.

Builds the Danish preset with --participants randomized participants x 3 visits in mixed states
(bench/dashboard.py's builder), marks about half of the data of record as source-verified and
then changes a tenth of those (cleared), with bulk writes. Then renders the progress page and
the first page of the forms list through the real views as a monitor of every site.

Runs against a dedicated PostgreSQL database that it drops and recreates (its name must contain
"bench"). The last line is one JSON object.

    python bench/sdv_progress.py [--participants 5000]
"""

from __future__ import annotations

import argparse
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
from dashboard import build  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench_sdv"
REPEATS = 3


def mark(trial, monitor, seed=7):
    """Marks on about half of the data of record; a tenth of them then changed."""
    from django.db.models import F
    from django.utils import timezone

    from assessments.models import FormEntry
    from monitoring import plan
    from monitoring.models import SourceVerification

    rng = random.Random(seed)
    today = timezone.localdate()
    counting = list(
        FormEntry.objects.counting()
        .filter(participant__trial=trial)
        .values_list("pk", "values", "version")
    )
    chosen = [row for row in counting if rng.random() < 0.5]
    SourceVerification.objects.bulk_create(
        (
            SourceVerification(
                entry_id=pk,
                source_checked_on=today,
                digest=plan.digest(values),
                entry_version=version,
                by=monitor,
            )
            for pk, values, version in chosen
        ),
        batch_size=5000,
    )
    changed = [pk for pk, _, _ in chosen if rng.random() < 0.1]
    FormEntry.objects.filter(pk__in=changed).update(values={"changed": 1}, version=F("version") + 1)
    return len(counting), len(chosen), len(changed)


def measure(client, url):
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_SDV_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    args = parser.parse_args()
    setup_environment(args.database_url)
    recreate_database(args.database_url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from imrtrial.models import Membership, Role
    from tests.factories import make_user

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    trial, _ = build(args.participants, 0, key="full")
    monitor = make_user("full-monitor")
    Membership.objects.create(user=monitor, trial=trial, role=Role.MONITOR)
    forms, marked, changed = mark(trial, monitor)
    build_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client = Client()
    client.force_login(monitor)
    pages = {
        "progress": measure(client, f"/trials/{trial.key}/sdv/"),
        "forms": measure(client, f"/trials/{trial.key}/sdv/forms/"),
        "forms_cleared": measure(client, f"/trials/{trial.key}/sdv/forms/?state=cleared"),
    }
    for name, ms in pages.items():
        print(f"{name:>14}: {ms:8.1f} ms")
    print(f"{forms} forms of record, {marked} marked, {changed} changed (built in {build_s:.0f} s)")
    print(
        json.dumps(
            {
                "participants": args.participants,
                "forms_of_record": forms,
                "marked": marked,
                "cleared": changed,
                "pages_ms": {name: round(ms, 1) for name, ms in pages.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
