"""An outside review's attacks on the participant's own questionnaires that found a defect:
each test here failed before its fix."""

import datetime

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from assessments.models import FormEntry
from assessments.services import withdraw
from randomization.models import IdentifyingDetails
from selfreport import services, views
from selfreport.models import HandOver

from . import world as w

pytestmark = pytest.mark.django_db
TODAY = datetime.date(2026, 11, 30)


@pytest.fixture(autouse=True)
def no_guesses_counted():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def setting():
    return w.build(arms=1)


def checked_client(token, year=w.BIRTH_YEAR):
    client = Client()
    response = client.post(f"/r/{token}/", {"year": str(year)})
    assert response.status_code == 302, response.status_code
    return client


# --- A participant whose follow-up ended keeps no open door ------------------------------------


@pytest.mark.parametrize("level", [2, 3])
def test_a_link_saves_nothing_once_the_participant_is_withdrawn(setting, level):
    """A link sent before the withdrawal: the participant, or whoever holds their phone,
    went on writing clinical data after follow-up ended (level 2), or after consent was
    withdrawn and their data erased (level 3)."""
    _link, token = services.send_link(setting.visits[0], "email", by=setting.assessor)
    client = checked_client(token)
    client.post(f"/r/{token}/imrs_p/1/", {"answer": "3"})
    withdraw(
        setting.participants[0],
        level,
        by=setting.coordinator,
        reason="Does not want to go on",
        withdrawn_on=TODAY,
    )
    before = list(FormEntry.objects.values_list("pk", "values", "status"))
    client.post(f"/r/{token}/imrs_p/2/", {"answer": "3"})
    assert list(FormEntry.objects.values_list("pk", "values", "status")) == before
    # And the link opens nothing in a new browser either.
    assert Client().get(f"/r/{token}/").status_code == 404


def test_an_open_hand_over_saves_nothing_once_the_participant_is_withdrawn(client, setting):
    client.force_login(setting.assessor)
    visit = setting.visits[0]
    client.post(f"/trials/{setting.trial.key}/visits/{visit.pk}/hand-over/")
    hand_over = HandOver.objects.get()
    withdraw(
        setting.participants[0],
        3,
        by=setting.coordinator,
        reason="Withdrew consent",
        withdrawn_on=TODAY,
    )
    response = client.post(f"/hand-over/{hand_over.pk}/imrs_p/1/", {"answer": "3"})
    assert response.status_code == 409
    assert not FormEntry.objects.exists()


def test_withdrawing_consent_erases_the_contact_and_year_of_birth_too(setting):
    """Level 3 erases the identifying details: the e-mail address and the year of birth the
    links brought are identifying details (the audit report hides them as such), and they
    stayed, in the row and in the history row the erasure itself writes."""
    participant = setting.participants[0]
    withdraw(participant, 3, by=setting.coordinator, reason="Withdrew consent", withdrawn_on=TODAY)
    details = IdentifyingDetails.objects.get(screening__participant=participant)
    assert details.email == "" and details.birth_year is None
    assert not details.agreed_to_links
    for row in details.history.all():
        assert row.email == "" and row.birth_year is None and row.phone == ""


# --- Guessing ----------------------------------------------------------------------------------


def test_the_opt_out_page_is_no_way_round_the_guess_limit(setting):
    """The opt-out page counted unknown tokens but never refused one: an address over the
    limit could go on telling real tokens (200) from guesses (404) there."""
    _link, token = services.send_link(setting.visits[0], "email", by=setting.assessor)
    client = Client()
    for i in range(views.GUESSES_PER_WINDOW):
        client.get(f"/r/guess{i:040d}/stop/")
    assert client.get("/r/another-guess/stop/").status_code == 429
    assert client.get(f"/r/{token}/stop/").status_code == 429


# --- The tablet, when its session loses its user -----------------------------------------------


def test_a_hand_over_whose_user_is_deactivated_asks_for_a_password_not_a_redirect_loop(
    client, setting
):
    """An account deactivated during a hand-over (a role withdrawn at once): the session's user
    became anonymous, the hand-over pages sent it to the sign-in page and the confinement sent
    the sign-in page back to the hand-over, for ever (the browser's "too many redirects")."""
    client.force_login(setting.assessor)
    visit = setting.visits[0]
    client.post(f"/trials/{setting.trial.key}/visits/{visit.pk}/hand-over/")
    hand_over = HandOver.objects.get()
    setting.assessor.is_active = False
    setting.assessor.save(update_fields=["is_active"])
    response = client.get(f"/hand-over/{hand_over.pk}/", follow=True)
    assert response.status_code == 200
    assert len(response.redirect_chain) <= 2
    assert response.request["PATH_INFO"] == "/login/"
    # Nothing of the hand-over or of the site without signing in again.
    assert client.get(f"/hand-over/{hand_over.pk}/").url.startswith("/login/")
    visit_page = reverse("assessments:visit", args=[setting.trial.key, visit.pk])
    assert client.get(visit_page).url.startswith("/login/")


# --- The token in the server's log -------------------------------------------------------------


