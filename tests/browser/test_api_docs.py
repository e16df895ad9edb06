"""In a real browser: a statistician makes an API token on the account page, reads the API's
documentation (Swagger UI from this site, under the site's Content-Security-Policy with no
violation), and the token fetches the data dictionary."""

import json
import urllib.request

import pytest

from imrtrial.models import Role
from tests.factories import make_person

from .conftest import PASSWORD, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_statistician_makes_a_token_and_reads_the_docs_under_the_sites_csp(
    browser, live_server, roles_restored, danish, settings
):
    # The live server serves static files through the finders, which know no hashed names:
    # plain names here, so Swagger UI's own files load (WhiteNoise serves the hashed ones).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    make_person(danish, Role.STATISTICIAN, username="stat-browser", password=PASSWORD)
    page = sign_in(browser, live_server, "stat-browser")
    violations, requests = [], []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.on("request", lambda r: requests.append(r.url))
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("R on my laptop")
    page.get_by_label("Export the blinded dataset (arms coded A/B)").check()
    page.get_by_role("button", name="Make the token").click()
    token = page.get_by_test_id("token").inner_text().strip()
    assert token.startswith("imrt_")
    page.get_by_role("link", name="web API").click()
    page.wait_for_selector("text=/api/v1/records/", timeout=20_000)
    assert page.get_by_text("/api/v1/metadata/").first.is_visible()
    assert violations == []
    assert all(url.startswith(live_server.url) for url in requests), requests
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/metadata/", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["key"] == danish.key
