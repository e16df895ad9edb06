"""Which language a user sees, written once: pages (UserLanguageMiddleware) and mail
(language_for, which every sender renders under; imrtrial.outbox).

The order: the user's own preference (UserSettings.language, set on the preferences page or by
the header's switcher), else the language of their trial (Trial.language, of the first active
membership whose trial has one), else, for pages, what Django's LocaleMiddleware read from the
browser (the language cookie, then Accept-Language), and, for mail, settings.LANGUAGE_CODE.

A signed-in user's preference and trial language are read with the user's row
(with_languages, which imrtrial.twofactor.SessionUserBackend applies), so a page asks no query
of its own for them.
"""

from django.conf import settings
from django.db.models import F, OuterRef, Subquery
from django.utils import translation

from .models import Membership, UserSettings

_MISSING = object()


def supported(code):
    """`code` if the site has that language, else "" (a stale value in a row or a cookie)."""
    return code if code and code in dict(settings.LANGUAGES) else ""


def _trial_languages(memberships):
    """The languages of the trials of `memberships` that are active, the first joined first:
    a user's trial language is the first of theirs (one rule for the query that loads the user
    and for the lookup of a user loaded without it)."""
    return (
        memberships.filter(active=True)
        .exclude(trial__language="")
        .order_by("created_at", "pk")
        .values("trial__language")
    )


def with_languages(users):
    """`users` annotated `preferred_language` (their own choice, None or "": none) and
    `trial_language` (their trial's, None: none), in the same query."""
    return users.annotate(
        preferred_language=F("imrtrial_settings__language"),
        trial_language=Subquery(
            _trial_languages(Membership.objects.filter(user=OuterRef("pk")))[:1]
        ),
    )


def preferred_language(user):
    """The user's own choice ("" when none)."""
    found = getattr(user, "preferred_language", _MISSING)
    if found is _MISSING:
        found = (
            UserSettings.objects.filter(user_id=user.pk).values_list("language", flat=True).first()
        )
    return supported(found)


def trial_language(user, trial=None):
    """The language of `trial`, or, without one, of the user's trial ("" when none)."""
    if trial is not None:
        return supported(trial.language)
    found = getattr(user, "trial_language", _MISSING) if user is not None else None
    if found is _MISSING:
        first = _trial_languages(Membership.objects.filter(user_id=user.pk)).first()
        found = first and first["trial__language"]
    return supported(found)


def read_preferences(users):
    """Read the preferences of `users` (loaded without with_languages) in one query, so that
    language_for asks nothing more of each."""
    unread = [u for u in users if not hasattr(u, "preferred_language")]
    found = dict(
        UserSettings.objects.filter(user_id__in=[u.pk for u in unread]).values_list(
            "user_id", "language"
        )
    )
    for user in unread:
        user.preferred_language = found.get(user.pk, "")


def language_for(user, trial=None):
    """The language to write to `user` in (mail, notices): their preference, else the trial's
    (`trial`, or their own trial's), else settings.LANGUAGE_CODE. Render the subject and body
    under `translation.override(language_for(user, trial))`."""
    if user is not None and user.pk is not None and (found := preferred_language(user)):
        return found
    return trial_language(user, trial) or settings.LANGUAGE_CODE


def stored(text):
    """`text` (a lazy label) in the source language: for what is kept in the database (audit
    targets, events), which reads the same whoever's request wrote it."""
    with translation.override(settings.LANGUAGE_CODE):
        return str(text)


def set_preference(user, language):
    """Store the user's choice ("" clears it)."""
    language = supported(language)
    UserSettings.objects.update_or_create(user=user, defaults={"language": language})
    # The user object of this request carries the old value (with_languages).
    user.preferred_language = language


class UserLanguageMiddleware:
    """Activates the signed-in user's language (preference, else their trial's) over what
    LocaleMiddleware chose from the browser. After the authentication middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            language = preferred_language(user) or trial_language(user)
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
