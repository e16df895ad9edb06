"""Throughput, latency and correctness of randomization under concurrency, against PostgreSQL.

Why: at the phone desk several coordinators may randomize at once. Within a stratum the
service serializes on the stratum row (SELECT ... FOR UPDATE), so the questions are how many
allocations per second the service sustains with K concurrent clients, how long a caller
waits at the 99th percentile, how close that comes to the same transaction written as raw SQL
(the floor), and whether anything went wrong: a participant allocated twice, a slot taken
twice or skipped, a stratum drifting further out of balance than the block design allows, an
allocation without its audit row.

What it does, in a dedicated database that it drops and recreates (never the dev or test
database):

1. migrates, loads the Danish preset (1:1, blocks 6/8/10, diagnosis x centre = 6 strata)
   twice -- one trial for the service, one for the floor -- opens both and makes one
   coordinator (no e-mail address, so the allocation notice sends nothing);
2. creates N eligible, consented participants with baseline done per trial, spread over the
   sites and diagnoses at random (seeded, the same spread for both trials);
3. ours: K worker processes start together and call ``randomize(participant, by=...)`` on
   their share of the participants, timing each call including loading the participant with
   their trial and site by the trial's key and the participant id, as the randomize view does
   (``imrtrial.access.desk_participant_or_404``, which asks the gate);
4. floor: K processes do the same work in raw SQL with psycopg -- load the participant with
   their site and trial by the same key and id, then one transaction: the lock check (trial and
   casebook read FOR KEY SHARE, as imrtrial.locking), lock the participant row with their
   screening read (stop if already randomized), every precondition but the gate (the trial
   open, eligible, consented, baseline done, factor levels), schedule the follow-up visits (the
   missing timepoints read, the visits inserted), lock the stratum row (creating it if
   missing), insert the allocation and its history row and its notice (the outbox row the
   beat's sweep sends), advance the stratum, set the participant's status and write its history
   row;
5. checks both trials for anomalies, and counts the queries of one randomize call in this
   process.

Usage::

    python bench/randomization.py [--n 20000] [--clients 32] [--seed 20240601]
                                   [--database-url postgres://postgres@127.0.0.1:5432/imrtrial_bench]

The database comes from ``--database-url``, else ``BENCH_DATABASE_URL``, else the default
above; ``DATABASE_URL`` is deliberately ignored (it usually names the dev database) and the
database name must contain "bench", because it is dropped. Human-readable lines are printed
first; the last line is a single JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import queue
import random
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

_BENCH_DIR = Path(__file__).resolve().parent
REPO = _BENCH_DIR.parent
# This file is called randomization.py: keep its directory off the path so that
# `import randomization` finds the Django app, not this script.
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _BENCH_DIR]
sys.path.insert(0, str(REPO))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench"
PRESET = "danish"
TRIAL_KEYS = {"ours": "bench-ours", "floor": "bench-floor", "profile": "bench-profile"}
# Same alphabet as the service's codes (read aloud on the phone: no 0/O, 1/I/L, U).
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
GOALS = {"anomalies": 0, "p99_ms": 100.0, "ratio_to_floor": 0.5}


# --- Environment and database ----------------------------------------------------------------


def configure_environment(database_url: str, broker: str) -> None:
    """Settings the project reads from the environment. Existing values win, except four the
    measurement depends on: the database (always the bench one) and how long a connection
    lives (as in production), DEBUG (off: no query log) and the broker. By default the notice
    is queued on a Redis database of its own, as in production, where the worker sends it;
    `--broker none` runs it eagerly in-process as in `make run`. Set here, they also beat a
    .env file, which never overrides the environment."""
    os.environ["DATABASE_URL"] = database_url
    # As production (docker-compose.yml, bench/load.py): a web process keeps its connection, so
    # randomization.statements prepares its statements once per connection. With 0 (the
    # settings' default, for a pooler in transaction mode) it sends them unprepared.
    os.environ["DATABASE_CONN_MAX_AGE"] = "60"
    os.environ["DEBUG"] = "false"
    os.environ["CELERY_BROKER_URL"] = "" if broker == "none" else broker
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imrtrial.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ.setdefault("RANDOMIZATION_SECRET", "bench-only-randomization-secret-" + "r" * 16)
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("EMAIL_URL", "dummy://")
    # ERROR: kombu warns once per process that the (eager, unused) broker has no hostname.
    os.environ.setdefault("LOG_LEVEL", "ERROR")


def ensure_services(database_url: str, broker: str) -> None:
    """A fresh clone after `make install-dev` has not started the local PostgreSQL and Redis:
    start them (scripts/services.sh, as `make test` does) when the bench's own are local and
    do not answer."""
    import psycopg

    parts = urlsplit(database_url)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    local = {"127.0.0.1", "localhost", "::1", None}
    try:
        psycopg.connect(admin_url, connect_timeout=5).close()
        database_up = True
    except psycopg.OperationalError:
        database_up = False
    broker_up = True
    if broker != "none":
        import redis

        try:
            redis.Redis.from_url(broker, socket_connect_timeout=5).ping()
        except redis.exceptions.ConnectionError:
            broker_up = False
    down_here = (not database_up and parts.hostname in local) or (
        not broker_up and urlsplit(broker).hostname in local
    )
    if down_here:
        print("bench: starting the local PostgreSQL and Redis (scripts/services.sh)")
        subprocess.run([str(REPO / "scripts" / "services.sh")], check=True)


def purge_broker(broker: str) -> None:
    """Nobody consumes the queued notices here: empty the bench's own Redis database."""
    if broker != "none":
        import redis

        redis.Redis.from_url(broker).flushdb()


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def recreate_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = database_name(url)
    if "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'bench'")
    parts = urlsplit(url)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# --- Fixture ---------------------------------------------------------------------------------


