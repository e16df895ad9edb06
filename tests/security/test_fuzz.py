"""Bad input everywhere: every POST form of the project, found on the pages each role sees,
posted with random dicts of its own field names carrying random text, unicode, huge, empty,
malformed and repeated values, as a role that may use it.

Never a 500; and when the answer is a 4xx or the form again (a 200), no table has gained or
lost a row: nothing was saved, not even in part."""

import logging

import pytest
from django.db import connection
from django.test import Client
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from imrtrial.models import Role

from .test_crawler import Crawler, concrete_urls

# Pages whose views answer GET only: every other page of the project takes a POST and must be
# found below with a form, or this test fails (so a new form cannot escape the fuzzer).
GET_ONLY = {
    "home",
    "logout",  # would sign the fuzzer out; Django's own view
    "audit_trail",
    "access_log",
    "assessments:participant_list",
    "assessments:participant_detail",
    "assessments:worklist",
    "assessments:reminders",
    "assessments:visit",
    "assessments:query_list",
    "assessments:query",  # the thread; its forms post to query_answer and query_act
    "assessments:status",
    "assessments:queue",
    "randomization:allocations",
    "randomization:allocation_history",
    "randomization:desk",
    "randomization:result",
    "fidelity:groups",
    "fidelity:group",
    "fidelity:report",
    "safety:events",  # the event log; its forms post to event_new, event_correct, event_judge
    # Reports and an export's progress page and download: GET only (require_safe / no form).
    "exports:reports",
    "exports:report_consort",
    "exports:report_consort_svg",
    "exports:report_recruitment",
    "exports:report_follow_up",
    "exports:report_completeness",
    "exports:report_fidelity",
    "exports:report_blinding",
    # The self-report response report and its CSV: GET only.
    "assessments:response_report",
    "assessments:response_report_csv",
    "exports:detail",
    "exports:download",
    "registers:datasets",  # a list; its links lead to the batches and the import form
    "registers:batches",  # a list; the import form is fuzzed as registers:import
    "quality:rules",  # the rules; its Run now form posts to quality:run_now
    "signoff:signatures",  # a list; its pages' forms post to sign_casebook and sign_visit
    "two_factor:staff",  # a list; its reset form is fuzzed as two_factor:reset
    "api_trial_tokens",  # the trial's API tokens; their revoke form is fuzzed as api_token_revoke
    # The code forms need a session that has not passed two-factor sign-in, which the crawl's
    # signed-in users have: tests/security/test_fuzz_two_factor.py fuzzes them.
    "two_factor:verify",
    "two_factor:enrol",
    # Source data verification: progress, the forms, a visit; a form's mark is fuzzed as
    # monitoring:entry.
    "monitoring:progress",
    "monitoring:forms",
    "monitoring:visit",
    # The trial administration: its overview, the staff list, a person (whose forms post to
    # staff:grant, staff:withdraw and staff:deactivate) and the list of visit windows (each
    # fuzzed as staff:window).
    "staff:overview",
    "staff:people",
    "staff:person",
    "staff:schedule",
    # The invitation link works once, with a token only its e-mail holds:
    # tests/staff/test_fuzz_invitation.py fuzzes it with a fresh token, and the new link for
    # someone invited who has no password yet (every user of the crawl has one).
    "staff:accept",
    "staff:resend",
}
# The participant's pages need a link's token or a tablet handed over, and their staff forms
# a visit with self-report forms open, which the crawl's world has none of:
# tests/selfreport/test_fuzz.py fuzzes every one of them.
FUZZED_ELSEWHERE = ("selfreport:",)
# The web API takes JSON with a token, not a form with a session: tests/api/test_schema.py sends
# Schemathesis' data (valid and invalid) to each of its operations as every role's token, with
# the same two requirements (never a 500, nothing written on a 4xx).
API_NAMESPACE = "api:"
# Who posts: each role posts the forms it meets.
POSTERS = [
    Role.COORDINATOR,
    Role.FACILITATOR,
    Role.FIDELITY_RATER,
    Role.DATA_MANAGER,
    Role.ASSESSOR,
    Role.TRIAL_ADMIN,
    Role.KEY_HOLDER,
    Role.INVESTIGATOR,  # the signing forms
    Role.MONITOR,
    Role.CASE_MANAGER,  # the safety event log's forms
    None,  # signed out: the login form
]
# Rows these tables gain on any request, saved or not: sessions, login attempts, the access log
# (a page that shows allocation data logs the view, whatever was posted).
UNCOUNTED = ("django_session", "axes_", "imrtrial_accesslog")

NASTY = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1.5",
            "1e309",
            "NaN",
            "99999999999999999999999",
            "2026-02-30",
            "9999-12-31",
            "0001-01-01",
            "\x00",
            "a\x00b",
            "\ud7ff\ue000",
            "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ✓ ﷽",
            "' OR 1=1 --",
            "<script>alert(1)</script>",
            '=HYPERLINK("http://x")',
            "../../etc/passwd",
            "x" * 5000,
        ]
    ),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.dates().map(str),
)
HUGE = "y" * 3_000_000  # beyond DATA_UPLOAD_MAX_MEMORY_SIZE


