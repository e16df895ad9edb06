"""The blinding crawler: as every blinded role (with staff access to the admin, the worst case),
follow every link, submit every GET form, and request every URL pattern of the project with
the real ids of both arms' participants, visits, entries, groups, sessions and assessments.

It fails on any 500, on any allocation-revealing fact in a page or a redirect (arm labels and
codes, IMR group names, attendance words, fidelity, the level-1 withdrawal, allocation numbers,
links to unblinded pages), on an unblinded page that answers anything but 404, on a page that
answers differently for the two arms, and on another site's participant reached by a user of
one site."""

import html as htmllib
import re
from urllib.parse import urljoin, urlparse

import lxml.html
import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import translation
from django.utils.translation import gettext_lazy

from assessments.models import FormEntry
from imrtrial.blinding_words import PAGE_WORDS
from imrtrial.i18n import set_preference
from imrtrial.models import Role, Trial

from .conftest import BLINDED_ROLES

# The crawl as it started (tests/imrtrial/test_blinding_pages.py): kept as a plain function for
# the tests that import it.


def crawl(client, start="/"):
    """Every page reachable by links and GET from `start`, with its HTML."""
    return Crawler(client).crawl([start])


# --- What a blinded page must never say -------------------------------------------------------

# Names that are configuration, not facts about a participant: the roles (an "IMR facilitator"
# role exists in both arms' trial) and the trial setting of attendance reminders.
# The permission descriptions (Trial.Meta.permissions, listed in the admin's group pages) and
# the trial setting of attendance reminders likewise.
# In every language the crawler reads the site in (the role is "Fidelity-bedømmer" in Danish).
LANGUAGES = ("en", "da", "nl")


def _in_each_language(texts):
    out = []
    for language in LANGUAGES:
        with translation.override(language):
            out += [str(text) for text in texts]
    return list(dict.fromkeys(out))


EXEMPT = _in_each_language(
    [label for _, label in Role.choices]
    + [gettext_lazy("Attendance reminder after days")]
    + [description for _, description in Trial._meta.permissions]
)
# Django's own permission names ("Fidelity | attendance | Can view attendance"), listed on the
# admin's user and group pages: names of tables, not rows.
PERMISSION_NAME = re.compile(r"[\w -]+ \| [\w -]+ \| Can (?:add|change|delete|view) [\w -]+")
# The trial's own configuration names its arms (the trial's name often does too); what no
# blinded page may show is which participant is in which.
ARMS_ALLOWED_ON = ("/admin/imrtrial/trial/",)
# The words no blinded page may say: the one list the free-text refusal uses too
# (imrtrial.blinding_words, which also gives the arm labels and group names: World.revealing_texts).
WORDS = PAGE_WORDS
# CONSORT names its second stage "Allocation" (a heading on a line of its own in the flow
# diagram and its table), the same words for both arms; the word elsewhere still counts.
CONSORT_STAGE = re.compile(
    r"^\s*(?:Allocation(?:, follow-up and analysis)?|Allokering(?:, opfølgning og analyse)?"
    r"|Toewijzing(?:, follow-up en analyse)?)\s*$",
    re.M,
)
# Links to pages only the unblinded may open.
UNBLINDED_LINKS = [
    "/imr-groups/",
    "/allocations/",
    "/desk/result/",
    "/randomization/allocation/",
    "/safety-events/",
]


def problems_in(html, facts, arm_codes=()):
    """Allocation-revealing things in a page: [(what, found)]."""
    found = []
    raw = htmllib.unescape(html)
    for fact in facts:
        if fact in raw:
            found.append(("fact", fact))
    for link in UNBLINDED_LINKS:
        if link in raw:
            found.append(("link", link))
    try:
        text = lxml.html.fromstring(html).text_content()
    except Exception:  # noqa: BLE001 - an empty or non-HTML body has no text to check
        text = html
    text = PERMISSION_NAME.sub(" ", text)
    text = CONSORT_STAGE.sub(" ", text)
    for phrase in EXEMPT:
        text = re.sub(re.escape(phrase), " ", text, flags=re.I)
    for pattern in [*WORDS, *(rf"\b{re.escape(code)}\b" for code in arm_codes)]:
        if m := re.search(pattern, text):
            found.append(("word", text[max(0, m.start() - 40) : m.end() + 40]))
    return found


