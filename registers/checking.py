"""Check a register file whole, before anything is written: the dry run.

`check_file(dataset, content, file_name)` reads the bytes and returns a Report: the rows that
would be imported and, with their line numbers and reasons, every problem: the file's own
(size, encoding, header), keys that match no participant, rows repeated in the file or already
imported, and malformed rows (a bad date, a non-integer, a value out of range, a missing cell,
a spreadsheet formula). Only a report with no problem at all can be imported
(registers.services.import_rows, which checks the file again in its own transaction).

Upload limits follow the allocation list's (randomization.forms.ListUploadForm): 2 MB, UTF-8
(a BOM and any line ending allowed), no NUL bytes, no cell a spreadsheet would run as a formula.
A national id is matched the way the screening's duplicate check matches it
(randomization.services.national_id_key) and is never repeated in a message.
"""

import csv
import datetime
import hashlib
import io
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from assessments.models import Visit
from imrtrial.i18n_text import short_date
from imrtrial.models import Participant
from randomization.models import IdentifyingDetails, Withdrawal
from randomization.services import national_id_key

from .models import RegisterDataset, RegisterRecord

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 100_000
FORMULA_START = ("=", "+", "-", "@")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass
class Row:
    line: int
    participant: int  # primary key
    participant_id: str
    period_start: datetime.date
    period_end: datetime.date
    values: dict


@dataclass
class Report:
    dataset: RegisterDataset
    file_name: str
    sha256: str
    text: str = ""
    rows: list = field(default_factory=list)  # Row: well formed, matched, new
    file_problems: list = field(default_factory=list)  # str
    unmatched: list = field(default_factory=list)  # (line, reason)
    duplicates: list = field(default_factory=list)  # (line, reason)
    malformed: list = field(default_factory=list)  # (line, reason)

    @property
    def problem_count(self):
        return (
            len(self.file_problems)
            + len(self.unmatched)
            + len(self.duplicates)
            + len(self.malformed)
        )

    @property
    def ok(self):
        """Importable: rows to import and no problem of any kind."""
        return bool(self.rows) and not self.problem_count

    @property
    def participant_ids(self):
        return tuple(sorted({row.participant for row in self.rows}))


