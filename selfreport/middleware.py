"""While a tablet is handed over, the assessor's session reaches the hand-over's pages only.

The session holds the hand-over's id (selfreport.views.SESSION_HAND_OVER) from the moment the
assessor starts it until their password ends it. Every other path is sent back to the
hand-over's first page, whatever it is (the admin, the API's pages, another participant, the
language switcher), except static files and signing out, which ends the session and asks for a
password to get anywhere."""

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

from .views import SESSION_HAND_OVER


class HandOverMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.allowed = (settings.STATIC_URL, reverse("logout"))

    def __call__(self, request):
        pk = request.session.get(SESSION_HAND_OVER)
        if pk is not None and not request.user.is_authenticated:
            # The session lost its user (the account deactivated meanwhile): the hand-over was
            # theirs and ends with them; the sign-in page, which the confinement would send back
            # here for ever, asks for a password before anything else.
            del request.session[SESSION_HAND_OVER]
            pk = None
        if pk is not None:
            home = reverse("selfreport:hand_over", args=[pk])
            if not request.path.startswith((home, *self.allowed)):
                return redirect(home)
        return self.get_response(request)
