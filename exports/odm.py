"""The blinded trial dataset as CDISC ODM 1.3.2 XML: metadata, sites and clinical data.

Contract:
- `write_odm(trial, out, *, progress=None) -> int` writes one ODM Snapshot document to the
  binary file object `out` and returns the number of SubjectData written. It streams: the
  metadata (bounded by the number of instruments) is written first, then one subject at a time
  while participants and form entries are read from the database in chunks, so the memory it
  needs does not grow with the trial. `progress(done, total)` is called every PROGRESS_EVERY
  subjects and once at the end.
- `validate_odm(path_or_file) -> list[str]` checks a document against the official ODM 1.3.2
  schema vendored in exports/odm_schema/ (see its README for the licence), loaded once, from
  local files only, never over the network. An empty list means valid.

What is written is decided by the rules of the blinded dataset (exports.dataset), the same
for CSV, SPSS and Stata: the randomized participants only, the instruments of the schedule with
their exported items only (never free text), and the counting record of each form only (a single
or reconciled entry, complete or later; never a draft or a raw entry of double data entry, nor
the data of a participant who withdrew consent for data use).

Blinding: the arm appears only as its neutral export code (A/B), read through
randomization.export; no arm label, IMR group, attendance or fidelity rating is read at all, and
no withdrawal level is written (level 1 exists in the intervention arm only). The caller has
asked the gate (`export_blinded`) already.
"""

import contextlib
import datetime
import functools
import math
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.utils import timezone
from lxml import etree

from assessments import outcomes
from randomization import export as allocation_facts
from signoff import services as signoff
from signoff.models import Signature

from . import dataset as blinded
from .columns import outcome_text

NS = "http://www.cdisc.org/ns/odm/v1.3"
SCHEMA_DIR = Path(__file__).resolve().parent / "odm_schema"
SCHEMA_FILE = SCHEMA_DIR / "ODM1-3-2.xsd"

PROGRESS_EVERY = 250  # subjects between two progress(done, total) calls
CHUNK_SIZE = 500  # rows fetched per round trip; bounds the memory the export needs

# ODM DataType of each exported item type. Which items are exported is not decided here but by
# the definition's allow-list (Instrument.exported_items), as for CSV, SPSS and Stata: free text
# never is (it could name a group session, a facilitator or the participant).
DATA_TYPES = {
    "integer": "integer",
    "choice": "integer",
    "decimal": "float",
    "boolean": "boolean",
    "date": "date",
}

# ODM 1.3.2 has no missing-value codes: an item coded ND/RF/NA has no ItemData, like an
# unanswered one. Said once in the document itself, so the reader of the file knows.
MISSING_NOTE = (
    "Missing-value codes (for example ND not done, RF refused, NA not applicable) are not "
    "carried: ODM 1.3.2 has no missing-value codes, so an item given such a code has no "
    "ItemData, exactly like an unanswered item. Free-text items are left out (they could "
    "reveal the allocation or the person). Only single and reconciled entries that are "
    "complete, verified or locked are included, of randomized participants only, each form "
    "with its status as a Flag (a verified form changed later is complete again). The arm is "
    "given only as its neutral code."
)

