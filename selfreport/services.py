"""The participant answers their own questionnaires: on the assessor's tablet, or from a link.

Contract:
- What the participant types is saved through assessments.services.save_entry as a single
  entry with `via` tablet or link: the same validation, scoring, audit trail, locks, queries
  and refusals as staff entry. `entered_by` is the member of staff who handed the tablet over or
  sent the link, asked through the gate (imrtrial.access.may_enter, "self_report") at every
  save: a role withdrawn since silences their links too.
- The forms open to the participant (`open_forms`) are the visit's self-report forms with no
  paper entry and no complete answers: a form is answered by the participant or entered from
  paper, never both (save_entry refuses the one beside the other).
- Starting a hand-over and sending a link are writers (imrtrial.locking): refused when the
  casebook or the trial is locked, as the saves they lead to would be.
- A link: a token of 32 bytes (HMAC of a random nonce under the server's secret: make_token),
  stored as its SHA-256 beside the nonce, so the outbox can write it into each message;
  usable until the end of the visit window, until it is blocked by MAX_FAILED_CHECKS wrong
  answers to the year-of-birth check, until a newer link for the visit replaces it, or until
  every form it opened is complete. Its message is queued in the outbox (selfreport.Message)
  in the same transaction, and sent by selfreport.messaging once it commits.
- Blinding: nothing here reads the allocation; both arms' participants get the same forms,
  pages and messages.
"""

import datetime
import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from assessments.models import FormEntry, Visit
from assessments.services import save_entry
from imrtrial import access
from imrtrial.errors import Refused
from imrtrial.locking import Scope, writes_clinical_data
from imrtrial.models import Participant
from staff.models import token_digest

from . import messaging
from .models import HandOver, Link, Message
from .participants import (  # noqa: F401 - the pages and tests ask them of the services
    RATER,
    answerable,
    asked,
    details_of,
    language_of,
    make_token,
    open_forms,
    self_report_codes,
    token_of,
)

TOKEN_BYTES = 32


def _may_hand_over(by, visit):
    if not access.may_enter(by, visit.participant, RATER):
        raise Refused(_("You may not enter this participant's questionnaires."))
    if refusal := refusal_to_answer(visit):
        raise Refused(refusal)


@writes_clinical_data("selfreport.start_hand_over", lambda a: Scope.of(a["visit"]))
def start_hand_over(visit, *, by):
    """Hand the tablet over for the visit's open self-report forms; returns the HandOver."""
    _may_hand_over(by, visit)
    codes = open_forms(visit)
    if not codes:
        raise Refused(_("There are no questionnaires left for the participant at this visit."))
    return HandOver.objects.create(
        visit=visit,
        instruments=codes,
        language=language_of(visit.participant),
        started_by=by,
    )


def end_hand_over(hand_over):
    HandOver.objects.filter(pk=hand_over.pk, ended_at__isnull=True).update(ended_at=timezone.now())


def link_expiry(visit):
    """The end of the visit window: midnight after its last day, in the server's time zone
    (settings.TIME_ZONE; a site has none of its own)."""
    day = visit.window_end + datetime.timedelta(days=1)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def link_channels(details):
    """The channels a link may go by to this participant now ([] if none)."""
    if details is None or not details.agreed_to_links or details.messages_stopped_at:
        return []
    if details.birth_year is None:
        return []  # the link's check needs it
    found = []
    if details.email:
        found.append(Link.Channel.EMAIL)
    if details.phone:
        found.append(Link.Channel.SMS)
    return found


