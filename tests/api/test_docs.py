"""The OpenAPI description and its documentation page, served by the site under its own
Content-Security-Policy: no inline code, no CDN."""

import re

import yaml


def test_the_docs_page_loads_only_this_sites_scripts_and_styles(client, data_manager):
    assert client.get("/api/v1/docs/").status_code == 302  # signed out: to the login page
    client.force_login(data_manager)
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)
    assert not re.search(r"<script>|<style>|\son\w+=", html)  # nothing inline
    script = next(s for s in sources if "script" in s and "static" not in s)
    init = client.get(script)
    assert init.status_code == 200 and init["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in init.content.decode()
    for static in [s for s in sources if "/static/" in s]:
        assert client.get(static).status_code == 200, static


def test_the_description_is_served_to_a_signed_in_user_and_a_token(client, data_manager, token):
    assert client.get("/api/v1/schema/").status_code == 401
    client.force_login(data_manager)
    described = yaml.safe_load(client.get("/api/v1/schema/").content)
    assert described["openapi"].startswith("3.")
    assert described["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    from tests.api.conftest import Api

    answer = Api(token(data_manager)).get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert answer.status_code == 200 and answer.json()["paths"]
