"""The record status dashboard: every state in its cell, filters, "needs my action",
pagination, a constant number of queries, nothing that differs by arm, and who may open it."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assessments import dashboard
from assessments.dashboard import State
from assessments.models import DataQuery, FormEntry, Visit
from imrtrial.models import Participant, Role, Timepoint
from tests.factories import grant, make_allocation, make_participant, make_trial, make_user

pytestmark = pytest.mark.django_db

K, S = FormEntry.Kind, FormEntry.Status


class Trial:
    """A small trial: a baseline with an interview (gaf_f), a paper form entered twice (csq8)
    and a staff rating (imrs_s); a post visit with the interview only."""

    def __init__(self):
        self.trial = make_trial()
        today = timezone.localdate()
        self.baseline = Timepoint.objects.create(
            trial=self.trial,
            code="baseline",
            label="Baseline",
            order=0,
            instruments=["gaf_f", "csq8", "imrs_s"],
        )
        self.post = Timepoint.objects.create(
            trial=self.trial, code="post", label="Post", order=1, instruments=["gaf_f"]
        )
        self.north = self.trial.sites.get(code="north")
        self.south = self.trial.sites.get(code="south")
        self.dm = make_user("dm")
        grant(self.dm, self.trial, Role.DATA_MANAGER)
        self.assessor = make_user("assessor")
        grant(self.assessor, self.trial, Role.ASSESSOR)
        self.other = make_user("assessor2")
        grant(self.other, self.trial, Role.ASSESSOR)
        self.today = today

    def participant(self, site=None, arm=None, **kw):
        p = make_participant(self.trial, site=site or self.north, **kw)
        if arm:
            make_allocation(p, arm)
        for tp in (self.baseline, self.post):
            Visit.objects.create(
                participant=p,
                timepoint=tp,
                target_date=self.today,
                window_start=self.today - datetime.timedelta(days=10),
                window_end=self.today + datetime.timedelta(days=10),
            )
        return Participant.objects.get(pk=p.pk)

    def entry(self, p, instrument, kind=K.SINGLE, status=S.COMPLETE, by=None, tp="baseline"):
        return FormEntry.objects.create(
            participant=p,
            visit=p.visits.get(timepoint__code=tp),
            instrument=instrument,
            timepoint=tp,
            kind=kind,
            status=status,
            entered_by=by or self.assessor,
        )


@pytest.fixture
def t():
    return Trial()


def page(client, t, user, **params):
    client.force_login(user)
    response = client.get(reverse("assessments:status", args=[t.trial.key]), params)
    assert response.status_code == 200
    return response.content.decode()


def without_token(html):
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def row_of(html, p):
    """The participant's row of the grid."""
    (row,) = [r for r in html.split("<tr>") if f">{p.participant_id}</a>" in r]
    return row.split("</tr>")[0]


def states_of(html, p):
    """{instrument: state} of the participant's row, from the screen-reader text."""
    row = row_of(html, p)
    labels = {label: code for code, label, _ in State.ALL}
    found = re.findall(
        r'<span class="visually-hidden">(\w+): ([^<]+?)(?: \(needs your action\))?</span>', row
    )
    return [(code, labels[label.strip()]) for code, label in found]


def test_each_state_shows_in_its_cell(client, t):
    cases = {}
    p = t.participant()
    cases["not started"] = (p, [("gaf_f", State.NOT_STARTED), ("csq8", State.NOT_STARTED)])
    p = t.participant()
    t.entry(p, "gaf_f", status=S.DRAFT)
    t.entry(p, "csq8", K.FIRST)
    t.entry(p, "imrs_s", status=S.VERIFIED, by=t.dm)
    cases["draft"] = (
        p,
        [("gaf_f", State.DRAFT), ("csq8", State.AWAITING_SECOND), ("imrs_s", State.VERIFIED)],
    )
    p = t.participant()
    t.entry(p, "gaf_f")
    t.entry(p, "csq8", K.FIRST)
    t.entry(p, "csq8", K.SECOND, by=t.other)
    t.entry(p, "imrs_s", status=S.LOCKED, by=t.dm)
    cases["complete"] = (
        p,
        [("gaf_f", State.COMPLETE), ("csq8", State.AWAITING_RECONCILIATION)],
    )
    p = t.participant()
    t.entry(p, "csq8", K.FIRST)
    t.entry(p, "csq8", K.SECOND, by=t.other)
    t.entry(p, "csq8", K.FINAL, by=t.dm)
    Visit.objects.filter(participant=p, timepoint=t.baseline).update(missed=True)
    cases["reconciled"] = (
        p,
        [("gaf_f", State.MISSING), ("csq8", State.RECONCILED), ("imrs_s", State.MISSING)],
    )
    html = page(client, t, t.dm)
    for p, expected in cases.values():
        found = dict(states_of(html, p)[:3])  # the baseline cell
        for code, state in expected:
            assert found[code] == state, (p, code, found)
    assert states_of(html, cases["complete"][0])[2] == ("imrs_s", State.LOCKED)
    for _, label, _ in State.ALL:  # the legend names every state
        assert label in html


