"""The self-report response report: the forms due per timepoint and site counted by mode on a
hand-made trial, the sites the gate gives (and no other, in no total), nothing that differs by
arm (bytes equal when the arms are swapped), who may open it, its languages, and a constant
number of queries.

The hand-made trial (entries through assessments.services; "today" is the real date):
  baseline: gaf_f (an interview, never counted here), csq8 and asi24 (self-report); window open
  post:     csq8; window opens in 30 days, so nothing is due there yet

  north P1  csq8 on the tablet, asi24 from a link, gaf_f by the assessor
        P2  csq8 on paper, entered twice and reconciled; asi24 typed by staff (single entry)
        P3  csq8 on paper, first entry only (being typed in); asi24 a tablet draft
        P4  baseline missed, nothing entered
        P6  withdrawn from follow-up, nothing entered: owes no forms
  south P5  csq8 from a link; asi24 nothing

  baseline north: tablet 1, link 1, paper 2, staff 1, not completed 3 (P3 asi24, P4 both);
                  due 8, completed 5 (62.5%, shown 62% as the other reports round)
  baseline south: link 1, not completed 1; due 2, completed 1 (50%)
"""

import csv
import datetime
import io
import re

import lxml.html
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import trans_real

from assessments import responses, services
from assessments.models import Visit
from imrtrial.blinding_words import names_arm
from imrtrial.i18n import set_preference
from imrtrial.models import Participant, Role, Timepoint
from tests.factories import grant, make_allocation, make_participant, make_trial, make_user

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)
CSQ8 = {f"c{n}": "2" for n in range(1, 9)}
ASI24 = {"asi24": "1"}
MODES = [key for key, _label in responses.MODES]


class World:
    def __init__(self):
        self.trial = make_trial()
        self.today = timezone.localdate()
        self.baseline = Timepoint.objects.create(
            trial=self.trial,
            code="baseline",
            label="Baseline",
            order=0,
            instruments=["gaf_f", "csq8", "asi24"],
        )
        self.post = Timepoint.objects.create(
            trial=self.trial, code="post", label="Post", order=1, instruments=["csq8"]
        )
        self.north = self.trial.sites.get(code="north")
        self.south = self.trial.sites.get(code="south")
        self.assessor = make_user("assessor")
        grant(self.assessor, self.trial, Role.ASSESSOR)
        self.second = make_user("assessor2")
        grant(self.second, self.trial, Role.ASSESSOR)
        self.dm = make_user("dm")
        grant(self.dm, self.trial, Role.DATA_MANAGER)
        self.participants = []

    def participant(self, site=None):
        p = make_participant(self.trial, site=site or self.north)
        for tp, start in ((self.baseline, -10), (self.post, 30)):
            Visit.objects.create(
                participant=p,
                timepoint=tp,
                target_date=self.today + (start + 10) * DAY,
                window_start=self.today + start * DAY,
                window_end=self.today + (start + 20) * DAY,
            )
        self.participants.append(p)
        return Participant.objects.get(pk=p.pk)

    def visit(self, p, tp="baseline"):
        return p.visits.get(timepoint__code=tp)

    def save(self, p, code, raw, *, via="staff", kind="single", by=None, complete=True):
        return services.save_entry(
            self.visit(p), code, raw, by=by or self.assessor, kind=kind, complete=complete, via=via
        )

    def paper(self, p, code, raw, *, reconcile=True):
        self.save(p, code, raw, kind="first")
        if reconcile:
            self.save(p, code, raw, kind="second", by=self.second)
            services.reconcile(self.visit(p), code, {}, by=self.dm, reasons={})


