"""The follow-up reminder digest is written in each recipient's language: in one run, the
assessor who chose Danish gets it in Danish and the one who chose Dutch gets it in Dutch, through
the real outbox (the test settings' locmem mail backend)."""

import pytest
from django.core import mail
from django.utils import translation
from django.utils.translation import gettext

from assessments import reminders
from assessments.models import Reminder, Visit
from assessments.services import schedule_visits
from imrtrial import i18n
from imrtrial.models import Participant, Role
from randomization import services as randomization
from tests.factories import make_person, make_ready_participant

pytestmark = pytest.mark.django_db

GREETING = "Dear %(name)s,"
INTRO = "These follow-up visits need you (%(day)s):"
CLOSING = "Open your worklist in imrtrial to enter the forms and answer the queries."
SUBJECT = "Follow-up visits to see to (%(day)s)"
LINE = "%(pid)s (%(site)s): %(label)s, window %(start)s to %(end)s"


def translated(language, msgid):
    """The catalogue's text for `msgid` in `language`; it must differ from the English."""
    with translation.override(language):
        text = gettext(msgid)
    assert text != msgid, f"{msgid!r} is not translated into {language}"
    return text


def test_one_run_writes_each_assessor_in_their_own_language(danish):
    coordinator = make_person(danish, Role.COORDINATOR, username="desk-r")
    p = make_ready_participant(danish, coordinator)
    randomization.randomize(p, by=coordinator)
    schedule_visits(danish)
    visit = Participant.objects.get(pk=p.pk).visits.get(timepoint__code="post")
    Visit.objects.exclude(pk=visit.pk).update(missed=True)  # only this visit matters

    people = {}
    for language in ("da", "nl"):
        user = make_person(
            danish,
            Role.ASSESSOR,
            username=f"rater-{language}",
            email=f"{language}@example.org",
            first_name=f"Rater {language}",
        )
        i18n.set_preference(user, language)
        people[language] = user

    today = visit.window_start  # the window opens: a "due" line for each assessor
    result = reminders.run_daily(today)
    assert result["failed"] == 0

    by_to = {m.to[0]: m for m in mail.outbox}
    as_written = {"da": "%d.%m.%Y", "nl": "%d-%m-%Y"}  # each language's dates
    assert visit.timepoint.translations["da"] != visit.timepoint.label  # the Danish preset's
    for language, user in people.items():
        day = f"{today:{as_written[language]}}"
        message = by_to[f"{language}@example.org"]
        assert message.subject == translated(language, SUBJECT) % {"day": day}
        body = message.body
        assert translated(language, GREETING) % {"name": user.get_full_name()} in body
        assert translated(language, INTRO) % {"day": day} in body
        assert translated(language, CLOSING) in body
        line = translated(language, LINE) % {
            "pid": p.participant_id,
            "site": p.site.name,
            # The trial's own word in the reader's language, else its English.
            "label": visit.timepoint.translations.get(language, visit.timepoint.label),
            "start": f"{visit.window_start:{as_written[language]}}",
            "end": f"{visit.window_end:{as_written[language]}}",
        }
        assert line in body
        with translation.override(language):
            kind = str(Reminder.Kind.DUE.label)
        assert kind != "Visit window open or opening soon" and f"{kind}:" in body
        # Nothing of the English digest is left.
        for english in (SUBJECT.split(" (")[0], "Dear ", "These follow-up visits", CLOSING):
            assert english not in body and english not in message.subject
    # The two languages differ from each other too.
    assert by_to["da@example.org"].subject != by_to["nl@example.org"].subject
