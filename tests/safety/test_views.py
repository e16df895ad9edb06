"""The event log's pages: the case manager records, corrects and judges through them; every
blinded role meets a 404 on every one of them, for either arm and any event id, and no link."""

import datetime

import pytest
from django.utils import timezone

from imrtrial.models import Role
from safety import services
from safety.models import SafetyEvent

pytestmark = pytest.mark.django_db

BLINDED = [
    Role.ASSESSOR,
    Role.DATA_MANAGER,
    Role.MONITOR,
    Role.STATISTICIAN,
    Role.INVESTIGATOR,
    Role.TRIAL_ADMIN,
    Role.FIDELITY_RATER,  # unblinded, but sees no participant
]
NAMES_THE_ARM = "Calmer since the IMR sessions began"


def log_url(p):
    return f"/trials/{p.trial.key}/participants/{p.participant_id}/safety-events/"


def urls(p, event_pk):
    base = log_url(p)
    return [base, f"{base}new/", f"{base}{event_pk}/correct/", f"{base}{event_pk}/judge/"]


def day(n_ago):
    return (timezone.localdate() - datetime.timedelta(days=n_ago)).isoformat()


def record(p, by, text="Calmer at home"):
    return services.record_event(
        p,
        by=by,
        kind="beneficial",
        category="functioning_better",
        onset_on=timezone.localdate() - datetime.timedelta(days=3),
        description=text,
        outcome="ongoing",
    )


FORM = {
    "kind": "adverse",
    "category": "life_threatening",
    "onset_on": day(2),
    "description": "Pneumonia, admitted",
    "serious": "on",
    "seriousness": ["life_threatening", "hospitalisation"],
    "outcome": "ongoing",
}


def test_the_case_manager_records_corrects_and_judges_through_the_pages(
    client, imr_participant, case_manager
):
    client.force_login(case_manager)
    page = client.get(
        f"/trials/{imr_participant.trial.key}/participants/{imr_participant.participant_id}/"
    ).content.decode()
    assert log_url(imr_participant) in page
    response = client.post(log_url(imr_participant) + "new/", FORM)
    assert response.status_code == 302 and response["Location"] == log_url(imr_participant)
    event = SafetyEvent.objects.get()
    assert event.seriousness == ["life_threatening", "hospitalisation"]
    assert event.entered_by == case_manager
    response = client.post(
        f"{log_url(imr_participant)}{event.pk}/correct/",
        {**FORM, "outcome": "resolved", "reason": "discharged"},
    )
    assert response.status_code == 302
    response = client.post(
        f"{log_url(imr_participant)}{event.pk}/judge/",
        {"relatedness": "not_related", "judged_on": day(0)},
    )
    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.outcome, event.relatedness, event.judged_by) == (
        "resolved",
        "not_related",
        case_manager,
    )
    log = client.get(log_url(imr_participant)).content.decode()
    for shown in (
        "Adverse event: Life-threatening condition (not suicide)",
        "Serious: Life-threatening, Hospitalisation, or a longer stay",
        "Resolved",
        "Not related (judged by Karen Holm on",
        "Pneumonia, admitted",
    ):
        assert shown in log, shown


def test_the_log_lists_the_newest_event_first(client, imr_participant, case_manager):
    older = record(imr_participant, case_manager, "Older event")
    SafetyEvent.objects.filter(pk=older.pk).update(
        onset_on=timezone.localdate() - datetime.timedelta(days=30)
    )
    record(imr_participant, case_manager, "Newer event")
    client.force_login(case_manager)
    log = client.get(log_url(imr_participant)).content.decode()
    assert log.index("Newer event") < log.index("Older event")


@pytest.mark.parametrize(
    ("post", "error"),
    [
        ({**FORM, "onset_on": day(-1)}, "future"),
        ({**FORM, "onset_on": day(400)}, "before randomization"),
        ({**FORM, "kind": "beneficial"}, "Choose a category of beneficial events"),
        ({**FORM, "serious": ""}, "seriousness criteria"),
        ({**FORM, "description": ""}, "This field is required"),
    ],
)
def test_an_invalid_form_shows_why_and_saves_nothing(
    client, imr_participant, case_manager, post, error
):
    client.force_login(case_manager)
    response = client.post(log_url(imr_participant) + "new/", post)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not SafetyEvent.objects.exists()


