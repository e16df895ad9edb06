"""Who is asking: a personal API token in `Authorization: Bearer imrt_<id>_<secret>`.

On every request the token must be unrevoked and unexpired, its user active, and, if the user
must sign in with two factors (imrtrial.twofactor.requires_two_factor, asked now, not when the
token was made), enrolled in it. The user object is then narrowed to the token's trial and
scope (imrtrial.access.narrow), so that every question the views ask of the gate sees the
token's rights: its scope intersected with what the user holds at this moment.

Refusals say as little as possible: an unknown, wrong, revoked or expired token is one and the
same 401.
"""

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions, throttling

from imrtrial import access, twofactor

from .models import PREFIX, ApiToken

KEYWORD = "Bearer"


def parse(raw):
    """(key id, secret) of a token as the user copied it, or None."""
    parts = raw.split("_", 2)  # the secret (URL-safe base64) may hold "_" itself
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class TokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() != KEYWORD.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Give one token after Bearer.")
        try:
            parsed = parse(header[1].decode("ascii"))
        except UnicodeDecodeError:
            parsed = None
        refused = exceptions.AuthenticationFailed("Invalid, revoked or expired token.")
        if parsed is None:
            raise refused
        key_id, secret = parsed
        token = (
            ApiToken.objects.usable().select_related("user", "trial").filter(key_id=key_id).first()
        )
        if token is None or not token.matches(secret) or not token.user.is_active:
            raise refused
        user = token.user
        if twofactor.requires_two_factor(user) and not twofactor.is_enrolled(user):
            raise exceptions.AuthenticationFailed(
                "Your role needs two-factor sign-in: enrol an authenticator app on the site "
                "before using an API token."
            )
        access.narrow(user, token.trial, token.permissions)
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return user, token

    def authenticate_header(self, request):
        return KEYWORD


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """Requests per token, counted in the shared cache (Redis in production)."""

    scope = "token"

    def get_rate(self):
        # Read per request, not when DRF's settings were first loaded, so a deployment's
        # API_TOKEN_RATE and a test's override both hold.
        return settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]

    def get_cache_key(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken):
            return None  # the schema and docs pages, for a signed-in browser
        return self.cache_format % {"scope": self.scope, "ident": token.pk}