RAND_EVENT = "SE.RANDOMIZATION"
RAND_FORM = "F.RANDOMIZATION"
RAND_GROUP = "IG.RANDOMIZATION"
ARM_ITEM, IN_ERROR_ITEM = "I.RANDOMIZATION.ARM", "I.RANDOMIZATION.IN_ERROR"
SITE_ITEM, DATE_ITEM = "I.RANDOMIZATION.SITE", "I.RANDOMIZATION.DATE"
ARM_CODES, SITE_CODES = "CL.ARM", "CL.SITE"
# Each form's state (complete, verified, locked; the dataset's <instrument>_status column) is an
# ODM Flag on its FormData: a FlagValue from FORM_STATUS_CODES, typed by FLAG_TYPES.
FORM_STATUS_CODES, FLAG_TYPES = "CL.FORM_STATUS", "CL.FLAG_TYPE"
FORM_STATUS_FLAG = "FORM_STATUS"
# A valid investigator signature of a visit (on its StudyEventData) or of the whole casebook (on
# the SubjectData): ODM's own Signature, defined by a SignatureDef in AdminData. Its UserRef is
# the site's investigator as a role (a User of UserType Investigator at that Location), never a
# person: the dataset says whether and when, not who.
SIGN_VISIT, SIGN_CASEBOOK = "SD.VISIT", "SD.CASEBOOK"
LEGAL_REASON = (
    "Electronic signature of the site investigator after re-entering the password (and the "
    "one-time code where enrolled), 21 CFR Part 11 / ICH E6(R3). A signature invalidated by a "
    "later change to the signed data is not written."
)


def _q(tag):
    return f"{{{NS}}}{tag}"


# --- What the metadata holds ------------------------------------------------------------------
# OIDs carry a kind prefix because ODM wants every OID of a MetaDataVersion unique across kinds.
# Codes are lower-case slugs, so the upper-case parts (SCORE, SCORES, RANDOMIZATION) never
# collide with an instrument's own codes.


@dataclass(frozen=True)
class _Group:
    oid: str
    name: str
    items: tuple  # ((ItemDef OID, Item or Score), ...)


@dataclass(frozen=True)
class _Form:
    instrument: object
    oid: str
    groups: tuple[_Group, ...]  # sections with exportable items, then the scores group
    scores_oid: str | None


def _form_of(instrument):
    code = instrument.code
    exported = instrument.exported_items
    groups = []
    for section_code, label, items in instrument.sections:
        kept = tuple((f"I.{code}.{item.code}", item) for item in items if item in exported)
        if kept:
            groups.append(_Group(f"IG.{code}.{section_code}", label or section_code or code, kept))
    scores_oid = None
    if instrument.scores:
        scores_oid = f"IG.{code}.SCORES"
        groups.append(
            _Group(
                scores_oid,
                f"{instrument.name}: scores",
                tuple((f"I.{code}.SCORE.{s.code}", s) for s in instrument.scores),
            )
        )
    return _Form(instrument, f"F.{code}", tuple(groups), scores_oid)


def _plan(trial):
    """(timepoints, forms): [(timepoint, [(form, due)])] in schedule order, and {code: form}.

    The forms are those of the blinded dataset's instruments (the schedule's). A form is listed
    at a timepoint when it is due there, or when counting entries of it exist there (the
    schedule may have changed since; the long dataset has them there too): data are written
    only where metadata describe them, so every OID the data use is defined."""
    instruments = {i.code: i for i in blinded.scheduled_instruments(trial)}
    entered = set(
        blinded.form_data(blinded.randomized(trial))
        .values_list("timepoint", "instrument")
        .distinct()
    )
    forms, timepoints = {}, []
    for timepoint in trial.timepoints.order_by("order", "pk"):
        due = list(dict.fromkeys(timepoint.instruments))
        extra = sorted(
            i for t, i in entered if t == timepoint.code and i in instruments and i not in due
        )
        listed = []
        for code in due + extra:
            form = forms.get(code) or _form_of(instruments[code])
            if form.groups:  # an instrument of free text only has nothing to export
                forms[code] = form
                listed.append((form, code in due))
        timepoints.append((timepoint, listed))
    return timepoints, forms


# --- Values -----------------------------------------------------------------------------------


def _number_text(value):
    # ODM "float" is xs:decimal: plain digits, never an exponent such as 1e-05.
    if isinstance(value, int):
        return str(value)
    return format(Decimal(repr(value)), "f")


