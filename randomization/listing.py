"""For whoever holds the randomization secret: regenerate the concealed sequence, check past
allocations against it, and import a list the trial statistician made elsewhere.

Nothing here is reachable from a page: it runs from management commands on the server.
"""

import csv
import io
import re
from dataclasses import dataclass

from django.db import transaction

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
        raise ListError(["The file is not a text file (it contains NUL bytes)."])
    if formula := _FORMULA.search(text):
        line = text.count("\n", 0, formula.start()) + 1
        raise ListError(
            [
                f"line {line}: a cell starts with {formula.group(1)!r}: spreadsheet formulas "
                "are refused (a list holds stratum keys, slot numbers and arm codes only)"
            ]
        )
    # newline="": csv reads \r\n, \n and \r endings itself; strict: a stray quote is an error,
    # not a field running on to the end of the file.
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        return _parse_rows(trial, reader, problems)
    except csv.Error as exc:  # e.g. an unterminated quote
        raise ListError([f"line {reader.line_num}: not CSV ({exc})"]) from None


def _parse_rows(trial, reader, problems):
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != [
        "stratum",
        "slot",
        "arm",
    ]:
        raise ListError(["The first line must be the header: stratum,slot,arm"])
    arms = set(trial.arms.values_list("code", flat=True))
    strata = set(all_stratum_keys(trial))
    rows, seen = [], {}
    for line, row in enumerate(reader, start=2):
        if line > MAX_LIST_ROWS + 1:
            problems.append(f"more than {MAX_LIST_ROWS} rows")
            break
        stratum = (row.get("stratum") or "").strip()
        arm = (row.get("arm") or "").strip()
        slot_text = (row.get("slot") or "").strip()
        if None in row:
            problems.append(f"line {line}: more than three columns")
            continue
        if stratum not in strata:
            problems.append(f"line {line}: {stratum!r} is not a stratum of this trial")
        if arm not in arms:
            problems.append(f"line {line}: arm {arm!r} is not one of {', '.join(sorted(arms))}")
        # isascii: "²" and "٣" are digits to str.isdigit but not to int().
        if not (slot_text.isascii() and slot_text.isdigit()) or int(slot_text) < 1:
            problems.append(f"line {line}: slot {slot_text!r} is not a whole number from 1")
            continue
        slot = int(slot_text)
        if (stratum, slot) in seen:
            problems.append(
                f"line {line}: slot {slot} of {stratum} repeats line {seen[stratum, slot]}"
            )
            continue
        seen[stratum, slot] = line
        rows.append((stratum, slot, arm))
    by_stratum = {}
    for stratum, slot, _ in rows:
        by_stratum.setdefault(stratum, []).append(slot)
    for stratum, slots in sorted(by_stratum.items()):
        if sorted(slots) != list(range(1, len(slots) + 1)):
            problems.append(f"stratum {stratum}: slots must run 1 to {len(slots)} without gaps")
    if not rows and not problems:
        problems.append("the list has no rows")
    if problems:
        raise ListError(problems)
    return rows


@transaction.atomic
def import_list(trial, text):
    """Replace nothing: a list is imported once, before the trial opens."""
    if trial.method != Trial.Method.UPLOADED_LIST:
        raise ListError(["This trial does not randomize from an uploaded list."])
    if trial.status != Trial.Status.SETUP:
        raise ListError(["A list can only be imported while the trial is in set-up."])
    if ListEntry.objects.filter(trial=trial).exists():
        raise ListError(["This trial already has an allocation list."])
    rows = parse_list(trial, text)
    arm_pks = dict(trial.arms.values_list("code", "pk"))
    ListEntry.objects.bulk_create(
        ListEntry(trial=trial, stratum_key=s, slot=n, arm_id=arm_pks[a]) for s, n, a in rows
    )
    return len(rows)
