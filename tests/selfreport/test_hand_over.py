"""The tablet handed over: the participant answers one question per screen, saved as they go,
in their language; nothing else of the site is reachable until the assessor's password ends
the hand-over; the answers are a single entry marked as the participant's, with the audit
trail, scores and locks of any entry."""

import re

import pytest
from django.utils import timezone, translation

from assessments import registry
from assessments.models import FormEntry
from assessments.services import save_entry
from imrtrial.errors import Refused
from imrtrial.models import Participant
from selfreport import services
from selfreport.models import HandOver

from . import world as w

pytestmark = pytest.mark.django_db


@pytest.fixture
def setting():
    return w.build(arms=1)


def start(client, s):
    client.force_login(s.assessor)
    visit = s.visits[0]
    response = client.post(f"/trials/{s.trial.key}/visits/{visit.pk}/hand-over/")
    hand_over = HandOver.objects.get()
    assert response.status_code == 302 and response.url == f"/hand-over/{hand_over.pk}/"
    return hand_over


def answer_all(client, hand_over, code):
    instrument = registry.get(code)
    for number, value in enumerate(w.answers(instrument).values(), 1):
        response = client.post(
            f"/hand-over/{hand_over.pk}/{code}/{number}/", {"answer": value}, follow=False
        )
        assert response.status_code == 302, (number, response.content[:300])
    return client.post(f"/hand-over/{hand_over.pk}/{code}/finish/")


def test_the_participant_answers_the_imrs_and_it_is_their_single_entry(client, setting):
    s = setting
    hand_over = start(client, s)
    assert hand_over.instruments == services.self_report_codes(s.visits[0])
    assert "imrs_p" in hand_over.instruments and hand_over.language == "da"
    index = client.get(f"/hand-over/{hand_over.pk}/").content.decode()
    with translation.override("da"):
        assert translation.gettext("Your questionnaires") in index
    assert s.participants[0].participant_id not in index  # nothing of the site around it
    first = client.get(f"/hand-over/{hand_over.pk}/imrs_p/1/").content.decode()
    assert 'type="radio"' in first and "<progress" in first
    # One at a time, with a way back.
    assert f'href="/hand-over/{hand_over.pk}/"' in first
    answer_all(client, hand_over, "imrs_p")
    entry = FormEntry.objects.get(instrument="imrs_p")
    assert entry.kind == "single" and entry.status == "complete"
    assert entry.entered_via == "tablet" and entry.entered_by == s.assessor
    assert entry.scores  # scored as any entry
    assert entry.history.count() >= 2  # a draft per answer, then complete: the audit trail


def test_stopping_halfway_keeps_the_answers_and_the_index_says_continue(client, setting):
    hand_over = start(client, setting)
    client.post(f"/hand-over/{hand_over.pk}/imrs_p/1/", {"answer": "3"})
    client.post(f"/hand-over/{hand_over.pk}/imrs_p/2/", {"answer": "2"})
    entry = FormEntry.objects.get(instrument="imrs_p")
    assert entry.status == "draft" and len(entry.values) == 2
    index = client.get(f"/hand-over/{hand_over.pk}/").content.decode()
    assert f"/hand-over/{hand_over.pk}/imrs_p/3/" in index
    # Back shows the answer given.
    back = client.get(f"/hand-over/{hand_over.pk}/imrs_p/2/").content.decode()
    assert re.search(r'value="2"\s+checked', back)


def test_finishing_with_questions_unanswered_lists_them_and_saves_no_completion(client, setting):
    hand_over = start(client, setting)
    client.post(f"/hand-over/{hand_over.pk}/imrs_p/1/", {"answer": "3"})
    page = client.post(f"/hand-over/{hand_over.pk}/imrs_p/finish/").content.decode()
    assert f"/hand-over/{hand_over.pk}/imrs_p/2/" in page
    assert FormEntry.objects.get(instrument="imrs_p").status == "draft"


def test_a_wrong_answer_is_shown_on_its_screen_and_not_saved(client, setting):
    hand_over = start(client, setting)
    response = client.post(f"/hand-over/{hand_over.pk}/imrs_p/1/", {"answer": "99"})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert not FormEntry.objects.filter(instrument="imrs_p").exists()


def test_prefer_not_to_answer_is_the_refused_code(client, setting):
    hand_over = start(client, setting)
    client.post(f"/hand-over/{hand_over.pk}/imrs_p/1/", {"prefer_not": "1"})
    assert FormEntry.objects.get(instrument="imrs_p").values == {
        registry.get("imrs_p").items[0].code: "RF"
    }


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/admin/",
        "/account/preferences/",
        "/trials/{key}/participants/",
        "/trials/{key}/visits/{visit}/",
        "/trials/{key}/visits/{visit}/entry/imrs_p/single/",
        "/api/docs/",
        "/i18n/setlang/",
    ],
)
def test_nothing_else_of_the_site_is_reachable_during_the_hand_over(client, setting, path):
    hand_over = start(client, setting)
    path = path.format(key=setting.trial.key, visit=setting.visits[0].pk)
    for method in (client.get, client.post):
        response = method(path)
        assert response.status_code == 302 and response.url == f"/hand-over/{hand_over.pk}/"


