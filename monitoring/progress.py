"""Where source data verification stands: per form, and counted per site and visit.

Contract: read only. A form's SDV state is derived from its latest mark and its data: VERIFIED
while its values are those the mark digested and no save since the mark changed them (a change
and back still clears it: the source was checked against other values in between); CLEARED
otherwise, dated by the first save since the mark that changed the values (the entry's history);
NONE without a mark. Progress counts the forms the trial's plan requires among the data of record
(FormEntry.objects.counting()); nothing read here knows an arm, and every count is over a site's
or a visit's forms alike for both arms.
"""

from collections import Counter, namedtuple
from functools import cached_property

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from assessments.models import FormEntry
from imrtrial.i18n_text import short_date

from . import plan
from .models import SdvPlan, SourceVerification

NONE, VERIFIED, CLEARED = "none", "verified", "cleared"
LABELS = {
    NONE: gettext_lazy("Not source-verified"),
    VERIFIED: gettext_lazy("Source-verified"),
    CLEARED: gettext_lazy("SDV cleared"),
}


class Sdv:
    """A form's SDV state; the date of a clearing change is looked up only when shown."""

    def __init__(self, state, mark=None, entry_id=None, cleared_on=None):
        self.state, self.mark, self.entry_id = state, mark, entry_id
        if cleared_on is not None:
            self.__dict__["cleared_on"] = cleared_on

    @cached_property
    def cleared_on(self):
        """The date of the first save since the mark that changed the values; the history of
        erased values is erased with them, and then it is the date of the last save."""
        change = _first_change(self.entry_id, self.mark)
        when = change.history_date if change is not None else None
        if when is None:
            when = (
                FormEntry.objects.filter(pk=self.entry_id)
                .values_list("updated_at", flat=True)
                .first()
            )
        return timezone.localdate(when)

    @property
    def label(self):
        if self.state == CLEARED:
            return _("SDV cleared by a change on %(date)s") % {"date": short_date(self.cleared_on)}
        if self.state == VERIFIED:
            return _("Source-verified (source checked on %(date)s)") % {
                "date": short_date(self.mark.source_checked_on)
            }
        return LABELS[NONE]


def _first_change(entry_id, mark):
    """The first history row of the entry since the mark whose values differ from it."""
    for row in (
        FormEntry.history.filter(id=entry_id, history_date__gt=mark.at)
        .order_by("history_date", "history_id")
        .only("values", "history_date")
    ):
        if plan.digest(row.values) != mark.digest:
            return row
    return None


def _judge(entry_id, values, version, mark):
    if mark is None:
        return Sdv(NONE)
    if plan.digest(values) != mark.digest:
        return Sdv(CLEARED, mark, entry_id)
    if version == mark.entry_version:
        return Sdv(VERIFIED, mark, entry_id)  # no save since the mark
    # Saved since with the values it checked now: verified unless they differed in between.
    change = _first_change(entry_id, mark)
    if change is None:
        return Sdv(VERIFIED, mark, entry_id)
    return Sdv(CLEARED, mark, entry_id, timezone.localdate(change.history_date))


Mark = namedtuple("Mark", "entry_id digest entry_version at source_checked_on")


def latest_marks(**where):
    """{entry id: its latest mark (a Mark)} of the marks matching `where`. Plain tuples, not
    models: a progress page reads every mark of the trial."""
    marks = {}
    for row in SourceVerification.objects.filter(**where).values_list(*Mark._fields):
        marks[row[0]] = Mark(*row)  # ordered by entry, at, pk: the last one wins
    return marks


def state_of(entry, mark=...):
    if mark is ...:
        mark = latest_marks(entry_id=entry.pk).get(entry.pk)
    return _judge(entry.pk, entry.values, entry.version, mark)


def states(trial, sites):
    """{entry id: Sdv} of the entries at `sites` that have a mark (the others are NONE)."""
    where = {"entry__participant__trial": trial, "entry__participant__site__in": sites}
    marks = latest_marks(**where)
    marked = SourceVerification.objects.filter(**where).values("entry_id")
    return {
        pk: _judge(pk, values, version, marks[pk])
        for pk, values, version in FormEntry.objects.filter(pk__in=marked).values_list(
            "pk", "values", "version"
        )
    }


def _rows(trial, sites):
    """(entry id, site id, participant id, timepoint, instrument, required) of the data of
    record at `sites`."""
    the_plan = SdvPlan.of(trial)
    rows = (
        FormEntry.objects.counting()
        .filter(participant__trial=trial, participant__site__in=sites)
        .values_list(
            "pk",
            "participant__site_id",
            "participant__site__code",
            "participant__participant_id",
            "timepoint",
            "instrument",
        )
    )
    # Not .iterator(): a server-side cursor plans for the first rows, and the anti-join of
    # counting() then took half a minute on 5,000 participants.
    for pk, site_id, site_code, pid, timepoint, instrument in rows:
        required = plan.requires(the_plan, trial.key, site_code, pid, instrument)
        yield pk, site_id, pid, timepoint, instrument, required


def counts(trial, sites):
    """{(site id, timepoint code): Counter(required, verified, cleared, outside)} where verified
    and cleared count required forms only, and `outside` verified forms the plan does not
    require."""
    rows = list(_rows(trial, sites))
    judged = states(trial, sites)
    out = {}
    for pk, site_id, _pid, timepoint, _instrument, required in rows:
        counter = out.setdefault((site_id, timepoint), Counter())
        state = judged.get(pk, Sdv(NONE)).state
        if required:
            counter["required"] += 1
            if state != NONE:
                counter[state] += 1
        elif state == VERIFIED:
            counter["outside"] += 1
    return out


def forms(trial, sites, *, timepoint="", state="", required_only=True):
    """[(entry id, participant id, timepoint, instrument, required, Sdv)] of the data of record,
    filtered, in participant, timepoint, instrument order (timepoint as stored: its code)."""
    rows = [r for r in _rows(trial, sites) if not timepoint or r[3] == timepoint]
    if required_only:
        rows = [r for r in rows if r[5]]
    judged = states(trial, sites)
    out = []
    for pk, _site, pid, tp, instrument, required in rows:
        sdv = judged.get(pk, Sdv(NONE))
        if state and sdv.state != state:
            continue
        out.append((pk, pid, tp, instrument, required, sdv))
    out.sort(key=lambda r: (r[1], r[2], r[3]))
    return out