def make_coordinator():
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="bench-coordinator", email="")
    assert not user.email, "the coordinator must have no e-mail address: the notice sends nothing"
    return user


def make_trial(config: dict, key: str, coordinator):
    from imrtrial import trialconfig
    from imrtrial.models import Membership, Role, Trial

    config = dict(config, key=key, name=f"{config['name']} [{key}]")
    trial = trialconfig.create_trial(config)
    trial.status = Trial.Status.OPEN
    trial.save(update_fields=["status"])
    Membership.objects.create(user=coordinator, trial=trial, role=Role.COORDINATOR, site=None)
    return trial


def make_participants(trial, coordinator, spread: list[tuple[int, int]]) -> list[int]:
    """One eligible, consented participant with baseline done (and their screening) per entry
    of `spread` ((site index, diagnosis index)); returns the participant pks in that order."""
    from imrtrial.models import Participant
    from randomization.models import Screening

    sites = list(trial.sites.order_by("code"))
    diagnosis = trial.factors.get(from_site=False)
    levels = diagnosis.level_codes()
    criteria = list(trial.criteria.all())
    answers = {c.code: c.kind == c.Kind.INCLUSION for c in criteria}
    today = dt.date(2024, 6, 1)
    participants = [
        Participant(
            trial=trial,
            site=sites[site_index],
            participant_id=f"{trial.id_prefix}-{sites[site_index].code[:3].upper()}-{i + 1:05d}",
            factor_levels={diagnosis.code: levels[level_index]},
            baseline_completed_on=today,
        )
        for i, (site_index, level_index) in enumerate(spread)
    ]
    Participant.objects.bulk_create(participants, batch_size=2000)
    Screening.objects.bulk_create(
        (
            Screening(
                trial=trial,
                site=p.site,
                screening_number=f"S{i + 1:05d}",
                screened_on=today,
                answers=answers,
                eligible=True,
                exclusion_reasons=[],
                consent_date=today,
                consent_form_version="v1.0",
                consent_obtained_by="Bench Coordinator",
                participant=p,
                screened_by=coordinator,
            )
            for i, p in enumerate(participants)
        ),
        batch_size=2000,
    )
    return [p.pk for p in participants]


def vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# --- Running K workers together --------------------------------------------------------------


def with_ids(pks: list[int]) -> list[tuple[int, str]]:
    """(pk, participant id) of each participant, in the order of `pks`."""
    from imrtrial.models import Participant

    ids = dict(Participant.objects.filter(pk__in=pks).values_list("pk", "participant_id"))
    return [(pk, ids[pk]) for pk in pks]


def slices(pks: list[int], k: int, seed: int) -> list[list[int]]:
    order = list(pks)
    random.Random(f"{seed}|order").shuffle(order)
    return [order[i::k] for i in range(k)]


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_workers(label: str, target, per_worker: list[list[int]], shared: dict) -> dict:
    """Start one process per slice; they wait at a barrier, then work. Returns latencies (s),
    errors and the wall time from the first start to the last finish."""
    ctx = mp.get_context("spawn")
    k = len(per_worker)
    barrier = ctx.Barrier(k + 1)
    results = ctx.Queue()
    done = ctx.Value("q", 0)
    procs = [
        ctx.Process(
            target=target,
            args=(i, per_worker[i], shared, barrier, results, done),
            name=f"{label}-{i}",
        )
        for i in range(k)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=300)
    except threading.BrokenBarrierError:
        for p in procs:
            if p.is_alive():
                p.terminate()
        raise SystemExit(f"{label}: workers did not all start") from None
    busy_before = busy_cpu_seconds()
    print(f"{label}: {k} workers ready after {time.perf_counter() - started:.1f} s, running")
    total = sum(len(s) for s in per_worker)
    collected = []
    last_print = time.perf_counter()
    while len(collected) < k:
        try:
            collected.append(results.get(timeout=2))
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                message = f"{label}: worker {dead[0].name} died ({dead[0].exitcode})"
                raise SystemExit(message) from None
        if time.perf_counter() - last_print >= 15:
            last_print = time.perf_counter()
            print(f"{label}: {done.value}/{total} done", flush=True)
    busy_after = busy_cpu_seconds()
    for p in procs:
        p.join()
    latencies = [x for r in collected for x in r["latencies"]]
    errors = [e for r in collected for e in r["errors"]]
    wall = max(r["end"] for r in collected) - min(r["start"] for r in collected)
    cpu = sum(r["cpu"] for r in collected)
    busy = busy_after - busy_before if busy_before is not None else None
    return {"latencies": latencies, "errors": errors, "wall": wall, "cpu": cpu, "busy": busy}


