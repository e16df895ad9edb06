"""The participant's contact for questionnaires: edited by those who may see identifying
details, checked (a link needs a year of birth and a way to reach them), kept with its
history, and out of reach of everyone else."""

import pytest

from randomization.models import IdentifyingDetails

from . import world as w

pytestmark = pytest.mark.django_db


@pytest.fixture
def setting():
    return w.build(arms=1)


def url(s):
    return f"/trials/{s.trial.key}/participants/{s.participants[0].participant_id}/contact/"


def details(s):
    return IdentifyingDetails.objects.get(screening__participant=s.participants[0])


def test_the_desk_saves_the_contact_with_its_history(client, setting):
    client.force_login(setting.coordinator)
    detail = client.get(url(setting).replace("contact/", "")).content.decode()
    assert url(setting) in detail
    response = client.post(
        url(setting),
        {
            "agreed_to_links": "on",
            "email": "new@example.org",
            "phone": "+4511111111",
            "birth_year": "1980",
            "language": "nl",
        },
    )
    assert response.status_code == 302
    saved = details(setting)
    assert (saved.email, saved.birth_year, saved.language) == ("new@example.org", 1980, "nl")
    last = saved.history.first()
    assert last.history_user == setting.coordinator
    assert last.history_change_reason == "contact for questionnaires"


@pytest.mark.parametrize(
    "change",
    [{"birth_year": ""}, {"birth_year": "1850"}, {"email": "", "phone": ""}, {"email": "x@"}],
)
def test_a_contact_that_cannot_work_is_refused_with_nothing_saved(client, setting, change):
    client.force_login(setting.coordinator)
    before = details(setting).history.count()
    data = {"agreed_to_links": "on", "email": "a@example.org", "birth_year": "1980"} | change
    response = client.post(url(setting), data)
    assert response.status_code == 400
    assert details(setting).history.count() == before


def test_a_blinded_assessor_neither_sees_nor_edits_it(client, setting):
    client.force_login(setting.assessor)
    assert client.get(url(setting)).status_code == 404
    assert client.post(url(setting), {"email": "x@example.org"}).status_code == 404
    detail = client.get(url(setting).replace("contact/", "")).content.decode()
    assert url(setting) not in detail


def test_the_audit_trail_hides_the_contact_and_the_links_secrets(client, setting):
    """The e-mail address and the year of birth are identifying like the name; a link's
    nonce makes its token with the server's secret, so nobody sees it."""
    from selfreport import services
    from tests.factories import grant, make_user
    from tests.security.test_audit_report import audit, rows

    client.force_login(setting.coordinator)
    client.post(
        url(setting),
        {"agreed_to_links": "on", "email": "hidden@example.org", "birth_year": "1961"},
    )
    link, _ = services.send_link(setting.visits[0], "email", by=setting.assessor)
    auditor = make_user("auditor")
    grant(auditor, setting.trial, "key_holder")
    client.force_login(auditor)
    world = type("World", (), {"trial": setting.trial})
    details = " ".join(rows(audit(client, world, kind="identifying")))
    assert "hidden@example.org" not in details and "1961" not in details
    assert "(hidden)" in details
    links = " ".join(rows(audit(client, world, kind="participant_link")))
    assert setting.participants[0].participant_id in links
    assert link.nonce not in links and link.token_hash not in links
    hand_overs = audit(client, world, kind="hand_over")
    assert hand_overs.status_code == 200
