"""Scenario (run by test_faults.py): a coordinator's browser dies (SIGKILL) in the middle of
randomizing: once while the server is inside the randomization transaction, then at random
points of the page flow. The server finishes or abandons what it started; the coordinator
opens the page again and gets exactly one allocation, the one stored."""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from bench.randomization import anomalies_of
from imrtrial.models import Participant, Role
from randomization import services
from tests.factories import grant, load_preset, make_ready_participant, make_user

if "FAULTS_PG_PORT" not in os.environ:
    pytest.skip("run through tests/faults/test_faults.py", allow_module_level=True)

CLIENT = Path(__file__).with_name("desk_client.py")
PASSWORD = "correct-horse-battery-staple"  # tests.factories.make_user's
RANDOM_KILLS = 12
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def start_client(server, trial, participant, username):
    process = subprocess.Popen(
        [sys.executable, str(CLIENT), server.url, trial.key, participant.participant_id]
        + [username, PASSWORD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "ready", process.stderr.read()
    return process


def finish(process):
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def kill(process, *, may_have_finished=False):
    process.kill()  # SIGKILL: no goodbye, the socket is just gone
    process.communicate(timeout=30)
    # Between poll() and the signal a client can finish on its own: a random kill came late.
    assert process.returncode == -9 or (may_have_finished and process.returncode == 0)


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def database_url():
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def reload(participant):
    return Participant.objects.select_related("trial", "site").get(pk=participant.pk)


@pytest.fixture
def password_sign_in(settings):
    """The stdlib client signs in with a password only. What is under test is the randomize
    transaction when the client dies; each sign-in's one-time code would need a device per
    attempt. Two-factor sign-in is tested in tests/imrtrial/test_twofactor.py."""
    settings.TWO_FACTOR_REQUIRED = False


def test_a_killed_browser_then_a_retry_gives_exactly_one_allocation(
    roles_restored, live_server, password_sign_in
):
    trial = load_preset("danish", key="faults-kill")
    desk = make_user("desk-kill")
    grant(desk, trial, Role.COORDINATOR)
    site = trial.sites.order_by("code").first()
    levels = {"diagnosis": "bipolar"}  # one stratum: the lock below holds them all up
    participants = [
        make_ready_participant(trial, desk, site=site, levels=levels)
        for _ in range(3 + RANDOM_KILLS)
    ]

    # Two whole runs first: the flow works, and how long its requests take once warm.
    for participant in participants[:2]:
        run = finish(start_client(live_server, trial, participant, desk.username))
        stored = services.allocation_of(participant)
        assert run["code"] == stored.confirmation_code
    flow_seconds = run["seconds"]

    # Killed while the server is inside the transaction: the stratum row is locked by another
    # session, so the server's randomize waits there, participant row already locked.
    target = participants[2]
    with (
        psycopg.connect(database_url()) as locker,
        psycopg.connect(database_url(), autocommit=True) as watcher,
    ):
        locker.execute(
            "SELECT id FROM randomization_stratum WHERE id = %s FOR UPDATE", [stored.stratum_id]
        )
        process = start_client(live_server, trial, target, desk.username)

        def server_waits_on_the_lock():
            (waiting,) = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE %s",
                ["%randomization_stratum%"],
            ).fetchone()
            return waiting == 1

        assert wait_for(server_waits_on_the_lock), "the server never reached the stratum lock"
        kill(process)
        assert services.allocation_of(target) is None  # nothing committed while it waited
        locker.rollback()
    # The server finishes the transaction it was in, though nobody is there to hear it.
    assert wait_for(lambda: services.allocation_of(target) is not None)
    retry = finish(start_client(live_server, trial, target, desk.username))
    assert retry["code"] == services.allocation_of(target).confirmation_code
    assert "/desk/result/" in retry["result"]

    # Killed at random points of the flow: login, randomize page, the POST, the result page.
    rng = random.Random(20240601)
    outcomes = {"allocated before the retry": 0, "allocated by the retry": 0}
    for participant in participants[3:]:
        process = start_client(live_server, trial, participant, desk.username)
        time.sleep(rng.uniform(0, 1.2 * flow_seconds))
        if process.poll() is None:
            kill(process, may_have_finished=True)
        else:  # it was done before the kill came
            finish(process)
        time.sleep(0.3)  # let a request the server had started finish
        before = services.allocation_of(participant)
        retry = finish(start_client(live_server, trial, participant, desk.username))
        after = services.allocation_of(reload(participant))
        assert after is not None and retry["code"] == after.confirmation_code
        if before is not None:
            assert before.pk == after.pk  # the retry returned it; it made no second one
        outcomes["allocated before the retry" if before else "allocated by the retry"] += 1

    # Exactly one allocation each, slots in order, every allocation with its history row.
    found, facts = anomalies_of(trial, len(participants))
    assert {k: v for k, v in found.items() if v} == {}
    assert facts["allocations"] == len(participants)
    print(
        f"\nflow {flow_seconds * 1000:.0f} ms; killed inside the transaction: 1 allocation after "
        f"the retry; {RANDOM_KILLS} random kills: {outcomes}"
    )
