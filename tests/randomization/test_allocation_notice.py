"""The allocation notice: only the site's IMR facilitators hear of it, only for participants
allocated to the intervention (to invite them to a group); and the gate is asked when it is
sent (the task runs after commit, perhaps after a retry), not when the allocation was made."""

import pytest
from django.core import mail

from imrtrial.models import Membership, Participant, Role
from randomization import services
from randomization.models import AllocationNotice
from tests.factories import grant, make_allocation, make_ready_participant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(danish):
    return danish.sites.order_by("code").first()


@pytest.fixture(autouse=True)
def _coordinator_has_an_address(coordinator):
    """The coordinator has an e-mail address, so a notice that went to them would be seen."""
    coordinator.email = "desk@example.org"
    coordinator.save(update_fields=["email"])


@pytest.fixture
def site_facilitator(person, site):
    return person(Role.FACILITATOR, site, "stays", email="stays@example.org")


def allocated(danish, coordinator, site, arm="imr"):
    return make_allocation(
        make_ready_participant(danish, coordinator, site=site), arm, by=coordinator
    )


def test_only_the_sites_facilitators_hear_of_an_intervention_allocation(
    danish, coordinator, site, site_facilitator
):
    other = danish.sites.exclude(pk=site.pk).first()
    for role, where, email in [
        (Role.FACILITATOR, other, "fac-other@example.org"),
        (Role.COORDINATOR, site, "desk2@example.org"),
        (Role.ASSESSOR, None, "assessor@example.org"),
        (Role.KEY_HOLDER, None, "key@example.org"),
    ]:
        grant(make_user(email=email), danish, role, where)
    allocation = allocated(danish, coordinator, site, "imr")
    services.send_allocation_notice(allocation.pk)
    assert [m.to for m in mail.outbox] == [["stays@example.org"]]
    assert allocation.confirmation_code in mail.outbox[0].body


def test_a_control_allocation_is_mailed_to_nobody(danish, coordinator, site, site_facilitator):
    services.send_allocation_notice(allocated(danish, coordinator, site, "tau").pk)
    assert mail.outbox == []


def test_the_notice_goes_after_commit(
    danish, coordinator, site, site_facilitator, django_capture_on_commit_callbacks
):
    p = make_ready_participant(danish, coordinator, site=site)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.randomize(p, by=coordinator)
    assert mail.outbox == [] and len(callbacks) == 1


@pytest.mark.parametrize("now_holds", [Role.ASSESSOR, Role.COORDINATOR, None])
def test_a_facilitator_role_withdrawn_before_the_notice_goes_means_no_notice(
    danish, coordinator, site, site_facilitator, now_holds
):
    staff = make_user("unblinded-then-not", email="gone@example.org")
    grant(staff, danish, Role.FACILITATOR, site)
    allocation = allocated(danish, coordinator, site)
    Membership.objects.filter(user=staff, role=Role.FACILITATOR).update(active=False)
    if now_holds:
        grant(staff, danish, now_holds, site)
    services.send_allocation_notice(allocation.pk)
    assert [m.to for m in mail.outbox] == [["stays@example.org"]]


def test_a_facilitator_moved_to_another_site_hears_nothing_of_the_old_sites_allocations(
    danish, coordinator, site, site_facilitator
):
    other = danish.sites.exclude(pk=site.pk).first()
    moved = make_user("moved-fac", email="moved@example.org")
    grant(moved, danish, Role.FACILITATOR, site)
    allocation = allocated(danish, coordinator, site)
    Membership.objects.filter(user=moved).update(active=False)
    grant(moved, danish, Role.FACILITATOR, other)
    services.send_allocation_notice(allocation.pk)
    assert [m.to for m in mail.outbox] == [["stays@example.org"]]


def test_the_notice_names_no_block_size_slot_or_stratum(
    danish, coordinator, site, site_facilitator
):
    services.send_allocation_notice(allocated(danish, coordinator, site).pk)
    (notice,) = mail.outbox
    text = (notice.subject + notice.body).lower()
    for word in ("block", "slot", "stratum", "strata", "sequence"):
        assert word not in text