# --- The crawler ------------------------------------------------------------------------------


class Crawler:
    """Breadth-first over links and GET forms. The admin multiplies pages (a row per user,
    membership, entry; sorting and filter links on every list), so it fetches a few rows of
    each shape of path and a few query strings of each path: the URL patterns are asked
    separately, with the ids of both arms."""

    MAX_VARIANTS = 3  # query strings per path
    MAX_IDS = 3  # paths per shape ("/admin/auth/user/<id>/change/")
    MAX_PAGES = 300

    def __init__(self, client, facts=(), arm_codes=(), arm_labels=(), follow_forms=True):
        self.client, self.facts, self.arm_codes = client, set(facts), tuple(arm_codes)
        self.follow_forms = follow_forms
        self.arm_labels = set(arm_labels)
        self.pages, self.failures, self.seen, self.variants = {}, [], set(), {}
        self.requests, self.queries = 0, {}

    def fetch(self, url, data=None):
        """GET the page and check it; return the response."""
        response = self.client.get(url, data)
        self.requests += 1
        where = f"{url} {data or ''}"
        if response.status_code >= 500:
            self.failures.append((where, f"HTTP {response.status_code}"))
        location = response.get("Location", "")
        if location and location != urlparse(url).path + "change/":  # the admin's bare "<id>/"
            self.failures += [(where, p) for p in problems_in(location, self.facts)]
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            response.body = response.content.decode()
            facts, codes = self.facts, self.arm_codes
            if url.startswith(ARMS_ALLOWED_ON):
                facts, codes = facts - self.arm_labels, ()
            found = problems_in(response.body, facts, codes)
            self.failures += [(where, p) for p in found]
        else:
            response.body = None
        return response

    def _want(self, url):
        parsed = urlparse(url)
        if not parsed.path.startswith("/") or parsed.netloc and parsed.netloc != "testserver":
            return False
        if parsed.path.startswith("/static/") or "logout" in parsed.path:
            return False
        if url in self.seen or len(self.pages) >= self.MAX_PAGES:
            return False
        shape = re.sub(r"/\d+/", "/<id>/", parsed.path)
        if shape != parsed.path and parsed.path not in self.variants:
            ids = self.variants.setdefault(shape, set())
            if len(ids) >= self.MAX_IDS and parsed.path not in ids:
                return False
            ids.add(parsed.path)
        if parsed.query:
            if "_changelist_filters=" in parsed.query:  # the same page, remembering a list
                return False
            n = self.queries.get(parsed.path, 0)
            if n >= self.MAX_VARIANTS:
                return False
            self.queries[parsed.path] = n + 1
        return True

    def crawl(self, starts):
        queue = list(starts)
        while queue:
            url = queue.pop(0)
            if not self._want(url):
                continue
            self.seen.add(url)
            body = self.fetch(url).body
            if body is None:
                continue
            self.pages[url] = body
            doc = lxml.html.fromstring(body)
            for href in doc.xpath("//a/@href"):
                if not href.startswith(("#", "mailto:", "javascript:")):
                    parsed = urlparse(urljoin(url, href))
                    queue.append(parsed.path + (f"?{parsed.query}" if parsed.query else ""))
            if self.follow_forms:
                self.submit_get_forms(url, doc)
        return self.pages

    def submit_get_forms(self, url, doc):
        """Each GET form as it stands, then once per option of each of its selects."""
        for form in doc.forms:
            if (form.method or "GET").upper() != "GET":
                continue
            action = urljoin(url, form.action or url)
            values = dict(form.form_values())
            self._submit(action, values)
            for select in form.xpath(".//select[@name]"):
                for option in select.xpath(".//option/@value"):
                    self._submit(action, {**values, select.get("name"): option})

    def _submit(self, action, values):
        key = (action, tuple(sorted(values.items())))
        if key in self.seen or len(self.pages) >= self.MAX_PAGES:
            return
        self.seen.add(key)
        self.fetch(urlparse(action).path, values)


