"""The idle timeout, renewed without a write on every request.

A session expires SESSION_COOKIE_AGE (SESSION_IDLE_SECONDS) seconds after it was last renewed,
and every request of a signed-in user renews it, as before. What changed is how often that
costs a write: Django's SESSION_SAVE_EVERY_REQUEST rewrote the session row (and sent the cookie
again) on every request, three statements on each page. Here the session is saved only when its
last renewal is more than RENEW_AFTER seconds old, so a session that is in use is renewed at
most once a minute. The timeout keeps its meaning: nobody stays signed in longer than the idle
timeout after their last request; a session may end up to RENEW_AFTER seconds sooner.
"""

import time

RENEW_AFTER = 60  # seconds
RENEWED_KEY = "_renewed_at"  # when the expiry was last moved forward (epoch seconds)


class IdleTimeoutMiddleware:
    """Marks the session for saving (which moves its expiry forward) when its last renewal is
    older than RENEW_AFTER. Comes right after Django's SessionMiddleware, which saves a session
    that was modified."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if session.session_key is not None:
            # Loads the session, which the authentication middleware does next anyway.
            renewed = session.get(RENEWED_KEY)
            now = int(time.time())
            # An expired or unknown key loads as an empty session with no key: nothing to renew
            # (renewing it would make a new session for an anonymous visitor).
            if session.session_key is not None and (
                renewed is None or not 0 <= now - renewed < RENEW_AFTER
            ):
                session[RENEWED_KEY] = now
        return self.get_response(request)
