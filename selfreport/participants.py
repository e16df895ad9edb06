"""What the participant's pages, the services and the messages all read of a participant and
a link: their contact details and language, the forms they may answer, and a link's token.
Apart from selfreport.services, which writes, so that the messages (selfreport.messaging) can
read them without importing the services that queue them."""

import base64

from django.conf import settings
from django.utils.crypto import salted_hmac

from assessments import registry
from assessments.models import FormEntry
from imrtrial.i18n import supported
from randomization.models import IdentifyingDetails

RATER = "self_report"


def details_of(participant):
    """The participant's identifying details (contact, year of birth, language), or None."""
    return IdentifyingDetails.objects.filter(screening__participant=participant).first()


def language_of(participant, details=None):
    """The language to ask the participant in: their own, else the trial's."""
    details = details if details is not None else details_of(participant)
    return (
        supported(details.language if details else "")
        or supported(participant.trial.language)
        or settings.LANGUAGE_CODE
    )


def asked(instrument):
    """The items a participant is asked: all but free text (save_entry refuses free text from
    a participant, which blinded readers would read as the blinded assessor's)."""
    return [item for item in instrument.items if item.type != "text"]


def answerable(instrument):
    """A self-report form the participant can complete: no free text is required."""
    return instrument.rater == RATER and not any(
        item.type == "text" and item.required for item in instrument.items
    )


def self_report_codes(visit):
    """The visit's self-report forms a participant can answer, in the timepoint's order."""
    return [c for c in visit.timepoint.instruments if answerable(registry.get(c))]


def open_forms(visit, codes=None, entries=None):
    """The codes among `codes` (default: the visit's self-report forms) the participant may
    still answer: no paper entry, and no complete answers of anyone. `entries`: the entries of
    the visit's participant and timepoint where the caller has read them all already (the
    visit page), else they are read here."""
    codes = self_report_codes(visit) if codes is None else list(codes)
    if entries is None:
        entries = FormEntry.objects.filter(
            participant_id=visit.participant_id,
            timepoint=visit.timepoint.code,
            instrument__in=codes,
        ).values_list("instrument", "kind", "entered_via", "status")
    else:
        entries = [
            (e.instrument, e.kind, e.entered_via, e.status)
            for e in entries
            if e.participant_id == visit.participant_id
            and e.timepoint == visit.timepoint.code
            and e.instrument in codes
        ]
    taken = set()
    for code, kind, via, status in entries:
        if not (
            kind == FormEntry.Kind.SINGLE
            and via in FormEntry.PARTICIPANT_MODES
            and status == FormEntry.Status.DRAFT
        ):
            taken.add(code)
    return [c for c in codes if c not in taken]


def make_token(nonce):
    """The link's token: HMAC-SHA256 of its random nonce under the server's secret, as 43
    URL-safe characters."""
    digest = salted_hmac("selfreport.link", nonce, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_of(link):
    """The token of `link`, made again for its messages (never stored)."""
    return make_token(link.nonce)
