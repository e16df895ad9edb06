"""The blinding of assessors: pooled guess rates for every report reader, Bang's blinding index
per arm only for the key holder after the database lock and for those unblinded once the trial
is unblinded; and the blinded page is the same whichever arm guessed right.

The scenario (arms known because the allocations are written by tests/factories.make_allocation;
in make_trial, IMR + TAU is code B and treatment as usual code A), guesses at "Post":

  IMR (code B)  10 participants: 6 guessed B (correct), 2 guessed A, 2 don't know
  TAU (code A)   4 participants: 1 guessed A (correct), 3 guessed B
                 1 more whose allocation was made in error: guessed A
  At "Follow-up" (also asking for a guess) one IMR participant: don't know.

By hand (Bang, Ni & Davis 2004): IMR index (6 - 2) / 10 = 0.4, variance
(0.6 * 0.4 + 0.2 * 0.8 + 2 * 0.6 * 0.2) / 10 = 0.064; TAU (1 - 3) / 4 = -0.5, variance
(0.25 * 0.75 + 0.75 * 0.25 + 2 * 0.25 * 0.75) / 4 = 0.1875.
"""

import datetime
import math
import re
from fractions import Fraction

import pytest
from django.urls import reverse

from assessments import services as crf
from assessments.models import Visit
from exports import blinding
from imrtrial import access
from imrtrial.models import AccessLog, Role, Timepoint, Trial
from randomization import services as desk
from tests.factories import grant, make_allocation, make_participant, make_person, make_trial
from tests.imrtrial.test_roles_and_access import BLINDED_ROLES

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 6, 1)
Z = 1.959963984540054  # the 97.5th percentile of the standard normal distribution
# The blinded roles that may see reports (pooled rates only), and those that may not at all.
REPORT_READERS_BLINDED = [Role.TRIAL_ADMIN, Role.DATA_MANAGER, Role.STATISTICIAN]
NO_REPORTS = [Role.ASSESSOR, Role.MONITOR, Role.INVESTIGATOR]
INDEX_HEADING = "Bang's blinding index, by arm"


def test_every_blinded_role_is_tested_here():
    assert {*REPORT_READERS_BLINDED, *NO_REPORTS} == set(BLINDED_ROLES)


# --- The formula --------------------------------------------------------------------------------


def test_bang_index_of_a_hand_computed_example():
    """10 guesses: 6 correct, 2 incorrect, 2 don't know."""
    found = blinding.bang(6, 2, 2)
    assert (found.n, found.correct, found.incorrect, found.dont_know) == (10, 6, 2, 2)
    assert found.index == pytest.approx(0.4)
    # Bang's second form: (2 * share correct among answers - 1) * answers / n.
    assert found.index == pytest.approx((2 * 6 / 8 - 1) * 8 / 10)
    assert found.se == pytest.approx(math.sqrt(0.064))
    assert found.low == pytest.approx(0.4 - Z * math.sqrt(0.064))
    assert found.high == pytest.approx(0.4 + Z * math.sqrt(0.064))
    assert found.low == pytest.approx(-0.0958, abs=1e-4)
    assert found.high == pytest.approx(0.8958, abs=1e-4)


def test_bang_index_at_its_bounds_and_with_only_dont_know():
    assert blinding.bang(5, 0, 0).index == 1  # every guess right; no spread, no interval width
    assert (blinding.bang(5, 0, 0).low, blinding.bang(5, 0, 0).high) == (1, 1)
    assert blinding.bang(0, 4, 0).index == -1
    every_dont_know = blinding.bang(0, 0, 3)
    assert (every_dont_know.n, every_dont_know.index) == (3, 0)  # as good as random guessing
    assert blinding.bang(3, 3, 0).index == 0
    # Don't know counts in n: the same answers with more don't know move the index to 0.
    assert blinding.bang(6, 2, 12).index == pytest.approx(0.2)
    nothing = blinding.bang(0, 0, 0)
    assert nothing.n == 0 and nothing.index is nothing.se is nothing.low is nothing.high is None


def test_the_interval_is_cut_to_the_range_of_the_index():
    few = blinding.bang(1, 3, 0)  # -0.5, standard error sqrt(0.1875)
    assert few.index == pytest.approx(-0.5)
    assert few.se == pytest.approx(math.sqrt(0.1875))
    assert few.low == -1.0  # -0.5 - 1.96 * 0.433 = -1.35, cut
    assert few.high == pytest.approx(-0.5 + Z * math.sqrt(0.1875))


# --- The scenario -------------------------------------------------------------------------------


class World:
    """The scenario above: the trial, its people and its participants per arm."""


def add_timepoints(trial):
    for order, (code, label, asks) in enumerate(
        [("baseline", "Baseline", False), ("post", "Post", True), ("followup", "Follow-up", True)]
    ):
        Timepoint.objects.create(
            trial=trial,
            code=code,
            label=label,
            order=order,
            offset_days=180 * order,
            instruments=["gaf_f"],
            ask_blinding_guess=asks,
        )


