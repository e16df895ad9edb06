"""Signing a casebook, and what a signature's validity follows from.

Contract:
- `reauthenticate(request, user, password, token)` checks the signer's credentials again, the
  way sign-in does: the password through Django's `authenticate`, so django-axes counts every
  wrong one and locks the account out after the login's limit, and the one-time code (when
  the user has a confirmed authenticator) through imrtrial.twofactor, with django-otp's
  back-off. It runs outside any transaction, so a failure is counted even though nothing is
  signed. It returns a short-lived proof that `sign` asks for.
- `sign(participant, visit, *, by, proof, seen)` records printed name, date and time, meaning,
  method and the digest of the data of record (signoff.digest), in one transaction, after the
  gate (imrtrial.access.may_sign). `seen` is the digest the signing page showed: data that
  changed since are not signed unseen. The page carries only its `seal` (keyed), and the
  audit trail shows no digest: a digest and the values a blinded reader sees would confirm a
  guess of free text they see only as "text exists". Registered with imrtrial.locking as a
  writer at trial level: refused once the database is locked (the dataset of record, which
  carries whether and when each casebook was signed, may not change), allowed on a locked
  casebook (ICH E6 expects the investigator to sign the final data; signing writes no
  clinical data).
- Validity is derived: a signature is valid while the digest of what it covers is unchanged
  (`states`), so no write path can be missed. `record_invalidations` runs after every write of
  clinical data (imrtrial.locking.after_write) and records, on each signature that write made
  invalid, when and why, for the audit trail.
"""

import dataclasses
import datetime

from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from assessments import services as crf
from assessments.models import FormEntry
from imrtrial import access, locking, schema, trialconfig, twofactor
from imrtrial.audit import attribute
from imrtrial.errors import Refused
from imrtrial.locking import Scope, writes_clinical_data
from imrtrial.models import Participant

from . import digest
from .models import Signature, SignoffSetting

PROOF_SECONDS = 60  # a re-authentication is good for the signature it was asked for


# --- Re-authentication


@dataclasses.dataclass(frozen=True)
class Proof:
    """The signer passed the password (and code) check at `at`, by `method`."""

    user_id: int
    method: str
    at: datetime.datetime


def needs_code(user):
    """Must the signer give a one-time code too? When they have a confirmed authenticator."""
    return twofactor.is_enrolled(user)


def reauthenticate(request, user, password, token=""):
    """A Proof, or Refused. Call it outside the signing transaction (the view does; requests
    are not atomic): a failure is counted by rows that must outlive the refusal."""
    again = authenticate(request, username=user.get_username(), password=password or "")
    if again is None or again.pk != user.pk:
        if getattr(request, "axes_locked_out", False):
            raise Refused(_("Too many wrong passwords: this account is locked for a while."))
        raise Refused(_("The password is not right. Nothing was signed."))
    method = "password"
    if needs_code(user):
        token = "".join((token or "").split())
        try:
            device = twofactor.check_token(user, token) if token.isdigit() else None
        except twofactor.Throttled:
            raise Refused(
                _(
                    "Too many wrong codes: wait a few seconds, then enter the current code. "
                    "Nothing was signed."
                )
            ) from None
        if device is None:
            raise Refused(_("The authentication code is not right. Nothing was signed."))
        method = "password and authenticator code"
    return Proof(user.pk, method, timezone.now())


# --- What is signed ---------------------------------------------------------------------------


def _covered_forms(participant, visit):
    """The counting entries a signature of the visit (None: the casebook) covers, as recorded."""
    entries = FormEntry.objects.counting().filter(participant=participant)
    if visit is not None:
        entries = entries.filter(timepoint=visit.timepoint.code)
    return [
        {"instrument": i, "timepoint": tp, "entry": pk, "status": status}
        for pk, i, tp, status in entries.order_by("timepoint", "instrument").values_list(
            "pk", "instrument", "timepoint", "status"
        )
    ]


