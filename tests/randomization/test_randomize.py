"""The randomize service on real PostgreSQL: ratios, bounds, idempotence, preconditions."""

import datetime
import random
from collections import Counter, defaultdict

import pytest

from imrtrial.models import Participant, Role, Trial
from randomization import sequence, services
from randomization.models import Allocation, AllocationNotice, Stratum
from tests.factories import grant, load_preset, make_person, make_ready_participant, make_user

pytestmark = pytest.mark.django_db


def allocate_many(trial, by, n, seed=1):
    """n participants spread over the trial's strata at random, each randomized."""
    rng = random.Random(seed)
    sites = list(trial.sites.all())
    factors = list(trial.factors.filter(from_site=False))
    out = []
    for _ in range(n):
        levels = {f.code: rng.choice(f.level_codes()) for f in factors}
        p = make_ready_participant(trial, by, site=rng.choice(sites), levels=levels)
        out.append(services.randomize(p, by=by))
    return out


def arms_by_stratum(trial):
    per = defaultdict(list)
    for a in (
        Allocation.objects.filter(trial=trial)
        .select_related("stratum", "arm")
        .order_by("stratum__key", "slot")
    ):
        per[a.stratum.key].append(a.arm.code)
    return per


@pytest.mark.parametrize("preset, n", [("danish", 150), ("dutch", 150)])
def test_every_completed_block_has_the_exact_ratio_and_imbalance_stays_in_bound(preset, n):
    trial = load_preset(preset)
    coordinator = make_person(trial, Role.COORDINATOR)
    allocate_many(trial, coordinator, n)
    design = services.setup_of(trial).design
    ratio = dict(trial.arms.values_list("code", "ratio"))
    checked_blocks = 0
    for key, arms in arms_by_stratum(trial).items():
        seq = sequence.listing(design, "test-secret", trial.key, key, len(arms))
        assert [s.arm for s in seq] == arms  # the service follows the concealed sequence
        start = 0
        for s in seq:
            if s.position_in_block == s.block_size - 1:
                block = Counter(arms[start : s.slot])
                unit = s.block_size // sum(ratio.values())
                assert block == {arm: r * unit for arm, r in ratio.items()}
                checked_blocks += 1
                start = s.slot
        for i in range(1, len(arms) + 1):
            assert sequence.imbalance(Counter(arms[:i]), design) <= sequence.max_imbalance_bound(
                design
            )
    assert checked_blocks >= 5


def test_slots_run_without_gaps_and_each_participant_has_one_allocation(danish, coordinator):
    allocate_many(danish, coordinator, 40)
    for stratum in Stratum.objects.filter(trial=danish):
        slots = sorted(stratum.allocations.values_list("slot", flat=True))
        assert slots == list(range(1, len(slots) + 1))
        assert stratum.next_slot == len(slots) + 1
    assert Allocation.objects.count() == Participant.objects.filter(trial=danish).count() == 40


