"""Phones and tablets, in a real browser: the desk, worklist, visit, CRF entry and dashboard
pages at 390 x 844 (a phone) and 820 x 1180 (a tablet) are never wider than the screen, and the
primary actions of the visit page (the status and "Enter") are on screen without a sideways
scroll. Screenshots of each go to the test's temporary folder, or to $LAYOUT_ARTIFACTS when
set (never into git)."""

import os
from pathlib import Path

import pytest

from imrtrial.models import Role
from tests.security.conftest import build_world

from .conftest import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

VIEWPORTS = {"phone": (390, 844), "tablet": (820, 1180)}
OVERFLOW = "() => [document.documentElement.scrollWidth, window.innerWidth]"
# Every stylesheet the page links to arrived and was parsed (a 404 leaves no rules, and an
# unstyled page is no measure of the layout).
STYLED = """() => [...document.querySelectorAll('link[rel=stylesheet]')]
  .every(link => link.sheet && link.sheet.cssRules.length > 0)"""
# The innermost elements that reach past the right edge of the screen (not those inside a
# scrolling region, which may be wider than the screen), to name in a failure.
WIDE_ELEMENTS = """() => {
  const past = el => el.getBoundingClientRect().right > window.innerWidth + 0.5;
  return [...document.querySelectorAll('body *')]
    .filter(el => past(el) && !el.closest('.table-responsive'))
    .filter(el => ![...el.children].some(past))
    .slice(0, 5)
    .map(el => `${el.outerHTML.slice(0, 100)} (to ${el.getBoundingClientRect().right}px)`);
}"""


@pytest.fixture
def world(roles_restored):
    return build_world()


@pytest.fixture
def artifacts(tmp_path):
    folder = Path(os.environ.get("LAYOUT_ARTIFACTS") or tmp_path / "layout")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _pages(world):
    key = world.trial.key
    visit = world.tau.visits.get(timepoint__code="post")
    return {
        Role.COORDINATOR: {"desk": f"/trials/{key}/desk/"},
        Role.ASSESSOR: {
            "worklist": f"/trials/{key}/worklist/",
            "visit": f"/trials/{key}/visits/{visit.pk}/",
            "entry": f"/trials/{key}/visits/{visit.pk}/forms/gaf_f/single/",
        },
        Role.DATA_MANAGER: {"dashboard": f"/trials/{key}/status/"},
    }


@pytest.mark.parametrize("size", list(VIEWPORTS), ids=list(VIEWPORTS))
def test_no_page_is_wider_than_a_phone_or_a_tablet(browser, live_server, world, artifacts, size):
    width, height = VIEWPORTS[size]
    too_wide = []
    for role, pages in _pages(world).items():
        page = sign_in(browser, live_server, world.users[role].get_username())
        page.set_viewport_size({"width": width, "height": height})
        for name, path in pages.items():
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == 200, (name, path, response.status)
            assert page.evaluate(STYLED), f"{name}: a stylesheet did not load"
            page.screenshot(path=str(artifacts / f"{name}-{width}x{height}.png"), full_page=True)
            scroll_width, inner_width = page.evaluate(OVERFLOW)
            if scroll_width > inner_width:
                too_wide.append(
                    f"{name} at {width}px: {scroll_width}px wide: {page.evaluate(WIDE_ELEMENTS)}"
                )
            if name == "visit":
                # The first form's status and its Enter button are on screen, left to right.
                row = page.locator("#f-gaf_f")
                for target in (row.get_by_role("link", name="Enter"), row.locator("td").nth(3)):
                    box = target.bounding_box()
                    assert box is not None and box["x"] >= 0
                    assert box["x"] + box["width"] <= inner_width, (size, box)
        page.close()
    assert not too_wide, too_wide
    assert len(list(artifacts.glob(f"*-{width}x{height}.png"))) == 5