def seal(data_digest):
    """What the signing page carries of the digest it showed: keyed with the site's secret, so
    that it tells its reader nothing of the values. The bare digest would: with the values a
    blinded reader sees, it confirms a guess of free text they see only as "text exists"."""
    return salted_hmac("signoff.seen", data_digest).hexdigest() if data_digest else ""


def unseal(participant, visit, sealed):
    """The current digest if `sealed` is its seal (the page showed these data), else None:
    `sign` then refuses, as for data changed since the page was opened."""
    now = current_digest(participant, visit)
    return now if sealed and constant_time_compare(seal(now), sealed) else None


def current_digest(participant, visit=None):
    digests = digest.visit_digests([participant.pk])
    return digest.digest_of(digests, participant.pk, visit.timepoint.code if visit else None)


def _sign_scope(arguments):
    # Trial level only: a locked casebook may be signed (see the module's contract).
    return Scope(arguments["participant"].trial_id)


@writes_clinical_data("signoff.sign", _sign_scope)
@transaction.atomic
def sign(participant, visit=None, *, by, proof, seen):
    """Sign the visit (or, visit None, the whole casebook) of the participant."""
    if not access.may_sign(by, participant):
        raise Refused(_("Only a site investigator of the participant's site signs their casebook."))
    if (
        not isinstance(proof, Proof)
        or proof.user_id != by.pk
        or timezone.now() - proof.at > datetime.timedelta(seconds=PROOF_SECONDS)
    ):
        raise Refused(_("Enter your password again to sign."))
    if visit is not None and visit.participant_id != participant.pk:
        raise Refused(_("This visit is not the participant's."))
    # FOR UPDATE conflicts with the KEY SHARE every writer of clinical data takes on the
    # participant (imrtrial.locking): a write already under way finishes before the digest is
    # read, and one that starts now waits, then sees this signature and records what it
    # invalidates.
    participant = Participant.objects.select_for_update().get(pk=participant.pk)
    now = current_digest(participant, visit)
    if now == digest.EMPTY:
        raise Refused(_("Nothing to sign yet: no form here is complete."))
    if seen != now:
        raise Refused(
            _("The data changed since you opened this page. Review them again, then sign.")
        )
    name = by.get_full_name().strip()
    if not name:
        raise Refused(
            _(
                "Your account has no full name to print with the signature: ask the "
                "trial administrator to add it."
            )
        )
    signature = Signature(
        participant=participant,
        visit=visit,
        signed_by=by,
        printed_name=name,
        signed_at=timezone.now(),
        meaning=Signature.MEANING_VISIT if visit else Signature.MEANING_CASEBOOK,
        digest=now,
        forms=_covered_forms(participant, visit),
        method=proof.method,
    )
    attribute(signature, by=by, reason="signed").save()
    return signature


# --- Validity ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Status:
    """The signature state of one visit or casebook, and the signature it comes from."""

    state: str
    signature: Signature | None = None

    @property
    def label(self):
        return Signature.State(self.state).label

    @property
    def signed_on(self):
        if self.state == Signature.State.SIGNED:
            return timezone.localdate(self.signature.signed_at)
        return None


def states(participant_ids):
    """{(participant pk, visit pk or None for the casebook): Status} of every signed (or once
    signed) visit and casebook of the participants, in two queries whatever their number.
    Anything absent is not signed."""
    participant_ids = list(participant_ids)
    latest = (
        Signature.objects.filter(participant_id__in=participant_ids)
        .select_related("visit__timepoint")
        .latest_per_scope()
    )
    if not latest:
        return {}
    digests = digest.visit_digests({s.participant_id for s in latest})
    found = {}
    for s in latest:
        now = digest.digest_of(
            digests, s.participant_id, s.visit.timepoint.code if s.visit_id else None
        )
        valid = s.invalidated_at is None and now == s.digest
        state = Signature.State.SIGNED if valid else Signature.State.INVALIDATED
        found[s.participant_id, s.visit_id] = Status(state, s)
    return found


