"""The nightly data quality run over a large trial, and what the rules add to a PANSS save.

Builds the Danish preset (its three trial rules, plus eleven more written here: 20 rules with
the four built-in and the two form rules) with --participants randomized participants x 3
visits, every instrument of every visit entered as a counting entry with plausible values, and
a few records that break rules (visits out of window, outliers, implausible changes,
withdrawals before a visit), with bulk_create (not through the services, for speed).

Then runs the nightly job (quality.services.run) twice on a trial of a tenth of the size and
twice at full size, each run in a fresh process so its peak memory (VmHWM, see
export.own_peak_mb) is the job's own; counts its SQL statements (the second run, which writes
nothing, must issue as many at both sizes). Last, saves a PANSS through
assessments.services.save_entry alternately with the rules asked (acknowledge=True) and without
(acknowledge=None), on the full trial, and reports both medians.

Runs against a dedicated PostgreSQL database that it drops and recreates (its name must contain
"bench"). The last line is one JSON object.

    python bench/quality_rules.py [--participants 5000] [--saves 60]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from crf_entry import recreate_database, setup_environment  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench_quality_rules"

# Eleven rules on top of the preset's three: realistic checks across forms and visits.
EXTRA_RULES = [
    ("panss_vs_gaf_s", ["panss", "gaf_s"], "panss.scores.total > 120 and gaf_s.gaf_s > 70"),
    ("panss_change", ["panss"], "abs(panss.scores.total - previous.panss.scores.total) > 60"),
    ("hamd6_change", ["hamd6"], "abs(hamd6.scores.total - previous.hamd6.scores.total) > 15"),
    ("ymrs_change", ["ymrs"], "abs(ymrs.scores.total - previous.ymrs.scores.total) > 40"),
    (
        "mhrm_since_baseline",
        ["mhrm"],
        "abs(mhrm.scores.total - visits.baseline.mhrm.scores.total) > 80",
    ),
    ("gaf_s_change", ["gaf_s"], "abs(gaf_s.gaf_s - previous.gaf_s.gaf_s) > 40"),
    ("psp_vs_gaf_f", ["psp", "gaf_f"], "abs(psp.scores.total - gaf_f.gaf_f) > 40"),
    ("csq8_low", ["csq8"], "csq8.scores.total < 9"),
    ("many_admissions", ["service_use"], "service_use.admissions > 12"),
    ("visit_long_after_target", [], "days_between(visit.target, visit.date) > 45"),
    ("visit_after_withdrawal", [], "answered(withdrawn_on) and visit.date > withdrawn_on"),
]


def trial_config(key):
    """The Danish preset under `key`, with EXTRA_RULES added to its quality_rules (read and
    written as YAML: the section is not the file's last)."""
    import yaml

    from imrtrial.trialconfig import parse, resolve

    config = yaml.safe_load(resolve("danish").read_text())
    config["key"] = key
    config["quality_rules"] += [
        {
            "code": code,
            "name": f"Bench rule {code}",
            "message": f"Check {code.replace('_', ' ')} against the source.",
            "forms": forms,
            "check": check,
        }
        for code, forms, check in EXTRA_RULES
    ]
    return parse(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))


def value_for(item, rng, level, count=False):
    """A plausible value: near the participant's level on wide scales, random on others."""
    if item.type == "choice":
        return rng.choice(item.choices)[0]
    if item.type == "boolean":
        return rng.random() < 0.05
    if item.type == "date":
        return None
    if item.type == "text":
        return None
    lo, hi = item.min, item.max
    if count:
        value = rng.choice((0, 0, 0, 1, 2)) if hi <= 400 else rng.randint(0, 20)
    elif hi - lo >= 50:
        value = round(lo + (hi - lo) * level + rng.gauss(0, (hi - lo) * 0.06))
    elif hi - lo >= 10:
        value = round(lo + (hi - lo) * 0.2 * rng.random())  # counts: mostly low
    else:
        value = lo + int(rng.random() ** 2 * (hi - lo + 1))  # symptom ratings: mostly low
    value = min(max(value, lo), hi)
    return float(value) if item.type == "decimal" else int(value)