# --- The outbox: the notice is a row written with the allocation, sent by the sweep ------------


@pytest.fixture
def with_broker():
    """As production: a broker, so the beat's sweep sends the notices, not the call."""
    from imrtrial.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = saved


def test_with_a_broker_the_call_writes_the_notice_and_the_sweep_sends_it(
    danish, coordinator, site, site_facilitator, with_broker, django_capture_on_commit_callbacks
):
    for _ in range(20):  # until one is allocated to the intervention, whose notice is mailed
        p = make_ready_participant(danish, coordinator, site=site)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            allocation = services.randomize(p, by=coordinator)
        assert callbacks == [] and mail.outbox == []  # nothing published, nothing sent
        assert AllocationNotice.objects.get(pk=allocation.pk).sent_at is None
        if allocation.arm.is_intervention:
            break
    assert services.send_pending_notices() >= 1
    assert [m.to for m in mail.outbox] == [["stays@example.org"]]
    assert allocation.confirmation_code in mail.outbox[0].body
    assert not services.pending_notices().exists()
    assert services.send_pending_notices() == 0  # each notice goes once
    assert len(mail.outbox) == 1


def test_a_refused_randomization_leaves_no_notice(danish, coordinator, site, with_broker):
    p = make_ready_participant(danish, coordinator, site=site)
    Participant.objects.filter(pk=p.pk).update(status=Participant.Status.WITHDRAWN)
    with pytest.raises(services.Refused):
        services.randomize(p, by=coordinator)
    assert not AllocationNotice.objects.exists()


def test_a_notice_the_mail_server_refused_is_tried_again_then_given_up(
    danish, coordinator, site, site_facilitator, with_broker, settings
):
    allocation = allocated(danish, coordinator, site, "imr")
    AllocationNotice.objects.create(allocation=allocation)  # as randomize() writes it
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    for attempt in range(1, services.NOTICE_ATTEMPTS + 1):
        assert services.send_pending_notices() == 0
        notice = AllocationNotice.objects.get(pk=allocation.pk)
        assert (notice.sent_at, notice.attempts) == (None, attempt) and notice.last_error
    assert not services.pending_notices().exists()  # given up, as the task's five retries


def test_a_notice_that_fails_otherwise_is_counted_and_the_sweep_goes_on(
    danish, coordinator, site, site_facilitator, with_broker, monkeypatch
):
    """Whatever fails in one notice's send (here a bad template) is counted on its row: the
    sweep sends the next notices instead of stopping at the first one every minute."""
    first, second = (allocated(danish, coordinator, site, "imr") for _ in range(2))
    for allocation in (first, second):
        AllocationNotice.objects.create(allocation=allocation)
    real = services.send_allocation_notice

    def broken_for_the_first(pk):
        if pk == first.pk:
            raise ValueError("the template broke")
        return real(pk)

    monkeypatch.setattr(services, "send_allocation_notice", broken_for_the_first)
    assert services.send_pending_notices() == 1
    stuck, sent = (AllocationNotice.objects.get(pk=a.pk) for a in (first, second))
    assert (stuck.sent_at, stuck.attempts, stuck.last_error) == (None, 1, "the template broke")
    assert sent.sent_at is not None
    assert len(mail.outbox) == 1 and second.confirmation_code in mail.outbox[0].body


def test_no_notice_for_an_allocation_flagged_in_error_before_the_sweep(
    danish, coordinator, site, site_facilitator, with_broker
):
    allocation = allocated(danish, coordinator, site, "imr")
    AllocationNotice.objects.create(allocation=allocation)
    services.mark_in_error(allocation, by=coordinator, reason="randomized the wrong caller")
    services.send_pending_notices()
    assert mail.outbox == []
    assert not services.pending_notices().exists()  # handled: nothing left to send
