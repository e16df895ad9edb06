"""Browser tests drive Debian's Chromium through Playwright (no browser download)."""

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls in the tests happen
# between page loads, never concurrently with the live server's own queries.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium")
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (scripts/ensure-chromium.sh installs it)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def unhashed_static_names(settings):
    """The pages' stylesheets and scripts reach the browser. The live server serves /static/
    through Django's finders, which know the source names only, while with DEBUG off the
    manifest storage writes hashed names into the pages: every stylesheet answered 404 and
    each page was measured and checked without Bootstrap or the site's CSS.

    Every browser test runs on the styled pages a user sees: links hidden or named by
    visually-hidden text are found as a user of the page finds them."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def sign_in(browser, live_server, username, language=None):
    """Sign in through the real forms: the password, then, for a user who must use two-factor
    sign-in (unblinded roles, trial administrators), the code of their authenticator app. With
    `language`, the code's form is read in it: the password form comes before anyone is known
    (the browser's English), the code's form after (the user's preference)."""
    from django.contrib.auth import get_user_model
    from django.utils import translation

    from imrtrial.twofactor import requires_two_factor
    from tests.factories import make_totp_device, totp_code

    user = get_user_model().objects.get(username=username)
    device = None
    if requires_two_factor(user):
        device = user.totpdevice_set.filter(confirmed=True).first() or make_totp_device(user)
    page = browser.new_page()
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if device is not None:
        page.wait_for_url(f"{live_server.url}/account/two-factor/verify/**")
        with translation.override(language or "en"):
            code, verify = translation.gettext("Authentication code"), translation.gettext("Verify")
        page.get_by_label(code).fill(totp_code(device))
        page.get_by_role("button", name=verify).click()
    page.wait_for_url(f"{live_server.url}/")
    return page


# axe-core, installed from the npm registry by scripts/ensure-axe.sh (`make browser`) at a
# pinned version, outside git. AXE_CORE_JS may name another copy.
AXE_CORE_JS = os.environ.get("AXE_CORE_JS") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    ".cache",
    "axe",
    "node_modules",
    "axe-core",
    "axe.min.js",
)


@pytest.fixture(scope="session")
def axe_source():
    """The text of axe.min.js: a missing axe fails under REQUIRE_BROWSER as a missing browser
    does, and skips otherwise."""
    if not os.path.isfile(AXE_CORE_JS):
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"axe-core is not installed at {AXE_CORE_JS} (scripts/ensure-axe.sh)")
        pytest.skip("axe-core is not installed (scripts/ensure-axe.sh)")
    with open(AXE_CORE_JS, encoding="utf-8") as f:
        return f.read()


def run_axe(page, axe_source):
    """axe's violations on the page as it stands. The script is evaluated through the
    DevTools protocol, so the site's Content-Security-Policy (no inline scripts) still holds for
    the page itself."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + n.failureSummary),
            }));
        }"""
    )