def _value_text(item, value, missing_codes):
    """The ODM Value of a stored value, or None when it is not written: a missing-value code,
    or a value that does not fit the item as now defined (the definition may have changed)."""
    if value is None or isinstance(value, str) and value in missing_codes:
        return None
    kind = item.type
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("integer", "choice"):
        return str(value) if is_number and isinstance(value, int) else None
    if kind == "decimal":
        return _number_text(value) if is_number and math.isfinite(value) else None
    if kind == "boolean":
        return ("true" if value else "false") if isinstance(value, bool) else None
    if kind == "date" and isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    return None


def _score_text(value):
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return _number_text(value) if is_number and math.isfinite(value) else None


# --- Writing ----------------------------------------------------------------------------------


class _Tree:
    """Builds one bounded piece of the metadata (the Study, the AdminData), serialized and let
    go: the file is never one tree. Subjects are written as text (_FormText)."""

    def __init__(self, tag, attrib):
        # The default namespace is declared again on each written piece: lxml serializes a
        # piece standalone. That costs one attribute per subject, and leaves stay <X .../>.
        self.root = etree.Element(_q(tag), attrib, nsmap={None: NS})
        self._open = [self.root]

    @contextlib.contextmanager
    def el(self, tag, attrib=None):
        self._open.append(etree.SubElement(self._open[-1], _q(tag), attrib or {}))
        try:
            yield
        finally:
            self._open.pop()

    def leaf(self, tag, attrib):
        etree.SubElement(self._open[-1], _q(tag), attrib)

    def text(self, tag, text, attrib=None):
        etree.SubElement(self._open[-1], _q(tag), attrib or {}).text = text

    def translated(self, tag, text):
        with self.el(tag):
            self.text("TranslatedText", text)


def write_odm(trial, out, *, progress=None):
    """Write the trial's blinded dataset to the binary file `out`; return the subjects written."""
    now = timezone.now().replace(microsecond=0)
    study_oid = f"ST.{trial.key}"
    mdv_oid = f"MDV.{trial.key}.1"
    # One transaction: PostgreSQL then keeps the server-side cursors of .iterator() open without
    # materializing them (WITH HOLD), and the export reads one state of the database.
    with transaction.atomic():
        timepoints, forms = _plan(trial)
        sites = list(trial.sites.order_by("code").values_list("pk", "code", "name"))
        arm_codes = list(trial.arms.order_by("export_code").values_list("export_code", flat=True))
        total = blinded.randomized(trial).count()
        root = {
            "xmlns": NS,
            "FileType": "Snapshot",
            "Granularity": "All",
            "FileOID": f"ODM.{trial.key}.{now:%Y%m%dT%H%M%S}.{uuid.uuid4().hex[:8]}",
            "CreationDateTime": now.isoformat(),
            "ODMVersion": "1.3.2",
            "Originator": "imrtrial",
            "SourceSystem": "imrtrial",
            "Description": "Blinded trial dataset (arms as neutral codes)",
        }
        # The metadata (bounded by the instruments) are built as lxml trees; the subjects, the
        # bulk of the file, are written as text from fragments made once per item (_FormText).
        # Whitespace between elements is allowed in element-only content: one subject per line
        # keeps the file readable and diffable.
        out.write(b"<?xml version='1.0' encoding='UTF-8'?>\n")
        out.write(f"{_start('ODM', root)}\n".encode())
        study = _Tree("Study", {"OID": study_oid})
        _write_study(study, trial, mdv_oid, timepoints, forms, sites, arm_codes)
        out.write(etree.tostring(study.root, pretty_print=True, encoding="UTF-8"))
        admin = _Tree("AdminData", {"StudyOID": study_oid})
        _write_admin(admin, trial, study_oid, mdv_oid, sites)
        out.write(etree.tostring(admin.root, pretty_print=True, encoding="UTF-8"))
        clinical = {"StudyOID": study_oid, "MetaDataVersionOID": mdv_oid}
        out.write(f"{_start('ClinicalData', clinical)}\n".encode())
        written = _write_subjects(out, trial, timepoints, sites, total, progress)
        out.write(b"</ClinicalData>\n</ODM>")
    return written


