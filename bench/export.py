"""Seconds and peak memory to export the blinded dataset of a synthetic Danish trial
(5,000 participants x 3 timepoints, every instrument entered) as CSV, SPSS .sav and ODM, against
floors measured in the same run:
- CSV: pandas writing the same frame to CSV (the frame already in memory: the writing alone);
- SPSS: the same rows and columns, stored in PostgreSQL already in the shape the file needs (a
  plain table: one float8 column per number or date, in SPSS's units, one text column per
  string), read with one SELECT and fetchall, put in a frame (float64 and str columns) and
  written by pyreadstat with the same labels, formats and missing ranges. The run checks that
  this file holds the same data and dictionary as the export's. The writing alone is reported
  too (floor_sav_write_s, sav_ratio_to_write).

Each export runs in a fresh child process and reports its own peak resident memory (VmHWM: not
ru_maxrss, which a child started by this large process begins at this process's size).
The database is dropped and recreated (its name must contain "bench"). Human-readable lines
first; the last line is one JSON object.

    python bench/export.py [--participants 5000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/imrtrial_bench_export"


def setup_environment(database_url):
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ.setdefault("RANDOMIZATION_SECRET", "bench-only-randomization-secret-xxxxxxxx")
    os.environ["SECURE_SSL_REDIRECT"] = "false"
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


def value_for(item, rng):
    if item.type in ("integer", "decimal"):
        lo, hi = item.bounds()
        return rng.randint(int(lo), int(hi))
    if item.type == "choice":
        return rng.choice([v for v, _ in item.choices])
    if item.type == "boolean":
        return rng.random() < 0.5
    if item.type == "date":
        return "2026-10-01"
    return "free text"


def build_trial(n):
    """The Danish preset with n allocated participants and every form of every visit entered
    (a few items coded ND), written in bulk."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from assessments import registry
    from assessments.definitions import compute_scores
    from assessments.models import FormEntry, Visit
    from assessments.services import schedule_visits
    from imrtrial.models import Participant
    from imrtrial.trialconfig import create_trial, parse, resolve
    from randomization.models import Allocation, Stratum

    rng = random.Random(7)
    trial = create_trial(parse(resolve("danish").read_text()))
    user = get_user_model().objects.create_user("bench-export")
    sites = list(trial.sites.all())
    arms = list(trial.arms.all())
    randomized_on = timezone.localdate() - dt.timedelta(days=700)
    Participant.objects.bulk_create(
        (
            Participant(
                trial=trial,
                site=sites[i % len(sites)],
                participant_id=f"DK-{i:05d}",
                status="randomized",
                randomized_on=randomized_on,
                factor_levels={"diagnosis": ["schizophrenia", "bipolar"][i % 2]},
            )
            for i in range(n)
        ),
        batch_size=2000,
    )
    stratum = Stratum.objects.create(trial=trial, key="bench")
    people = list(Participant.objects.filter(trial=trial).order_by("pk"))
    Allocation.objects.bulk_create(
        (
            Allocation(
                trial=trial,
                participant=p,
                stratum=stratum,
                slot=k + 1,
                arm=arms[k % 2],
                randomization_number=f"R{k:06d}",
                confirmation_code="X",
                allocated_by=user,
            )
            for k, p in enumerate(people)
        ),
        batch_size=2000,
    )
    schedule_visits(trial)
    visits = {
        (v.participant_id, v.timepoint.code): v for v in Visit.objects.select_related("timepoint")
    }
    Visit.objects.update(completed_on=timezone.localdate())
    batch = []
    for p in people:
        for tp in trial.timepoints.all():
            for code in tp.instruments:
                instrument = registry.get(code)
                values = {item.code: value_for(item, rng) for item in instrument.items}
                if rng.random() < 0.05:
                    values[instrument.items[0].code] = "ND"
                batch.append(
                    FormEntry(
                        participant=p,
                        visit=visits[p.pk, tp.code],
                        instrument=code,
                        timepoint=tp.code,
                        values=values,
                        scores=compute_scores(instrument, values),
                        status="complete",
                        entered_by=user,
                    )
                )
                if len(batch) == 5000:
                    FormEntry.objects.bulk_create(batch)
                    batch = []
    FormEntry.objects.bulk_create(batch)
    # A live database has planner statistics (autovacuum gathers them); a table just filled in
    # bulk has none, and the planner then scans all form entries for each batch of participants.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return trial


FLOOR_TABLE = "bench_floor_dataset"


def build_floor_table(trial):
    """The blinded long dataset as the SPSS file holds it, stored as a plain table: the floor
    reads this (data already in the shape pyreadstat needs) with one SELECT."""
    from django.db import connection

    from exports import writers
    from exports.dataset import Dataset

    data = Dataset(trial, "long")
    df, _, _, _ = writers.frame(data, missing="spss")
    kinds = ", ".join(
        f'"{c.name}" ' + ("text" if c.kind == "string" else "float8") for c in data.columns
    )
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (n integer PRIMARY KEY, {kinds})")
        with cursor.cursor.copy(f"COPY {FLOOR_TABLE} FROM STDIN") as copy:
            for n, row in enumerate(df.itertuples(index=False)):
                copy.write_row((n, *(None if v != v else v for v in row)))
        cursor.execute(f"ANALYZE {FLOOR_TABLE}")


