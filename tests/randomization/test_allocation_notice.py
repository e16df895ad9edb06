"""The allocation notice asks the gate when it is sent (the task runs after commit, perhaps
after a retry), not when the allocation was made."""

import pytest
from django.core import mail

from imrtrial.models import Membership, Role
from randomization import services
from tests.factories import grant, make_ready_participant, make_user

from .conftest import coordinator_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(danish):
    return danish.sites.order_by("code").first()


@pytest.fixture
def desk(danish, desk_user):
    desk_user.email = "desk@example.org"
    desk_user.save(update_fields=["email"])
    return coordinator_of(danish, desk_user)


def randomize_and_hold_the_notice(participant, by, capture):
    """Randomize; return the after-commit callbacks (the queued notice) without running them."""
    with capture(execute=False) as callbacks:
        services.randomize(participant, by=by)
    assert mail.outbox == [] and len(callbacks) == 1
    return callbacks


@pytest.mark.parametrize(
    "withdrawn, now_holds",
    [(Role.FACILITATOR, Role.ASSESSOR), (Role.FACILITATOR, None), (Role.COORDINATOR, None)],
)
def test_an_unblinded_role_withdrawn_before_the_notice_goes_means_no_notice(
    danish, desk, site, withdrawn, now_holds, django_capture_on_commit_callbacks
):
    staff = make_user("unblinded-then-not", email="gone@example.org")
    grant(staff, danish, withdrawn, site)
    p = make_ready_participant(danish, desk, site=site)
    callbacks = randomize_and_hold_the_notice(p, desk, django_capture_on_commit_callbacks)
    Membership.objects.filter(user=staff, role=withdrawn).update(active=False)
    if now_holds:
        grant(staff, danish, now_holds, site)
    callbacks[0]()
    assert [m.to for m in mail.outbox] == [["desk@example.org"]]


def test_a_facilitator_moved_to_another_site_hears_nothing_of_the_old_sites_allocations(
    danish, desk, site, django_capture_on_commit_callbacks
):
    other = danish.sites.exclude(pk=site.pk).first()
    moved = make_user("moved-fac", email="moved@example.org")
    grant(moved, danish, Role.FACILITATOR, site)
    p = make_ready_participant(danish, desk, site=site)
    callbacks = randomize_and_hold_the_notice(p, desk, django_capture_on_commit_callbacks)
    Membership.objects.filter(user=moved).update(active=False)
    grant(moved, danish, Role.FACILITATOR, other)
    callbacks[0]()
    assert [m.to for m in mail.outbox] == [["desk@example.org"]]


def test_the_notice_names_no_block_size_slot_or_stratum(
    danish, desk, site, django_capture_on_commit_callbacks
):
    p = make_ready_participant(danish, desk, site=site)
    with django_capture_on_commit_callbacks(execute=True):
        services.randomize(p, by=desk)
    (notice,) = mail.outbox
    text = (notice.subject + notice.body).lower()
    for word in ("block", "slot", "stratum", "strata", "sequence"):
        assert word not in text
