"""The OpenAPI description and its browsable documentation (Swagger UI), served from this site.

Swagger UI comes from drf-spectacular-sidecar's static files, and the split view serves its
start-up script as a file of its own, so the page runs under the site's Content-Security-Policy
unchanged (script-src 'self', no inline code). The template drops drf-spectacular's inline
<style> (three cosmetic rules the policy would block anyway). ReDoc is not offered: it styles
itself with inline <style> elements, which would need 'unsafe-inline'.

The description is for signed-in people and for tokens alike; the documentation page, for a
signed-in browser (a token cannot open a web page).
"""

from django.contrib.auth.decorators import login_required
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer

from .authentication import KEYWORD, TokenAuthentication


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": KEYWORD.lower(),
            "description": "A personal API token (Account -> API tokens): imrt_<id>_<secret>.",
        }


schema = SpectacularAPIView.as_view(
    authentication_classes=[TokenAuthentication, SessionAuthentication],
    permission_classes=[IsAuthenticated],
    renderer_classes=[OpenApiJsonRenderer, OpenApiYamlRenderer, JSONRenderer],
)
swagger = login_required(
    SpectacularSwaggerSplitView.as_view(
        url_name="api:schema",
        template_name="api/swagger_ui.html",
        authentication_classes=[SessionAuthentication],
        permission_classes=[IsAuthenticated],
    )
)
