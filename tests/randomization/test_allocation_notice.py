"""The allocation notice: only the site's IMR facilitators hear of it, only for participants
allocated to the intervention (to invite them to a group); and the gate is asked when it is
sent (the task runs after commit, perhaps after a retry), not when the allocation was made."""

import pytest
from django.core import mail

from imrtrial.models import Membership, Role
from randomization import services
from tests.factories import grant, make_allocation, make_ready_participant, make_user

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


@pytest.fixture
def facilitator(danish, site):
    user = make_user("stays", email="stays@example.org")
    grant(user, danish, Role.FACILITATOR, site)
    return user


def allocated(danish, desk, site, arm="imr"):
    return make_allocation(make_ready_participant(danish, desk, site=site), arm, by=desk)


def test_only_the_sites_facilitators_hear_of_an_intervention_allocation(
    danish, desk, site, facilitator
):
    other = danish.sites.exclude(pk=site.pk).first()
    for role, where, email in [
        (Role.FACILITATOR, other, "fac-other@example.org"),
        (Role.COORDINATOR, site, "desk2@example.org"),
        (Role.ASSESSOR, None, "assessor@example.org"),
        (Role.KEY_HOLDER, None, "key@example.org"),
    ]:
        grant(make_user(email=email), danish, role, where)
    allocation = allocated(danish, desk, site, "imr")
    services.send_allocation_notice(allocation.pk)
    assert [m.to for m in mail.outbox] == [["stays@example.org"]]
    assert allocation.confirmation_code in mail.outbox[0].body


def test_a_control_allocation_is_mailed_to_nobody(danish, desk, site, facilitator):
    services.send_allocation_notice(allocated(danish, desk, site, "tau").pk)
    assert mail.outbox == []


def test_the_notice_goes_after_commit(
    danish, desk, site, facilitator, django_capture_on_commit_callbacks
):
    p = make_ready_participant(danish, desk, site=site)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.randomize(p, by=desk)
    assert mail.outbox == [] and len(callbacks) == 1


@pytest.mark.parametrize("now_holds", [Role.ASSESSOR, Role.COORDINATOR, None])
def test_a_facilitator_role_withdrawn_before_the_notice_goes_means_no_notice(
    danish, desk, site, facilitator, now_holds
):
    staff = make_user("unblinded-then-not", email="gone@example.org")
    grant(staff, danish, Role.FACILITATOR, site)
    allocation = allocated(danish, desk, site)
    Membership.objects.filter(user=staff, role=Role.FACILITATOR).update(active=False)
    if now_holds:
        grant(staff, danish, now_holds, site)
    services.send_allocation_notice(allocation.pk)
    assert [m.to for m in mail.outbox] == [["stays@example.org"]]


def test_a_facilitator_moved_to_another_site_hears_nothing_of_the_old_sites_allocations(
    danish, desk, site, facilitator
):
    other = danish.sites.exclude(pk=site.pk).first()
    moved = make_user("moved-fac", email="moved@example.org")
    grant(moved, danish, Role.FACILITATOR, site)
    allocation = allocated(danish, desk, site)
    Membership.objects.filter(user=moved).update(active=False)
    grant(moved, danish, Role.FACILITATOR, other)
    services.send_allocation_notice(allocation.pk)
    assert [m.to for m in mail.outbox] == [["stays@example.org"]]


def test_the_notice_names_no_block_size_slot_or_stratum(danish, desk, site, facilitator):
    services.send_allocation_notice(allocated(danish, desk, site).pk)
    (notice,) = mail.outbox
    text = (notice.subject + notice.body).lower()
    for word in ("block", "slot", "stratum", "strata", "sequence"):
        assert word not in text