def signed_at(participant_ids):
    """{(participant pk, timepoint code, or None for the casebook): when it was signed} of the
    valid signatures of the participants: what the blinded dataset carries (signed yes/no and
    the date, never who)."""
    return {
        (pk, status.signature.visit.timepoint.code if visit_id else None): (
            status.signature.signed_at
        )
        for (pk, visit_id), status in states(participant_ids).items()
        if status.state == Signature.State.SIGNED
    }


def status_of(participant, visit=None):
    return states([participant.pk]).get((participant.pk, visit.pk if visit else None)) or Status(
        Signature.State.NOT_SIGNED
    )


_WHAT = {
    "assessments.save_entry": "a form was saved",
    "assessments.reconcile": "a paper form was reconciled",
    "assessments.withdraw": "data were erased on withdrawal",
}


@locking.after_write
def record_invalidations(writer, scope, *, by=None):
    """After a write to the casebooks of `scope`, record on each signature it made invalid
    when and why (the audit trail shows it). One indexed query when nothing is signed.

    The invalidation is the system's, not the writer's: who changed the data is on the form's
    own history, where the audit trail hides the raters of staff-rated forms alike for every
    arm; named here, a facilitator's change would read "Trial staff" and a blinded rater's by
    name, which would tell the arm."""
    if writer not in _WHAT or not scope.participant_ids:
        return  # only these writers change the data of record a signature covers
    if not Signature.objects.filter(
        participant_id__in=scope.participant_ids, invalidated_at__isnull=True
    ).exists():
        return
    why = f"The signed data changed: {_WHAT[writer]}."
    for (_pid, _visit), status in states(scope.participant_ids).items():
        s = status.signature
        if status.state == Signature.State.INVALIDATED and s.invalidated_at is None:
            s.invalidated_at, s.invalidation = timezone.now(), why
            attribute(s, by=None, reason=why).save(update_fields=["invalidated_at", "invalidation"])


# --- The casebook lock ------------------------------------------------------------------------


def lock_requires_signature(trial):
    return SignoffSetting.objects.filter(trial=trial, lock_requires_signature=True).exists()


def _unsigned_among(trial, ids):
    """The participants among `ids` with data of record and no valid casebook signature, where
    the trial asks for one."""
    if not lock_requires_signature(trial):
        return set()
    with_data = set(
        FormEntry.objects.counting()
        .filter(participant_id__in=ids)
        .values_list("participant_id", flat=True)
    )
    found = states(with_data)
    return {
        pk
        for pk in with_data
        if (s := found.get((pk, None))) is None or s.state != Signature.State.SIGNED
    }


@crf.blocks_locking(among=_unsigned_among)
def unsigned_casebooks(trial, participant):
    """Where the trial asks for it, a casebook is locked only with a valid signature of it; the
    database lock waits for every randomized participant's."""
    if not lock_requires_signature(trial):
        return []
    # Casebooks with data of record: one with none has nothing to sign.
    with_data = FormEntry.objects.counting().filter(participant__trial=trial)
    if participant is not None:
        with_data = with_data.filter(participant=participant)
    ids = set(with_data.values_list("participant_id", flat=True))
    unsigned = len(_unsigned_among(trial, ids))
    return [("casebooks without a valid investigator signature", unsigned)]


# --- The trial's setting ----------------------------------------------------------------------


class SignoffSection(schema.Strict):
    """The optional `signoff:` section of a trial's YAML: `lock_requires_signature` (a casebook
    is locked only once its site investigator has signed it)."""

    lock_requires_signature: schema.Boolean = False


def check_section(c, section, config):
    """The section as load_trial checked it against SignoffSection (None: not given)."""
    return {"lock_requires_signature": bool(section and section.lock_requires_signature)}


def configure(trial, section):
    """Store the checked `signoff:` section, in load_trial's transaction."""
    SignoffSetting.objects.update_or_create(
        trial=trial, defaults={"lock_requires_signature": section["lock_requires_signature"]}
    )


trialconfig.register_section("signoff", check_section, configure, schema=SignoffSection)