def visit(participant, code):
    timepoint = participant.trial.timepoints.get(code=code)
    found, _ = Visit.objects.get_or_create(
        participant=participant,
        timepoint=timepoint,
        defaults={"target_date": DAY, "window_start": DAY, "window_end": DAY},
    )
    return found


@pytest.fixture
def world(db):
    w = World()
    w.trial = trial = make_trial()
    add_timepoints(trial)
    w.north, w.south = trial.sites.get(code="north"), trial.sites.get(code="south")
    w.coordinator = make_person(trial, Role.COORDINATOR, username="desk")
    w.assessor = make_person(trial, Role.ASSESSOR, username="rater")
    w.imr, w.tau = [], []
    plan = [("imr", g) for g in ["B"] * 6 + ["A"] * 2 + ["DK"] * 2]
    plan += [("tau", g) for g in ["A"] + ["B"] * 3]
    for n, (arm, guess) in enumerate(plan):
        p = make_participant(trial, site=(w.north, w.south)[n % 2])
        make_allocation(p, arm, by=w.coordinator)
        crf.record_guess(visit(p, "post"), guess, by=w.assessor)
        (w.imr if arm == "imr" else w.tau).append(p)
    w.in_error = make_participant(trial, site=w.north)
    allocation = make_allocation(w.in_error, "tau", by=w.coordinator)
    desk.mark_in_error(allocation, by=w.coordinator, reason="Randomized twice by mistake")
    crf.record_guess(visit(w.in_error, "post"), "A", by=w.assessor)
    crf.record_guess(visit(w.imr[0], "followup"), "DK", by=w.assessor)
    visit(w.tau[0], "baseline")  # a visit that asks no guess
    return w


def sites(w):
    return list(w.trial.sites.all())


def test_pooled_rates_count_every_guess_per_timepoint(world):
    rates = blinding.guess_rates(world.trial, sites=sites(world))
    assert rates["choices"] == [("A", "A"), ("B", "B"), ("DK", "Don't know")]
    post, followup = rates["timepoints"]  # baseline asks no guess
    assert (post["code"], post["n"]) == ("post", 15)
    assert post["counts"] == {"A": 2 + 1 + 1, "B": 6 + 3, "DK": 2}
    assert [g["share"] for g in post["guesses"]] == [
        Fraction(4, 15),
        Fraction(9, 15),
        Fraction(2, 15),
    ]
    assert (followup["n"], followup["counts"]) == (1, {"A": 0, "B": 0, "DK": 1})


def test_pooled_rates_cover_the_sites_in_scope_only(world):
    rates = blinding.guess_rates(world.trial, sites=[world.north])
    post = rates["timepoints"][0]
    # North: the plan's participants 0, 2, 4 (B), 6 (A), 8 (DK), 10 (A), 12 (B), and the one
    # in error (A).
    assert post["n"] == 7 + 1
    assert post["counts"] == {"A": 2 + 1, "B": 4, "DK": 1}


def test_bang_index_per_arm_and_timepoint_as_computed_by_hand(world):
    found = blinding.bang_index(world.trial, sites=sites(world))
    assert found["arms"] == [
        {"arm": "imr", "label": "IMR + TAU"},
        {"arm": "tau", "label": "Treatment as usual"},
    ]
    post, followup = found["timepoints"]
    imr, tau = post["arms"]
    assert (imr["arm"], imr["index"]) == ("imr", blinding.bang(6, 2, 2))
    assert imr["index"].index == pytest.approx(0.4)
    # The in-error allocation (TAU, guessed A: it would be correct) is left out.
    assert (tau["arm"], tau["index"]) == ("tau", blinding.bang(1, 3, 0))
    assert tau["index"].index == pytest.approx(-0.5)
    assert [row["index"] for row in followup["arms"]] == [
        blinding.bang(0, 0, 1),
        blinding.bang(0, 0, 0),
    ]


def test_correct_means_the_participants_own_code_whatever_the_arm_is_called(world):
    """The codes decide, not the arms' order or names: swap which arm holds code A."""
    imr_arm, tau_arm = world.trial.arms.get(code="imr"), world.trial.arms.get(code="tau")
    world.trial.arms.filter(pk=imr_arm.pk).update(export_code="X")
    world.trial.arms.filter(pk=tau_arm.pk).update(export_code="B")
    world.trial.arms.filter(pk=imr_arm.pk).update(export_code="A")
    imr, tau = blinding.bang_index(world.trial, sites=sites(world))["timepoints"][0]["arms"]
    assert imr["index"] == blinding.bang(2, 6, 2)  # now those who guessed A were right
    assert tau["index"] == blinding.bang(3, 1, 0)


# --- Who sees what --------------------------------------------------------------------------------


def page(client, w):
    return client.get(reverse("exports:report_blinding", args=[w.trial.key]))


def blinded_bytes(response):
    """The page, but the per-render CSRF token of the sign-out form."""
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", response.content)