# Characters XML 1.0 cannot hold at all (lxml refuses them too).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text):
    """Text escaped for an attribute value or element content."""
    if _NOT_XML.search(text):
        raise ValueError(f"Not allowed in XML: {text!r}")
    for char, entity in _ENTITIES:
        if char in text:
            text = text.replace(char, entity)
    return text


_ENTITIES = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ('"', "&quot;"),
    ("\t", "&#9;"),
    ("\n", "&#10;"),
    ("\r", "&#13;"),
)


def _start(tag, attrib, end=">"):
    return f"<{tag}" + "".join(f' {k}="{_x(v)}"' for k, v in attrib.items()) + end


def _write_study(w, trial, mdv_oid, timepoints, forms, sites, arm_codes):
    with w.el("GlobalVariables"):
        w.text("StudyName", trial.name)
        w.text("StudyDescription", trial.name)
        w.text("ProtocolName", trial.registration_id or trial.key)
    # No BasicDefinitions: no item carries a measurement unit.
    mdv = {"OID": mdv_oid, "Name": "Blinded dataset", "Description": MISSING_NOTE}
    with w.el("MetaDataVersion", mdv):
        _write_metadata(w, timepoints, forms, sites, arm_codes, outcomes.ranks_of(trial))


def _write_metadata(w, timepoints, forms, sites, arm_codes, ranks):
    with w.el("Protocol"):
        w.translated("Description", MISSING_NOTE)
        for n, (timepoint, _) in enumerate(timepoints, 1):
            w.leaf(
                "StudyEventRef",
                {
                    "StudyEventOID": f"SE.{timepoint.code}",
                    "OrderNumber": str(n),
                    "Mandatory": "Yes",
                },
            )
        # Subject-level facts: every subject written is randomized.
        w.leaf(
            "StudyEventRef",
            {
                "StudyEventOID": RAND_EVENT,
                "OrderNumber": str(len(timepoints) + 1),
                "Mandatory": "Yes",
            },
        )
    for timepoint, listed in timepoints:
        attrib = {"OID": f"SE.{timepoint.code}", "Name": timepoint.label or timepoint.code}
        with w.el("StudyEventDef", attrib | {"Repeating": "No", "Type": "Scheduled"}):
            for n, (form, due) in enumerate(listed, 1):
                w.leaf(
                    "FormRef",
                    {
                        "FormOID": form.oid,
                        "OrderNumber": str(n),
                        "Mandatory": "Yes" if due else "No",
                    },
                )
    with w.el(
        "StudyEventDef",
        {"OID": RAND_EVENT, "Name": "Randomization", "Repeating": "No", "Type": "Common"},
    ):
        w.leaf("FormRef", {"FormOID": RAND_FORM, "OrderNumber": "1", "Mandatory": "Yes"})

    ordered = sorted(forms.values(), key=lambda f: f.instrument.code)
    for form in ordered:
        instrument = form.instrument
        with w.el("FormDef", {"OID": form.oid, "Name": instrument.name, "Repeating": "No"}):
            w.translated("Description", f"{instrument.code}, version {instrument.version}")
            for n, group in enumerate(form.groups, 1):
                w.leaf(
                    "ItemGroupRef",
                    {"ItemGroupOID": group.oid, "OrderNumber": str(n), "Mandatory": "No"},
                )
    with w.el("FormDef", {"OID": RAND_FORM, "Name": "Randomization", "Repeating": "No"}):
        w.leaf("ItemGroupRef", {"ItemGroupOID": RAND_GROUP, "OrderNumber": "1", "Mandatory": "Yes"})

    for form in ordered:
        for group in form.groups:
            with w.el("ItemGroupDef", {"OID": group.oid, "Name": group.name, "Repeating": "No"}):
                for n, (oid, thing) in enumerate(group.items, 1):
                    attrib = {"ItemOID": oid, "OrderNumber": str(n)}
                    if group.oid == form.scores_oid:
                        attrib |= {"Mandatory": "No", "MethodOID": _method_oid(form, thing)}
                    else:
                        attrib["Mandatory"] = "Yes" if thing.required else "No"
                    w.leaf("ItemRef", attrib)
    with w.el("ItemGroupDef", {"OID": RAND_GROUP, "Name": "Randomization", "Repeating": "No"}):
        for n, oid in enumerate((ARM_ITEM, IN_ERROR_ITEM, SITE_ITEM, DATE_ITEM), 1):
            w.leaf("ItemRef", {"ItemOID": oid, "OrderNumber": str(n), "Mandatory": "Yes"})

    for form in ordered:
        for group in form.groups:
            for oid, thing in group.items:
                if group.oid == form.scores_oid:
                    _write_score_def(w, form, oid, thing, ranks)
                else:
                    _write_item_def(w, form, oid, thing)
    _write_randomization_defs(w)

    for form in ordered:
        for group in form.groups:
            for oid, item in group.items:
                if group.oid != form.scores_oid and item.type == "choice":
                    with w.el(
                        "CodeList",
                        {
                            "OID": f"CL{oid[1:]}",
                            "Name": item.label or item.code,
                            "DataType": "integer",
                        },
                    ):
                        for value, label in item.choices:
                            with w.el("CodeListItem", {"CodedValue": str(value)}):
                                w.translated("Decode", label)
    # The allocation code list says only "A", "B"...: the key to the arms is not in the file.
    with w.el(
        "CodeList", {"OID": ARM_CODES, "Name": "Allocation (neutral code)", "DataType": "text"}
    ):
        for code in arm_codes:
            with w.el("CodeListItem", {"CodedValue": code}):
                w.translated("Decode", code)
    with w.el("CodeList", {"OID": SITE_CODES, "Name": "Site", "DataType": "text"}):
        for _, code, name in sites:
            with w.el("CodeListItem", {"CodedValue": code}):
                w.translated("Decode", name)
    with w.el("CodeList", {"OID": FORM_STATUS_CODES, "Name": "Form status", "DataType": "text"}):
        for code, label in blinded.FORM_STATUSES.items():
            with w.el("CodeListItem", {"CodedValue": code}):
                w.translated("Decode", label)
    with (
        w.el("CodeList", {"OID": FLAG_TYPES, "Name": "Flag type", "DataType": "text"}),
        w.el("CodeListItem", {"CodedValue": FORM_STATUS_FLAG}),
    ):
        w.translated("Decode", "Form status")

    for form in ordered:
        scored = [s for g in form.groups if g.oid == form.scores_oid for _, s in g.items]
        for score in scored:
            attrib = {
                "OID": _method_oid(form, score),
                "Name": f"{form.instrument.code} {score.code}",
            }
            with w.el("MethodDef", attrib | {"Type": "Computation"}):
                w.translated("Description", _method_text(score))


