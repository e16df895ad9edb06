"""scripts/backup.sh and scripts/restore.sh, run for real against PostgreSQL: a restored copy of a
small trial holds every table, history and access log included, row for row."""

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.urls import reverse
from psycopg import sql

from assessments import registry
from assessments import services as assessments
from assessments.services import schedule_visits
from imrtrial.models import Role
from randomization import services as randomization
from tests.factories import grant, load_preset, make_ready_participant, make_user

REPO = Path(__file__).resolve().parents[2]
BACKUP = REPO / "scripts" / "backup.sh"
RESTORE = REPO / "scripts" / "restore.sh"

pytestmark = [
    pytest.mark.skipif(
        not (shutil.which("pg_dump") and shutil.which("pg_restore") and shutil.which("psql")),
        reason="needs the PostgreSQL client tools (pg_dump, pg_restore, psql)",
    ),
    # Committed rows, so pg_dump sees them; the migrations' rows come back afterwards.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def database_url(name=None):
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{name or s['NAME']}"


def run(*args):
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, check=False
    )


def drop_database(name):
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def restored_name():
    """A database name next to the test database's, dropped before and after the test."""
    name = f"{connection.settings_dict['NAME']}_restored"
    drop_database(name)
    yield name
    drop_database(name)


def snapshot(url):
    """Per table: row count and an md5 over the rows in a stable order; every sequence's last
    value; every constraint and index with its definition."""
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        rows = {}
        for table in tables:
            query = sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '')"
                " FROM {} t"
            ).format(sql.Identifier(table))
            rows[table] = tuple(conn.execute(query).fetchone())
        sequences = dict(
            conn.execute(
                "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
            ).fetchall()
        )
        constraints = set(
            conn.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
            ).fetchall()
        )
        indexes = set(
            conn.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            ).fetchall()
        )
    return {"rows": rows, "sequences": sequences, "constraints": constraints, "indexes": indexes}


def build_small_trial(client):
    """Participants screened, enrolled and randomized through the services; visits scheduled;
    PANSS entered, completed and then corrected with a reason (history rows); the result page
    viewed at the desk (access log rows)."""
    trial = load_preset("danish", key="danish-backup")
    desk = make_user("desk-backup")
    grant(desk, trial, Role.COORDINATOR)
    assessor = make_user("assessor-backup")
    grant(assessor, trial, Role.ASSESSOR)
    sites = list(trial.sites.order_by("code"))
    participants = [
        make_ready_participant(trial, desk, site=sites[i % len(sites)], full_name=f"Person {i}")
        for i in range(6)
    ]
    for participant in participants:
        randomization.randomize(participant, by=desk)
    schedule_visits(trial)
    panss = registry.get("panss")
    for n, participant in enumerate(participants[:4]):
        visit = participant.visits.get(timepoint__code="baseline")
        raw = {item.code: str(1 + (n + k) % 7) for k, item in enumerate(panss.items)}
        entry = assessments.save_entry(
            visit, "panss", raw, by=assessor, kind="single", complete=True
        )
        raw[panss.items[0].code] = "7"
        assessments.save_entry(
            visit,
            "panss",
            raw,
            by=assessor,
            kind="single",
            version=str(entry.version),
            complete=True,
            reason="Corrected after checking the source document",
        )
    client.force_login(desk)
    for participant in participants[:3]:
        url = reverse("randomization:result", args=[trial.key, participant.participant_id])
        assert client.get(url).status_code == 200
    return trial


def test_a_restored_backup_matches_the_database_table_for_table(
    roles_restored, client, restored_name, tmp_path
):
    build_small_trial(client)
    source = snapshot(database_url())
    # The trial is there, with its audit trail: what a restore most needs to bring back.
    for table in (
        "imrtrial_participant",
        "imrtrial_historicalparticipant",
        "randomization_allocation",
        "randomization_historicalallocation",
        "randomization_identifyingdetails",
        "assessments_formentry",
        "assessments_historicalformentry",
        "imrtrial_accesslog",
    ):
        assert source["rows"][table][0] > 0, f"{table} is empty: the test would prove little"
    assert source["rows"]["assessments_historicalformentry"][0] >= 8  # made, then corrected

    dump = tmp_path / "nightly" / "trial.dump"
    made = run(BACKUP, "--database-url", database_url(), "--output", dump)
    assert made.returncode == 0, made.stderr
    assert dump.exists() and not dump.with_name("trial.dump.partial").exists()
    assert f"to       {dump}" in made.stdout
    assert (tmp_path / "nightly" / "trial.dump.sha256").exists()
    checked = subprocess.run(
        ["sha256sum", "-c", "trial.dump.sha256"],
        cwd=dump.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0 and "trial.dump: OK" in checked.stdout

    restored = run(RESTORE, dump, restored_name, "--database-url", database_url())
    assert restored.returncode == 0, restored.stderr
    assert f"Created database '{restored_name}'" in restored.stdout
    total_rows = sum(count for count, _ in source["rows"].values())
    assert f"{len(source['rows'])} tables, {total_rows} rows" in restored.stdout

    copy = snapshot(database_url(restored_name))
    assert copy["rows"].keys() == source["rows"].keys()
    differing = [t for t in source["rows"] if copy["rows"][t] != source["rows"][t]]
    assert differing == []
    # New rows after a restore must not collide with restored ones.
    assert copy["sequences"] == source["sequences"]
    # UNIQUE(participant), UNIQUE(stratum, slot) and the rest come back with the data.
    assert copy["constraints"] == source["constraints"]
    assert copy["indexes"] == source["indexes"]


def test_restore_refuses_a_non_empty_target_or_a_dump_failing_its_checksum(
    roles_restored, client, restored_name, tmp_path
):
    trial = load_preset("danish", key="danish-refusals")
    dump = tmp_path / "trial.dump"
    assert run(BACKUP, "--database-url", database_url(), "--output", dump).returncode == 0
    # An existing dump is never overwritten.
    again = run(BACKUP, "--database-url", database_url(), "--output", dump)
    assert again.returncode != 0 and "not overwriting" in again.stderr

    assert run(RESTORE, dump, restored_name, "--database-url", database_url()).returncode == 0
    before = snapshot(database_url(restored_name))
    refused = run(RESTORE, dump, restored_name, "--database-url", database_url())
    assert refused.returncode == 3
    assert f"database '{restored_name}'" in refused.stderr and "refusing" in refused.stderr
    assert snapshot(database_url(restored_name)) == before

    # Told to, it replaces the target with the dump's content.
    with psycopg.connect(database_url(restored_name), autocommit=True) as conn:
        conn.execute("UPDATE imrtrial_trial SET name = 'changed' WHERE id = %s", [trial.pk])
    forced = run(RESTORE, dump, restored_name, "--database-url", database_url(), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "Dropped and re-created" in forced.stdout
    assert snapshot(database_url(restored_name)) == before

    # A damaged copy is refused before the target is touched.
    damaged = tmp_path / "damaged.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    shutil.copy(dump.with_name("trial.dump.sha256"), damaged.with_name("damaged.dump.sha256"))
    bad = run(RESTORE, damaged, restored_name, "--database-url", database_url(), "--force")
    assert bad.returncode == 1 and "does not match its checksum" in bad.stderr
    assert snapshot(database_url(restored_name)) == before
    unverifiable = tmp_path / "unverifiable.dump"
    shutil.copy(dump, unverifiable)
    missing = run(RESTORE, unverifiable, restored_name, "--database-url", database_url())
    assert missing.returncode == 1 and "no checksum file" in missing.stderr