def _report(worker, latencies, errors, start, end, cpu, results, done, count_since) -> None:
    with done.get_lock():
        done.value += count_since
    results.put(
        {
            "worker": worker,
            "latencies": latencies,
            "errors": errors,
            "start": start,
            "end": end,
            "cpu": cpu,
        }
    )


# --- Ours: through the service ---------------------------------------------------------------


def ours_worker(worker, pairs, shared, barrier, results, done) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connections

    from imrtrial import access
    from imrtrial.models import Perm
    from randomization.services import randomize, setup_of

    coordinator = get_user_model().objects.get(pk=shared["coordinator"])
    key = shared["trial_key"]
    # What a running web process has warm: its connection, the per-process trial setup and the
    # desk's prepared participant statement.
    first = access.desk_participant_or_404(coordinator, key, pairs[0][1], Perm.RANDOMIZE)
    setup_of(first.trial)
    latencies, errors = [], []
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    pending = 0
    for pk, participant_id in pairs:
        t0 = time.perf_counter()
        try:
            # As the randomize view: the participant, trial and site, and the gate's answer.
            participant = access.desk_participant_or_404(
                coordinator, key, participant_id, Perm.RANDOMIZE
            )
            randomize(participant, by=coordinator)
        except Exception as exc:  # counted and reported; the run goes on
            errors.append(f"{pk}: {type(exc).__name__}: {exc}")
        latencies.append(time.perf_counter() - t0)
        pending += 1
        if pending == 50:
            with done.get_lock():
                done.value += pending
            pending = 0
    end, cpu = time.perf_counter(), time.process_time() - cpu
    connections.close_all()
    _report(worker, latencies, errors, start, end, cpu, results, done, pending)


# --- Floor: the same transaction in raw SQL --------------------------------------------------


