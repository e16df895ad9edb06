"""Blinding of the participant's pages, differentially: a participant of each arm walks the
link and the tablet, in English, Danish and Dutch; every page each of them meets, and the
visit page's panel the assessor sees, must be the same for both once the token, the ids and the
form's security token are taken out, and none may hold an arm-revealing word of the trial."""

import difflib
import re

import lxml.html
import pytest
from django.test import Client

from assessments import registry
from imrtrial import blinding_words
from imrtrial.models import Trial
from randomization.models import IdentifyingDetails
from selfreport import services
from selfreport.models import HandOver

from . import world as w

pytestmark = pytest.mark.django_db

LANGUAGES = ("en", "da", "nl")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def normalized(html, *keys):
    html = CSRF.sub('name="csrfmiddlewaretoken" value="-"', html)
    for key in keys:
        html = html.replace(str(key), "KEY")
    return html


def text_of(html):
    """What the page says (the crawler reads words in the text, not in URLs: the trial's key,
    in every link, may hold an arm's code)."""
    return lxml.html.fromstring(html).text_content()


def _words(trial):
    """The trial's revealing words, but the programme's name, which the questionnaires of
    both arms carry in their own titles (the IMR Scale)."""
    return [word for word in blinding_words.revealing_words(trial) if word.kind != "programme"]


def walk_link(token, visit):
    """Every page of a link, from the check to the thanks: [(label, html)]."""
    client, pages = Client(), []

    def get(label, path, data=None, method="get"):
        response = getattr(client, method)(path, data or {})
        if response.status_code == 302:
            response = client.get(response.url)
        pages.append((label, response.status_code, response.content.decode()))

    get("check", f"/r/{token}/")
    get("wrong year", f"/r/{token}/", {"year": "1900"}, "post")
    get("index", f"/r/{token}/", {"year": str(w.BIRTH_YEAR)}, "post")
    for code in services.self_report_codes(visit):
        instrument = registry.get(code)
        get(f"{code} 1", f"/r/{token}/{code}/1/")
        get(f"{code} bad", f"/r/{token}/{code}/1/", {"answer": "999"}, "post")
        for number, value in enumerate(w.answers(instrument).values(), 1):
            get(f"{code} {number}", f"/r/{token}/{code}/{number}/", {"answer": value}, "post")
        get(f"{code} done", f"/r/{token}/{code}/finish/", {}, "post")
    get("thanks", f"/r/{token}/")
    get("stop", f"/r/{token}/stop/")
    return pages


def walk_hand_over(client, trial, visit):
    pages = []
    response = client.post(f"/trials/{trial.key}/visits/{visit.pk}/hand-over/")
    pk = HandOver.objects.filter(visit=visit).latest("pk").pk
    for label, path in [
        ("index", response.url),
        ("item", f"/hand-over/{pk}/imrs_p/1/"),
        ("finish", f"/hand-over/{pk}/imrs_p/finish/"),
        ("hand back", f"/hand-over/{pk}/end/"),
    ]:
        got = client.get(path)
        html = re.sub(r"/hand-over/\d+/", "/hand-over/KEY/", got.content.decode())
        pages.append((label, got.status_code, normalized(html)))
    client.post(f"/hand-over/{pk}/end/", {"password": w.PASSWORD})
    return pages


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_link_pages_are_the_same_for_both_arms(language):
    s = w.build(language)
    walks = []
    for visit in s.visits:
        _, token = services.send_link(visit, "email", by=s.assessor)
        walks.append(
            [
                (label, status, normalized(html, token))
                for label, status, html in walk_link(token, visit)
            ]
        )
    first, second = walks
    assert [p[:2] for p in first] == [p[:2] for p in second]
    for (label, _, one), (_, _, other) in zip(first, second, strict=True):
        assert one == other, label
    words = _words(s.trial)
    for label, _, html in first:
        for word in words:
            assert not word.pattern.search(text_of(html)), (label, word)
    assert {status for _, status, _ in first} <= {200, 400, 404}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_tablet_pages_and_the_visit_panel_are_the_same_for_both_arms(language, client):
    s = w.build(language)
    client.force_login(s.assessor)
    panels, walks = [], []
    for visit in s.visits:
        walks.append(walk_hand_over(client, s.trial, visit))
        services.send_link(visit, "sms", by=s.assessor)
        page = client.get(f"/trials/{s.trial.key}/visits/{visit.pk}/").content.decode()
        panel = page[page.index('aria-labelledby="self-report-h"') :]
        panel = panel[: panel.index("</section>")]
        panels.append(re.sub(r"/visits/\d+/", "/visits/KEY/", normalized(panel)))
    assert panels[0] == panels[1]
    for one, other in zip(walks[0], walks[1], strict=True):
        assert one == other, "\n".join(
            difflib.unified_diff(one[2].splitlines(), other[2].splitlines(), lineterm="")
        )
    words = _words(s.trial)
    for label, _, html in [*walks[0], ("panel", 200, panels[0])]:
        for word in words:
            assert not word.pattern.search(text_of(html)), (label, word)