# --- Every URL pattern, with real ids --------------------------------------------------------


def patterns(resolver=None, prefix=""):
    """(route, name, namespace, model admin) for every URL pattern, walking includes."""
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from ((r, n, ns or p.namespace, m) for r, n, ns, m in patterns(p, route))
        elif isinstance(p, URLPattern):
            yield route, p.name, None, getattr(p.callback, "model_admin", None)


def _admin_model(route):
    """The model of an admin route "admin/<app>/<model>/...", or None."""
    from django.apps import apps

    parts = route.split("/")
    if len(parts) > 3 and parts[0] == "admin":
        try:
            return apps.get_model(parts[1], parts[2])
        except (LookupError, ValueError):
            return None
    return None


def values_for(world):
    """Path parameters: pairs (IMR side, control side) so each URL is asked for both arms, plus
    single values that exist on one side only."""
    imr, tau = world.imr, world.tau

    def visit(p, code):
        return p.visits.get(timepoint__code=code).pk

    def entry(p, instrument):
        return FormEntry.objects.get(participant=p, instrument=instrument).pk

    return {
        "trial_key": [(world.trial.key, world.trial.key)],
        "participant_id": [(imr.participant_id, tau.participant_id)],
        "number": [(imr.screening.screening_number, tau.screening.screening_number)],
        "visit_pk": [(visit(imr, "baseline"), visit(tau, "baseline")), (visit(imr, "post"),) * 2],
        "entry_pk": [(entry(imr, "gaf_f"), entry(tau, "gaf_f")), (world.staff_entry.pk,) * 2],
        "instrument": [("gaf_f", "gaf_f"), ("imrs_s", "imrs_s"), ("csq8", "csq8")],
        "kind": [("single", "single"), ("first", "first")],
        "pk": [(world.group.pk,) * 2],
        "membership_pk": [(world.membership.pk,) * 2],
        "session_pk": [(world.session.pk,) * 2],
        "assessment_pk": [(world.assessment.pk,) * 2],
        "event_pk": [tuple(e.pk for e in world.extra["safety_events"])],
        "query_pk": [
            tuple(q.pk for q in world.extra["visit_queries"]),
            tuple(q.pk for q in world.extra["item_queries"]),
        ],
        # Two-factor reset of a colleague, and the trial administration's page of a member of
        # staff: an unblinded colleague's id.
        "user_id": [(world.users[Role.COORDINATOR].pk,) * 2],
        # The trial administration's set-up pages, and an invitation link (not a valid token:
        # a valid one is spent by its first use, tests/staff/test_fuzz_invitation.py).
        "site_pk": [(world.trial.sites.order_by("pk").first().pk,) * 2],
        "timepoint_pk": [(world.trial.timepoints.order_by("pk").first().pk,) * 2],
        "token": [("not-a-token",) * 2],
        "dataset": [(world.extra["register_dataset"].code,) * 2],
    }


def _admin_ids(model, world):
    """Pairs of ids of an admin model's rows for the two arms, or every row (capped)."""
    from randomization.services import allocation_of

    by_model = {
        "participant": (world.imr.pk, world.tau.pk),
        "formentry": (
            FormEntry.objects.get(participant=world.imr, instrument="gaf_f").pk,
            FormEntry.objects.get(participant=world.tau, instrument="gaf_f").pk,
        ),
        "allocation": (allocation_of(world.imr).pk, allocation_of(world.tau).pk),
    }
    pairs = [by_model[model._meta.model_name]] if model._meta.model_name in by_model else []
    pairs += [(pk, pk) for pk in model._default_manager.values_list("pk", flat=True)[:1]]
    return pairs