def test_the_python_and_sql_rules_agree_on_every_state(t):
    """The filter (SQL) finds exactly the participants whose cells (Python) show the state."""
    p1, p2, p3, p4 = (t.participant() for _ in range(4))
    t.entry(p1, "gaf_f", status=S.DRAFT)
    t.entry(p2, "csq8", K.FIRST)
    t.entry(p3, "csq8", K.FIRST)
    t.entry(p3, "csq8", K.SECOND, by=t.other)
    t.entry(p4, "csq8", K.FIRST)
    t.entry(p4, "csq8", K.SECOND, by=t.other)
    t.entry(p4, "csq8", K.FINAL, by=t.dm)
    t.entry(p4, "gaf_f", status=S.VERIFIED)
    t.entry(p4, "imrs_s", status=S.LOCKED)
    t.entry(p2, "gaf_f")
    Visit.objects.filter(participant=p1, timepoint=t.post).update(missed=True)
    everyone = [p1, p2, p3, p4]
    reader = dashboard.Reader.of(t.dm, t.trial)
    rows = dashboard.grid(
        reader,
        everyone,
        [t.baseline, t.post],
        visit_url=str,
        entry_url=lambda *a: "",
        reconcile_url=lambda *a: "",
    )
    for state, _, _ in State.ALL:
        shown = {p.pk for p, cells in rows for c in cells for f in c.forms if f.state == state}
        found = set(
            Participant.objects.filter(
                dashboard.in_state(state, [t.baseline, t.post]), trial=t.trial
            ).values_list("pk", flat=True)
        )
        assert found == shown, state
        assert found, state  # every state occurs, so the comparison means something


def test_filters_by_site_visit_and_state(client, t):
    north, south = t.participant(), t.participant(site=t.south)
    t.entry(south, "gaf_f", tp="post", status=S.DRAFT)
    html = page(client, t, t.dm, site=t.south.pk)
    assert south.participant_id in html and north.participant_id not in html
    html = page(client, t, t.dm, state=State.DRAFT, visit="post")
    assert south.participant_id in html and north.participant_id not in html
    assert '<th scope="col">Baseline</th>' not in html  # one visit: its column only
    html = page(client, t, t.dm, state=State.DRAFT, visit="baseline")
    assert south.participant_id not in html and "No participant matches" in html


def test_needs_my_action_for_a_data_manager(client, t):
    to_reconcile, to_verify, to_close, nothing = (t.participant() for _ in range(4))
    t.entry(to_reconcile, "csq8", K.FIRST)
    t.entry(to_reconcile, "csq8", K.SECOND, by=t.other)
    t.entry(to_verify, "gaf_f")
    entry = t.entry(to_close, "gaf_f")
    DataQuery.objects.create(
        participant=to_close,
        visit=entry.visit,
        entry=entry,
        category="range",
        status="answered",
        opened_by=t.dm,
    )
    t.entry(nothing, "gaf_f", status=S.DRAFT)  # the assessor's turn
    html = page(client, t, t.dm, mine="1")
    for p in (to_reconcile, to_verify, to_close):
        assert p.participant_id in html
    assert nothing.participant_id not in html
    assert "(needs your action)" in html
    visit = to_reconcile.visits.get(timepoint=t.baseline)  # one click to the reconciliation
    assert reverse("assessments:reconcile", args=[t.trial.key, visit.pk, "csq8"]) in html


def test_needs_my_action_for_an_assessor(client, t):
    to_enter, queried, done, others = (t.participant() for _ in range(4))
    for p in (queried, done):
        for tp, code in (("baseline", "gaf_f"), ("post", "gaf_f")):
            t.entry(p, code, tp=tp)
        t.entry(p, "csq8", K.FIRST)
        t.entry(p, "csq8", K.SECOND, by=t.other)
        t.entry(p, "csq8", K.FINAL, by=t.dm)
    Visit.objects.filter(participant__in=[queried, done]).update(completed_on=t.today)
    DataQuery.objects.create(
        participant=queried,
        visit=queried.visits.first(),
        category="missing",
        addressed_to=t.assessor,
        opened_by=t.dm,
    )
    Visit.objects.filter(participant=others).update(assessor=t.other)
    html = page(client, t, t.assessor, mine="1")
    assert to_enter.participant_id in html and queried.participant_id in html
    assert done.participant_id not in html and others.participant_id not in html
    # One click to the form: the assessor's icon opens the entry page.
    visit = to_enter.visits.get(timepoint=t.baseline)
    assert reverse("assessments:entry", args=[t.trial.key, visit.pk, "gaf_f", "single"]) in html
    assert reverse("assessments:entry", args=[t.trial.key, visit.pk, "csq8", "first"]) in html
    # A staff rating is never a blinded assessor's to enter.
    assert (
        reverse("assessments:entry", args=[t.trial.key, visit.pk, "imrs_s", "single"]) not in html
    )


