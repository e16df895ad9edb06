"""Signatures on the record status dashboard (assessments.dashboard marks): a visit or a
casebook signed, or its signature invalidated by a later change; no mark, not signed. Two
queries per page (signoff.services.states), whatever its size; the same for every arm."""

from django.utils.translation import gettext_lazy as _

from assessments.dashboard import Mark, marks_grid

from . import services
from .models import Signature

SIGNED = Mark("signed", "✍", _("Signed by the investigator"))
INVALIDATED = Mark("invalidated", "⚠", _("Signature invalidated: to sign again"))
CASEBOOK_SIGNED = Mark("signed", "✍", _("Casebook signed by the investigator"))
CASEBOOK_INVALIDATED = Mark("invalidated", "⚠", _("Casebook signature invalidated"))


def signature_marks(participant_ids, timepoints):
    marks = {}
    for (pk, visit_id), status in services.states(participant_ids).items():
        signed = status.state == Signature.State.SIGNED
        if visit_id is None:
            marks[pk, None] = CASEBOOK_SIGNED if signed else CASEBOOK_INVALIDATED
        else:
            marks[pk, visit_id] = SIGNED if signed else INVALIDATED
    return marks


marks_grid(signature_marks, legend=[SIGNED, INVALIDATED, CASEBOOK_SIGNED, CASEBOOK_INVALIDATED])
