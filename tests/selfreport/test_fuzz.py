"""Bad input on the participant's pages and the staff forms that lead to them: every POST form
the link, the tablet and the staff meet, posted with random dicts of its own fields (as
tests/security/test_fuzz.py does for the rest of the site, whose crawl meets none of these:
the link needs its token and the tablet a hand-over in the session). Never a 500; on a 4xx or
the form again, no table gained or lost a row."""

import logging

import pytest
from django.test import Client

from assessments import registry
from selfreport import services
from selfreport.models import HandOver
from tests.security.test_fuzz import fuzzer, post_forms

from . import world as w

pytestmark = pytest.mark.django_db

# Every URL of the app, each fuzzed here through a form found on a page (or GET only).
NAMES = {
    "selfreport:hand_over_start",
    "selfreport:link_send",
    "selfreport:contact",
    "selfreport:hand_over_item",
    "selfreport:hand_over_finish",
    "selfreport:hand_over_end",
    "selfreport:link",
    "selfreport:link_item",
    "selfreport:link_finish",
    "selfreport:stop",
}
GET_ONLY = {"selfreport:hand_over"}  # the list of the questionnaires


def answer_all(client, base, code):
    for number, value in enumerate(w.answers(registry.get(code)).values(), 1):
        assert client.post(f"{base}/{code}/{number}/", {"answer": value}).status_code == 302


def forms_on(client, paths):
    """{url name: [(client label, action, fields)]} of the POST forms on `paths`."""
    from tests.security.test_fuzz import url_name

    found = {}
    for label, path in paths:
        response = client[label].get(path)
        assert response.status_code == 200, (path, response.status_code)
        for action, fields in post_forms(response.content.decode(), path):
            found.setdefault(url_name(action), []).append((label, action, fields))
    return found


def test_every_participant_form_survives_bad_input_and_saves_nothing_when_refused(caplog):
    caplog.set_level(logging.ERROR, logger="django.request")
    s = w.build(arms=1)
    visit, key = s.visits[0], s.trial.key
    participant = s.participants[0]
    staff, desk, tablet, person = Client(), Client(), Client(), Client()
    staff.force_login(s.assessor)
    desk.force_login(s.coordinator)
    tablet.force_login(s.assessor)
    tablet.post(f"/trials/{key}/visits/{visit.pk}/hand-over/")
    pk = HandOver.objects.get().pk
    _, token = services.send_link(visit, "email", by=s.assessor)
    # "fresh": a browser that has not passed the link's check, which the check's form is for.
    clients = {"staff": staff, "desk": desk, "tablet": tablet, "person": person, "fresh": Client()}
    # Every question answered, so that the finish pages show their form.
    answer_all(tablet, f"/hand-over/{pk}", "imrs_p")
    person.post(f"/r/{token}/", {"year": str(w.BIRTH_YEAR)})
    answer_all(person, f"/r/{token}", "mhrm")
    pages = [
        ("staff", f"/trials/{key}/visits/{visit.pk}/"),
        ("desk", f"/trials/{key}/participants/{participant.participant_id}/contact/"),
        ("tablet", f"/hand-over/{pk}/imrs_p/1/"),
        ("tablet", f"/hand-over/{pk}/imrs_p/finish/"),
        ("tablet", f"/hand-over/{pk}/end/"),
        ("fresh", f"/r/{token}/"),
        ("person", f"/r/{token}/stop/"),
    ]
    found = forms_on(clients, pages)
    # The link's question pages, after its check (answered above: a fuzzed check would block
    # the link before its pages are found).
    found.update(
        forms_on(
            clients,
            [("person", f"/r/{token}/mhrm/1/"), ("person", f"/r/{token}/mhrm/finish/")],
        )
    )
    # The rest of the site's forms on these pages (the visit's, signing out) are the crawl's.
    found = {name: forms for name, forms in found.items() if name in NAMES}
    assert set(found) == NAMES - GET_ONLY, NAMES - set(found)
    failures = []
    # The finish pages and the check last: a finished form takes no more answers, and enough
    # wrong answers to the check block the link and its pages with it.
    last = {"selfreport:hand_over_finish": 1, "selfreport:link_finish": 1, "selfreport:link": 2}
    for name, forms in sorted(found.items(), key=lambda item: last.get(item[0], 0)):
        try:
            fuzzer(clients, name, forms)()
        except AssertionError as exc:
            failures.append((name, str(exc)[:800]))
    assert failures == []


def test_every_url_of_the_app_is_fuzzed_here():
    from tests.security.test_fuzz import project_url_names

    assert {n for n in project_url_names() if n.startswith("selfreport:")} == NAMES | GET_ONLY
