"""Which language a user gets (their preference, else their trial's, else the browser's), the
header's switcher and the preferences page that store it, pages and mail in that language, and
dates and numbers written as each language writes them."""

import datetime
import decimal
import re

import pytest
from django.core import mail
from django.utils import formats, translation

from imrtrial import i18n
from imrtrial.models import Role, Trial, UserSettings
from staff import services

from ..factories import make_person

LANG = re.compile(r'<html lang="([^"]+)"')


def page_language(client, **headers):
    response = client.get("/", **headers)
    assert response.status_code == 200
    return LANG.search(response.content.decode()).group(1)


@pytest.fixture
def member(trial):
    return make_person(trial, Role.ASSESSOR, None, "member", email="member@example.org")


def set_trial_language(trial, language):
    Trial.objects.filter(pk=trial.pk).update(language=language)
    trial.refresh_from_db()


@pytest.mark.django_db
def test_the_browser_decides_without_a_preference_or_trial_language(client, trial, member):
    client.force_login(member)
    assert page_language(client) == "en"
    assert page_language(client, HTTP_ACCEPT_LANGUAGE="da,en;q=0.5") == "da"
    assert page_language(client, HTTP_ACCEPT_LANGUAGE="nl-NL") == "nl"


@pytest.mark.django_db
def test_the_trial_language_comes_before_the_browser(client, trial, member):
    set_trial_language(trial, "nl")
    client.force_login(member)
    assert page_language(client, HTTP_ACCEPT_LANGUAGE="da") == "nl"


@pytest.mark.django_db
def test_the_users_preference_comes_before_the_trial_and_the_browser(client, trial, member):
    set_trial_language(trial, "nl")
    UserSettings.objects.create(user=member, language="en")
    client.force_login(member)
    assert page_language(client, HTTP_ACCEPT_LANGUAGE="da") == "en"
    assert i18n.language_for(member, trial) == "en"


@pytest.mark.django_db
def test_language_for_mail_falls_back_to_the_trial_then_the_default(trial, member):
    assert i18n.language_for(member) == "en"
    set_trial_language(trial, "da")
    assert i18n.language_for(member) == "da"
    assert i18n.language_for(member, trial) == "da"
    UserSettings.objects.create(user=member, language="nl")
    assert i18n.language_for(member, trial) == "nl"


@pytest.mark.django_db
def test_the_switcher_stores_a_signed_in_users_preference(client, trial, member):
    client.force_login(member)
    response = client.post("/i18n/setlang/", {"language": "da", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert UserSettings.objects.get(user=member).language == "da"
    assert client.cookies["django_language"].value == "da"
    # Without the cookie too (another browser): the stored preference holds.
    client.cookies.pop("django_language")
    assert page_language(client, HTTP_ACCEPT_LANGUAGE="nl") == "da"
    assert "Dit arbejde" in client.get("/").content.decode()


@pytest.mark.django_db
def test_the_switcher_works_signed_out_with_the_cookie_only(client):
    response = client.post("/i18n/setlang/", {"language": "nl", "next": "/login/"})
    assert response.status_code == 302
    assert not UserSettings.objects.exists()
    page = client.get("/login/").content.decode()
    assert '<html lang="nl">' in page and "Inloggen" in page


@pytest.mark.django_db
def test_the_switcher_is_a_labelled_form_that_needs_no_script(client, member):
    client.force_login(member)
    page = client.get("/").content.decode()
    assert '<label class="visually-hidden" for="language-switcher">Language</label>' in page
    assert 'action="/i18n/setlang/"' in page and 'type="submit"' in page


@pytest.mark.django_db
def test_the_preferences_page_sets_and_clears_the_language(client, trial, member):
    client.force_login(member)
    assert client.get("/account/preferences/").status_code == 200
    response = client.post("/account/preferences/", {"language": "nl"}, follow=True)
    assert UserSettings.objects.get(user=member).language == "nl"
    assert "Uw voorkeuren zijn opgeslagen." in response.content.decode()
    client.post("/account/preferences/", {"language": ""})
    assert UserSettings.objects.get(user=member).language == ""
    assert page_language(client) == "en"
    assert client.post("/account/preferences/", {"language": "xx"}).status_code == 200
    assert UserSettings.objects.get(user=member).language == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "heading"), [("en", "Your work"), ("da", "Dit arbejde"), ("nl", "Uw werk")]
)
def test_the_home_page_renders_in_each_language(client, member, language, heading):
    UserSettings.objects.create(user=member, language=language)
    client.force_login(member)
    page = client.get("/").content.decode()
    assert f'<html lang="{language}">' in page and f">{heading}</h1>" in page


