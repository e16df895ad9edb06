"""Accessibility, in a real browser: axe-core (npm, pinned; scripts/ensure-axe.sh) on the pages
each role meets, in the trial of tests/security (something of every kind, in both arms).

Each role signs in and walks its pages from the home page by links, breadth first, one page per
URL pattern (a second participant's visit page is the same template), at most PAGES_PER_ROLE of
them: a representative list per role rather than the blinding crawler's every URL, which takes
too long with axe on each page. On each page: no serious or critical axe violation; every form
field has a label; every status badge says its state in words, not by colour alone. The walk is
also a blinding check: no blinded role reaches a page the crawler forbids it."""

from urllib.parse import urldefrag, urlparse

import pytest
from django.urls import Resolver404, resolve

from imrtrial.models import Role
from tests.security.conftest import BLINDED_ROLES, build_world
from tests.security.test_crawler import UNBLINDED_LINKS

from .conftest import run_axe, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PAGES_PER_ROLE = 14
# Not pages of the product's own: Django's admin (its own templates), the API's machine
# answers and its third-party documentation viewer, file downloads, and signing out.
SKIP_PREFIXES = ("/admin/", "/api/", "/static/", "/logout/")
SERIOUS = {"serious", "critical"}

UNLABELLED_FIELDS = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => !['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby') && !el.title)
  .map(el => el.outerHTML.slice(0, 120))"""
# A badge or a status icon whose state would be told by its colour alone: no words in it (the
# words may be visually hidden) and no accessible name.
MUTE_STATUS = """() => [...document.querySelectorAll('.badge, .st')]
  .filter(el => !el.textContent.trim() && !el.getAttribute('aria-label') && !el.title)
  .map(el => el.outerHTML.slice(0, 120))"""


@pytest.fixture
def world(roles_restored):
    return build_world()


def _route(path):
    try:
        return resolve(path).route
    except Resolver404:
        return None


def _walk(page, base):
    """The role's pages: [(url, route)] from the home page by links, one per route."""
    from playwright.sync_api import Error as PlaywrightError

    seen_routes, queue, seen_urls, pages = set(), [f"{base}/"], set(), []
    while queue and len(pages) < PAGES_PER_ROLE:
        url = queue.pop(0)
        if url in seen_urls:
            continue
        seen_urls.add(url)
        path = urlparse(url).path
        route = _route(path)
        if route is None or route in seen_routes or path.startswith(SKIP_PREFIXES):
            continue
        try:
            response = page.goto(url)
        except PlaywrightError as error:
            # A file download (a chart's SVG, an export) is no page to check.
            if "Download is starting" in str(error):
                continue
            raise
        if response is None or "text/html" not in (response.headers.get("content-type") or ""):
            continue
        seen_routes.add(route)
        pages.append((url, route, response.status))
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        for href in hrefs:
            href = urldefrag(href)[0]
            if href.startswith(base) and href not in seen_urls:
                queue.append(href)
        yield url, route, response.status


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_every_page_a_role_meets_passes_axe(browser, live_server, axe_source, world, role):
    user = world.users[role]
    page = sign_in(browser, live_server, user.get_username())
    problems, visited = [], []
    for url, route, status in _walk(page, live_server.url):
        visited.append(route)
        where = url.removeprefix(live_server.url)
        if status >= 500:
            problems.append(f"{where}: HTTP {status}")
            continue
        if role in BLINDED_ROLES:
            for link in UNBLINDED_LINKS:
                assert link not in where, f"{role} reached the unblinded page {where}"
        for v in run_axe(page, axe_source):
            if v["impact"] in SERIOUS:
                problems.append(f"{where}: {v['impact']} {v['id']} ({v['help']}): {v['nodes']}")
        for field in page.evaluate(UNLABELLED_FIELDS):
            problems.append(f"{where}: a field without a label: {field}")
        for badge in page.evaluate(MUTE_STATUS):
            problems.append(f"{where}: a status shown by colour alone: {badge}")
    page.close()
    # The walk reached the role's work, not only its home page.
    assert len(visited) >= 3, visited
    assert not problems, "\n".join(problems)
