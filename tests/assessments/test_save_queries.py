"""The database work of one CRF save through the entry page is pinned: the same statements for
a form of 6 items and one of 30 (nothing per item), and no more than these. A change that adds
a query to the save path fails here and has to say why."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assessments import registry
from assessments.models import FormEntry
from quality.rules import rules_for_saves

pytestmark = pytest.mark.django_db

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")

# What one completed form costs, in order. The request: the session, the user (with the
# two-factor rule's facts and the participants who disclosed their arm to the user,
# imrtrial.twofactor.SessionUserBackend), the visit with its participant, site, trial and
# timepoint, the user's grants in the trial (memberships joined to their roles' permissions). The
# save, in one transaction: the lock check (the trial and the casebook, in one statement), the entry
# under its row lock, the insert and its history row, whether the visit is now complete,
# signatures it invalidates.
SAVE = [
    "django_session",
    "auth_user",
    "assessments_visit",
    "imrtrial_membership",
    "BEGIN",
    "imrtrial_trial",
    "assessments_formentry",
    "INSERT assessments_formentry",
    "INSERT assessments_historicalformentry",
    "assessments_formentry",
    "signoff_signature",
    "COMMIT",
]


def _table(sql):
    """What a statement reads or writes: its first table outside subqueries."""
    if sql.startswith(TRANSACTION_CONTROL):
        # The test runs inside a transaction of its own, where the save's transaction is a
        # savepoint; in production the same atomic block is BEGIN ... COMMIT.
        return {"SAVEPOINT": "BEGIN", "RELEASE": "COMMIT"}.get(sql.split()[0], sql.split()[0])
    if sql.startswith("INSERT INTO"):
        return "INSERT " + sql.split()[2].strip('"')
    depth = 0
    for at, char in enumerate(sql):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and sql.startswith(" FROM ", at):
            return sql[at + 6 :].split()[0].strip('"')
    raise AssertionError(sql)


def _save(client, trial, visit, code, value):
    data = {f"item_{item.code}": value for item in registry.get(code).items}
    data["complete"] = "1"
    url = reverse("assessments:entry", args=[trial.key, visit.pk, code, "single"])
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert FormEntry.objects.get(visit=visit, instrument=code).status == "complete"
    return [_table(q["sql"]) for q in captured.captured_queries]


# A blinded assessor needs no second factor: signed in with a password alone (the marker keeps
# the suite's force_login from adding a verified device, whose row django-otp would read).
@pytest.mark.two_factor
def test_a_save_costs_the_same_few_statements_whatever_the_size_of_the_form(
    client, danish, post_visit, assessor
):
    client.force_login(assessor)
    client.get(reverse("home"))  # the session's renewal is written now, not during a save
    rules_for_saves(danish)  # read once per process (quality.rules): not part of every save
    assert len(registry.get("hamd6").items) == 6 and len(registry.get("panss").items) == 30

    small = _save(client, danish, post_visit, "hamd6", "1")
    large = _save(client, danish, post_visit, "panss", "3")

    assert small == large, (small, large)
    assert small == SAVE, " | ".join(small)
    assert len([s for s in SAVE if s not in TRANSACTION_CONTROL]) == 10


@pytest.mark.two_factor
def test_an_assessor_a_participant_disclosed_the_arm_to_is_refused_through_the_page(
    client, danish, post_visit, assessor, coordinator
):
    """The disclosures come with the session's user now (access.with_disclosures): the page's
    refusal must still see an incident recorded before this request."""
    from assessments import services

    client.force_login(assessor)
    url = reverse("assessments:entry", args=[danish.key, post_visit.pk, "hamd6", "single"])
    assert client.get(url).status_code == 200
    services.record_unblinding(
        post_visit.participant,
        assessor,
        by=coordinator,
        occurred_on=post_visit.target_date,
        description="said which group",
    )
    data = {f"item_{item.code}": "1" for item in registry.get("hamd6").items}
    response = client.post(url, {**data, "complete": "1"})
    assert response.status_code in (403, 404)
    assert not FormEntry.objects.filter(visit=post_visit, instrument="hamd6").exists()


def test_an_incident_recorded_in_the_request_is_seen_by_the_same_user_object(
    danish, post_visit, assessor, coordinator
):
    """The disclosures loaded with the user's row are dropped by access.forget, which
    record_unblinding calls: may_enter asks anew."""
    from django.contrib.auth import get_user_model

    from assessments import services
    from imrtrial import access

    user = access.with_disclosures(get_user_model().objects.filter(pk=assessor.pk)).get()
    participant = post_visit.participant
    assert access.may_enter(user, participant, "assessor_interview")
    services.record_unblinding(
        participant, user, by=coordinator, occurred_on=post_visit.target_date, description="said"
    )
    assert not access.may_enter(user, participant, "assessor_interview")
