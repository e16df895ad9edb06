"""The participant's link: a long random token stored only as its SHA-256, a year-of-birth
check with a limit on tries, stopping and coming back, and one plain page for every link that
does not work; guessing is limited; a link reaches its own forms only."""

import datetime
import hashlib

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone, translation
from django.utils.translation import ngettext

from assessments import registry
from assessments.models import FormEntry
from imrtrial.models import Membership
from selfreport import services, views
from selfreport.models import Link

from . import world as w

pytestmark = pytest.mark.django_db


@pytest.fixture
def setting():
    return w.build(arms=2)


@pytest.fixture
def sent(setting):
    link, token = services.send_link(setting.visits[0], "email", by=setting.assessor)
    return link, token


def checked_client(token, year=w.BIRTH_YEAR):
    client = Client()
    response = client.post(f"/r/{token}/", {"year": str(year)})
    assert response.status_code == 302 and response.url == f"/r/{token}/"
    return client


def test_the_token_is_long_random_and_only_its_digest_is_stored(setting, sent):
    link, token = sent
    assert len(token) >= 43  # 32 bytes
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    _, second = services.send_link(setting.visits[1], "email", by=setting.assessor)
    assert second != token
    # No column of any table holds the token.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM selfreport_link l WHERE row_to_json(l)::text LIKE %s",
            [f"%{token}%"],
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT count(*) FROM selfreport_message m WHERE row_to_json(m)::text LIKE %s",
            [f"%{token}%"],
        )
        assert cursor.fetchone()[0] == 0


def test_a_new_link_replaces_the_old_one(setting, sent):
    _, old = sent
    services.send_link(setting.visits[0], "sms", by=setting.assessor)
    assert Client().get(f"/r/{old}/").status_code == 404


def test_the_check_counts_wrong_answers_and_blocks_after_five(sent):
    link, token = sent
    client = Client()
    for tries_left in (4, 3, 2, 1):
        response = client.post(f"/r/{token}/", {"year": "1900"})
        assert response.status_code == 400
        with translation.override("da"):  # the participant's language
            said = ngettext(
                "That is not right. You have %(tries)s more try.",
                "That is not right. You have %(tries)s more tries.",
                tries_left,
            ) % {"tries": tries_left}
        assert said in response.content.decode()
    blocked = client.post(f"/r/{token}/", {"year": "1900"})
    assert blocked.status_code == 404
    # Blocked: the right answer opens nothing now, and the page is the plain one.
    after = Client().post(f"/r/{token}/", {"year": str(w.BIRTH_YEAR)})
    assert after.status_code == 404
    link.refresh_from_db()
    assert link.blocked_at is not None and link.failed_checks == 5
    assert not FormEntry.objects.exists()


def test_nothing_is_shown_before_the_check(sent):
    _, token = sent
    client = Client()
    page = client.get(f"/r/{token}/").content.decode()
    assert 'name="year"' in page and "imrs_p" not in page
    # The question pages send an unchecked browser back to the check.
    assert client.get(f"/r/{token}/imrs_p/1/").url == f"/r/{token}/"
    assert client.post(f"/r/{token}/imrs_p/1/", {"answer": "3"}).url == f"/r/{token}/"
    assert not FormEntry.objects.exists()


def test_stop_halfway_come_back_in_another_browser_and_finish(setting, sent):
    link, token = sent
    client = checked_client(token)
    client.post(f"/r/{token}/imrs_p/1/", {"answer": "4"})
    client.post(f"/r/{token}/imrs_p/2/", {"answer": "4"})
    # Another day, another browser: the check again, then on from question 3.
    later = checked_client(token)
    index = later.get(f"/r/{token}/").content.decode()
    assert f"/r/{token}/imrs_p/3/" in index
    instrument = registry.get("imrs_p")
    for number, value in enumerate(w.answers(instrument).values(), 1):
        if number > 2:
            later.post(f"/r/{token}/imrs_p/{number}/", {"answer": value})
    later.post(f"/r/{token}/imrs_p/finish/")
    entry = FormEntry.objects.get(instrument="imrs_p")
    assert (entry.status, entry.entered_via, entry.kind) == ("complete", "link", "single")
    assert entry.entered_by == setting.assessor and entry.values["i1"] == 4
    for code in link.instruments:
        if code != "imrs_p":
            for number, value in enumerate(w.answers(registry.get(code)).values(), 1):
                later.post(f"/r/{token}/{code}/{number}/", {"answer": value})
            later.post(f"/r/{token}/{code}/finish/")
    link.refresh_from_db()
    assert link.finished_at is not None
    # Thanks, once, in the browser that finished; from then on, and in any other browser,
    # the plain page, the same as for a token never made.
    thanks = later.get(f"/r/{token}/")
    assert thanks.status_code == 200 and 'name="year"' not in thanks.content.decode()
    used = later.get(f"/r/{token}/")
    assert used.status_code == 404
    assert used.content == Client().get("/r/" + "x" * 43 + "/").content