def floor_plan(trial, coordinator) -> dict:
    """Everything a floor worker needs, with table and column names read from the models and
    the design, arms and factors taken from the service's own helpers."""
    from django.conf import settings

    from assessments.models import Visit
    from imrtrial.models import Participant, Site, Timepoint, Trial
    from randomization.models import Allocation, AllocationNotice, Screening, Stratum
    from randomization.services import setup_of

    design, arm_pks, _ratio, factors, levels = setup_of(trial)
    N = AllocationNotice._meta
    P, A, S = Participant._meta, Allocation._meta, Stratum._meta
    T, TP, V, SCR = Trial._meta, Timepoint._meta, Visit._meta, Screening._meta
    HA, HP = Allocation.history.model._meta, Participant.history.model._meta

    def col(meta, name):
        return quote(meta.get_field(name).column)

    p_cols = [f.column for f in P.concrete_fields]
    a_cols = [f.column for f in A.concrete_fields if not f.primary_key]
    ha_cols = [f.column for f in HA.concrete_fields if not f.primary_key]
    hp_cols = [f.column for f in HP.concrete_fields if not f.primary_key]
    history_cols = {"history_date", "history_change_reason", "history_type", "history_user_id"}
    # Every history column must be a copy of the row or one of the four history fields.
    for name, cols, base in (
        ("allocation", ha_cols, a_cols + ["id"]),
        ("participant", hp_cols, p_cols),
    ):
        unknown = set(cols) - set(base) - history_cols
        if unknown:
            raise SystemExit(f"floor: unexpected {name} history columns {sorted(unknown)}")
    expected_a = {
        "trial_id", "participant_id", "stratum_id", "slot", "arm_id", "randomization_number",
        "confirmation_code", "allocated_at", "allocated_by_id", "in_error", "in_error_reason",
    }  # fmt: skip
    if set(a_cols) != expected_a:
        raise SystemExit(f"floor: allocation columns changed: {sorted(set(a_cols) ^ expected_a)}")
    # A visit as the scheduler makes it: its five dated columns, every other column its default.
    dated = ["participant", "timepoint", "target_date", "window_start", "window_end"]
    v_cols = [V.get_field(name).column for name in dated]
    v_defaults = {
        f.column: f.get_default()
        for f in V.concrete_fields
        if not f.primary_key and f.column not in v_cols
    }
    json_cols = [f.column for f in P.concrete_fields if f.get_internal_type() == "JSONField"]
    updates = [P.get_field("status").column]
    if any(f.name == "randomized_on" for f in P.concrete_fields):
        updates.append(P.get_field("randomized_on").column)

    def insert(meta, cols, returning=""):
        names = ", ".join(quote(c) for c in cols)
        marks = ", ".join(["%s"] * len(cols))
        return f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES ({marks}){returning}"

    return {
        "dsn": os.environ["DATABASE_URL"],
        "secret": settings.RANDOMIZATION_SECRET,
        "design": design,
        "arm_pks": arm_pks,
        "factors": factors,
        "levels": {code: codes for code, (_label, codes) in levels.items()},
        "trial_pk": trial.pk,
        "trial_key": trial.key,
        "id_prefix": trial.id_prefix,
        "coordinator": coordinator.pk,
        "randomized": Participant.Status.RANDOMIZED.value,
        "consented": Participant.Status.CONSENTED.value,
        "withdrawn": Participant.Status.WITHDRAWN.value,
        "open": Trial.Status.OPEN.value,
        "locked": Trial.Status.LOCKED.value,
        "anchors": {a.value: a.name for a in Timepoint.Anchor},
        "p_cols": p_cols,
        "a_cols": a_cols,
        "ha_cols": ha_cols,
        "hp_cols": hp_cols,
        "json_cols": json_cols,
        # As the randomize view: the participant with their site and trial, by the trial's key
        # and the participant id.
        "sql_participant": (
            f"SELECT {', '.join('p.' + quote(c) for c in p_cols)}, s.{col(Site._meta, 'code')}, "
            f"t.{col(T, 'status')}, t.{col(T, 'baseline_required_before_randomization')} "
            f"FROM {quote(P.db_table)} p JOIN {quote(Site._meta.db_table)} s "
            f"ON s.{quote(Site._meta.pk.column)} = p.{col(P, 'site')} "
            f"JOIN {quote(T.db_table)} t ON t.{quote(T.pk.column)} = p.{col(P, 'trial')} "
            f"WHERE t.{col(T, 'key')} = %s AND p.{col(P, 'participant_id')} = %s"
        ),
        # As imrtrial.locking.check_unlocked: the trial and the casebook, FOR KEY SHARE.
        "sql_lock_check": (
            f"SELECT t.{col(T, 'status')}, p.{col(P, 'casebook_locked_at')} "
            f"FROM {quote(T.db_table)} t, {quote(P.db_table)} p "
            f"WHERE t.{quote(T.pk.column)} = %s AND p.{quote(P.pk.column)} = %s FOR KEY SHARE"
        ),
        "sql_lock_stratum": (
            f"SELECT {quote(S.pk.column)}, {col(S, 'next_slot')} FROM {quote(S.db_table)} "
            f"WHERE {col(S, 'trial')} = %s AND {col(S, 'key')} = %s FOR UPDATE"
        ),
        "sql_insert_stratum": (
            f"INSERT INTO {quote(S.db_table)} ({col(S, 'trial')}, {col(S, 'key')}, "
            f"{col(S, 'next_slot')}) VALUES (%s, %s, 1) ON CONFLICT DO NOTHING"
        ),
        # As the service: lock the participant row first (FOR NO KEY UPDATE, as withdraw()
        # does), read their screening with it, and stop if already randomized.
        "sql_lock_participant": (
            f"SELECT p.{col(P, 'status')}, s.{col(SCR, 'eligible')}, "
            f"s.{col(SCR, 'consent_date')} FROM {quote(P.db_table)} p "
            f"LEFT JOIN {quote(SCR.db_table)} s ON s.{col(SCR, 'participant')} = "
            f"p.{quote(P.pk.column)} WHERE p.{quote(P.pk.column)} = %s FOR NO KEY UPDATE OF p"
        ),
        # The follow-up visits, as assessments.services.schedule_participant_visits: the
        # trial's timepoints the participant has no visit of yet, then one INSERT of those.
        "sql_missing_timepoints": (
            f"SELECT t.{quote(TP.pk.column)}, t.{col(TP, 'anchor')}, t.{col(TP, 'offset_days')}, "
            f"t.{col(TP, 'window_before_days')}, t.{col(TP, 'window_after_days')} "
            f"FROM {quote(TP.db_table)} t WHERE t.{col(TP, 'trial')} = %s AND NOT EXISTS "
            f"(SELECT 1 FROM {quote(V.db_table)} v WHERE v.{col(V, 'participant')} = %s "
            f"AND v.{col(V, 'timepoint')} = t.{quote(TP.pk.column)}) ORDER BY t.{col(TP, 'order')}"
        ),
        "sql_insert_visits": (
            f"INSERT INTO {quote(V.db_table)} "
            f"({', '.join(quote(c) for c in [*v_cols, *v_defaults])}) VALUES {{rows}} "
            "ON CONFLICT DO NOTHING"
        ),
        "visit_row": "(" + ", ".join(["%s"] * (len(v_cols) + len(v_defaults))) + ")",
        "visit_defaults": list(v_defaults.values()),
        "sql_insert_allocation": insert(A, a_cols, f" RETURNING {quote(A.pk.column)}"),
        "sql_insert_allocation_history": insert(HA, ha_cols),
        # Its notice, waiting to be sent (the beat's sweep sends it, off the call).
        "sql_insert_notice": (
            f"INSERT INTO {quote(N.db_table)} ({col(N, 'allocation')}, {col(N, 'attempts')}, "
            f"{col(N, 'last_error')}) VALUES (%s, 0, '')"
        ),
        "sql_advance_stratum": (
            f"UPDATE {quote(S.db_table)} SET {col(S, 'next_slot')} = %s "
            f"WHERE {quote(S.pk.column)} = %s"
        ),
        # The service sets the status and, where the model has it, the date of randomization.
        "participant_updates": updates,
        "time_zone": settings.TIME_ZONE,
        "sql_participant_status": (
            f"UPDATE {quote(P.db_table)} SET "
            + ", ".join(f"{quote(c)} = %s" for c in updates)
            + f" WHERE {quote(P.pk.column)} = %s"
        ),
        "sql_insert_participant_history": insert(HP, hp_cols),
    }


