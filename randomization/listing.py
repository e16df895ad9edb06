"""For whoever holds the randomization secret: regenerate the concealed sequence, check past
allocations against it, and import a list the trial statistician made elsewhere.

Nothing here is reachable from a page: it runs from management commands on the server.
"""

import csv
import io
import re
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from imrtrial.models import Trial

from . import sequence
from .models import Allocation, ListEntry, Stratum
from .services import all_stratum_keys, setup_of


@dataclass
class Check:
    checked: int
    mismatches: list  # (randomization number, stratum, slot, allocated arm, sequence arm)


def verify(trial, secret):
    """Compare every allocation of a permuted-block trial with the sequence from `secret`."""
    if trial.method != Trial.Method.PERMUTED_BLOCKS:
        raise ValueError("Only generated (permuted-block) sequences can be verified from a seed.")
    design = setup_of(trial).design
    mismatches, checked = [], 0
    rows = Allocation.objects.filter(trial=trial).select_related("stratum", "arm")
    for a in rows.order_by("stratum__key", "slot"):
        expected = sequence.arm_at(design, secret, trial.key, a.stratum.key, a.slot)
        checked += 1
        if expected != a.arm.code:
            mismatches.append((a.randomization_number, a.stratum.key, a.slot, a.arm.code, expected))
    return Check(checked, mismatches)


def full_listing(trial, secret, per_stratum, strata_keys=None):
    """{stratum key: [Slot, ...]} for every stratum with allocations, or those named."""
    design = setup_of(trial).design
    keys = strata_keys or list(
        Stratum.objects.filter(trial=trial).order_by("key").values_list("key", flat=True)
    )
    return {key: sequence.listing(design, secret, trial.key, key, per_stratum) for key in keys}


class ListError(ValueError):
    def __init__(self, problems):
        self.problems = problems
        super().__init__("\n".join(problems))


MAX_LIST_ROWS = 100_000
# A cell a spreadsheet would run as a formula (=, +, -, @, or a tab/CR before one of them):
# refused outright, not merely failed as an unknown stratum, so the message says why.
_FORMULA = re.compile(r'(?:^|,)[ \t\r]*"?[ \t\r]*([=+\-@])', re.MULTILINE)


def parse_list(trial, text):
    """Validate an uploaded allocation list (CSV with columns stratum, slot, arm).

    Slots must run 1, 2, 3 ... without gaps within each stratum, arms must be the trial's arm
    codes. Returns [(stratum, slot, arm code)] or raises ListError naming each bad row."""
    problems = []
    if "\x00" in text:
        raise ListError([_("The file is not a text file (it contains NUL bytes).")])
    if formula := _FORMULA.search(text):
        line = text.count("\n", 0, formula.start()) + 1
        raise ListError(
            [
                _(
                    "line %(line)s: a cell starts with %(char)s: spreadsheet formulas "
                    "are refused (a list holds stratum keys, slot numbers and arm codes only)"
                )
                % {"line": line, "char": repr(formula.group(1))}
            ]
        )
    # newline="": csv reads \r\n, \n and \r endings itself; strict: a stray quote is an error,
    # not a field running on to the end of the file.
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        return _parse_rows(trial, reader, problems)
    except csv.Error as exc:  # e.g. an unterminated quote
        raise ListError(
            [_("line %(line)s: not CSV (%(error)s)") % {"line": reader.line_num, "error": exc}]
        ) from None


def _parse_rows(trial, reader, problems):
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != [
        "stratum",
        "slot",
        "arm",
    ]:
        raise ListError([_("The first line must be the header: stratum,slot,arm")])
    arms = set(trial.arms.values_list("code", flat=True))
    strata = set(all_stratum_keys(trial))
    rows, seen = [], {}
    for line, row in enumerate(reader, start=2):
        if line > MAX_LIST_ROWS + 1:
            problems.append(_("more than %(n)s rows") % {"n": MAX_LIST_ROWS})
            break
        stratum = (row.get("stratum") or "").strip()
        arm = (row.get("arm") or "").strip()
        slot_text = (row.get("slot") or "").strip()
        if None in row:
            problems.append(_("line %(line)s: more than three columns") % {"line": line})
            continue
        if stratum not in strata:
            problems.append(
                _("line %(line)s: %(stratum)s is not a stratum of this trial")
                % {"line": line, "stratum": repr(stratum)}
            )
        if arm not in arms:
            problems.append(
                _("line %(line)s: arm %(arm)s is not one of %(arms)s")
                % {"line": line, "arm": repr(arm), "arms": ", ".join(sorted(arms))}
            )
        # isascii: "²" and "٣" are digits to str.isdigit but not to int().
        if not (slot_text.isascii() and slot_text.isdigit()) or int(slot_text) < 1:
            problems.append(
                _("line %(line)s: slot %(slot)s is not a whole number from 1")
                % {"line": line, "slot": repr(slot_text)}
            )
            continue
        slot = int(slot_text)
        if (stratum, slot) in seen:
            problems.append(
                _("line %(line)s: slot %(slot)s of %(stratum)s repeats line %(first)s")
                % {"line": line, "slot": slot, "stratum": stratum, "first": seen[stratum, slot]}
            )
            continue
        seen[stratum, slot] = line
        rows.append((stratum, slot, arm))
    by_stratum = {}
    for stratum, slot, _arm in rows:
        by_stratum.setdefault(stratum, []).append(slot)
    for stratum, slots in sorted(by_stratum.items()):
        if sorted(slots) != list(range(1, len(slots) + 1)):
            problems.append(
                _("stratum %(stratum)s: slots must run 1 to %(n)s without gaps")
                % {"stratum": stratum, "n": len(slots)}
            )
    if not rows and not problems:
        problems.append(_("the list has no rows"))
    if problems:
        raise ListError(problems)
    return rows


@transaction.atomic
def import_list(trial, text):
    """Replace nothing: a list is imported once, before the trial opens."""
    if trial.method != Trial.Method.UPLOADED_LIST:
        raise ListError([_("This trial does not randomize from an uploaded list.")])
    if trial.status != Trial.Status.SETUP:
        raise ListError([_("A list can only be imported while the trial is in set-up.")])
    if ListEntry.objects.filter(trial=trial).exists():
        raise ListError([_("This trial already has an allocation list.")])
    rows = parse_list(trial, text)
    arm_pks = dict(trial.arms.values_list("code", "pk"))
    ListEntry.objects.bulk_create(
        ListEntry(trial=trial, stratum_key=s, slot=n, arm_id=arm_pks[a]) for s, n, a in rows
    )
    return len(rows)