def test_the_participants_language_is_the_pages_language():
    s = w.build("nl", arms=1)
    _, token = services.send_link(s.visits[0], "email", by=s.assessor)
    assert '<html lang="nl">' in Client().get(f"/r/{token}/").content.decode()
    # None of their own: the trial's.
    IdentifyingDetails.objects.update(language="")
    Trial.objects.filter(pk=s.trial.pk).update(language="da")
    assert '<html lang="da">' in Client().get(f"/r/{token}/").content.decode()


def test_the_crawler_finds_no_arm_on_the_link_or_the_tablet_for_either_arm():
    """The project's blinding crawler (tests/security/test_crawler.py) over every page a
    participant of each arm can reach by links, from the link and from the tablet."""
    from tests.security.test_crawler import Crawler

    s = w.build("da")
    arms = list(s.trial.arms.values_list("code", "label", "translations"))
    facts = [label for _, label, _ in arms] + [
        text for *_, translations in arms for text in (translations or {}).values()
    ]
    codes = [code for code, _, _ in arms]
    reached = []
    for visit in s.visits:
        _, token = services.send_link(visit, "email", by=s.assessor)
        person = Client()
        person.post(f"/r/{token}/", {"year": str(w.BIRTH_YEAR)})
        crawler = Crawler(person, facts=facts, arm_codes=codes, arm_labels=facts)
        crawler.MAX_IDS = 100  # every question, not three of each form
        pages = crawler.crawl([f"/r/{token}/", f"/r/{token}/stop/", *every_screen(f"/r/{token}")])
        assert crawler.failures == []
        tablet = Client()
        tablet.force_login(s.assessor)
        start = tablet.post(f"/trials/{s.trial.key}/visits/{visit.pk}/hand-over/").url
        crawler = Crawler(tablet, facts=facts, arm_codes=codes, arm_labels=facts)
        crawler.MAX_IDS = 100
        screens = every_screen(start.rstrip("/"))
        pages |= crawler.crawl([start, "/", f"/trials/{s.trial.key}/participants/", *screens])
        assert crawler.failures == []
        reached.append(len(pages))
    # Every question and finish screen of every form, from the link and the tablet, and the
    # index, opt-out and hand-back pages: the same pages for both arms.
    assert reached[0] == reached[1] >= 2 * len(every_screen(""))


def every_screen(base):
    """The question and finish screens of the post visit's self-report forms under `base`."""
    urls = []
    for code in ("imrs_p", "mhrm", "ahs", "csq8"):
        count = len(services.asked(registry.get(code)))
        urls += [f"{base}/{code}/{n}/" for n in range(1, count + 1)] + [f"{base}/{code}/finish/"]
    return urls