@writes_clinical_data("selfreport.send_link", lambda a: Scope.of(a["visit"]))
def send_link(visit, channel, *, by):
    """Queue a personal link to the visit's open self-report forms; returns (link, token).

    The token is returned once, for the message; only its digest is kept. An earlier link of
    the visit stops working."""
    _may_hand_over(by, visit)
    details = details_of(visit.participant)
    if channel not in link_channels(details):
        raise Refused(
            _(
                "A link cannot be sent this way: the participant has not agreed to links, "
                "stopped messages, or the contact details or year of birth are missing."
            )
        )
    if link_expiry(visit) <= timezone.now():
        raise Refused(_("The visit window has closed."))
    codes = open_forms(visit)
    if not codes:
        raise Refused(_("There are no questionnaires left for the participant at this visit."))
    now = timezone.now()
    Link.objects.filter(visit=visit, revoked_at__isnull=True, finished_at__isnull=True).update(
        revoked_at=now
    )
    nonce = secrets.token_hex(TOKEN_BYTES)
    token = make_token(nonce)
    link = Link.objects.create(
        visit=visit,
        nonce=nonce,
        token_hash=token_digest(token),
        channel=channel,
        instruments=codes,
        created_by=by,
        created_at=now,
        expires_at=link_expiry(visit),
    )
    Message.objects.create(link=link, kind=Message.Kind.LINK, number=0, created_at=now)
    transaction.on_commit(messaging.dispatch)
    return link, token


# The contact fields a link went by: when one changes, the links already sent stop working.
LINK_ADDRESSES = ("email", "phone")


def stop_links_to_old_addresses(participant, changed):
    """The desk changed the participant's e-mail address or mobile phone (`changed`: the
    contact form's changed fields): a link sent before went to the old one, perhaps someone
    else's, and stops working (with its reminders). A new link goes to the new address."""
    if not set(changed) & set(LINK_ADDRESSES):
        return 0
    return Link.objects.filter(
        visit__participant=participant, revoked_at__isnull=True, finished_at__isnull=True
    ).update(revoked_at=timezone.now())


def find_link(token):
    """The link of `token`, or None; never tells why."""
    if not token or len(token) > 100:
        return None
    return (
        Link.objects.select_related(
            "visit", "visit__timepoint", "visit__participant", "visit__participant__trial"
        )
        .filter(token_hash=token_digest(token))
        .first()
    )


class CheckFailed(Exception):
    def __init__(self, tries_left):
        self.tries_left = tries_left
        super().__init__(tries_left)


def check_year_of_birth(link, answer):
    """Pass if `answer` is the participant's year of birth; else CheckFailed(tries left). A
    wrong answer is counted under the link's row lock, and committed before the refusal is
    raised; the last allowed one blocks the link (CheckFailed(0))."""
    if not _check(link, answer):
        link.refresh_from_db(fields=["failed_checks", "blocked_at"])
        raise CheckFailed(max(Link.MAX_FAILED_CHECKS - link.failed_checks, 0))


@transaction.atomic
def _check(link, answer):
    link = Link.objects.select_for_update().get(pk=link.pk)
    if not link.is_usable():
        return False
    details = details_of(Visit.objects.get(pk=link.visit_id).participant)
    expected = details.birth_year if details else None
    if expected is not None and str(answer).strip() == str(expected):
        return True
    link.failed_checks += 1
    if link.failed_checks >= Link.MAX_FAILED_CHECKS:
        link.blocked_at = timezone.now()
    link.save(update_fields=["failed_checks", "blocked_at"])
    return False


def refusal_to_answer(visit):
    """Why the participant may no longer answer at `visit` (None: they may), read afresh: their
    follow-up ended (withdrawn, excluded, died) or the visit was recorded as missed since the
    hand-over began or the link went. Alike for both arms."""
    status = Participant.objects.filter(pk=visit.participant_id).values_list("status", flat=True)
    if status.first() in Participant.FOLLOW_UP_ENDED:
        return _("This participant's follow-up has ended.")
    if Visit.objects.filter(pk=visit.pk, missed=True).exists():
        return _("This visit was recorded as missed.")
    return None


def save_answers(visit, code, raw, *, by, via, complete=False):
    """Save the participant's answers to one form (a draft until `complete`); refused once
    the participant may no longer answer (refusal_to_answer)."""
    refusal = refusal_to_answer(visit)
    if refusal:
        raise Refused(refusal)
    return save_entry(
        visit, code, raw, by=by, kind=FormEntry.Kind.SINGLE, complete=complete, via=via
    )


def finish_link_if_done(link):
    """Mark the link finished once none of its forms is open any more."""
    if not open_forms(link.visit, link.instruments):
        Link.objects.filter(pk=link.pk, finished_at__isnull=True).update(finished_at=timezone.now())
        return True
    return False