def _method_oid(form, score):
    return f"MT.{form.instrument.code}.{score.code}"


def _method_text(score):
    how = "Sum" if score.method == "sum" else "Mean"
    text = f"{how} of items {', '.join(score.items)}."
    if score.reverse:
        text += f" Items {', '.join(score.reverse)} reversed first (lowest + highest - answer)."
    n, least = len(score.items), score.prorate_min_items
    if least and score.method == "sum":
        text += f" Prorated (answered sum x {n} / answered) when at least {least} of {n} items"
        text += " are answered; missing otherwise."
    elif least:
        text += f" Mean of the answered items when at least {least} of {n} are answered;"
        text += " missing otherwise."
    else:
        text += " Missing when any item is missing."
    return text + " Missing-value codes count as missing."


def _write_item_def(w, form, oid, item):
    # Names qualified by the instrument: tools that flatten ODM use them as variable names.
    name = f"{form.instrument.code}_{item.code}"
    with w.el("ItemDef", {"OID": oid, "Name": name, "DataType": DATA_TYPES[item.type]}):
        w.translated("Question", item.label or item.code)
        if item.type in ("integer", "decimal"):
            for comparator, bound in (("GE", item.min), ("LE", item.max)):
                with w.el("RangeCheck", {"Comparator": comparator, "SoftHard": "Hard"}):
                    w.text("CheckValue", _number_text(bound))
        if item.type == "choice":
            w.leaf("CodeListRef", {"CodeListOID": f"CL{oid[1:]}"})


