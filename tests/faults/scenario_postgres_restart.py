"""Scenario (run by test_faults.py): PostgreSQL is restarted (pg_ctl restart -m fast) while
coordinators randomize. Every client call is either acknowledged with an allocation or fails;
a failed call is retried, as the phone desk would. Afterwards every acknowledged allocation is
stored exactly once, a failed call left nothing behind that its retry did not return, no
stratum slot is used twice or skipped, and every allocation has its history row."""

import contextlib
import os
import random
import threading
import time

import pytest
from django.db import connection, connections

from bench.randomization import anomalies_of
from imrtrial.models import Participant, Role
from randomization import services
from tests.factories import grant, load_preset, make_ready_participant, make_user

from .services import PrivatePostgres

if "FAULTS_PG_PORT" not in os.environ:
    pytest.skip("run through tests/faults/test_faults.py", allow_module_level=True)

CLIENTS = 8
PER_CLIENT = 20
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def close_quietly():
    with contextlib.suppress(Exception):  # the server may be gone: nothing to close politely
        connection.close()


def test_a_restart_during_randomization_loses_and_duplicates_nothing(roles_restored):
    postgres = PrivatePostgres.from_env()
    # Never restart anything but the private cluster this process is connected to.
    assert int(connection.settings_dict["PORT"]) == postgres.port

    trial = load_preset("danish", key="faults-restart")
    desk = make_user("desk-restart")
    grant(desk, trial, Role.COORDINATOR)
    sites = list(trial.sites.order_by("code"))
    rng = random.Random(8)
    participants = [
        make_ready_participant(
            trial,
            desk,
            site=rng.choice(sites),
            levels={"diagnosis": rng.choice(["schizophrenia", "bipolar"])},
        ).pk
        for _ in range(CLIENTS * PER_CLIENT)
    ]
    rng.shuffle(participants)

    acked = {}  # participant pk -> (allocation pk, stratum pk, slot), as the caller was told
    failures = []  # (participant pk, exception name, when it ended)
    lock = threading.Lock()
    third = threading.Event()
    restarted = {}

    def client(pks):
        try:
            for pk in pks:
                for _attempt in range(200):  # the phone desk tries again until it answers
                    try:
                        p = Participant.objects.select_related("trial", "site").get(pk=pk)
                        allocation = services.randomize(p, by=desk)
                    except Exception as exc:
                        with lock:
                            failures.append((pk, type(exc).__name__, time.time()))
                        close_quietly()
                        time.sleep(0.05)
                        continue
                    with lock:
                        acked[pk] = (allocation.pk, allocation.stratum_id, allocation.slot)
                        if len(acked) == len(participants) // 3:
                            third.set()
                    break
        finally:
            close_quietly()

    threads = [
        threading.Thread(target=client, args=(participants[i::CLIENTS],)) for i in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    assert third.wait(120), "the load never reached a third of the randomizations"
    started = time.time()
    postgres.restart("fast")
    restarted["seconds"] = time.time() - started
    restarted["at"] = started
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)
    connections.close_all()  # this thread's connection died with the restart too

    # The restart did hit calls in flight, and the service answered again after it.
    assert failures, "the restart interrupted nothing: the scenario proved nothing"
    failed_pks = {pk for pk, _, _ in failures}
    assert set(acked) == set(participants), "a participant was never acknowledged"
    after_restart = [pk for pk in failed_pks if pk in acked]
    assert after_restart

    # Every acknowledged allocation is the participant's one allocation, as acknowledged; a
    # repeated call (the idempotent retry) returns the same row.
    committed_unacknowledged = 0
    for pk, (allocation_pk, stratum_pk, slot) in acked.items():
        p = Participant.objects.select_related("trial", "site").get(pk=pk)
        stored = services.allocation_of(p)
        assert (stored.pk, stored.stratum_id, stored.slot) == (allocation_pk, stratum_pk, slot)
        assert services.randomize(p, by=desk).pk == allocation_pk
        # A failed call whose transaction had committed all the same: its retry returned it.
        last_failure = max((t for f_pk, _, t in failures if f_pk == pk), default=None)
        if last_failure is not None and stored.allocated_at.timestamp() < last_failure:
            committed_unacknowledged += 1

    # No slot twice, none skipped, next slots right, each allocation with its audit rows,
    # nobody twice, statuses right, arms as the sequence says.
    found, facts = anomalies_of(trial, len(participants))
    assert {k: v for k, v in found.items() if v} == {}
    assert facts["allocations"] == len(participants)

    kinds = sorted({name for _, name, _ in failures})
    print(
        f"\nrestart took {restarted['seconds']:.2f} s; {len(failures)} failed calls "
        f"({', '.join(kinds)}) for {len(failed_pks)} participants, all retried; "
        f"{committed_unacknowledged} had committed before the failure was reported; "
        f"{len(participants)} allocations in {facts['strata']} strata, anomalies 0"
    )