def swap_arms(w):
    """Every participant to the other arm, the guesses unchanged: the right guesses become the
    wrong ones. The allocations are rewritten directly, as in tests/exports/test_reports.py."""
    imr_arm, tau_arm = w.trial.arms.get(code="imr"), w.trial.arms.get(code="tau")
    imr_pks = [p.pk for p in w.imr]
    tau_pks = [p.pk for p in [*w.tau, w.in_error]]
    w.trial.allocations.filter(participant__in=imr_pks).update(arm=tau_arm)
    w.trial.allocations.filter(participant__in=tau_pks).update(arm=imr_arm)


@pytest.mark.parametrize("role", REPORT_READERS_BLINDED + NO_REPORTS)
def test_a_blinded_page_is_the_same_whichever_arm_guessed_right(world, client, role):
    user = make_person(world.trial, role, username=f"blind-{role}")
    client.force_login(user)
    before = page(client, world)
    swap_arms(world)
    after = page(client, world)
    assert (
        before.status_code == after.status_code == (200 if role in REPORT_READERS_BLINDED else 404)
    )
    assert blinded_bytes(before) == blinded_bytes(after)
    if before.status_code == 200:
        text = before.content.decode()
        assert "Visits with a guess" in text and "9 (60%)" in text  # 9 of 15 guessed B
        assert INDEX_HEADING not in text
        for arm in world.trial.arms.all():
            assert arm.label not in text
    assert not AccessLog.objects.filter(user=user).exists()


def test_the_statistician_sees_the_index_once_the_trial_is_unblinded(world, client):
    statistician = make_person(world.trial, Role.STATISTICIAN, username="stats")
    client.force_login(statistician)
    assert INDEX_HEADING not in page(client, world).content.decode()
    Trial.objects.filter(pk=world.trial.pk).update(
        unblinded_at=datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)
    )
    world.trial.refresh_from_db()
    response = page(client, world)
    text = response.content.decode()
    assert INDEX_HEADING in text
    assert "IMR + TAU" in text and "Treatment as usual" in text
    assert "0.40" in text and "-0.50" in text and "-0.10 to 0.90" in text
    log = AccessLog.objects.get(user=statistician)
    assert (log.action, log.target) == (AccessLog.Action.VIEW_ALLOCATION, "Blinding index by arm")


def test_the_key_holder_is_refused_the_index_until_the_database_lock(world, client):
    key_holder = make_person(world.trial, Role.KEY_HOLDER, username="keys")
    assert not access.may_see_blinding_index(key_holder, world.trial, sites(world))
    client.force_login(key_holder)
    before = page(client, world)
    assert before.status_code == 200  # the pooled rates, as every report reader
    assert INDEX_HEADING not in before.content.decode()
    assert not AccessLog.objects.filter(user=key_holder).exists()
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
    world.trial.refresh_from_db()
    access.forget(key_holder)
    assert access.may_see_blinding_index(key_holder, world.trial, sites(world))
    after = page(client, world).content.decode()
    assert INDEX_HEADING in after and "0.40" in after


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.FACILITATOR, Role.FIDELITY_RATER])
def test_unblinded_site_staff_see_the_index_only_once_the_trial_is_unblinded(world, client, role):
    """Not at the lock either: the key holder releases the results then, not the site."""
    user = make_person(world.trial, role, username=f"open-{role}")
    client.force_login(user)
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
    world.trial.refresh_from_db()
    assert INDEX_HEADING not in page(client, world).content.decode()
    Trial.objects.filter(pk=world.trial.pk).update(
        unblinded_at=datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)
    )
    world.trial.refresh_from_db()
    assert INDEX_HEADING in page(client, world).content.decode()


def test_someone_blinded_at_one_site_in_scope_never_sees_the_index(world, client):
    """A statistician (at every site) who is also the key holder of North only, after the lock:
    their reports pool South, where they are blinded until unblinding."""
    user = make_person(world.trial, Role.STATISTICIAN, username="stats-and-keys")
    grant(user, world.trial, Role.KEY_HOLDER, world.north)
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
    world.trial.refresh_from_db()
    client.force_login(user)
    assert INDEX_HEADING not in page(client, world).content.decode()


def test_the_index_page_follows_the_guesses_the_blinded_page_does_not(world, client):
    """The check can fail: swapping the arms changes what the key holder sees after lock."""
    key_holder = make_person(world.trial, Role.KEY_HOLDER, username="keys")
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
    client.force_login(key_holder)
    before = page(client, world)
    swap_arms(world)
    after = page(client, world)
    assert blinded_bytes(before) != blinded_bytes(after)
    assert "-0.40" in after.content.decode()


def test_the_reports_page_links_to_the_blinding_report(world, client):
    client.force_login(make_person(world.trial, Role.DATA_MANAGER, username="dm"))
    index = client.get(reverse("exports:reports", args=[world.trial.key])).content.decode()
    assert reverse("exports:report_blinding", args=[world.trial.key]) in index


def test_the_page_answers_get_only_and_renders_without_guesses(client):
    trial = make_trial()
    client.force_login(make_person(trial, Role.DATA_MANAGER, username="dm-empty"))
    url = reverse("exports:report_blinding", args=[trial.key])
    assert client.post(url).status_code == 405
    response = client.get(url)
    assert response.status_code == 200
    assert "No timepoint of the schedule asks for a guess." in response.content.decode()