def _write_score_def(w, form, oid, score, ranks):
    with w.el(
        "ItemDef",
        {
            "OID": oid,
            "Name": f"{form.instrument.code}_{score.code}",
            "DataType": "float",
            "Origin": "Derived",
        },
    ):
        described = outcome_text(ranks.get((form.instrument.code, score.code)))
        w.translated(
            "Description", f"{score.label}. Outcome: {described}." if described else score.label
        )


def _write_randomization_defs(w):
    with w.el("ItemDef", {"OID": ARM_ITEM, "Name": "arm", "DataType": "text"}):
        w.translated("Question", "Allocation (neutral code)")
        w.leaf("CodeListRef", {"CodeListOID": ARM_CODES})
    with w.el(
        "ItemDef", {"OID": IN_ERROR_ITEM, "Name": "allocation_in_error", "DataType": "boolean"}
    ):
        w.translated("Question", "Allocation flagged as made in error")
    with w.el("ItemDef", {"OID": SITE_ITEM, "Name": "site", "DataType": "text"}):
        w.translated("Question", "Site")
        w.leaf("CodeListRef", {"CodeListOID": SITE_CODES})
    with w.el("ItemDef", {"OID": DATE_ITEM, "Name": "randomized_on", "DataType": "date"}):
        w.translated("Question", "Date of randomization")


def _investigator_oid(site_code):
    return f"USR.INVESTIGATOR.{site_code}"


def _write_admin(w, trial, study_oid, mdv_oid, sites):
    effective = timezone.localdate(trial.created_at).isoformat()
    version = {"StudyOID": study_oid, "MetaDataVersionOID": mdv_oid, "EffectiveDate": effective}
    for _, code, name in sites:
        with w.el("User", {"OID": _investigator_oid(code), "UserType": "Investigator"}):
            w.text("DisplayName", f"Site investigator, {name or code}")
            w.leaf("LocationRef", {"LocationOID": f"LOC.{code}"})
    for _, code, name in sites:
        with w.el("Location", {"OID": f"LOC.{code}", "Name": name or code, "LocationType": "Site"}):
            w.leaf("MetaDataVersionRef", version)
    for oid, meaning in (
        (SIGN_VISIT, Signature.MEANING_VISIT),
        (SIGN_CASEBOOK, Signature.MEANING_CASEBOOK),
    ):
        with w.el("SignatureDef", {"OID": oid, "Methodology": "Electronic"}):
            w.text("Meaning", meaning)
            w.text("LegalReason", LEGAL_REASON)


def _signature_text(signature_oid, site_code, at):
    site = _x(site_code)
    return (
        f'<Signature><UserRef UserOID="{_x(_investigator_oid(site_code))}"/>'
        f'<LocationRef LocationOID="LOC.{site}"/>'
        f'<SignatureRef SignatureOID="{signature_oid}"/>'
        f"<DateTimeStamp>{at.replace(microsecond=0).isoformat()}</DateTimeStamp></Signature>"
    )