def test_the_request_log_does_not_keep_a_links_token(setting, caplog):
    """Django logs every 4xx answer with its path: a wrong year of birth (400), a refused save
    (409) and a question past the last (404) wrote a usable link's token into the log, where
    whoever reads the logs could open the participant's questionnaires (with a year of birth,
    which the desk knows)."""
    _link, token = services.send_link(setting.visits[0], "email", by=setting.assessor)
    client = Client()
    with caplog.at_level("INFO"):
        assert client.post(f"/r/{token}/", {"year": "1900"}).status_code == 400
        client.post(f"/r/{token}/", {"year": str(w.BIRTH_YEAR)})
        assert client.get(f"/r/{token}/imrs_p/999/").status_code == 404
    assert caplog.records  # logged: the answers and their paths, without the token
    assert "/r/" in caplog.text
    assert token not in caplog.text


def test_check_deploy_flags_senders_that_write_the_links_to_the_log(settings):
    """The shipped defaults (EMAIL_URL console://, SMS_BACKEND ConsoleSender) write every
    message, its link's token and the participant's address, to the log: a production site
    left with them sent nothing and kept usable links where the logs go."""
    from selfreport import checks

    settings.SMS_BACKEND = "selfreport.sms.ConsoleSender"
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert [m.id for m in checks.messages_are_not_written_to_the_log(None)] == ["selfreport.W002"]
    settings.SMS_BACKEND = checks.HTTP_SENDER
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert [m.id for m in checks.messages_are_not_written_to_the_log(None)] == ["selfreport.W002"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert checks.messages_are_not_written_to_the_log(None) == []


def test_no_reminder_for_a_visit_recorded_as_missed(setting):
    """The outbox asked the participant, the link and the sender again at send time, not the
    visit: a visit recorded as missed after its link went still had its reminders sent, to a
    link that (now) opens nothing."""
    from selfreport import messaging
    from selfreport.models import Message

    link, _token = services.send_link(setting.visits[0], "email", by=setting.assessor)
    type(setting.visits[0]).objects.filter(pk=setting.visits[0].pk).update(missed=True)
    from django.utils import timezone

    daytime = timezone.localtime().replace(hour=12)  # out of the quiet hours
    messaging.send_pending(daytime)
    message = Message.objects.get(link=link)
    assert message.sent_at is None and message.dropped_at is not None


# --- Open: a decision for the maintainers ------------------------------------------------------


def test_staff_typing_into_a_participants_draft_does_not_pass_as_the_participants(client, setting):
    from assessments import registry

    visit = setting.visits[0]
    _link, token = services.send_link(visit, "email", by=setting.assessor)
    checked_client(token).post(f"/r/{token}/imrs_p/1/", {"answer": "3"})
    entry = FormEntry.objects.get()
    client.force_login(setting.assessor)
    data = {f"item_{k}": v for k, v in w.answers(registry.get("imrs_p")).items()}
    data.update(version=str(entry.version), complete="1", acknowledge="1")
    page = reverse("assessments:entry", args=[setting.trial.key, visit.pk, "imrs_p", "single"])
    client.post(page, data)
    entry.refresh_from_db()
    # Refused: the participant's answer stands, still theirs.
    assert entry.values == {"i1": 3} and entry.entered_via == FormEntry.EnteredVia.LINK


# --- The contact corrected ---------------------------------------------------------------------


def test_a_link_sent_to_an_address_since_corrected_stops_working(client, setting):
    """The desk corrects a mistyped e-mail address: the link already sent to the wrong one
    (a stranger's inbox) went on working, and its reminders, with the same token, went to the
    new address too."""
    participant = setting.participants[0]
    _link, token = services.send_link(setting.visits[0], "email", by=setting.assessor)
    client.force_login(setting.coordinator)
    contact = f"/trials/{setting.trial.key}/participants/{participant.participant_id}/contact/"
    response = client.post(
        contact,
        {
            "agreed_to_links": "on",
            "email": "the-right-one@example.org",
            "phone": "+4520000000",
            "birth_year": str(w.BIRTH_YEAR),
            "language": "da",
        },
    )
    assert response.status_code == 302
    assert Client().get(f"/r/{token}/").status_code == 404
    # Saving the contact unchanged stops nothing.
    _link, token = services.send_link(setting.visits[0], "email", by=setting.assessor)
    client.post(
        contact,
        {
            "agreed_to_links": "on",
            "email": "the-right-one@example.org",
            "phone": "+4520000000",
            "birth_year": str(w.BIRTH_YEAR),
            "language": "da",
        },
    )
    assert Client().get(f"/r/{token}/").status_code == 200


def test_the_hand_back_page_invites_no_saved_password(client, setting):
    """The page the participant holds asked the tablet's password manager for the assessor's
    saved password (autocomplete="current-password"): a tap in the field could fill it in for
    the participant, and end the hand-over into the assessor's session."""
    client.force_login(setting.assessor)
    visit = setting.visits[0]
    client.post(f"/trials/{setting.trial.key}/visits/{visit.pk}/hand-over/")
    hand_over = HandOver.objects.get()
    page = client.get(f"/hand-over/{hand_over.pk}/end/").content.decode()
    assert 'type="password"' in page
    assert "current-password" not in page
    assert 'autocomplete="new-password"' in page