def table_counts():
    """{table: rows} of every table but the uncounted, in one query."""
    with connection.cursor() as cursor:
        tables = [
            t for t in connection.introspection.table_names(cursor) if not t.startswith(UNCOUNTED)
        ]
        cursor.execute("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables))
        return dict(zip(tables, cursor.fetchone(), strict=True))


def post_forms(html, page_url):
    """[(action path, {field name: [values the page offers]})] of the page's POST forms."""
    import lxml.html

    doc = lxml.html.fromstring(html)
    doc.make_links_absolute("http://testserver" + page_url)
    found = []
    for form in doc.forms:
        if (form.method or "").upper() != "POST":
            continue
        fields = {}
        for element in form.xpath(".//*[@name]"):
            name = element.get("name")
            if name == "csrfmiddlewaretoken":
                continue
            values = fields.setdefault(name, [])
            if element.tag == "select":
                values += element.xpath(".//option/@value")
            elif element.get("value") is not None:
                values.append(element.get("value"))
        action = form.action or ("http://testserver" + page_url)
        found.append((action.removeprefix("http://testserver"), fields))
    return found


def url_name(path):
    try:
        match = resolve(path.split("?")[0])
    except Resolver404:
        return None
    return match.view_name


def discover(world):
    """{url name: [(role, action, fields)]}: every POST form each role meets, once per role and
    set of fields (an interview form and a staff rating both post to "entry")."""
    starts = ["/"] + [url for *_, sides in concrete_urls(world) for url in sides]
    starts = [url for url in dict.fromkeys(starts) if not url.startswith("/admin/")]
    found, kinds = {}, set()
    for role in POSTERS:
        client = Client()
        if role is not None:
            client.force_login(world.users[role])
        crawler = Crawler(client, follow_forms=False)
        crawler.MAX_PAGES = 500
        pages = crawler.crawl(starts if role is not None else ["/login/"])
        for page_url, html in pages.items():
            for action, fields in post_forms(html, page_url):
                name = url_name(action)
                kind = (name, role, frozenset(fields))
                if name is None or name == "logout" or kind in kinds:
                    continue
                kinds.add(kind)
                found.setdefault(name, []).append((role, action, fields))
    return found


def project_url_names():
    from .test_crawler import patterns

    names = set()
    for route, name, namespace, _ in patterns():
        if not route.startswith("admin/") and name:
            names.add(f"{namespace}:{name}" if namespace else name)
    return names


def _data(fields):
    """A random dict of the form's field names: each left out, given a value the page offers,
    a nasty value, or several values at once."""
    optional = {
        name: st.one_of(
            st.sampled_from(values) if values else NASTY,
            NASTY,
            st.lists(NASTY, min_size=2, max_size=3),
        )
        for name, values in fields.items()
    }
    return st.one_of(
        st.fixed_dictionaries({}, optional=optional),
        st.sampled_from(sorted(fields)).map(lambda name: {name: HUGE}),
    )


FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def fuzzer(clients, name, forms):
    """A Hypothesis test posting random data to one page's forms, each as a role that met it."""

    @FUZZ
    @given(form=st.sampled_from(forms), data=st.data())
    def fuzz(form, data):
        role, action, fields = form
        payload = data.draw(_data(fields), label="payload")
        note(f"{name} {action} as {role}")
        before = table_counts()
        response = clients[role].post(action, payload)
        assert response.status_code < 500, (name, response.status_code)
        if response.status_code == 200 or 400 <= response.status_code < 500:
            after = table_counts()
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            assert changed == {}, (name, response.status_code, changed)

    return fuzz


def test_every_post_form_survives_bad_input_and_saves_nothing_when_refused(world, caplog):
    # Django logs every 4xx with the request attached (an oversized body as a security error),
    # and pytest keeps every record until the test ends: a thousand requests, some of 3 MB,
    # would pile up in memory. A 500 is still logged, and fails the test anyway.
    caplog.set_level(logging.ERROR, logger="django.request")
    caplog.set_level(logging.CRITICAL, logger="django.security")
    found = discover(world)
    missing = {
        name
        for name in project_url_names() - GET_ONLY - set(found)
        if not name.startswith((API_NAMESPACE, *FUZZED_ELSEWHERE))
    }
    assert missing == set(), f"POST pages with no form found to fuzz: {missing}"
    clients = {}
    for role in POSTERS:
        clients[role] = Client(raise_request_exception=False)  # a crash is a 500 to report
        if role is not None:
            clients[role].force_login(world.users[role])
    failures = []
    for name, forms in sorted(found.items()):
        try:
            fuzzer(clients, name, forms)()
        except AssertionError as exc:  # collect, so one run reports every form that fails
            failures.append((name, str(exc)[:800]))
    assert failures == []


def test_table_counts_see_a_saved_row(world, client):
    """The check can fail: a row a refused post had saved would show in the counts."""
    before = table_counts()
    world.trial.arms.first().__class__.objects.create(
        trial=world.trial, code="third", label="Third", export_code="C"
    )
    after = table_counts()
    assert after["imrtrial_arm"] == before["imrtrial_arm"] + 1


@pytest.mark.parametrize(
    "payload",
    [
        {"reason": "y" * 3_000_000},  # a body past DATA_UPLOAD_MAX_MEMORY_SIZE
        {f"f{i}": "1" for i in range(1500)},  # past DATA_UPLOAD_MAX_NUMBER_FIELDS
    ],
)
def test_an_oversized_post_is_a_400_and_saves_nothing(world, client, payload):
    client.force_login(world.users[Role.COORDINATOR])
    url = f"/trials/{world.trial.key}/participants/{world.tau.participant_id}/withdraw/"
    before = table_counts()
    assert client.post(url, payload).status_code == 400
    assert table_counts() == before