def test_pages_of_fifty_with_links_that_keep_the_filters(client, t):
    for _ in range(dashboard_per_page() + 3):
        t.participant(site=t.south)
    html = page(client, t, t.dm, site=t.south.pk)
    assert html.count('<th scope="row">') == dashboard_per_page()
    assert f"site={t.south.pk}&amp;page=2" in html
    html = page(client, t, t.dm, site=t.south.pk, page=2)
    assert html.count('<th scope="row">') == 3


def dashboard_per_page():
    from assessments.status_views import PER_PAGE

    return PER_PAGE


def queries_for(client, t, user, **params):
    client.force_login(user)
    url = reverse("assessments:status", args=[t.trial.key])
    client.get(url, params)  # warm the session
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, params).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("params", [{}, {"mine": "1"}, {"state": "draft", "visit": "post"}])
def test_the_number_of_queries_does_not_grow_with_the_trial(client, t, params):
    def grow(n):
        for i in range(n):
            p = t.participant(site=t.north if i % 2 else t.south)
            t.entry(p, "gaf_f", status=S.DRAFT if i % 3 else S.COMPLETE)
            t.entry(p, "gaf_f", tp="post", status=S.DRAFT)
            t.entry(p, "csq8", K.FIRST)
            DataQuery.objects.create(
                participant=p, visit=p.visits.first(), category="other", opened_by=t.dm
            )

    grow(3)
    small = {u: queries_for(client, t, u, **params) for u in (t.dm, t.assessor)}
    grow(60)
    large = {u: queries_for(client, t, u, **params) for u in (t.dm, t.assessor)}
    assert small == large
    assert max(large.values()) <= 20


def test_the_page_is_the_same_for_both_arms(client, t):
    """Two participants with the same data, one in each arm: their rows are the same but for
    their ids; swapping the arms changes nothing on the page."""
    imr, tau = t.participant(arm="imr"), t.participant(arm="tau")
    for p in (imr, tau):
        t.entry(p, "gaf_f", status=S.VERIFIED)
        t.entry(p, "imrs_s", by=t.dm, status=S.DRAFT)  # staff ratings exist in both arms
        t.entry(p, "csq8", K.FIRST)
        DataQuery.objects.create(
            participant=p, visit=p.visits.first(), category="other", opened_by=t.dm
        )
    for user in (t.dm, t.assessor):
        html = page(client, t, user)

        def row(p, html=html):
            text = row_of(html, p).replace(p.participant_id, "ID")
            for v in p.visits.all():
                text = text.replace(f"/{v.pk}/", "/VISIT/")
            return text

        assert row(imr) == row(tau)
        from randomization.models import Allocation

        a, b = Allocation.objects.get(participant=imr), Allocation.objects.get(participant=tau)
        a.arm, b.arm = b.arm, a.arm
        Allocation.objects.bulk_update([a, b], ["arm"])
        assert without_token(page(client, t, user)) == without_token(html)
        a.arm, b.arm = b.arm, a.arm
        Allocation.objects.bulk_update([a, b], ["arm"])


@pytest.mark.parametrize(
    "role", [Role.COORDINATOR, Role.FACILITATOR, Role.STATISTICIAN, Role.KEY_HOLDER, None]
)
def test_roles_without_rights_get_404(client, t, role):
    user = make_user()
    if role:
        grant(user, t.trial, role)
    client.force_login(user)
    for name in ("status", "queue", "database_lock"):
        assert client.get(reverse(f"assessments:{name}", args=[t.trial.key])).status_code == 404


def test_an_assessor_of_one_site_sees_only_that_site(client, t):
    north, south = t.participant(), t.participant(site=t.south)
    user = make_user()
    grant(user, t.trial, Role.ASSESSOR, t.north)
    html = page(client, t, user, site=t.south.pk)  # another site's filter is ignored
    assert north.participant_id in html and south.participant_id not in html


def test_the_home_page_links_the_dashboard_for_those_who_may_open_it(client, t):
    client.force_login(t.assessor)
    home = client.get("/").content.decode()
    assert reverse("assessments:status", args=[t.trial.key]) in home
    assert reverse("assessments:queue", args=[t.trial.key]) not in home
    client.force_login(t.dm)
    home = client.get("/").content.decode()
    assert reverse("assessments:queue", args=[t.trial.key]) in home