def _code(n: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(n))


class FloorRefused(Exception):
    """What the service's Refused would say; counted as an error (none is expected)."""


def floor_preconditions(plan, participant, trial_status, baseline_required, screening):
    """The service's check_can_randomize, minus the gate (the bench's coordinator holds the
    role at every site; ours asks the gate from its per-request cache, no query)."""
    if trial_status != plan["open"]:
        raise FloorRefused("trial not open")
    status, eligible, consent_date = screening
    if status == plan["withdrawn"]:
        raise FloorRefused("withdrawn")
    if not eligible:
        raise FloorRefused("no eligible screening")
    if consent_date is None:
        raise FloorRefused("no consent")
    if baseline_required and not participant["baseline_completed_on"]:
        raise FloorRefused("no baseline")
    if any(participant["factor_levels"].get(c) not in codes for c, codes in plan["levels"].items()):
        raise FloorRefused("factor level missing")
    if status != plan["consented"]:
        raise FloorRefused(f"status {status}")


def floor_schedule_visits(conn, plan, participant) -> None:
    """The participant's missing visits, dated from their anchor (as visit_dates)."""
    anchors = {
        "ENROLMENT": participant["created_at"].astimezone(ZoneInfo(plan["time_zone"])).date(),
        "BASELINE": participant["baseline_completed_on"],
        "RANDOMIZATION": participant["randomized_on"],
    }
    rows = []
    missing = conn.execute(plan["sql_missing_timepoints"], (plan["trial_pk"], participant["id"]))
    for timepoint, anchor, offset, before, after in missing.fetchall():
        day = anchors[plan["anchors"][anchor]]
        if day is None:
            continue
        target = day + dt.timedelta(days=offset)
        rows.append(
            [
                participant["id"],
                timepoint,
                target,
                target - dt.timedelta(days=before),
                target + dt.timedelta(days=after),
                *plan["visit_defaults"],
            ]
        )
    if rows:
        sql = plan["sql_insert_visits"].format(rows=", ".join([plan["visit_row"]] * len(rows)))
        conn.execute(sql, [value for row in rows for value in row])


def floor_randomize(conn, plan: dict, pk: int, participant_id: str) -> int | None:
    """One randomization; returns the new allocation's key (None if it existed)."""
    from psycopg.types.json import Jsonb

    from randomization.sequence import arm_at

    row = conn.execute(plan["sql_participant"], (plan["trial_key"], participant_id)).fetchone()
    participant = dict(zip(plan["p_cols"], row[:-3], strict=True))
    site_code, trial_status, baseline_required = row[-3:]
    key = "|".join(
        f"{code}={site_code if from_site else participant['factor_levels'].get(code)}"
        for code, from_site in plan["factors"]
    )
    trial_pk = plan["trial_pk"]
    with conn.transaction():
        locks = conn.execute(plan["sql_lock_check"], (trial_pk, pk)).fetchone()
        if locks[0] == plan["locked"] or locks[1] is not None:
            raise FloorRefused("locked")
        screening = conn.execute(plan["sql_lock_participant"], (pk,)).fetchone()
        if screening[0] == plan["randomized"]:
            return None
        floor_preconditions(plan, participant, trial_status, baseline_required, screening)
        participant["status"] = plan["randomized"]
        if "randomized_on" in plan["participant_updates"]:
            participant["randomized_on"] = dt.datetime.now(ZoneInfo(plan["time_zone"])).date()
        floor_schedule_visits(conn, plan, participant)
        stratum = conn.execute(plan["sql_lock_stratum"], (trial_pk, key)).fetchone()
        if stratum is None:
            conn.execute(plan["sql_insert_stratum"], (trial_pk, key))
            stratum = conn.execute(plan["sql_lock_stratum"], (trial_pk, key)).fetchone()
        stratum_pk, slot = stratum
        arm = arm_at(plan["design"], plan["secret"], plan["trial_key"], key, slot)
        now = dt.datetime.now(dt.UTC)
        allocation = {
            "trial_id": trial_pk,
            "participant_id": pk,
            "stratum_id": stratum_pk,
            "slot": slot,
            "arm_id": plan["arm_pks"][arm],
            "randomization_number": f"{plan['id_prefix']}-R{_code(8)}",
            "confirmation_code": _code(6),
            "allocated_at": now,
            "allocated_by_id": plan["coordinator"],
            "in_error": False,
            "in_error_reason": "",
        }
        (allocation["id"],) = conn.execute(
            plan["sql_insert_allocation"], [allocation[c] for c in plan["a_cols"]]
        ).fetchone()
        history = {
            "history_date": dt.datetime.now(dt.UTC),
            "history_user_id": plan["coordinator"],
        }
        conn.execute(
            plan["sql_insert_allocation_history"],
            [
                {**allocation, **history, "history_type": "+", "history_change_reason": ""}[c]
                for c in plan["ha_cols"]
            ],
        )
        conn.execute(plan["sql_insert_notice"], (allocation["id"],))
        conn.execute(plan["sql_advance_stratum"], (slot + 1, stratum_pk))
        changes = {c: participant[c] for c in plan["participant_updates"]}
        conn.execute(
            plan["sql_participant_status"],
            [*changes.values(), pk],
        )
        stored = {**participant, **changes}
        for c in plan["json_cols"]:
            stored[c] = Jsonb(stored[c])
        conn.execute(
            plan["sql_insert_participant_history"],
            [
                {**stored, **history, "history_type": "~", "history_change_reason": "randomized"}[c]
                for c in plan["hp_cols"]
            ],
        )
    return allocation["id"]