def _write_subjects(out, trial, timepoints, sites, total, progress):
    site_codes = {pk: code for pk, code, _ in sites}
    codes = allocation_facts.neutral_codes(trial)
    # Per timepoint code: its place in the schedule, and the forms the metadata define there,
    # each as text fragments made once (not per subject).
    texts = {}
    schedule = {}
    for n, (tp, listed) in enumerate(timepoints):
        here = {}
        for form, _ in listed:
            here[form.instrument.code] = texts.get(form.oid) or _FormText(form)
            texts[form.oid] = here[form.instrument.code]
        schedule[tp.code] = (n, here)
    # Both streams are ordered by participant pk: integers compare the same in Python and SQL,
    # so the merge below never depends on a collation.
    participants = (
        blinded.randomized(trial)
        .order_by("pk")
        .values_list("pk", "participant_id", "site_id", "randomized_on")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    entries = (
        blinded.form_data(blinded.randomized(trial))
        .order_by("participant_id")
        .values_list("participant_id", "timepoint", "instrument", "values", "scores", "status")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    # Valid signatures only: {(participant pk, timepoint code or None): when}. A few per
    # participant, read once (two queries), like the neutral codes above.
    signed = {}
    for (pk, timepoint), at in signoff.signed_at(
        blinded.randomized(trial).values_list("pk", flat=True)
    ).items():
        signed.setdefault(pk, {})[timepoint] = at
    pending = next(entries, None)
    done = 0
    for pk, participant_id, site_id, randomized_on in participants:
        mine = []
        while pending is not None and pending[0] <= pk:
            # An entry of a participant created after the first cursor opened (pk < current
            # would be one skipped) is not part of this snapshot.
            if pending[0] == pk:
                mine.append(pending)
            pending = next(entries, None)
        site_code = site_codes[site_id]
        parts = [f'<SubjectData SubjectKey="{_x(participant_id)}">']
        theirs = signed.get(pk, {})
        if None in theirs:
            parts.append(_signature_text(SIGN_CASEBOOK, site_code, theirs[None]))
        parts.append(f'<SiteRef LocationOID="LOC.{_x(site_code)}"/>')
        _visits_text(parts, mine, schedule, theirs, site_code)
        if pk in codes:
            _randomization_text(parts, codes[pk], site_code, randomized_on)
        parts.append("</SubjectData>\n")
        out.write("".join(parts).encode())
        done += 1
        if progress and done % PROGRESS_EVERY == 0:
            progress(done, total)
    if progress and (done == 0 or done % PROGRESS_EVERY):
        progress(done, max(total, done))
    return done


def _visits_text(parts, entries, schedule, signed=None, site_code=""):
    """One StudyEventData per timepoint with data, forms in the order the metadata list them.
    Every counting form is written with its status flag, also one whose items are all empty
    (the CSV has its status too); a visit's valid signature ({timepoint: when}) before them."""
    signed = signed or {}
    chosen = {}
    for _, timepoint, instrument, values, scores, status in entries:
        # counting() gives one entry per form (a reconciled one replaces a single one).
        if timepoint in schedule and instrument in schedule[timepoint][1]:
            chosen[timepoint, instrument] = (values or {}, scores or {}, status)
    by_timepoint = {}
    for (timepoint, instrument), found in chosen.items():
        by_timepoint.setdefault(timepoint, []).append((instrument, found))
    for timepoint in sorted(by_timepoint, key=lambda t: schedule[t][0]):
        forms = schedule[timepoint][1]
        order = list(forms)
        parts.append(f'<StudyEventData StudyEventOID="SE.{_x(timepoint)}">')
        if timepoint in signed:
            parts.append(_signature_text(SIGN_VISIT, site_code, signed[timepoint]))
        for instrument, (values, scores, status) in sorted(
            by_timepoint[timepoint], key=lambda found: order.index(found[0])
        ):
            forms[instrument].write(parts, values, scores, status)
        parts.append("</StudyEventData>")


class _FormText:
    """One form's FormData as text: the fragments of each item made once, filled per entry.
    The same elements, in the same order, as the metadata define (ItemGroupRef, ItemRef)."""

    def __init__(self, form):
        self.start = f'<FormData FormOID="{_x(form.oid)}">'
        self.groups = []
        missing = form.instrument.missing_codes
        for group in form.groups:
            scored = group.oid == form.scores_oid
            items = []
            for oid, thing in group.items:
                if scored:
                    convert = _score_text
                else:
                    convert = functools.partial(_value_text, thing, missing_codes=missing)
                items.append((thing.code, convert, f'<ItemData ItemOID="{_x(oid)}" Value="'))
            start = f'<ItemGroupData ItemGroupOID="{_x(group.oid)}">'
            self.groups.append((scored, start, items))

    def write(self, parts, values, scores, status):
        parts.append(self.start)
        parts.append(
            '<Annotation SeqNum="1"><Flag>'
            f'<FlagValue CodeListOID="{FORM_STATUS_CODES}">{_x(status)}</FlagValue>'
            f'<FlagType CodeListOID="{FLAG_TYPES}">{FORM_STATUS_FLAG}</FlagType>'
            "</Flag></Annotation>"
        )
        for scored, start, items in self.groups:
            source = scores if scored else values
            written = []
            for code, convert, prefix in items:
                # Values are digits, true/false or ISO dates (_value_text): nothing to escape.
                text = convert(source.get(code))
                if text is not None:
                    written.append(f'{prefix}{text}"/>')
            if written:  # empty groups are left out
                parts.append(start)
                parts += written
                parts.append("</ItemGroupData>")
        parts.append("</FormData>")


def _randomization_text(parts, code_and_error, site_code, randomized_on):
    code, in_error = code_and_error
    values = [(ARM_ITEM, code), (IN_ERROR_ITEM, "true" if in_error else "false")]
    values.append((SITE_ITEM, site_code))
    if randomized_on:
        values.append((DATE_ITEM, randomized_on.isoformat()))
    parts.append(
        f'<StudyEventData StudyEventOID="{RAND_EVENT}"><FormData FormOID="{RAND_FORM}">'
        f'<ItemGroupData ItemGroupOID="{RAND_GROUP}">'
    )
    parts += [f'<ItemData ItemOID="{oid}" Value="{_x(value)}"/>' for oid, value in values]
    parts.append("</ItemGroupData></FormData></StudyEventData>")


# --- Validation -------------------------------------------------------------------------------


class _LocalSchemaFiles(etree.Resolver):
    """Lets the schema load only its own files from SCHEMA_DIR: an import pointing anywhere
    else (a URL, another folder) is an error, so validation never reaches the network."""

    def resolve(self, url, pubid, context):
        path = Path(url.removeprefix("file://")).resolve()
        if path.parent == SCHEMA_DIR and path.is_file():
            return self.resolve_filename(str(path), context)
        raise OSError(f"ODM schema: refusing to load {url!r} (only files in {SCHEMA_DIR})")


def _offline_parser(**options):
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, **options)
    parser.resolvers.add(_LocalSchemaFiles())
    return parser


@functools.cache
def odm_schema():
    """The ODM 1.3.2 XMLSchema, loaded once per process from exports/odm_schema/."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_FILE), _offline_parser()))


def validate_odm(path_or_file):
    """Schema errors of an ODM document (a path or a binary file object); [] when it is valid.

    The document is validated while it is parsed and each element is dropped once its end is
    reached, so a large export is checked in flat memory. Validation may stop at the first
    structural error."""
    schema = odm_schema()
    source = str(path_or_file) if isinstance(path_or_file, Path) else path_or_file
    parsing = etree.iterparse(
        source,
        events=("end",),
        schema=schema,
        no_network=True,
        # "internal" refuses external entities (no file or network read). Not False: with
        # False, lxml 6.1's validating iterparse reports a truncated file as valid.
        resolve_entities="internal",
        load_dtd=False,
        huge_tree=True,
    )
    last_line = None
    try:
        for _, element in parsing:
            last_line = element.sourceline
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        # Streamed validation knows no line numbers: say where the last whole element ended.
        where = f" (after line {last_line})" if last_line else ""
        errors = [
            f"line {e.line}: {e.message}" if e.line else e.message + where
            for e in parsing.error_log
        ]
        return list(dict.fromkeys(errors)) or [str(exc)]
    return []
