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

from django.utils.functional import LazyObject, empty

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


class ResolvedUserMiddleware:
    """Puts the signed-in user object itself in `request.user`, in place of the two lazy
    wrappers around it (Django's authentication middleware wraps the user, django-otp's wraps
    that). Every attribute read through them cost two extra calls: the gate reads the user a
    few times per question, and a worklist asks it hundreds of times (issue 17: 7.4 ms of CPU
    for 400 questions through the wrappers, 2.3 ms without). Nothing is lost by reading the
    user here: every page reads it anyway (the base template asks whether they are signed in),
    static files are served before this, and the session is already loaded. Comes after
    django-otp's middleware, whose wrapper marks the user verified or not when first read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        while isinstance(user, LazyObject):
            if user._wrapped is empty:
                user._setup()
            user = user._wrapped
        request.user = user
        return self.get_response(request)