def test_a_repeated_request_returns_the_allocation_already_made(danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    first = services.randomize(p, by=coordinator)
    again = services.randomize(Participant.objects.get(pk=p.pk), by=coordinator)
    assert again.pk == first.pk
    assert Allocation.objects.count() == 1
    assert Stratum.objects.get().next_slot == 2


def test_minimization_balances_every_factor_level():
    trial = load_preset("danish", key="danish-min")
    Trial.objects.filter(pk=trial.pk).update(method=Trial.Method.MINIMIZATION, minimization_p=0.9)
    trial.refresh_from_db()
    coordinator = make_person(trial, Role.COORDINATOR)
    allocations = allocate_many(trial, coordinator, 120, seed=7)
    assert {a.stratum.key for a in allocations} == {"all"}
    counts = defaultdict(Counter)
    for a in Allocation.objects.select_related("participant__site", "arm"):
        counts["site", a.participant.site.code][a.arm.code] += 1
        counts["dx", a.participant.factor_levels["diagnosis"]][a.arm.code] += 1
    for level, per_arm in counts.items():
        assert abs(per_arm["imr"] - per_arm["tau"]) <= 3, (level, per_arm)


# Who hears of an allocation, and when: tests/randomization/test_allocation_notice.py.


def test_in_error_is_a_flag_with_a_reason_and_the_allocation_stays(danish, coordinator):
    allocation = services.randomize(make_ready_participant(danish, coordinator), by=coordinator)
    with pytest.raises(services.Refused):
        services.mark_in_error(allocation, by=coordinator, reason=" ")
    services.mark_in_error(allocation, by=coordinator, reason="Wrong person on the phone")
    allocation.refresh_from_db()
    assert allocation.in_error and allocation.arm_id
    assert allocation.history.first().history_change_reason == "Wrong person on the phone"


# --- Preconditions: each refused with a clear message, nothing allocated ----------------------


def refused(participant, by, match):
    before = (Allocation.objects.count(), list(Stratum.objects.values_list("key", "next_slot")))
    with pytest.raises(services.Refused, match=match):
        services.randomize(participant, by=by)
    after = (Allocation.objects.count(), list(Stratum.objects.values_list("key", "next_slot")))
    assert after == before


def test_refused_when_the_trial_is_not_open(danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    Trial.objects.filter(pk=danish.pk).update(status=Trial.Status.CLOSED)
    refused(Participant.objects.select_related("trial").get(pk=p.pk), coordinator, "not open")


def test_refused_without_consent(danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    p.screening.__class__.objects.filter(pk=p.screening.pk).update(consent_date=None)
    refused(p, coordinator, "consent")


def test_refused_when_not_eligible(danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    p.screening.__class__.objects.filter(pk=p.screening.pk).update(eligible=False)
    refused(p, coordinator, "no eligible screening")


def test_refused_before_baseline_where_the_trial_requires_it(danish, coordinator):
    refused(make_ready_participant(danish, coordinator, baseline=False), coordinator, "baseline")


def test_refused_for_a_coordinator_of_another_site_and_for_blinded_roles(danish, coordinator):
    site, other = danish.sites.order_by("code")[:2]
    p = make_ready_participant(danish, coordinator, site=site)
    elsewhere = make_user("elsewhere")
    grant(elsewhere, danish, Role.COORDINATOR, other)
    refused(p, elsewhere, "not a coordinator")
    for role in [Role.ASSESSOR, Role.DATA_MANAGER, Role.TRIAL_ADMIN, Role.FACILITATOR]:
        user = make_user(f"x-{role}")
        grant(user, danish, role)
        refused(p, user, "not a coordinator")


def test_refused_when_a_stratification_factor_is_missing(danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    Participant.objects.filter(pk=p.pk).update(factor_levels={})
    refused(Participant.objects.get(pk=p.pk), coordinator, "Diagnosis")


def test_refused_after_withdrawal(danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    Participant.objects.filter(pk=p.pk).update(status=Participant.Status.WITHDRAWN)
    refused(Participant.objects.get(pk=p.pk), coordinator, "withdrawn")


def test_enrolment_is_refused_for_the_ineligible_and_the_unconsented(danish, coordinator):
    site = danish.sites.first()
    answers = {c.code: c.kind == "inclusion" for c in danish.criteria.all()}
    s = services.screen(
        danish, site, by=coordinator, answers=answers, screened_on=datetime.date(2026, 11, 1)
    )
    with pytest.raises(services.Refused, match="consent"):
        services.enrol(s, by=coordinator, factor_levels={"diagnosis": "bipolar"})
    answers["substance"] = True
    s2 = services.screen(
        danish, site, by=coordinator, answers=answers, screened_on=datetime.date(2026, 11, 1)
    )
    with pytest.raises(services.Refused, match="not eligible"):
        services.enrol(s2, by=coordinator, factor_levels={"diagnosis": "bipolar"})
    assert Participant.objects.count() == 0


def test_the_idempotent_answer_is_given_only_to_a_coordinator_of_the_site(danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    services.randomize(p, by=coordinator)
    nobody = make_user("no-role")
    with pytest.raises(services.Refused):
        services.randomize(Participant.objects.get(pk=p.pk), by=nobody)


def test_a_mail_failure_after_commit_never_turns_the_allocation_into_an_error(
    danish, coordinator, settings, django_capture_on_commit_callbacks, caplog
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    grant(make_user("fac", email="fac@example.org"), danish, Role.FACILITATOR)
    for _ in range(20):  # until one is allocated to the intervention, whose notice is mailed
        p = make_ready_participant(danish, coordinator)
        with django_capture_on_commit_callbacks(execute=True):
            allocation = services.randomize(p, by=coordinator)
        assert Allocation.objects.get(participant=p) == allocation
        if allocation.arm.is_intervention:
            break
    assert allocation.arm.is_intervention
    assert "not sent" in caplog.text
    notice = AllocationNotice.objects.get(pk=allocation.pk)  # kept for the next sweep
    assert (notice.sent_at, notice.attempts) == (None, 1) and notice.last_error


def test_a_withdrawal_recorded_after_the_page_loaded_is_not_overwritten(danish, coordinator):
    p = make_ready_participant(danish, coordinator)  # the phone desk has this object in hand
    Participant.objects.filter(pk=p.pk).update(status=Participant.Status.WITHDRAWN)
    with pytest.raises(services.Refused, match="cannot be randomized"):
        services.randomize(p, by=coordinator)
    assert Participant.objects.get(pk=p.pk).status == Participant.Status.WITHDRAWN
    assert not Allocation.objects.exists()
