"""What of the participant's own questionnaires the audit report shows (imrtrial.audit.Source):
who handed a tablet over, who sent a link and how, and what became of it. The answers
themselves are form entries, in the form entries' history (with how they came: entered_via).

A link's nonce and token digest are never shown: with the server's secret the nonce makes the
token. The outbox of messages has no source: its rows say no more than the link's."""

from django.utils.translation import gettext_lazy

from imrtrial.audit import Source, register

from .models import HandOver, Link

register(
    Source(
        key="hand_over",
        label=gettext_lazy("Tablet hand-over"),
        model=HandOver,
        trial="visit__participant__trial",
        site="visit__participant__site",
        participant="visit__participant",
        select_related=("visit__participant", "visit__timepoint"),
        describe=lambda row: f"{row.visit.participant.participant_id} {row.visit.timepoint.code}",
        history=False,
        at="started_at",
        by="started_by",
    )
)
register(
    Source(
        key="participant_link",
        label=gettext_lazy("Questionnaire link"),
        model=Link,
        trial="visit__participant__trial",
        site="visit__participant__site",
        participant="visit__participant",
        select_related=("visit__participant", "visit__timepoint"),
        describe=lambda row: f"{row.visit.participant.participant_id} {row.visit.timepoint.code}",
        history=False,
        at="created_at",
        by="created_by",
        hidden_fields=("nonce", "token_hash"),
    )
)