def floor_worker(worker, pairs, plan, barrier, results, done) -> None:
    import django
    import psycopg

    # Only for the allocation notice without a broker (--broker none), sent after commit as the
    # service sends it then; with a broker the sweep sends it, off the call, for both.
    django.setup()
    from imrtrial.celery import app
    from randomization.services import send_notice

    eager = app.conf.task_always_eager
    latencies, errors = [], []
    # psycopg's default: a statement run 5 times is prepared (the best raw SQL can do).
    with psycopg.connect(plan["dsn"], autocommit=True, prepare_threshold=5) as conn:
        conn.execute("SELECT 1")
        barrier.wait()
        start, cpu = time.perf_counter(), time.process_time()
        pending = 0
        for pk, participant_id in pairs:
            t0 = time.perf_counter()
            try:
                allocation = floor_randomize(conn, plan, pk, participant_id)
                if allocation is not None and eager:
                    send_notice(allocation)
            except Exception as exc:  # counted and reported; the run goes on
                errors.append(f"{pk}: {type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - t0)
            pending += 1
            if pending == 50:
                with done.get_lock():
                    done.value += pending
                pending = 0
        end, cpu = time.perf_counter(), time.process_time() - cpu
    _report(worker, latencies, errors, start, end, cpu, results, done, pending)


# --- Anomalies -------------------------------------------------------------------------------


def anomalies_of(trial, n_expected: int) -> tuple[dict, dict]:
    """(counts by kind, facts): what must never happen, checked on the rows as stored."""
    from django.conf import settings

    from imrtrial.models import Participant
    from randomization import sequence
    from randomization.models import Allocation, AllocationNotice, Stratum
    from randomization.services import setup_of

    design = setup_of(trial).design
    bound = sequence.max_imbalance_bound(design)
    rows = list(
        Allocation.objects.filter(trial=trial)
        .order_by("stratum_id", "slot", "pk")
        .values_list("pk", "participant_id", "stratum_id", "slot", "arm__code")
    )
    strata = dict(Stratum.objects.filter(trial=trial).values_list("pk", "key"))
    next_slots = dict(Stratum.objects.filter(trial=trial).values_list("pk", "next_slot"))
    per_participant = Counter(participant for _, participant, *_ in rows)
    found = Counter()
    found["double_allocations"] = sum(c - 1 for c in per_participant.values() if c > 1)
    worst = {}
    by_stratum = defaultdict(list)
    for _, _, stratum, slot, arm in rows:
        by_stratum[stratum].append((slot, arm))
    for stratum, entries in by_stratum.items():
        slots = [slot for slot, _ in entries]
        found["duplicate_slots"] += len(slots) - len(set(slots))
        found["skipped_slots"] += len(set(range(1, len(slots) + 1)) - set(slots))
        found["next_slot_mismatch"] += next_slots[stratum] != len(slots) + 1
        counts = Counter()
        worst[strata[stratum]] = 0
        for slot, arm in entries:
            counts[arm] += 1
            now = sequence.imbalance(counts, design)
            worst[strata[stratum]] = max(worst[strata[stratum]], now)
            found["imbalance_beyond_bound"] += now > bound
            expected = sequence.arm_at(
                design, settings.RANDOMIZATION_SECRET, trial.key, strata[stratum], slot
            )
            found["arm_not_from_sequence"] += arm != expected
    history = Allocation.history.model.objects.filter(trial_id=trial.pk, history_type="+")
    audited = set(history.values_list("id", flat=True))
    found["allocations_without_audit_row"] = sum(pk not in audited for pk, *_ in rows)
    notices = AllocationNotice.objects.filter(allocation__trial=trial)
    noticed = set(notices.values_list("pk", flat=True))
    found["allocations_without_notice"] = sum(pk not in noticed for pk, *_ in rows)
    allocated = set(per_participant)
    participants = dict(Participant.objects.filter(trial=trial).values_list("pk", "status"))
    found["unallocated"] = n_expected - len(allocated & set(participants))
    randomized = Participant.Status.RANDOMIZED
    found["status_mismatch"] = sum(
        (status == randomized) != (pk in allocated) for pk, status in participants.items()
    )
    if any(f.name == "randomized_on" for f in Participant._meta.concrete_fields):
        undated = Participant.objects.filter(pk__in=allocated, randomized_on__isnull=True)
        found["randomized_without_date"] = undated.count()
    participant_history = Participant.history.model.objects.filter(
        trial_id=trial.pk, history_type="~", status=randomized
    )
    found["randomized_without_participant_audit_row"] = len(
        allocated - set(participant_history.values_list("id", flat=True))
    )
    facts = {
        "allocations": len(rows),
        "strata": len(by_stratum),
        "imbalance_bound": bound,
        "worst_imbalance": max(worst.values(), default=0),
        "stratum_sizes": {strata[s]: len(e) for s, e in sorted(by_stratum.items())},
    }
    return dict(found), facts


# --- Query count of one call -----------------------------------------------------------------


def profile_queries(config: dict, coordinator, calls: int = 10) -> dict:
    """Queries of one randomize call in this process once the stratum exists and the
    per-process caches are warm, and with the gate's per-user cache cold (as for the fresh
    user object of a new request)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from imrtrial import access
    from imrtrial.models import Perm
    from randomization.services import randomize

    trial = make_trial(config, TRIAL_KEYS["profile"], coordinator)
    n_sites = trial.sites.count()
    n_levels = len(trial.factors.get(from_site=False).level_codes())
    warmup = n_sites * n_levels  # one per stratum: creates every stratum
    spread = [(i % n_sites, (i // n_sites) % n_levels) for i in range(warmup + calls + 1)]
    pks = with_ids(make_participants(trial, coordinator, spread))
    user = get_user_model().objects.get(pk=coordinator.pk)

    def one(pair):
        with CaptureQueriesContext(connection) as captured:
            participant = access.desk_participant_or_404(user, trial.key, pair[1], Perm.RANDOMIZE)
            randomize(participant, by=user)
        return [q["sql"] for q in captured.captured_queries]

    first = one(pks[0])  # new stratum, cold process caches
    for pair in pks[1:warmup]:
        one(pair)
    warm = [one(pair) for pair in pks[warmup:-1]]
    access.forget(user)
    cold = one(pks[-1])
    counts = Counter(len(q) for q in warm)
    return {
        "count": counts.most_common(1)[0][0],
        "warm_counts": sorted(counts),
        "cold_user_count": len(cold),
        "first_call_count": len(first),
        "sample": warm[-1],
    }


def describe_query(sql: str) -> str:
    words = sql.split()
    verb = words[0].upper() if words else "?"
    if len(words) == 1:
        return verb
    if verb in ("EXECUTE", "PREPARE"):  # a prepared statement, named after what it does
        return f"{verb} {words[1].split('(')[0]}"
    table = "?"
    for marker in ("FROM", "INTO", "UPDATE"):
        if marker in words:
            i = words.index(marker)
            if i + 1 < len(words):
                table = words[i + 1].strip('"')
                break
    if verb == "UPDATE":
        table = words[1].strip('"')
    extra = " FOR UPDATE" if sql.rstrip().upper().endswith("FOR UPDATE") else ""
    return f"{verb} {table}{extra}"


# --- Main ------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(label: str, n: int, run: dict) -> dict:
    lat = sorted(x * 1000 for x in run["latencies"])
    stats = {
        "throughput_per_s": round(n / run["wall"], 1) if run["wall"] else None,
        "wall_s": round(run["wall"], 2),
        "p50_ms": round(percentile(lat, 0.50), 2),
        "p90_ms": round(percentile(lat, 0.90), 2),
        "p99_ms": round(percentile(lat, 0.99), 2),
        "max_ms": round(lat[-1], 2) if lat else None,
        "errors": len(run["errors"]),
        "client_cpu_ms_per_call": round(run["cpu"] * 1000 / n, 2),
        # Everything else busy meanwhile: mostly PostgreSQL.
        "other_cpu_ms_per_call": (
            round((run["busy"] - run["cpu"]) * 1000 / n, 2) if run["busy"] is not None else None
        ),
    }
    print(
        f"{label}: {n} in {stats['wall_s']} s = {stats['throughput_per_s']}/s; "
        f"latency p50 {stats['p50_ms']} ms, p90 {stats['p90_ms']} ms, "
        f"p99 {stats['p99_ms']} ms, max {stats['max_ms']} ms; "
        f"CPU per call: clients {stats['client_cpu_ms_per_call']} ms, "
        f"rest of the machine (mostly PostgreSQL) {stats['other_cpu_ms_per_call']} ms; "
        f"errors {stats['errors']}"
    )
    for error in run["errors"][:5]:
        print(f"{label}:   error {error}")
    return stats


def print_anomalies(label: str, found: dict, facts: dict) -> None:
    total = sum(found.values())
    listed = ", ".join(f"{k} {v}" for k, v in found.items() if v) or "none"
    print(
        f"{label}: {facts['allocations']} allocations in {facts['strata']} strata, "
        f"worst imbalance {facts['worst_imbalance']} (bound {facts['imbalance_bound']}); "
        f"anomalies {total} ({listed})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="randomizations (per run)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent processes")
    parser.add_argument("--seed", type=int, default=20240601, help="spread of participants")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database to DROP and recreate (name must contain 'bench')",
    )
    parser.add_argument(
        "--broker",
        default="redis://127.0.0.1:6379/14",
        help="Celery broker for the allocation notice (emptied before and after), or 'none'",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.clients < 1:
        parser.error("--n and --clients must be at least 1")
    clients = min(args.clients, args.n)

    configure_environment(args.database_url, args.broker)
    ensure_services(args.database_url, args.broker)
    purge_broker(args.broker)
    print(f"bench: recreating database {database_name(args.database_url)!r} and migrating")
    recreate_database(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command

    # Imported now, with the models: one consistent snapshot of the code for this process.
    import randomization.services  # noqa: F401
    from imrtrial import trialconfig

    call_command("migrate", verbosity=0, interactive=False)

    config = trialconfig.parse(trialconfig.resolve(PRESET).read_text(encoding="utf-8"))
    coordinator = make_coordinator()
    trials = {name: make_trial(config, TRIAL_KEYS[name], coordinator) for name in ("ours", "floor")}
    rng = random.Random(args.seed)
    n_sites = trials["ours"].sites.count()
    n_levels = len(trials["ours"].factors.get(from_site=False).level_codes())
    spread = [(rng.randrange(n_sites), rng.randrange(n_levels)) for _ in range(args.n)]
    pks = {name: make_participants(trial, coordinator, spread) for name, trial in trials.items()}
    pairs = {name: with_ids(pks[name]) for name in pks}
    vacuum_analyze()
    print(
        f"bench: preset {PRESET!r}, {args.n} participants per run over {n_sites} sites x "
        f"{n_levels} diagnoses, {clients} clients, {os.cpu_count()} CPUs"
    )

    ours_run = run_workers(
        "ours",
        ours_worker,
        slices(pairs["ours"], clients, args.seed),
        {"coordinator": coordinator.pk, "trial_key": trials["ours"].key},
    )
    ours = summarize("ours", args.n, ours_run)
    ours_found, ours_facts = anomalies_of(trials["ours"], args.n)
    print_anomalies("ours", ours_found, ours_facts)

    vacuum_analyze()
    plan = floor_plan(trials["floor"], coordinator)
    floor_run = run_workers("floor", floor_worker, slices(pairs["floor"], clients, args.seed), plan)
    floor = summarize("floor", args.n, floor_run)
    floor_found, floor_facts = anomalies_of(trials["floor"], args.n)
    print_anomalies("floor", floor_found, floor_facts)

    profile = profile_queries(config, coordinator)
    print(
        f"queries per randomize call, loading the participant and BEGIN/COMMIT included: "
        f"{profile['count']} (stratum exists, caches warm), {profile['cold_user_count']} with "
        f"a fresh user object, {profile['first_call_count']} for the first call of a process "
        f"in a new stratum"
    )
    for i, sql in enumerate(profile["sample"], 1):
        print(f"  {i:2d}. {describe_query(sql)}")

    ratio = (
        round(ours["throughput_per_s"] / floor["throughput_per_s"], 3)
        if ours["throughput_per_s"] and floor["throughput_per_s"]
        else None
    )
    result = {
        "n": args.n,
        "clients": clients,
        "throughput_per_s": ours["throughput_per_s"],
        "p50_ms": ours["p50_ms"],
        "p90_ms": ours["p90_ms"],
        "p99_ms": ours["p99_ms"],
        "max_ms": ours["max_ms"],
        "wall_s": ours["wall_s"],
        "errors": ours["errors"],
        "client_cpu_ms_per_call": ours["client_cpu_ms_per_call"],
        "other_cpu_ms_per_call": ours["other_cpu_ms_per_call"],
        "floor_throughput_per_s": floor["throughput_per_s"],
        "floor_p50_ms": floor["p50_ms"],
        "floor_p99_ms": floor["p99_ms"],
        "floor_wall_s": floor["wall_s"],
        "floor_errors": floor["errors"],
        "floor_client_cpu_ms_per_call": floor["client_cpu_ms_per_call"],
        "floor_other_cpu_ms_per_call": floor["other_cpu_ms_per_call"],
        "ratio_to_floor": ratio,
        "anomalies": sum(ours_found.values()),
        "anomaly_detail": ours_found,
        "floor_anomalies": sum(floor_found.values()),
        "floor_anomaly_detail": floor_found,
        "strata": ours_facts["strata"],
        "worst_imbalance": ours_facts["worst_imbalance"],
        "imbalance_bound": ours_facts["imbalance_bound"],
        "queries_per_call": profile["count"],
        "queries_per_call_fresh_user": profile["cold_user_count"],
        "cpus": os.cpu_count(),
    }
    met = {
        "anomalies": result["anomalies"] == GOALS["anomalies"] and not result["errors"],
        "p99_ms": result["p99_ms"] <= GOALS["p99_ms"],
        "ratio_to_floor": ratio is not None and ratio >= GOALS["ratio_to_floor"],
    }
    result["goals_met"] = met
    relation = {"anomalies": "==", "p99_ms": "<=", "ratio_to_floor": ">="}
    print(
        "goals: "
        + "; ".join(
            f"{name} {result[name]} (goal {relation[name]} {GOALS[name]}) "
            + ("met" if ok else "MISSED")
            for name, ok in met.items()
        )
    )
    purge_broker(args.broker)
    result["broker"] = "none (eager)" if args.broker == "none" else "redis"
    print(json.dumps(result, sort_keys=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
