"""What of the investigator's signatures the audit report shows (see imrtrial.audit.Source):
each signature (who, printed name, when, meaning, method, digest) and its invalidation with the
reason, as a change of the same row; and the trial's sign-off setting."""

from django.utils.translation import gettext_lazy

from imrtrial.audit import Source, register

from .models import Signature, SignoffSetting


def _describe(row):
    what = row.visit.timepoint.label if row.visit_id else "casebook"
    return f"{row.participant.participant_id} {what}: signed by {row.printed_name}"


register(
    Source(
        key="signature",
        label=gettext_lazy("Investigator signature"),
        model=Signature,
        trial="participant__trial",
        site="participant__site",
        participant="participant",
        select_related=("participant", "visit__timepoint"),
        describe=_describe,
        # The reason of an invalidation names what changed, never the words of the change. Not
        # the digest: with the values a blinded reader sees, it would confirm a guess of free
        # text they see only as "text exists" (signoff.services.seal).
        fields_shown=(
            "printed_name",
            "signed_at",
            "meaning",
            "method",
            "invalidated_at",
            "invalidation",
        ),
    )
)
register(
    Source(
        key="signoffsetting",
        label=gettext_lazy("Sign-off setting"),
        model=SignoffSetting,
        trial="trial",
        describe=lambda row: (
            "Casebook lock requires a signature"
            if row.lock_requires_signature
            else "Casebook lock without a signature"
        ),
    )
)