def hand_made():
    w = World()
    p1, p2, p3, p4 = (w.participant() for _ in range(4))
    w.save(p1, "csq8", CSQ8, via="tablet")
    w.save(p1, "asi24", ASI24, via="link")
    w.save(p1, "gaf_f", {"gaf_f": "55"})
    w.paper(p2, "csq8", CSQ8)
    w.save(p2, "asi24", ASI24)
    w.paper(p3, "csq8", CSQ8, reconcile=False)
    w.save(p3, "asi24", {}, via="tablet", complete=False)
    services.mark_missed(w.visit(p4), by=w.dm, reason="Did not come")
    p6 = w.participant()
    Participant.objects.filter(pk=p6.pk).update(status=Participant.Status.WITHDRAWN)
    p5 = w.participant(site=w.south)
    w.save(p5, "csq8", CSQ8, via="link")
    return w


@pytest.fixture
def w():
    return hand_made()


def counts(tally):
    return dict(zip(MODES, tally.in_modes(), strict=True))


def by_site(report, tp_code):
    (tp,) = [tp for tp in report["timepoints"] if tp["code"] == tp_code]
    return {site.code: tally for site, tally in tp["rows"]}, tp["total"]


def test_each_form_counts_once_in_its_mode(w):
    report = responses.response_report(w.trial, sites=[w.north, w.south], today=w.today)
    assert [tp["code"] for tp in report["timepoints"]] == ["baseline", "post"]
    sites, total = by_site(report, "baseline")
    north, south = sites["north"], sites["south"]
    assert counts(north) == {"tablet": 1, "link": 1, "paper": 2, "staff": 1, "not_completed": 3}
    assert (north.due, north.completed, north.percent) == (8, 5, "62%")
    assert counts(south) == {"tablet": 0, "link": 1, "paper": 0, "staff": 0, "not_completed": 1}
    assert (south.due, south.completed, south.percent) == (2, 1, "50%")
    assert (total.due, total.completed, total.percent) == (10, 6, "60%")
    post_sites, post_total = by_site(report, "post")  # the window has not opened yet
    assert (
        post_total.due == 0 and post_total.percent == "—" and set(post_sites) == {"north", "south"}
    )
    assert report["total"].due == 10


def test_a_form_answered_before_its_window_counts(w):
    """An answer is never left out: a form with an entry is due whatever the window says."""
    p = w.participants[0]
    services.save_entry(
        w.visit(p, "post"), "csq8", CSQ8, by=w.assessor, kind="single", complete=True, via="tablet"
    )
    report = responses.response_report(w.trial, sites=[w.north], today=w.today)
    _sites, total = by_site(report, "post")
    assert counts(total)["tablet"] == 1 and total.due == 1


def test_the_modes_follow_the_entry_not_the_visit():
    assert responses.mode_of(("final", "staff"), False) == responses.PAPER
    assert responses.mode_of(("single", "tablet"), False) == responses.TABLET
    assert responses.mode_of(("single", "link"), False) == responses.LINK
    assert responses.mode_of(("single", "staff"), True) == responses.STAFF
    assert responses.mode_of(None, True) == responses.PAPER
    assert responses.mode_of(None, False) == responses.NOT_COMPLETED


def page(client, w, user, name="response_report"):
    client.force_login(user)
    response = client.get(reverse(f"assessments:{name}", args=[w.trial.key]))
    assert response.status_code == 200
    return response.content.decode()


def without_token(html):
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def text_of(html):
    return lxml.html.fromstring(html).text_content()


def test_the_page_and_csv_show_the_counts(client, w):
    html = page(client, w, w.dm)
    rows = lxml.html.fromstring(html).xpath("(//table)[1]//tr[th[@scope='row']]")
    cells = {
        r.xpath("string(th)").strip(): [td.text_content() for td in r.xpath("td")] for r in rows
    }
    assert cells["North CMHC"] == ["1", "1", "2", "1", "3", "8", "5 (62%)"]
    assert cells["All sites shown"] == ["1", "2", "2", "1", "4", "10", "6 (60%)"]
    assert "<title" in html and "<desc" in html
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) == 2 and not any("<script" in svg or "style=" in svg for svg in svgs)
    rows = list(csv.reader(io.StringIO(page(client, w, w.dm, "response_report_csv"))))
    assert rows[0] == ["timepoint", "timepoint_label", "site", "site_name", *MODES,
                       "due", "completed", "rate_percent"]  # fmt: skip
    assert rows[1] == ["baseline", "Baseline", "north", "North CMHC", "1", "1", "2", "1", "3",
                       "8", "5", "62.5"]  # fmt: skip
    assert rows[3][2:] == ["all", "All sites shown", "1", "2", "2", "1", "4", "10", "6", "60.0"]
    assert rows[6][2:] == ["all", "All sites shown", "0", "0", "0", "0", "0", "0", "0", ""]


