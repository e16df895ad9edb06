"""The trial administration's acts in the audit report (imrtrial.audit). Roles and the trial's
own fields keep their history there already (sources "membership" and "trial"); these rows add
the acts on sites, windows, accounts and invitations, each with its reason."""

from django.utils.translation import gettext_lazy

from imrtrial.audit import Source, register

from .models import AdminEvent

register(
    Source(
        key="adminevent",
        label=gettext_lazy("Trial administration"),
        model=AdminEvent,
        trial="trial",
        site="site",
        site_nullable=True,
        select_related=("site",),
        describe=lambda row: f"{row.get_action_display()}: {row.target}",
        history=False,
        at="at",
        by="by",
        text_fields=("reason",),
        author_fields=("by",),  # shown as the author already; masked with it
    )
)
