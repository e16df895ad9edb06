"""Server time of the audit-trail and access-log pages over a long trail.

Builds a trial with 2,000 participants at two sites and --rows history rows of form entries
(plus one history row per participant, visit and screening) and --rows / 4 access-log rows,
then renders pages through the real views with Django's test client: the first page, a deep
page, and pages filtered by participant, user, period and kind, as a blinded data manager and
as the unblinded key holder. Runs against a dedicated PostgreSQL database that it drops and
recreates (its name must contain "bench"). The last line is one JSON object of median
milliseconds per page and the queries per page.

    python bench/audit_trail.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from crf_entry import recreate_database, setup_environment  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench_audit"


def build(n_rows):
    from django.utils import timezone

    from assessments.models import FormEntry
    from imrtrial.models import AccessLog, Participant, Role
    from tests.factories import grant, make_trial, make_user

    trial = make_trial(key="bench-audit")
    north, south = trial.sites.get(code="north"), trial.sites.get(code="south")
    users = {}
    for role in (Role.DATA_MANAGER, Role.KEY_HOLDER, Role.ASSESSOR):
        users[role] = make_user(f"{role.value}-bench")
        grant(users[role], trial, role)
    assessor = users[Role.ASSESSOR]
    participants = Participant.objects.bulk_create(
        Participant(trial=trial, site=north if i % 2 else south, participant_id=f"P-{i:05d}")
        for i in range(2000)
    )
    entries = FormEntry.objects.bulk_create(
        FormEntry(
            participant=p,
            instrument=instrument,
            timepoint="baseline",
            entered_by=assessor,
            values={instrument: 1},
        )
        for p in participants
        for instrument in ("gaf_f", "imrs_s")
    )
    history = FormEntry.history.model
    start = timezone.now() - dt.timedelta(days=700)
    step = dt.timedelta(days=700) / n_rows
    batch = []
    for i in range(n_rows):
        entry = entries[i % len(entries)]
        batch.append(
            history(
                id=entry.pk,
                participant_id=entry.participant_id,
                instrument=entry.instrument,
                instrument_version=1,
                timepoint="baseline",
                kind="single",
                values={entry.instrument: i % 90},
                scores={},
                status="draft",
                entered_by_id=assessor.pk,
                version=i // len(entries) + 1,
                updated_at=start + i * step,
                history_date=start + i * step,
                history_type="+" if i < len(entries) else "~",
                history_user_id=assessor.pk,
                history_change_reason="" if i < len(entries) else "correction",
            )
        )
        if len(batch) == 10_000:
            history.objects.bulk_create(batch)
            batch = []
    history.objects.bulk_create(batch)
    AccessLog.objects.bulk_create(
        AccessLog(
            user=users[Role.KEY_HOLDER],
            trial=trial,
            action=AccessLog.Action.EXPORT if i % 3 else AccessLog.Action.VIEW_ALLOCATION,
            target=participants[i % len(participants)].participant_id,
        )
        for i in range(n_rows // 4)
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return trial, users, participants


def time_pages(client, trial, users, participants, repeats):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from django.utils import timezone

    from imrtrial.models import Role

    today = timezone.localdate()
    cases = {
        "first_page": ("audit_trail", {}),
        "deep_page": ("audit_trail", {"page": "1500"}),
        "by_participant": ("audit_trail", {"participant": participants[777].participant_id}),
        "by_user": ("audit_trail", {"user": users[Role.ASSESSOR].get_username()}),
        "by_period": (
            "audit_trail",
            {"since": (today - dt.timedelta(days=30)).isoformat(), "until": today.isoformat()},
        ),
        "by_kind": ("audit_trail", {"kind": "formentry", "page": "100"}),
        "access_log": ("access_log", {}),
        "access_log_deep": ("access_log", {"page": "900"}),
    }
    results = {}
    for role in (Role.DATA_MANAGER, Role.KEY_HOLDER):
        client.force_login(users[role])
        for name, (view, params) in cases.items():
            url = reverse(view, args=[trial.key])
            times = []
            for _ in range(repeats):
                with CaptureQueriesContext(connection) as queries:
                    t0 = time.perf_counter()
                    response = client.get(url, params)
                    times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (name, response.status_code)
            key = f"{role.value}_{name}"
            results[key] = {"ms": round(statistics.median(times), 1), "queries": len(queries)}
            print(f"{key:40s} {results[key]['ms']:8.1f} ms  {len(queries):3d} queries")
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    setup_environment(args.database_url)
    # Server time of the pages, not of signing in: force_login gives a password-only session,
    # which two-factor sign-in (required of the unblinded key holder) would redirect.
    os.environ["TWO_FACTOR_REQUIRED"] = "false"
    recreate_database(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    trial, users, participants = build(args.rows)
    print(f"built {args.rows} history rows in {time.perf_counter() - t0:.1f} s")
    results = time_pages(Client(), trial, users, participants, args.repeats)
    print(json.dumps({"history_rows": args.rows, **results}))


if __name__ == "__main__":
    main()