def test_a_site_the_viewer_may_not_see_is_absent_and_not_counted(client, w):
    user = make_user()
    grant(user, w.trial, Role.ASSESSOR, w.north)
    html = page(client, w, user)
    assert "South CMHC" not in html and "North CMHC" in html
    rows = lxml.html.fromstring(html).xpath("(//table)[1]//tr[th[@scope='row']]")
    cells = {
        r.xpath("string(th)").strip(): [td.text_content() for td in r.xpath("td")] for r in rows
    }
    assert set(cells) == {"North CMHC", "All sites shown"}
    assert cells["All sites shown"] == cells["North CMHC"]  # the south's two forms left out
    data = page(client, w, user, "response_report_csv")
    assert "south" not in data.lower()
    rows = list(csv.reader(io.StringIO(data)))
    assert [r[2] for r in rows[1:]] == ["north", "all", "north", "all"]
    assert rows[1][4:] == rows[2][4:] == ["1", "1", "2", "1", "3", "8", "5", "62.5"]


def allocate(w):
    """Arms for everyone: the first half IMR, the rest TAU."""
    half = len(w.participants) // 2
    return [make_allocation(p, "imr" if i < half else "tau") for i, p in enumerate(w.participants)]


def swap_arms(w, allocations):
    from randomization.models import Allocation

    imr, tau = w.trial.arms.get(code="imr"), w.trial.arms.get(code="tau")
    for a in allocations:
        a.arm = tau if a.arm_id == imr.pk else imr
    Allocation.objects.bulk_update(allocations, ["arm"])


@pytest.mark.parametrize("role", [Role.ASSESSOR, Role.DATA_MANAGER, Role.STATISTICIAN])
def test_blinded_roles_see_it_and_it_does_not_differ_by_arm(client, w, role):
    allocations = allocate(w)
    user = make_user()
    grant(user, w.trial, role)
    before = {
        name: page(client, w, user, name) for name in ("response_report", "response_report_csv")
    }
    for name, body in before.items():
        text = text_of(body) if name == "response_report" else body
        assert names_arm(text, w.trial) is None
        for arm in w.trial.arms.all():
            assert arm.label not in body
            # The codes as the crawler looks for them (the neutral A/B is also English's "A").
            assert not re.search(rf"\b{arm.code}\b", text), (name, arm.code)
        for a in allocations:
            assert a.randomization_number not in body and a.confirmation_code not in body
    swap_arms(w, allocations)
    after = {name: page(client, w, user, name) for name in before}
    assert without_token(after["response_report"]) == without_token(before["response_report"])
    assert after["response_report_csv"] == before["response_report_csv"]


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.KEY_HOLDER, Role.TRIAL_ADMIN])
def test_unblinded_and_other_report_roles_see_the_same_pooled_page(client, w, role):
    user = make_user()
    grant(user, w.trial, role)

    def main(html):  # the report itself: the page's header names the reader
        return re.search(r"<main.*</main>", html, re.S).group(0)

    assert main(page(client, w, user)) == main(page(client, w, w.dm))


@pytest.mark.parametrize("role", [Role.MONITOR, Role.INVESTIGATOR, None])
def test_without_the_right_the_pages_are_not_found(client, w, role):
    user = make_user()
    if role:
        grant(user, w.trial, role)
    client.force_login(user)
    for name in ("response_report", "response_report_csv"):
        assert client.get(reverse(f"assessments:{name}", args=[w.trial.key])).status_code == 404