def test_a_correction_without_a_reason_saves_nothing(client, imr_participant, case_manager):
    event = record(imr_participant, case_manager)
    client.force_login(case_manager)
    response = client.post(
        f"{log_url(imr_participant)}{event.pk}/correct/",
        {**FORM, "kind": "beneficial", "category": "more_hope", "serious": "", "seriousness": []},
    )
    assert response.status_code == 200 and "reason" in response.content.decode()
    assert event.history.count() == 1


@pytest.mark.parametrize("role", BLINDED)
def test_blinded_roles_reach_no_event_page_of_either_arm_and_see_no_link(
    client, imr_participant, tau_participant, case_manager, person, role
):
    events = {
        imr_participant: record(imr_participant, case_manager, NAMES_THE_ARM),
        tau_participant: record(tau_participant, case_manager),
    }
    client.force_login(person(role, None, f"blinded-{role.value}"))
    answers = set()
    for p, event in events.items():
        guesses = [
            event.pk,
            events[tau_participant if p == imr_participant else imr_participant].pk,
        ]
        for pk in [*guesses, event.pk + 1000]:
            for url in urls(p, pk):
                answers.add(client.get(url).status_code)
                answers.add(client.post(url, {**FORM, "reason": "x"}).status_code)
        page = client.get(f"/trials/{p.trial.key}/participants/{p.participant_id}/")
        assert "safety-events" not in page.content.decode()
        assert NAMES_THE_ARM not in page.content.decode()
    assert answers == {404}
    assert SafetyEvent.objects.count() == 2
    assert all(e.history.count() == 1 for e in events.values())


def test_the_coordinator_is_unblinded_and_reads_the_log_without_recording(
    client, imr_participant, case_manager, coordinator
):
    """The phone desk reads back the arm (migration imrtrial 0002: view_unblinded), so the log
    tells them nothing new; they rate nobody, so they record and judge nothing."""
    event = record(imr_participant, case_manager, NAMES_THE_ARM)
    client.force_login(coordinator)
    log = client.get(log_url(imr_participant)).content.decode()
    assert NAMES_THE_ARM in log and "Record an event" not in log and "/judge/" not in log
    for url in urls(imr_participant, event.pk)[1:]:
        assert client.get(url).status_code == 404


def test_an_event_id_of_another_participant_is_not_found(
    client, imr_participant, tau_participant, case_manager
):
    theirs = record(tau_participant, case_manager)
    client.force_login(case_manager)
    for url in urls(imr_participant, theirs.pk)[2:]:
        assert client.get(url).status_code == 404


def test_a_case_manager_of_north_reaches_no_south_event(
    client, south_participant, case_manager, person, south
):
    south_manager = person(Role.CASE_MANAGER, south, "case-manager-south")
    event = record(south_participant, south_manager)
    client.force_login(case_manager)
    for url in urls(south_participant, event.pk):
        assert client.get(url).status_code == 404


def test_the_audit_trail_shows_events_to_an_unblinded_auditor_only(
    client, imr_participant, case_manager, key_holder, data_manager
):
    event = record(imr_participant, case_manager, NAMES_THE_ARM)
    services.correct_event(event, by=case_manager, reason="discharged", outcome="resolved")
    url = f"/trials/{imr_participant.trial.key}/audit/"
    client.force_login(key_holder)
    page = client.get(url, {"kind": "safetyevent"}).content.decode()
    assert "Safety event" in page and "discharged" in page and NAMES_THE_ARM in page
    client.force_login(data_manager)
    assert client.get(url, {"kind": "safetyevent"}).status_code == 200
    page = client.get(url).content.decode()
    assert "Safety event" not in page and "discharged" not in page and NAMES_THE_ARM not in page
