"""The arms on a trial's admin page come in an order that owes nothing to their export codes:
listed by code, the first row is always code A, and with two trials loaded the order tells
which arm is A before the key is released."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from imrtrial.models import Arm, Role
from tests.factories import grant, make_trial, make_user


def _swap_export_codes(trial):
    imr, tau = trial.arms.get(code="imr"), trial.arms.get(code="tau")
    first, second = imr.export_code, tau.export_code
    Arm.objects.filter(pk=imr.pk).update(export_code="X")  # one code per trial at any moment
    Arm.objects.filter(pk=tau.pk).update(export_code=first)
    Arm.objects.filter(pk=imr.pk).update(export_code=second)


@pytest.fixture
def trials(db):
    """Two trials alike but for the key: IMR is B in the first, A in the second."""
    first, second = make_trial(), make_trial()
    _swap_export_codes(second)
    assert first.arms.get(code="imr").export_code == "B"
    assert second.arms.get(code="imr").export_code == "A"
    return first, second


def _trial_administrator(trials, *codenames):
    user = make_user("trial-admin-of-both", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    for trial in trials:
        grant(user, trial, Role.TRIAL_ADMIN)
    return user


def _neutral(html, trial):
    """The page with what differs between two trials by right taken out: their names, keys,
    registration ids and row ids, and the per-request tokens."""
    for value in (trial.name, trial.key, trial.registration_id):
        html = html.replace(value, "TRIAL")
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
    html = re.sub(r'nonce="[^"]*"', "", html)
    return re.sub(r"\d+", "0", html)


def test_the_default_order_of_arms_does_not_follow_the_export_code(trials):
    first, second = trials
    assert list(first.arms.values_list("code", flat=True)) == list(
        second.arms.values_list("code", flat=True)
    )


@pytest.mark.parametrize(
    "codenames",
    [
        ["view_trial", "view_arm", "view_site"],  # a read-only page
        ["view_trial", "change_trial", "view_arm", "change_arm", "view_site", "change_site"],
    ],
)
def test_the_trial_page_lists_the_arms_alike_whichever_is_code_a(client, trials, codenames):
    client.force_login(_trial_administrator(trials, *codenames))
    pages = []
    for trial in trials:
        response = client.get(reverse("admin:imrtrial_trial_change", args=[trial.pk]))
        assert response.status_code == 200
        html = response.content.decode()
        labels = [label for label in ("IMR + TAU", "Treatment as usual") if label in html]
        assert labels == ["IMR + TAU", "Treatment as usual"]
        # the intervention first, then by label: the same rows in the same order in both
        assert html.index("IMR + TAU") < html.index("Treatment as usual"), trial.key
        pages.append(_neutral(html, trial))
    assert pages[0] == pages[1]