def test_it_is_linked_from_the_reports_and_the_record_status(client, w):
    url = reverse("assessments:response_report", args=[w.trial.key])
    assert url in page_of(client, w.dm, reverse("exports:reports", args=[w.trial.key]))
    assert url in page_of(client, w.assessor, reverse("assessments:status", args=[w.trial.key]))


def page_of(client, user, url):
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


# --- Languages -------------------------------------------------------------------------------

# The page's headings in each language, as the catalogues give them: the page must show these,
# and no English heading, so every heading goes through gettext.
HEADINGS = {
    "da": {
        "Self-report responses": "Besvarelser af selvrapporteringsskemaer",
        "Tablet": "Tablet",
        "Link": "Link",
        "Paper": "Papir",
        "Typed by staff": "Indtastet af personalet",
        "Not completed": "Ikke udfyldt",
        "Due": "Forfaldne",
        "Completed": "Udfyldt",
        "All sites shown": "Alle viste centre",
        "Download as CSV": "Hent som CSV",
    },
    "nl": {
        "Self-report responses": "Antwoorden op zelfrapportagevragenlijsten",
        "Tablet": "Tablet",
        "Link": "Link",
        "Paper": "Papier",
        "Typed by staff": "Ingevoerd door medewerkers",
        "Not completed": "Niet ingevuld",
        "Due": "Verschuldigd",
        "Completed": "Ingevuld",
        "All sites shown": "Alle getoonde locaties",
        "Download as CSV": "Downloaden als CSV",
    },
}
# Headings the catalogues already translate.
KNOWN = {"da": ["Center", "Definitioner", "Forside"], "nl": ["Locatie", "Definities"]}
ENGLISH_ONLY = ["Self-report responses", "Typed by staff", "Not completed", "All sites shown",
                "Definitions", "Download as CSV", "Site"]  # fmt: skip


@pytest.fixture
def fresh_catalogues():
    """Forget any catalogue a process loaded before the .mo files were compiled."""
    trans_real._translations = {}
    trans_real._default = None
    yield
    trans_real._translations = {}
    trans_real._default = None


@pytest.mark.parametrize("language", ["da", "nl"])
def test_the_page_is_in_the_readers_language(client, w, language, fresh_catalogues):
    with translation.override(language):
        for msgid, text in HEADINGS[language].items():
            assert translation.gettext(msgid) == text, msgid  # the catalogue's own
    set_preference(w.dm, language)
    html = page(client, w, w.dm)
    headings = lxml.html.fromstring(html).xpath("//h1|//h2|//th|//caption|//a")
    shown = {" ".join(h.text_content().split()) for h in headings}
    for words in KNOWN[language] + [HEADINGS[language]["Self-report responses"]]:
        assert any(words in text for text in shown), words
    for english in ENGLISH_ONLY:
        assert not any(english in text for text in shown), english
    with translation.override(language):
        assert str(responses.MODES[3][1]) == HEADINGS[language]["Typed by staff"]


# --- Cost --------------------------------------------------------------------------------------


def queries_for(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_number_of_queries_does_not_grow_with_the_trial(client, w):
    def grow(n):
        for i in range(n):
            p = w.participant(site=w.south if i % 2 else w.north)
            w.save(p, "csq8", CSQ8, via=("tablet", "link", "staff")[i % 3])
            if i % 4 == 0:
                w.paper(p, "asi24", ASI24, reconcile=i % 8 == 0)

    client.force_login(w.dm)
    names = ("response_report", "response_report_csv")
    urls = [reverse(f"assessments:{name}", args=[w.trial.key]) for name in names]
    client.get(urls[0])  # the session's first request, which loads more
    small = [queries_for(client, url) for url in urls]
    grow(24)
    large = [queries_for(client, url) for url in urls]
    assert small == large
    assert max(large) <= 15