def test_an_expired_link_shows_the_same_plain_page(sent):
    link, token = sent
    Link.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    expired = Client().get(f"/r/{token}/")
    unknown = Client().get("/r/" + "A" * 43 + "/")
    assert expired.status_code == unknown.status_code == 404
    assert expired.content == unknown.content
    assert Client().post(f"/r/{token}/", {"year": str(w.BIRTH_YEAR)}).status_code == 404


def test_the_link_expires_at_the_end_of_the_window(setting, sent):
    link, _ = sent
    end = setting.visits[0].window_end + datetime.timedelta(days=1)
    assert timezone.localtime(link.expires_at).date() == end
    assert timezone.localtime(link.expires_at).time() == datetime.time(0, 0)


def test_a_link_reaches_its_own_forms_only(setting, sent):
    _, token = sent
    client = checked_client(token)
    # A form not among the link's (a staff-rated one of the same visit): not found.
    assert client.get(f"/r/{token}/imrs_s/1/").status_code == 404
    assert client.get(f"/r/{token}/gaf_f/1/").status_code == 404
    # The site's pages stay closed to the participant's browser.
    visit = setting.visits[0]
    for path in ("/", f"/trials/{setting.trial.key}/visits/{visit.pk}/", "/admin/"):
        response = client.get(path)
        assert response.status_code in (302, 404) and "/login" in response.get("Location", "/login")
    # Another participant's link: checked apart, whatever this browser passed.
    _, other = services.send_link(setting.visits[1], "email", by=setting.assessor)
    assert 'name="year"' in client.get(f"/r/{other}/").content.decode()
    assert client.get(f"/r/{other}/imrs_p/1/").url == f"/r/{other}/"


def test_guessing_tokens_is_limited(sent):
    _, token = sent
    client = Client()
    for i in range(views.GUESSES_PER_WINDOW):
        assert client.get(f"/r/guess{i:040d}/").status_code == 404
    assert client.get("/r/another-guess/").status_code == 429
    # Even a real link waits: the address is guessing.
    assert client.get(f"/r/{token}/").status_code == 429


def test_a_link_whose_sender_lost_the_role_saves_nothing(setting, sent):
    _, token = sent
    client = checked_client(token)
    Membership.objects.filter(user=setting.assessor).update(active=False)
    response = client.post(f"/r/{token}/imrs_p/1/", {"answer": "3"})
    assert response.status_code == 409
    assert not FormEntry.objects.exists()


def test_no_link_without_consent_contact_or_year(setting):
    from imrtrial.errors import Refused
    from randomization.models import IdentifyingDetails

    visit = setting.visits[0]
    details = IdentifyingDetails.objects.filter(screening__participant=visit.participant)
    for change in ({"agreed_to_links": False}, {"birth_year": None}, {"email": ""}):
        details.update(
            **{"agreed_to_links": True, "birth_year": w.BIRTH_YEAR, "email": "a@b.dk"} | change
        )
        with pytest.raises(Refused):
            services.send_link(visit, "email", by=setting.assessor)
    details.update(messages_stopped_at=timezone.now(), email="a@b.dk", birth_year=1975)
    with pytest.raises(Refused):
        services.send_link(visit, "sms", by=setting.assessor)
    assert not Link.objects.exists()


def test_the_opt_out_page_changes_nothing_on_get(sent):
    link, token = sent
    from randomization.models import IdentifyingDetails

    page = Client().get(f"/r/{token}/stop/")
    assert page.status_code == 200 and "<form" in page.content.decode()
    details = IdentifyingDetails.objects.get(screening__participant=link.visit.participant)
    assert details.messages_stopped_at is None


def test_no_participant_page_is_kept_in_the_browsers_cache(setting, sent):
    _, token = sent
    client = checked_client(token)
    for path in (f"/r/{token}/", f"/r/{token}/imrs_p/1/", f"/r/{token}/stop/"):
        assert "no-store" in client.get(path)["Cache-Control"], path