def same_sav(floor_path, export_path):
    """Whether the floor's file and the export's hold the same data and dictionary."""
    import pyreadstat

    floor, floor_meta = pyreadstat.read_sav(floor_path, user_missing=True)
    ours, our_meta = pyreadstat.read_sav(export_path, user_missing=True)
    fields = (
        "column_labels",
        "original_variable_types",
        "variable_storage_width",
        "variable_value_labels",
        "missing_ranges",
        "variable_measure",
    )
    return floor.equals(ours) and all(
        getattr(floor_meta, f) == getattr(our_meta, f) for f in fields
    )


def own_peak_mb():
    """This process's peak resident memory since it started its program. Linux seeds ru_maxrss
    of a process started by another with its parent's size (a child of this 200 MB bench
    reported 198 MB whatever it did), while VmHWM belongs to the program's own memory."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(fmt, out_path):
    """Runs in a fresh process: one export (or one floor), then prints seconds and peak MB."""
    import django

    django.setup()
    import pyreadstat

    from exports import writers
    from exports.dataset import Dataset
    from imrtrial.models import Trial

    trial = Trial.objects.get(key="danish-imr")
    data = Dataset(trial, "long")
    extra = {}
    if fmt == "floor_csv":
        df, labels, missing, formats = writers.frame(data, missing="spss")
        start = time.perf_counter()
        df.to_csv(out_path, index=False)
    elif fmt == "floor_sav":
        import numpy as np
        import pandas as pd
        from django.db import connection

        # The labels, formats and missing ranges (the dictionary) are not timed: the frame built
        # for them is dropped before the clock starts.
        _, labels, missing, formats = writers.frame(data, missing="spss")
        options = writers.sav_options(data, labels, missing, formats)
        names = ", ".join(f'"{name}"' for name in data.names)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            start = time.perf_counter()
            cursor.execute(f"SELECT {names} FROM {FLOOR_TABLE} ORDER BY n")
            rows = cursor.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(data.columns)
        del rows
        df = pd.DataFrame(
            {
                c.name: pd.Series(cells, dtype=object)
                if c.kind == "string"
                else np.array(cells, dtype=np.float64)
                for c, cells in zip(data.columns, columns, strict=True)
            },
            copy=False,
        )
        del columns
        written = time.perf_counter()
        pyreadstat.write_sav(df, out_path, **options)
        extra["write_seconds"] = time.perf_counter() - written
    else:
        start = time.perf_counter()
        if fmt == "csv":
            with open(out_path, "wb") as out:
                writers.write_csv_bundle(data, out, stem="bench")
        elif fmt == "sav":
            writers.write_sav(data, out_path)
        else:
            from exports import odm

            with open(out_path, "wb") as out:
                odm.write_odm(trial, out)
    seconds = time.perf_counter() - start
    peak_mb = own_peak_mb()
    extra["columns"] = len(data.columns)
    extra["rows"] = len(data)
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **extra}))


def run_child(fmt, folder, database_url):
    out = Path(folder) / f"bench-{fmt}"
    done = subprocess.run(
        [sys.executable, __file__, "--child", fmt, str(out), "--database-url", database_url],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["bytes"] = out.stat().st_size
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup_environment(args.database_url)
    if args.child:
        return child(*args.child)
    import django

    recreate_database(args.database_url)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    trial = build_trial(args.participants)
    build_floor_table(trial)
    print(f"built {args.participants} participants in {time.perf_counter() - start:.1f} s")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        formats = ["floor_csv", "csv", "floor_sav", "sav"]
        formats += ["odm"] if (REPO / "exports" / "odm.py").exists() else []
        for fmt in formats:
            results[fmt] = run_child(fmt, folder, args.database_url)
            r = results[fmt]
            print(
                f"{fmt:10s} {r['seconds']:7.2f} s  peak {r['peak_mb']:7.1f} MB"
                f"  {r['bytes']:>11,} bytes"
            )
        same = same_sav(Path(folder) / "bench-floor_sav", Path(folder) / "bench-sav")
    ours = [f for f in ("csv", "sav", "odm") if f in results]
    summary = {
        "participants": args.participants,
        "rows": results["csv"]["rows"],
        "columns": results["csv"]["columns"],
        "csv_s": round(results["csv"]["seconds"], 2),
        "sav_s": round(results["sav"]["seconds"], 2),
        "odm_s": round(results["odm"]["seconds"], 2) if "odm" in results else None,
        "floor_csv_s": round(results["floor_csv"]["seconds"], 2),
        "floor_sav_s": round(results["floor_sav"]["seconds"], 2),
        "csv_ratio_to_floor": round(results["csv"]["seconds"] / results["floor_csv"]["seconds"], 2),
        "sav_ratio_to_floor": round(results["sav"]["seconds"] / results["floor_sav"]["seconds"], 2),
        "floor_sav_write_s": round(results["floor_sav"]["write_seconds"], 2),
        "sav_ratio_to_write": round(
            results["sav"]["seconds"] / results["floor_sav"]["write_seconds"], 2
        ),
        "sav_same_as_floor": same,
        "odm_ratio_to_csv": round(results["odm"]["seconds"] / results["csv"]["seconds"], 2)
        if "odm" in results
        else None,
        "peak_mb": round(max(results[f]["peak_mb"] for f in ours), 1),
        "peak_mb_by_format": {f: round(results[f]["peak_mb"], 1) for f in ours},
        "floor_peak_mb": round(max(results[f]["peak_mb"] for f in ("floor_csv", "floor_sav")), 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