def test_the_assessors_password_ends_it_and_a_wrong_one_does_not(client, setting):
    hand_over = start(client, setting)
    wrong = client.post(f"/hand-over/{hand_over.pk}/end/", {"password": "guess"})
    assert wrong.status_code == 400
    assert client.get("/").url == f"/hand-over/{hand_over.pk}/"
    right = client.post(f"/hand-over/{hand_over.pk}/end/", {"password": w.PASSWORD})
    visit = setting.visits[0]
    assert right.url == f"/trials/{setting.trial.key}/visits/{visit.pk}/"
    assert client.get("/").status_code == 200
    hand_over.refresh_from_db()
    assert hand_over.ended_at is not None
    # Ended: its pages are gone.
    assert client.get(f"/hand-over/{hand_over.pk}/").status_code == 404


def test_another_session_cannot_open_the_hand_over(client, setting, django_user_model):
    hand_over = start(client, setting)
    from django.test import Client

    other = Client()
    other.force_login(setting.assessor)  # the same assessor, another browser
    assert other.get(f"/hand-over/{hand_over.pk}/").status_code == 404
    assert other.get(f"/hand-over/{hand_over.pk}/imrs_p/1/").status_code == 404


def test_paper_and_the_participants_own_answers_exclude_each_other(setting):
    s = setting
    visit = s.visits[0]
    services.save_answers(visit, "mhrm", {}, by=s.assessor, via="tablet")
    with pytest.raises(Refused):
        save_entry(visit, "mhrm", {}, by=s.assessor, kind="first")
    save_entry(visit, "ahs", {}, by=s.assessor, kind="first")
    with pytest.raises(Refused):
        services.save_answers(visit, "ahs", {}, by=s.assessor, via="link")
    assert "ahs" not in services.open_forms(visit) and "mhrm" in services.open_forms(visit)
    # The visit page gives the entries it has read (every one of the participant's at the
    # timepoint): the same answer, with no query of its own.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from assessments.models import FormEntry

    read = list(
        FormEntry.objects.filter(participant=visit.participant, timepoint=visit.timepoint.code)
    )
    with CaptureQueriesContext(connection) as queries:
        assert services.open_forms(visit, entries=read) == services.open_forms(visit)
    assert len(queries) == 1  # the call without entries
    assert services.open_forms(visit, entries=[]) == services.self_report_codes(visit)
    # The visit page's panel tag: the entries read, or an undefined variable ("") that must
    # not read as "nothing entered".
    from django.test import RequestFactory

    from selfreport.templatetags.selfreport_tags import self_report_panel

    request = RequestFactory().get("/")
    request.user = s.assessor
    panel = self_report_panel({"request": request}, s.trial, visit)
    assert panel["shown"] and [i.code for i in panel["open"]] == services.open_forms(visit)
    assert "ahs" not in [i.code for i in panel["open"]]
    for entries in (read, ""):
        assert self_report_panel({"request": request}, s.trial, visit, entries) == panel


def test_a_casebook_locked_during_the_hand_over_refuses_the_next_answer(client, setting):
    hand_over = start(client, setting)
    Participant.objects.filter(pk=setting.participants[0].pk).update(
        casebook_locked_at=timezone.now()
    )
    response = client.post(f"/hand-over/{hand_over.pk}/imrs_p/1/", {"answer": "3"})
    assert response.status_code == 409
    assert not FormEntry.objects.filter(instrument="imrs_p").exists()


def test_no_hand_over_without_the_right_to_enter(client, setting):
    from tests.factories import make_person, make_user

    path = f"/trials/{setting.trial.key}/visits/{setting.visits[0].pk}/hand-over/"
    # A facilitator sees the visit but enters no assessor's forms: refused, on the visit page.
    client.force_login(make_person(setting.trial, "facilitator", username="fac"))
    refused = client.post(path, follow=True)
    assert refused.redirect_chain[-1][0].endswith(f"/visits/{setting.visits[0].pk}/")
    # Someone with no role in the trial: nothing is there.
    client.force_login(make_user("stranger"))
    assert client.post(path).status_code == 404
    assert not HandOver.objects.exists()


def test_a_participant_is_asked_no_free_text(setting, monkeypatch):
    """Their entry is recorded under the blinded assessor: free text from them (naming the
    group they go to, say) would reach blinded readers as a blinded author's words."""
    import dataclasses

    from assessments.definitions import Item

    mhrm = registry.get("mhrm")
    note = Item(code="note", label="Anything else?", type="text", section="", required=False)
    with_note = dataclasses.replace(mhrm, sections=(*mhrm.sections, ("x", "Note", (note,))))
    monkeypatch.setitem(registry._instruments, "mhrm", with_note)
    assert note not in services.asked(with_note)
    visit = setting.visits[0]
    with pytest.raises(Refused):
        services.save_answers(visit, "mhrm", {"note": "my group"}, by=setting.assessor, via="link")
    assert not FormEntry.objects.exists()
    # Staff typing the same form from paper may.
    save_entry(visit, "mhrm", {"note": "on paper"}, by=setting.assessor, kind="first")
    # A form that needs free text is not offered to the participant at all.
    required = dataclasses.replace(note, required=True)
    needs = dataclasses.replace(mhrm, sections=(*mhrm.sections, ("x", "Note", (required,))))
    monkeypatch.setitem(registry._instruments, "ahs", dataclasses.replace(needs, code="ahs"))
    assert "ahs" not in services.self_report_codes(visit)