@pytest.mark.django_db
def test_an_invitation_is_written_in_the_recipients_language_not_the_senders(
    trial, person, django_capture_on_commit_callbacks
):
    set_trial_language(trial, "nl")
    admin = person(Role.TRIAL_ADMIN)
    UserSettings.objects.create(user=admin, language="da")
    with translation.override("da"), django_capture_on_commit_callbacks(execute=True):
        services.invite(
            trial,
            email="nieuw@example.org",
            first_name="Noor",
            last_name="Visser",
            role=Role.ASSESSOR,
            site=None,
            by=admin,
            reason="nieuwe beoordelaar",
            link_for=lambda token: f"http://testserver/invitation/{token}/",
        )
    (message,) = mail.outbox
    assert message.subject == f"{trial.name}: stel uw wachtwoord in"
    assert "Als u dit bericht niet verwachtte" in message.body
    assert "/invitation/" in message.body


def test_dates_and_decimals_are_written_as_each_language_writes_them():
    day, number = datetime.date(2026, 3, 5), decimal.Decimal("1234.5")
    expected = {
        "en": ("2026-03-05", "5 Mar 2026", "1,234.5"),
        "da": ("05.03.2026", "5. marts 2026", "1.234,5"),
        "nl": ("05-03-2026", "5 maart 2026", "1.234,5"),
    }
    for language, (short, long, decimal_text) in expected.items():
        with translation.override(language):
            assert formats.date_format(day, "SHORT_DATE_FORMAT") == short
            assert formats.date_format(day) == long
            assert formats.number_format(number, 1, force_grouping=True) == decimal_text
            assert formats.sanitize_separators("2,5" if language != "en" else "2.5") == "2.5"


@pytest.mark.django_db
def test_a_notice_to_several_people_is_written_in_each_ones_language(trial):
    """outbox.send_each: each recipient gets the message in their own language (their
    preference, else the trial's), and their preferences are read in one query for all."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils.translation import gettext

    from imrtrial import outbox
    from imrtrial.models import Perm

    set_trial_language(trial, "nl")
    people = {}
    for language in ("da", "en", None):
        user = make_person(
            trial, Role.ASSESSOR, None, f"reader-{language}", email=f"{language}@example.org"
        )
        if language:
            i18n.set_preference(user, language)
        people[language or "nl"] = user
    readers = [type(u).objects.get(pk=u.pk) for u in people.values()]  # loaded plainly

    def message():
        return gettext("Worklist"), gettext("Save draft")

    rule = outbox.Rule(perms=(Perm.ENTER_INTERVIEW,), reveals_allocation=False)
    with CaptureQueriesContext(connection) as queries:
        sent = outbox.send_each(readers, message, trial=trial, site=None, rule=rule)
    assert sent == 3
    settings_reads = [q for q in queries if "imrtrial_usersettings" in q["sql"]]
    assert len(settings_reads) == 1
    by_to = {m.to[0]: m for m in mail.outbox}
    for language in ("da", "en", "nl"):
        with translation.override(language):
            expected = (gettext("Worklist"), gettext("Save draft"))
        to = "None@example.org" if language == "nl" else f"{language}@example.org"
        assert (by_to[to].subject, by_to[to].body) == expected
    assert by_to["da@example.org"].subject != by_to["en@example.org"].subject


def test_a_moment_in_a_message_is_the_sites_local_day_not_the_day_in_utc():
    """i18n_text.short_date: a register batch imported at 23:30 UTC on 5 March was imported on
    6 March in Copenhagen, and the refusal naming it says so, as the pages' date filter would."""
    from django.utils import timezone as tz

    from imrtrial.i18n_text import short_date

    late = datetime.datetime(2026, 3, 5, 23, 30, tzinfo=datetime.UTC)
    assert tz.localdate(late) == datetime.date(2026, 3, 6)  # TIME_ZONE Europe/Copenhagen
    with translation.override("da"):
        assert short_date(late) == "06.03.2026"
        assert short_date(datetime.date(2026, 3, 5)) == "05.03.2026"