def concrete_urls(world):
    """[(route, name, namespace, (url for the IMR side, url for the control side))]."""
    values = values_for(world)
    out = []
    for route, name, namespace, _ in patterns():
        if "(?P<url>" in route or "logout" in route:
            continue  # the admin's catch-all, and signing out
        model = _admin_model(route)
        params = re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)|\(\[\^/\]\+\)", route)
        names = [a or b or "positional" for a, b in params]
        pools = []
        for i, param in enumerate(names):
            if param == "object_id" or (param == "positional" and i == 0):
                pools.append(_admin_ids(model, world) if model else [])
            elif param == "positional":  # a historical version of the object
                pools.append([("HISTORY", "HISTORY")])
            elif param == "app_label":
                pools.append([(label, label) for label in ("imrtrial", "fidelity", "auth")])
            else:
                pools.append(values.get(param, []))
        if any(not pool for pool in pools):
            continue  # e.g. the admin's "view on site" shortcut and password pages by user id
        for combo in _combinations(pools):
            sides = []
            for side in (0, 1):
                url = route
                args = [value[side] for value in combo]
                if "HISTORY" in args:
                    history = model.history.filter(**{model._meta.pk.attname: args[0]}).first()
                    if history is None:
                        break
                    args[args.index("HISTORY")] = history.history_id
                for arg in args:
                    url = re.sub(
                        r"<(?:\w+:)?\w+>|\(\?P<\w+>[^)]*\)|\(\[\^/\]\+\)", str(arg), url, count=1
                    )
                sides.append("/" + url.replace("^", "").replace("$", ""))
            if len(sides) == 2:
                out.append((route, name, namespace, tuple(sides)))
    return out


def _combinations(pools):
    """The first value of every pool with each value of one pool in turn: every value is asked
    once without the product's explosion."""
    base = [pool[0] for pool in pools]
    combos = [tuple(base)]
    for i, pool in enumerate(pools):
        for value in pool[1:]:
            combos.append(tuple(base[:i] + [value] + base[i + 1 :]))
    return combos


UNBLINDED_NAMESPACES = {"randomization", "fidelity", "safety"}
UNBLINDED_ADMIN = {
    "randomization/allocation",
    "fidelity/imrgroup",
    "fidelity/groupmembership",
    "fidelity/session",
    "fidelity/attendance",
    "fidelity/fidelityassessment",
}
# The access log answers every auditor, with the rows the access-log page shows them
# (imrtrial.access.access_log_scope): exports only, to a blinded one.


def unblinded(route, namespace):
    return namespace in UNBLINDED_NAMESPACES or any(f"admin/{m}/" in route for m in UNBLINDED_ADMIN)


def worst_case_staff(user):
    """Blinded staff holding every view permission of Django's: only the gate stands between
    them and allocation data."""
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


# --- The tests --------------------------------------------------------------------------------