def decode(content):
    """(text, problem): the file as text, or why it cannot be read."""
    if len(content) > MAX_BYTES:
        return "", _("The file is larger than 2 MB.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "", _("The file is not UTF-8 text (save it as CSV UTF-8).")
    if "\x00" in text:
        return "", _("The file is not a text file (it contains NUL bytes).")
    if not text.strip():
        return "", _("The file is empty.")
    return text, ""


def check_file(dataset, content, file_name):
    """The dry run of `content` (bytes) as a file of `dataset`: writes nothing."""
    report = Report(dataset, file_name[:200], hashlib.sha256(content).hexdigest())
    report.text, problem = decode(content)
    if problem:
        report.file_problems.append(problem)
        return report
    # newline="": csv reads \r\n, \n and \r itself; strict: a stray quote is an error.
    reader = csv.reader(io.StringIO(report.text, newline=""), strict=True)
    try:
        parsed = _read(dataset, reader, report)
    except csv.Error as exc:
        report.file_problems.append(
            _("line %(line)s: not CSV (%(error)s)") % {"line": reader.line_num, "error": exc}
        )
        return report
    if not report.file_problems:
        _match(dataset, parsed, report)
    return report


def _read(dataset, reader, report):
    """[(line, key, start, end, values)] of the well-formed rows; the others in report."""
    header = [name.strip() for name in next(reader, [])]
    expected = dataset.columns
    missing = [name for name in expected if name not in header]
    unknown = [name for name in header if name not in expected]
    if missing:
        report.file_problems.append(
            _("missing column(s): %(columns)s") % {"columns": ", ".join(missing)}
        )
    if unknown:
        report.file_problems.append(
            _("unknown column(s): %(columns)s") % {"columns": ", ".join(unknown)}
        )
    if len(set(header)) != len(header):
        report.file_problems.append(_("a column is named twice in the first line"))
    if report.file_problems:
        report.file_problems.append(
            _("The first line must name the columns: %(columns)s") % {"columns": ",".join(expected)}
        )
        return []
    parsed = []
    for number, cells in enumerate(reader, start=1):
        line = reader.line_num
        if number > MAX_ROWS:
            report.file_problems.append(_("more than %(n)s rows") % {"n": MAX_ROWS})
            return []
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, as spreadsheets leave at the end
        if len(cells) > len(header):
            report.malformed.append((line, _("more cells than the first line has columns")))
            continue
        row = dict(zip(header, (cell.strip() for cell in cells), strict=False))
        reasons = _formulas(row) or []
        if not reasons:
            key, start, end, values = _parse_row(dataset, row, reasons)
        if reasons:
            report.malformed += [(line, reason) for reason in reasons]
            continue
        parsed.append((line, key, start, end, values))
    return parsed


def _formulas(row):
    starts = sorted({cell[0] for cell in row.values() if cell.startswith(FORMULA_START)})
    if starts:
        return [
            _(
                "a cell starts with %(chars)s: spreadsheet formulas are "
                "refused (counts are written without a sign)"
            )
            % {"chars": ", ".join(map(repr, starts))}
        ]
    return None


def _parse_row(dataset, row, reasons):
    key = _key(dataset, row.get(dataset.key_column), reasons)
    start = _date(row, "period_start", reasons)
    end = _date(row, "period_end", reasons)
    if start and end and start > end:
        reasons.append(_("period_start is after period_end"))
    values = {}
    for variable in dataset.variables:
        values[variable["code"]] = _value(variable, row.get(variable["code"]), reasons)
    return key, start, end, values


def _key(dataset, text, reasons):
    if not text:
        reasons.append(_("missing value: %(column)s") % {"column": dataset.key_column})
        return None
    if dataset.key_kind == RegisterDataset.KeyKind.PARTICIPANT_ID:
        return text.upper()
    key = national_id_key(text)
    if dataset.key_pattern and not re.fullmatch(dataset.key_pattern, key):
        reasons.append(
            _("%(column)s: not a %(key)s")
            % {"column": dataset.key_column, "key": dataset.key_label}
        )
        return None
    return key


def _date(row, column, reasons):
    text = row.get(column)
    if not text:
        reasons.append(_("missing value: %(column)s") % {"column": column})
        return None
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError
        return datetime.date.fromisoformat(text)
    except ValueError:
        reasons.append(
            _("%(column)s: %(text)s is not a date (YYYY-MM-DD)")
            % {"column": column, "text": repr(text[:20])}
        )
        return None


def _value(variable, text, reasons):
    code = variable["code"]
    if not text:
        reasons.append(_("missing value: %(column)s") % {"column": code})
        return None
    if variable["type"] == "date":
        found = _date({code: text}, code, reasons)
        return found.isoformat() if found else None
    # isascii: "²" and "٣" are digits to str.isdigit but not to int().
    if not (text.isascii() and text.isdigit()):
        reasons.append(
            _("%(column)s: %(text)s is not a whole number")
            % {"column": code, "text": repr(text[:20])}
        )
        return None
    number = int(text)
    low, high = variable.get("min"), variable.get("max")
    if (low is not None and number < low) or (high is not None and number > high):
        reasons.append(
            _("%(column)s: %(number)s is out of range (%(low)s to %(high)s)")
            % {"column": code, "number": number, "low": low, "high": high}
        )
        return None
    return number


# --- Matching -------------------------------------------------------------------------------


def _match(dataset, parsed, report):
    found = _participants(dataset, {key for _, key, *_ in parsed})
    pks = [p[0] for p in found.values() if isinstance(p, tuple)]
    anchors = _anchors(dataset, pks)
    imported = {
        (pk, start, end): (batch, at)
        for pk, start, end, batch, at in RegisterRecord.objects.filter(
            dataset=dataset, participant__in=pks
        ).values_list("participant", "period_start", "period_end", "batch", "batch__at")
    }
    seen = {}
    for line, key, start, end, values in parsed:
        participant = found.get(key)
        if isinstance(participant, str):
            report.unmatched.append((line, participant))
            continue
        pk, participant_id = participant
        if problem := _period_problem(dataset, anchors.get(pk, {}), start, end):
            report.malformed.append((line, f"{participant_id}: {problem}"))
            continue
        where = (pk, start, end)
        if where in seen:
            report.duplicates.append(
                (
                    line,
                    _("in the file twice: %(pid)s, this period, as on line %(first)s")
                    % {"pid": participant_id, "first": seen[where]},
                )
            )
            continue
        seen[where] = line
        if where in imported:
            batch, at = imported[where]
            report.duplicates.append(
                (
                    line,
                    _("already imported: %(pid)s, this period, in batch %(batch)s of %(date)s")
                    % {"pid": participant_id, "batch": batch, "date": short_date(at)},
                )
            )
            continue
        report.rows.append(Row(line, pk, participant_id, start, end, values))


def _participants(dataset, keys):
    """{key: (pk, participant id) or the reason it matches none} for the file's keys."""
    trial = dataset.trial
    participants = Participant.objects.filter(trial=trial)
    if dataset.key_kind == RegisterDataset.KeyKind.PARTICIPANT_ID:
        by_key = {}
        for pk, pid in participants.values_list("pk", "participant_id"):
            by_key.setdefault(pid.upper(), []).append(pk)
        what = _("no participant of this trial has this id")
    else:
        by_key = {}
        for key, pk in IdentifyingDetails.objects.filter(
            screening__trial=trial, screening__participant__isnull=False, national_id_key__in=keys
        ).values_list("national_id_key", "screening__participant"):
            by_key.setdefault(key, []).append(pk)
        what = _("no participant of this trial has this %(key)s") % {"key": dataset.key_label}
    pks = {pk for found in by_key.values() for pk in found}
    facts = {
        pk: (pid, randomized_on)
        for pk, pid, randomized_on in participants.filter(pk__in=pks).values_list(
            "pk", "participant_id", "randomized_on"
        )
    }
    erased = set(
        Withdrawal.objects.filter(participant__in=pks, level=Withdrawal.Level.CONSENT).values_list(
            "participant", flat=True
        )
    )
    result = {}
    for key in keys:
        found = by_key.get(key, [])
        if not found:
            result[key] = what
        elif len(found) > 1:
            result[key] = _("matches more than one participant: resolve the duplicate first")
        elif found[0] in erased:
            result[key] = _("%(pid)s withdrew consent for data use") % {"pid": facts[found[0]][0]}
        elif facts[found[0]][1] is None:
            result[key] = _("%(pid)s is not randomized") % {"pid": facts[found[0]][0]}
        else:
            result[key] = (found[0], facts[found[0]][0])
    return result


def _anchors(dataset, pks):
    """{participant pk: {anchor: date}} of the anchors the dataset's periods count from."""
    anchors = {}
    for pk, randomized_on, baseline_on in Participant.objects.filter(pk__in=pks).values_list(
        "pk", "randomized_on", "baseline_completed_on"
    ):
        anchors[pk] = {"randomization": randomized_on, "baseline": baseline_on}
    visits = {p["anchor"].removeprefix("visit:") for p in dataset.periods}
    for pk, code, done in Visit.objects.filter(
        participant__in=pks, timepoint__code__in=visits, completed_on__isnull=False
    ).values_list("participant", "timepoint__code", "completed_on"):
        anchors[pk][f"visit:{code}"] = done
    return anchors


def periods_of(dataset, anchors):
    """[(label, start, end)] of a participant's periods whose anchor date is known."""
    found = []
    for period in dataset.periods:
        day = anchors.get(period["anchor"])
        if day is not None:
            found.append(
                (
                    period["label"],
                    day + datetime.timedelta(days=period["start_days"]),
                    day + datetime.timedelta(days=period["end_days"]),
                )
            )
    return found


def _period_problem(dataset, anchors, start, end):
    periods = periods_of(dataset, anchors)
    if any((start, end) == (first, last) for _, first, last in periods):
        return ""
    if not periods:
        return _("none of this dataset's periods can be dated yet (its anchor date is not known)")
    expected = "; ".join(
        _("%(label)s: %(first)s to %(last)s") % {"label": label, "first": first, "last": last}
        for label, first, last in periods
    )
    return _("the period %(start)s to %(end)s is not one of theirs (%(expected)s)") % {
        "start": start,
        "end": end,
        "expected": expected,
    }
