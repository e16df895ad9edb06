"""Source data verification by a monitor.

Contract: `mark_source_verified(entry, *, by, checked_on)` is atomic, registered with
imrtrial.locking (refused while the database, the casebook or the form is locked, since it writes
clinical-data metadata), and appends a SourceVerification row; nothing is edited or deleted.
Only a monitor at the participant's site (access.may_source_verify) marks, only a form whose entry
is the data of record (FormEntry.objects.counting(): complete, verified or locked), with the date
the source was checked, not after today. A form the plan does not require may be verified too;
progress counts only the required ones. A later change of the values clears the mark by itself
(monitoring.progress): nothing here needs calling when data change.
"""

import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from assessments.models import FormEntry
from imrtrial import access
from imrtrial.errors import Refused
from imrtrial.i18n_text import short_date
from imrtrial.locking import Scope, writes_clinical_data

from . import plan, progress
from .models import SourceVerification


@writes_clinical_data("monitoring.mark_source_verified", lambda a: Scope.of(a["entry"]))
@transaction.atomic
def mark_source_verified(entry, *, by, checked_on):
    """Record that `by` checked the form's values against the source on `checked_on`."""
    if not access.may_source_verify(by, entry.participant):
        raise Refused(
            _("Only a monitor at the participant's site verifies forms against the source.")
        )
    if not isinstance(checked_on, datetime.date) or isinstance(checked_on, datetime.datetime):
        raise Refused(_("Give the date the source was checked."))
    if checked_on > timezone.localdate():
        raise Refused(_("The date the source was checked cannot be in the future."))
    # Read under the row lock save_entry takes: the values digested are the values of record
    # until this transaction ends.
    entry = FormEntry.objects.select_for_update(no_key=True).get(pk=entry.pk)
    if not FormEntry.objects.counting().filter(pk=entry.pk).exists():
        raise Refused(
            _(
                "Only a form that is the data of record (complete, verified or locked) is "
                "verified against the source: this one is %(status)s."
            )
            % {
                "status": _(entry.get_status_display()).lower()
                if not entry.counts
                else _("replaced")
            }
        )
    current = progress.state_of(entry)
    if current.state == progress.VERIFIED:
        raise Refused(
            _("This form is already source-verified (source checked on %(date)s).")
            % {"date": short_date(current.mark.source_checked_on)}
        )
    return SourceVerification.objects.create(
        entry=entry,
        source_checked_on=checked_on,
        digest=plan.digest(entry.values),
        entry_version=entry.version,
        by=by,
    )