def build(n_participants, *, key, seed=14):
    """A trial with every instrument entered at every visit; returns (trial, assessor)."""
    from django.utils import timezone

    from assessments import registry
    from assessments.definitions import compute_scores
    from assessments.models import FormEntry, Visit
    from assessments.services import DOUBLE_ENTRY_RATERS, schedule_visits
    from imrtrial.models import Membership, Participant, Role
    from imrtrial.trialconfig import create_trial
    from randomization.models import Withdrawal
    from tests.factories import make_user

    rng = random.Random(seed)
    trial = create_trial(trial_config(key))
    trial.status = "open"
    trial.save(update_fields=["status"])
    assessor = make_user(f"{key}-assessor")
    Membership.objects.create(user=assessor, trial=trial, role=Role.ASSESSOR)
    dm = make_user(f"{key}-dm")
    Membership.objects.create(user=dm, trial=trial, role=Role.DATA_MANAGER)
    sites = list(trial.sites.all())
    today = timezone.localdate()
    randomized_on = today - dt.timedelta(days=700)
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
    # Baseline is anchored on enrolment (today for rows made now): put it before randomization.
    Visit.objects.filter(participant__trial=trial, timepoint__code="baseline").update(
        target_date=randomized_on - dt.timedelta(days=10),
        window_start=randomized_on - dt.timedelta(days=30),
        window_end=randomized_on + dt.timedelta(days=50),
    )
    installed = registry.all_instruments()
    levels = {}
    entries, dates = [], {}
    visits = Visit.objects.filter(participant__trial=trial).select_related("timepoint")
    for visit in visits.iterator(chunk_size=2000):
        level = levels.setdefault(visit.participant_id, rng.uniform(0.25, 0.75))
        drift = rng.gauss(0, 0.05)
        day = visit.target_date + dt.timedelta(days=rng.randint(-5, 5))
        if rng.random() < 0.005:
            day = visit.window_end + dt.timedelta(days=rng.randint(5, 60))  # out of window
        dates[visit.pk] = day
        for code in visit.timepoint.instruments:
            instrument = installed[code]
            values = {}
            for item in instrument.items:
                value = value_for(item, rng, level + drift, code == "service_use")
                if value is not None:
                    values[item.code] = value
            if code == "panss":  # unusual thought content goes with delusions
                values["g9"] = min(max(values["p1"] + rng.randint(-1, 1), 1), 7)
            if code == "service_use" and rng.random() < 0.003:
                values["outpatient_visits"] = 1500  # a typing slip: an outlier
            if code == "gaf_f" and rng.random() < 0.003:
                values["gaf_f"] = 1 if level > 0.5 else 100  # an outlier, an implausible change
            kind = "final" if instrument.rater in DOUBLE_ENTRY_RATERS else "single"
            entries.append(
                FormEntry(
                    participant_id=visit.participant_id,
                    visit=visit,
                    instrument=code,
                    timepoint=visit.timepoint.code,
                    kind=kind,
                    values=values,
                    scores=compute_scores(instrument, values),
                    status="complete",
                    entered_by=assessor,
                )
            )
        if len(entries) >= 20000:
            FormEntry.objects.bulk_create(entries, batch_size=5000)
            entries = []
    FormEntry.objects.bulk_create(entries, batch_size=5000)
    Visit.objects.bulk_update(
        [Visit(pk=pk, completed_on=day) for pk, day in dates.items()],
        ["completed_on"],
        batch_size=5000,
    )
    ids = list(Participant.objects.filter(trial=trial).values_list("pk", flat=True))
    Withdrawal.objects.bulk_create(
        Withdrawal(
            participant_id=pk,
            level=2,
            withdrawn_on=randomized_on + dt.timedelta(days=400),  # before follow-up
            reason="bench",
            recorded_by=dm,
        )
        for pk in rng.sample(ids, max(1, len(ids) // 500))
    )
    return trial, assessor


def run_in_fresh_process(database_url, key):
    """One nightly run of the trial `key` in a new process: its own peak memory and time."""
    done = subprocess.run(
        [sys.executable, __file__, "--database-url", database_url, "--run-only", key],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_only(key):
    import django

    django.setup()
    from django.db import connection

    from imrtrial.models import Trial
    from quality import services
    from quality.models import RuleRun

    statements = []

    def count(execute, sql, params, many, context):
        statements.append(1)
        return execute(sql, params, many, context)

    trial = Trial.objects.get(key=key)
    run = RuleRun.objects.create(trial=trial)
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        run = services.run(run.pk)
    seconds = time.perf_counter() - started
    from export import own_peak_mb  # bench/export.py: ru_maxrss starts at the parent's size

    peak_mb = own_peak_mb()
    print(
        json.dumps(
            {
                "status": run.status,
                "error": run.error,
                "seconds": round(seconds, 2),
                "peak_mb": round(peak_mb, 1),
                "opened": run.opened,
                "closed": run.closed,
                "sql": len(statements),
                "rules": len(run.breaking),
                "breaking": sum(sum(v.values()) for v in run.breaking.values()),
            }
        )
    )


def save_medians(trial, assessor, saves):
    """Median ms of a PANSS save with the rules asked and without, alternating."""
    from assessments import services as crf
    from assessments.models import FormEntry, Visit

    entry = (
        FormEntry.objects.filter(participant__trial=trial, instrument="panss", timepoint="post")
        .select_related("visit")
        .first()
    )
    visit = Visit.objects.select_related("participant__trial", "timepoint").get(pk=entry.visit_id)
    raw = {k: str(v) for k, v in entry.values.items()}
    timings = {"with": [], "without": []}
    for n in range(saves * 2 + 4):
        mode = "with" if n % 2 == 0 else "without"
        raw["p2"] = str(2 + n % 3)
        started = time.perf_counter()
        crf.save_entry(
            visit,
            "panss",
            raw,
            by=assessor,
            kind=entry.kind,
            complete=True,
            reason="bench: re-rated",
            acknowledge=True if mode == "with" else None,
        )
        if n >= 4:  # the first saves warm the caches
            timings[mode].append((time.perf_counter() - started) * 1000)
    return {mode: statistics.median(ms) for mode, ms in timings.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--saves", type=int, default=60)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_QUALITY_DATABASE_URL", DEFAULT_DATABASE_URL),
    )
    parser.add_argument("--run-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup_environment(args.database_url)
    if args.run_only:
        return run_only(args.run_only)
    recreate_database(args.database_url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from assessments.models import FormEntry

    call_command("migrate", verbosity=0)
    tenth = max(args.participants // 10, 1)
    started = time.perf_counter()
    build(tenth, key="tenth")
    trial, assessor = build(args.participants, key="full")
    build_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have done on a live database
    forms = FormEntry.objects.filter(participant__trial=trial).count()
    small = [run_in_fresh_process(args.database_url, "tenth") for _ in range(2)]
    full = [run_in_fresh_process(args.database_url, "full") for _ in range(2)]
    for name, runs in (("tenth", small), ("full", full)):
        for n, r in enumerate(runs, 1):
            print(f"{name} run {n}: {r}")
    medians = save_medians(trial, assessor, args.saves)
    print(
        f"{args.participants} participants, {forms} form entries (built in {build_s:.0f} s); "
        f"PANSS save median {medians['with']:.1f} ms with rules, "
        f"{medians['without']:.1f} ms without"
    )
    first, second = full
    result = {
        "participants": args.participants,
        "rules": first["rules"],
        "form_entries": forms,
        "seconds": first["seconds"],
        "peak_mb": max(first["peak_mb"], second["peak_mb"]),
        "first_run_opened": first["opened"],
        "records_breaking": first["breaking"],
        "second_run_seconds": second["seconds"],
        "second_run_opened": second["opened"],
        "second_run_closed": second["closed"],
        "second_run_sql": second["sql"],
        "second_run_sql_at_tenth": small[1]["sql"],
        "seconds_at_tenth": small[0]["seconds"],
        "save_median_ms_with_rules": round(medians["with"], 2),
        "save_median_ms_without_rules": round(medians["without"], 2),
        "goal": {"seconds": 60, "peak_mb": 500, "save_added_ms": 10},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
