"""The number of queries of one randomize call is pinned, so that a check or a hook added later
cannot make the phone desk slower unseen (issue 17: 11 queries became 20 when the lock check
and the visit schedule were added; bench/randomization.py prints the list). And nothing but
the one write runs while the stratum row is locked."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imrtrial import access
from imrtrial.models import Membership, Participant, Perm, Role
from randomization import services
from randomization.models import Allocation
from tests.factories import make_ready_participant

pytestmark = pytest.mark.django_db

# In a test the call runs inside the test's transaction, so its own transaction is a savepoint:
# SAVEPOINT and RELEASE stand where BEGIN and COMMIT are in production. The queries:
# SAVEPOINT; the lock check's trial and participant (imrtrial.locking); the participant row
# with its screening; the timepoints the participant has no visit of yet, their new visits
# (assessments, through imrtrial.lifecycle); the stratum row; the write; RELEASE.
QUERIES = 9
# A new request's user object: its grants in the trial, once.
GATE = 1


@pytest.fixture
def ready(danish, coordinator):
    """Two participants of one stratum; the first randomized, so that the stratum exists and
    the process's caches (the trial's setup) are warm, as in a running web process."""
    site = danish.sites.order_by("code").first()
    first, second = (make_ready_participant(danish, coordinator, site=site) for _ in range(2))
    services.randomize(first, by=coordinator)
    return Participant.objects.select_related("trial", "site").get(pk=second.pk)


def test_one_call_asks_at_most_the_pinned_number_of_queries(
    ready, coordinator, django_assert_max_num_queries
):
    access.has(coordinator, Perm.RANDOMIZE, ready.trial)  # the gate warm, as in the bench
    with django_assert_max_num_queries(QUERIES):
        services.randomize(ready, by=coordinator)


def test_a_new_requests_user_object_adds_one_query_for_its_grants(
    ready, coordinator, django_assert_max_num_queries
):
    user = get_user_model().objects.get(pk=coordinator.pk)
    with django_assert_max_num_queries(QUERIES + GATE):
        services.randomize(ready, by=user)


def test_only_the_write_runs_under_the_stratum_lock(ready, coordinator):
    with CaptureQueriesContext(connection) as captured:
        services.randomize(ready, by=coordinator)
    sql = [q["sql"] for q in captured.captured_queries]
    # As prepared statements (on persistent connections) the SQL shows their names, else the
    # statements themselves (randomization.statements).
    (locked_at,) = [
        i
        for i, q in enumerate(sql)
        if "randomization_stratum_for_update" in q
        or ('FROM "randomization_stratum" WHERE' in q and q.endswith(" FOR UPDATE"))
    ]
    after = sql[locked_at + 1 :]
    assert len(after) == 2, after  # the write, then the end of the transaction
    assert "randomization_allocation_write" in after[0] or after[0].startswith(
        'WITH a AS (INSERT INTO "randomization_allocation"'
    ), after[0]
    assert after[1].startswith("RELEASE SAVEPOINT")


def test_a_role_withdrawn_is_refused_on_the_next_request(ready, coordinator):
    """The grants live on the user object of one request, never longer: nothing to invalidate
    across processes."""
    access.has(coordinator, Perm.RANDOMIZE, ready.trial)  # cached on this request's object
    Membership.objects.filter(user=coordinator, role=Role.COORDINATOR).update(active=False)
    next_request = get_user_model().objects.get(pk=coordinator.pk)
    with pytest.raises(services.Refused, match="not a coordinator"):
        services.randomize(ready, by=next_request)


def test_a_permission_taken_from_the_role_is_refused_on_the_next_request(ready, coordinator):
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.get(name=Role.COORDINATOR)
    group.permissions.remove(Permission.objects.get(codename=Perm.RANDOMIZE))
    next_request = get_user_model().objects.get(pk=coordinator.pk)
    with pytest.raises(services.Refused, match="not a coordinator"):
        services.randomize(ready, by=next_request)


def _fields(instance):
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_a_participants_allocation_is_the_orms_with_its_arm_in_one_query(danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    assert services.allocation_of(p) is None
    services.randomize(p, by=coordinator)
    orm = Allocation.objects.select_related("arm").get(participant=p)
    with CaptureQueriesContext(connection) as queries:
        loaded = services.allocation_of(p)
        assert _fields(loaded) == _fields(orm) and _fields(loaded.arm) == _fields(orm.arm)
    assert len(queries) == 1
