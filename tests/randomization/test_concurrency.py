"""Many coordinators at once, each on its own PostgreSQL connection: no anomaly."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from imrtrial.models import Participant, Role
from randomization import sequence, services
from randomization.models import Allocation, Stratum
from tests.factories import load_preset, make_person, make_ready_participant


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_randomizations_and_double_clicks_allocate_each_participant_once(roles_restored):
    trial = load_preset("dutch", key="dutch-concurrent")
    coordinator = make_person(trial, Role.COORDINATOR)
    sites = list(trial.sites.order_by("code")[:3])
    participants = [
        make_ready_participant(trial, coordinator, site=sites[i % 3]) for i in range(90)
    ]
    # Every participant is requested twice, as by a double click, in shuffled order.
    requests = [p.pk for p in participants] * 2
    requests = requests[::2] + requests[1::2]
    start = threading.Barrier(12)
    results = []

    def work(chunk):
        start.wait()
        try:
            for pk in chunk:
                p = Participant.objects.select_related("trial", "site").get(pk=pk)
                results.append((pk, services.randomize(p, by=coordinator).pk))
        finally:
            connection.close()

    chunks = [requests[i::12] for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(work, chunks))

    assert len(results) == 180
    by_participant = {}
    for pk, allocation_pk in results:
        assert by_participant.setdefault(pk, allocation_pk) == allocation_pk  # same answer twice
    assert Allocation.objects.filter(trial=trial).count() == 90
    design = services.setup_of(trial).design
    for stratum in Stratum.objects.filter(trial=trial):
        rows = list(stratum.allocations.order_by("slot").values_list("slot", "arm__code"))
        assert [slot for slot, _ in rows] == list(range(1, len(rows) + 1))
        arms = [arm for _, arm in rows]
        assert arms == [
            s.arm
            for s in sequence.listing(design, "test-secret", trial.key, stratum.key, len(arms))
        ]
        for i in range(1, len(arms) + 1):
            assert sequence.imbalance(Counter(arms[:i]), design) <= sequence.max_imbalance_bound(
                design
            )
    audited = Allocation.history.filter(trial_id=trial.pk, history_type="+").count()
    assert audited == 90
