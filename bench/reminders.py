"""The daily reminder job over 20,000 participants x 3 visits.

Builds a dedicated PostgreSQL database (its name must contain "bench"; it is dropped) with the
Danish preset and participants randomized over the past two years, so visits are upcoming,
open, done, or (5% of the past ones) overdue, and with assessors, coordinators and data
managers at each site. Then it times `run_daily` (schedule, queue the outbox, send the digests
with Django's in-memory mail backend) and counts its queries, at a tenth of the size and at the
full size, to show that the count does not grow. Human-readable lines first; the last line is
JSON with participants, visits, seconds, queries, reminders.

    python bench/reminders.py [--participants 20000]
"""

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench_reminders"


def prepare(database_url):
    os.environ.update(
        DATABASE_URL=database_url,
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        DJANGO_SETTINGS_MODULE="imrtrial.settings",
        EMAIL_URL="memory://",
    )
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 50)
    os.environ.pop("CELERY_BROKER_URL", None)
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: the name must contain 'bench'")
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')


def build(n, today, key):
    from assessments.services import schedule_visits
    from imrtrial.models import Membership, Participant, Role
    from imrtrial.trialconfig import create_trial, parse, resolve
    from tests.factories import make_user

    config = parse(resolve("danish").read_text()) | {"key": key}
    trial = create_trial(config)
    trial.status = "open"
    trial.save(update_fields=["status"])
    for site in trial.sites.all():
        for role in (Role.ASSESSOR, Role.COORDINATOR, Role.DATA_MANAGER):
            for k in range(2):
                user = make_user(f"{key}-{site.code}-{role}-{k}", email=f"{role}{k}@example.org")
                Membership.objects.create(user=user, trial=trial, site=site, role=role)
    sites = list(trial.sites.all())
    rng = random.Random(7)
    Participant.objects.bulk_create(
        (
            Participant(
                trial=trial,
                site=rng.choice(sites),
                participant_id=f"{key}-{i:05d}",
                status="randomized",
                randomized_on=today - dt.timedelta(days=rng.randrange(0, 730)),
                factor_levels={"diagnosis": "schizophrenia"},
            )
            for i in range(n)
        ),
        batch_size=5000,
    )
    schedule_visits(trial)
    # As in a running trial: most visits whose window has closed were done; 5% are overdue.
    from assessments.models import Visit

    past = list(
        Visit.objects.filter(participant__trial=trial, window_end__lt=today).values_list(
            "pk", flat=True
        )
    )
    done = [pk for pk in past if rng.random() >= 0.05]
    Visit.objects.filter(pk__in=done).update(completed_on=today - dt.timedelta(days=40))
    # Baseline precedes randomization: every randomized participant's baseline visit is done.
    Visit.objects.filter(participant__trial=trial, timepoint__code="baseline").update(
        completed_on=today - dt.timedelta(days=800)
    )
    return trial


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_REMINDERS_DATABASE_URL", DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args()
    prepare(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from assessments.models import Reminder, Visit
    from assessments.reminders import run_daily
    from imrtrial.models import Trial

    call_command("migrate", verbosity=0)
    today = timezone.localdate()
    results = {}
    for size, key in ((max(1, args.participants // 10), "small"), (args.participants, "full")):
        Trial.objects.update(status="closed")  # one measured trial at a time
        trial = build(size, today, key)
        Trial.objects.filter(status="open").exclude(pk=trial.pk).update(status="locked")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            outcome = run_daily(today)
            seconds = time.perf_counter() - start
        results[key] = {
            "participants": size,
            "visits": Visit.objects.filter(participant__trial=trial).count(),
            "seconds": round(seconds, 3),
            "queries": len(queries.captured_queries),
            "reminders": Reminder.objects.filter(visit__participant__trial=trial).count(),
            "digests": outcome["sent"],
        }
        print(f"{key}: {results[key]}")
    full = results["full"]
    full["queries_at_tenth_size"] = results["small"]["queries"]
    full["goal_seconds"] = 3
    print(json.dumps(full))


if __name__ == "__main__":
    main()