# Pages each role's crawl must reach (besides the home page and the admin).
_ADMIN = ["/admin/imrtrial/participant/", "/admin/assessments/formentry/", "/history/"]
REACHES = {
    Role.TRIAL_ADMIN: [
        "/participants/",
        "/withdraw/",
        "/audit/",
        "/access-log/",
        "/administration/",  # the trial administration (home page), and its pages
        "/administration/staff/",
        "/administration/staff/invite/",
        "/administration/sites/",
        "/administration/schedule/",
        "/administration/reminders/",
        "/administration/status/",
        *_ADMIN,
    ],
    Role.ASSESSOR: [
        "/worklist/",
        "/visits/",
        "/forms/",
        "/unblinding/",
        "/queries/",
        "/status/",
        *_ADMIN,
    ],
    Role.DATA_MANAGER: [
        "/participants/",
        "/visits/",
        "/audit/",
        "/reminders/",
        "/queries/new/",  # from the visit page
        "/queries/",  # the list (home page), the threads
        "/status/",
        "/status/?",  # its filters, submitted
        "/queue/",
        "/lock/",
        "/sdv/",
        "/reports/blinding/",  # the assessors' guesses, pooled
        "/registers/",  # register data (home page): the datasets, a dataset's batches, import
        "/registers/nl_hospitalisation/",
        "/registers/nl_hospitalisation/import/",
        *_ADMIN,
    ],
    Role.STATISTICIAN: ["/admin/auth/user/", "/reports/blinding/"],
    Role.MONITOR: [
        "/participants/",
        "/visits/",
        "/sdv/",  # the progress page (home page)
        "/sdv/forms/",
        "/sdv/visits/",  # from the visit page
        "/sdv/entries/",  # a form, to mark
        "/queries/new/",  # from a form
        "/queries/",
        *_ADMIN,
    ],
    Role.INVESTIGATOR: [
        "/participants/",
        "/visits/",
        "/signatures/",  # casebooks to sign (home page)
        "/sign/",  # a casebook's and a visit's signing pages
        *_ADMIN,
    ],
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_blinded_roles_reach_no_allocation_revealing_fact(role, language, client, world):
    """In every language the site speaks: the arm labels are given in all three (the world's
    trial file), and the page words in each (imrtrial.blinding_words)."""
    user = worst_case_staff(world.users[role])
    set_preference(user, language)
    client.force_login(user)
    assert client.get("/").headers["Content-Language"] == language
    arms = world.trial.arms.all()
    crawler = Crawler(
        client, world.revealing_texts(), [a.code for a in arms], [a.label for a in arms]
    )
    pages = crawler.crawl(["/", "/admin/"])
    for fragment in REACHES[role]:  # the crawler is only as good as its reach
        assert any(fragment in url for url in pages), (role, fragment)
    asymmetric = []
    for route, _, namespace, (imr_url, tau_url) in concrete_urls(world):
        first = crawler.fetch(imr_url)
        responses = [first, first if tau_url == imr_url else crawler.fetch(tau_url)]
        codes = [r.status_code for r in responses]
        if unblinded(route, namespace):
            # The admin's "<id>/" is a bare redirect to "<id>/change/", whatever the id.
            final = [
                r.status_code if r.status_code != 302 else _final(client, r) for r in responses
            ]
            assert final == [404, 404], (role, route, imr_url, codes)
        if codes[0] != codes[1]:
            asymmetric.append((route, imr_url, tau_url, codes))
    assert crawler.failures == [], (role, crawler.failures[:10])
    assert asymmetric == [], (role, asymmetric)


def test_a_facilitator_whose_role_was_just_withdrawn_reaches_no_allocation_fact(client, world):
    """The seat of someone unblinded a minute ago: the IMR group's facilitator, signed in,
    takes a data manager's role at North (blinded) and has the facilitator's role withdrawn
    through the trial administration. From their very next request on, with the same session,
    nothing they wrote or saw as a facilitator reaches them, and both arms answer alike."""
    from staff import services as staff

    admin = world.users[Role.TRIAL_ADMIN]
    user = world.users[Role.FACILITATOR]
    client.force_login(user)
    assert client.get(f"/trials/{world.trial.key}/imr-groups/").status_code == 200
    staff.grant_role(user, world.trial, Role.DATA_MANAGER, world.north, by=admin, reason="moves")
    staff.withdraw_role(
        user.memberships.get(role=Role.FACILITATOR, active=True), by=admin, reason="moves"
    )
    worst_case_staff(user)  # the same session goes on, now with the admin's view permissions
    arms = world.trial.arms.all()
    crawler = Crawler(
        client, world.revealing_texts(), [a.code for a in arms], [a.label for a in arms]
    )
    pages = crawler.crawl(["/", "/admin/"])
    for fragment in ("/participants/", "/visits/", "/queries/"):
        assert any(fragment in url for url in pages), fragment
    asymmetric = []
    for route, _, namespace, (imr_url, tau_url) in concrete_urls(world):
        responses = [crawler.fetch(imr_url), crawler.fetch(tau_url)]
        codes = [r.status_code for r in responses]
        if unblinded(route, namespace):
            final = [
                r.status_code if r.status_code != 302 else _final(client, r) for r in responses
            ]
            assert final == [404, 404], (route, imr_url, codes)
        if codes[0] != codes[1]:
            asymmetric.append((route, imr_url, tau_url, codes))
    assert crawler.failures == [], crawler.failures[:10]
    assert asymmetric == []


def _final(client, response):
    return client.get(response["Location"], follow=True).status_code


def test_every_url_pattern_is_asked(world):
    """A new page is crawled without being listed here: only patterns that need something the
    world lacks are left out, and they are these."""
    asked = {route for route, *_ in concrete_urls(world)}
    skipped = {route for route, *_ in patterns()} - asked
    for route in skipped:
        model = _admin_model(route)
        empty = model is not None and not model._default_manager.exists()  # axes' logs
        assert (
            empty
            or "(?P<url>" in route
            or "logout" in route
            or route.startswith(("admin/r/", "admin/auth/user/<id>"))
        ), route
    assert len(asked) > 100


def test_a_planted_fact_is_caught(client, world):
    """The check itself can fail: a page naming the group is reported."""
    page = f"<html><body><p>{world.group.name}</p><a href='/trials/x/imr-groups/'>x</a></body>"
    found = problems_in(page, world.revealing_texts())
    assert ("fact", world.group.name) in found and ("link", "/imr-groups/") in found
    assert problems_in("<p>Absent at 3 sessions</p>", set())


def test_the_blinding_index_by_arm_would_be_caught(client, world):
    """The check can fail on the blinding report: the index the key holder sees after lock
    names the arms, the pooled page a blinded reader sees does not."""
    url = f"/trials/{world.trial.key}/reports/blinding/"
    client.force_login(world.users[Role.DATA_MANAGER])
    pooled = client.get(url).content.decode()
    assert "Visits with a guess" in pooled
    assert problems_in(pooled, world.revealing_texts()) == []
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
    client.force_login(world.users[Role.KEY_HOLDER])
    by_arm = client.get(url).content.decode()
    labels = {arm.label for arm in world.trial.arms.all()}
    assert labels <= {fact for _, fact in problems_in(by_arm, world.revealing_texts())}


def test_a_user_of_one_site_never_reaches_another_sites_participant(client, world):
    user = worst_case_staff(world.users["trial_admin-north"])
    client.force_login(user)
    crawler = Crawler(client, {world.south_tau.participant_id})
    crawler.crawl(["/", "/admin/"])
    assert crawler.failures == []
    south = world.south_tau
    for url in (
        f"/trials/{world.trial.key}/participants/{south.participant_id}/",
        f"/admin/imrtrial/participant/{south.pk}/change/",
        f"/admin/imrtrial/participant/{south.pk}/history/",
    ):
        assert client.get(url).status_code == 404, url


def test_a_blinded_administrator_posting_a_level_1_withdrawal_learns_nothing(client, world):
    """Stopping the intervention exists in the IMR arm only. The IMR participant already has
    one; were a blinded administrator refused "already withdrawn at level 1" for them and not
    for the control participant, the refusal would tell the arm."""
    from randomization.models import Withdrawal

    client.force_login(world.users[Role.TRIAL_ADMIN])
    before = Withdrawal.objects.count()
    answers = []
    for p in (world.imr, world.tau):
        url = f"/trials/{world.trial.key}/participants/{p.participant_id}/withdraw/"
        response = client.post(url, {"level": "1", "withdrawn_on": "2026-01-01", "reason": "x"})
        page = response.content.decode().replace(p.participant_id, "P")
        page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)
        answers.append((response.status_code, page))
    assert answers[0][0] == 200 and answers[0] == answers[1]
    assert "Select a valid choice" in answers[0][1]
    assert Withdrawal.objects.count() == before
