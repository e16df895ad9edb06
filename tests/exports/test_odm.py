"""The ODM 1.3.2 export: valid against the official schema, only counting records, nothing that
reveals the arm, and written as a stream."""

import csv
import datetime
import filecmp
import gc
import io
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from assessments import registry
from assessments import services as crf
from assessments.definitions import Item
from assessments.models import FormEntry
from exports import odm, writers
from exports.dataset import Dataset
from imrtrial.models import Participant, Role
from randomization import export as allocation_facts
from randomization import services as randomization
from tests.factories import load_preset, make_ready_participant, make_user

pytestmark = pytest.mark.django_db

NS = {"o": odm.NS}
ROOT = Path(__file__).resolve().parents[2]
# The official schema as handed to the project, next to the checkout (or to its worktree folder).
SHARED_SCHEMA = (
    next(
        (p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
        ROOT.parent / "shared",
    )
    / "odm-1.3.2"
)
NOTE = "told me about the Tuesday IMR group"  # free text that names the arm


@pytest.fixture
def study(db):
    """The Danish preset under another name. The preset's name quotes both arm labels ("... (IMR
    + TAU vs TAU)"); that is public, but it would make "no arm label in the file" untestable. The
    export writes the name as given."""
    return load_preset("danish", name="Danish IMR trial")


@pytest.fixture
def known(study, coordinator, assessor, data_manager, facilitator, person):
    """A small trial with one thing of every kind the export must keep or leave out."""
    second = person(Role.ASSESSOR, username="second-entry")
    sites = list(study.sites.order_by("code"))
    randomized = []
    # The sequence is concealed (random blocks): randomize until both arms are represented.
    while len({code for code, _ in allocation_facts.neutral_codes(study).values()}) < 2:
        assert len(randomized) < 20, "twenty allocations and still one arm"
        p = make_ready_participant(study, coordinator, site=sites[len(randomized) % len(sites)])
        randomization.randomize(p, by=coordinator)
        randomized.append(p)
    unrandomized = make_ready_participant(study, coordinator, site=sites[0])
    crf.schedule_visits(study)
    first, other = randomized[0], randomized[-1]
    post = first.visits.get(timepoint__code="post")
    baseline = first.visits.get(timepoint__code="baseline")

    panss = {item.code: "3" for item in registry.get("panss").items} | {"p2": "ND"}
    crf.save_entry(post, "panss", panss, by=assessor, kind="single", complete=True)
    gaf = crf.save_entry(post, "gaf_f", {"gaf_f": "55"}, by=assessor, kind="single", complete=True)
    crf.set_status(gaf, "verified", by=data_manager)
    crf.save_entry(
        baseline,
        "baseline",
        {
            "sex": "2",
            "year_of_birth": "1981",
            "education": "3",
            "employment": "RF",
            "living_status": "1",
            "housing": "1",
            "diagnosis": "1",
            "first_contact_year": "2001",
            "past_suicide_attempt": "yes",
        },
        by=assessor,
        kind="single",
        complete=True,
    )
    # Staff rating with a free-text note: the note must never reach the file.
    crf.save_entry(
        post,
        "substance_use",
        {"alcohol": "1", "drugs": "2", "notes": NOTE},
        by=facilitator,
        kind="single",
        complete=True,
    )
    # A draft, and the two raw entries of a paper form that is not reconciled yet.
    ymrs = {item.code: "4" for item in registry.get("ymrs").items}
    crf.save_entry(post, "ymrs", ymrs, by=assessor, kind="single", complete=False)
    csq8 = {f"c{n}": "1" for n in range(1, 9)}
    crf.save_entry(post, "csq8", csq8, by=assessor, kind="first", complete=True)
    crf.save_entry(post, "csq8", csq8 | {"c1": "2"}, by=second, kind="second", complete=True)

    # A paper form entered twice and reconciled: the reconciled record is the one that counts.
    ahs = {item.code: "5" for item in registry.get("ahs").items}
    crf.save_entry(post, "ahs", ahs, by=assessor, kind="first", complete=True)
    crf.save_entry(post, "ahs", ahs | {"h1": "6"}, by=second, kind="second", complete=True)
    crf.reconcile(post, "ahs", {"h1": "7"}, by=data_manager, reasons={"h1": "paper says 7"})

    other_post = other.visits.get(timepoint__code="post")
    crf.save_entry(other_post, "gaf_s", {"gaf_s": "61"}, by=assessor, kind="single", complete=True)

    # Consent withdrawn after a form was entered: the form is erased, the subject row stays.
    leaver = make_and_randomize(study, coordinator)
    leaver_post = leaver.visits.get(timepoint__code="post")
    crf.save_entry(leaver_post, "gaf_f", {"gaf_f": "44"}, by=assessor, kind="single", complete=True)
    crf.withdraw(
        leaver,
        3,
        by=coordinator,
        reason="withdrew consent",
        withdrawn_on=datetime.date(2026, 12, 1),
    )
    return SimpleNamespace(
        trial=study,
        first=first,
        other=other,
        leaver=leaver,
        unrandomized=unrandomized,
        randomized=[*randomized, leaver],
    )


def make_and_randomize(trial, coordinator):
    p = make_ready_participant(trial, coordinator)
    randomization.randomize(p, by=coordinator)
    crf.schedule_visits(trial)
    return Participant.objects.get(pk=p.pk)


def export(trial, **kwargs):
    out = io.BytesIO()
    written = odm.write_odm(trial, out, **kwargs)
    return written, out.getvalue()


def item_data(doc):
    """{(subject, event, form, group, item): value} of every ItemData in the document."""
    found = {}
    for item in doc.iterfind(".//o:ItemData", NS):
        group = item.getparent()
        form = group.getparent()
        event = form.getparent()
        subject = event.getparent()
        key = (
            subject.get("SubjectKey"),
            event.get("StudyEventOID"),
            form.get("FormOID"),
            group.get("ItemGroupOID"),
            item.get("ItemOID"),
        )
        assert key not in found, f"ItemData written twice: {key}"
        found[key] = item.get("Value")
    return found


def test_the_export_validates_against_the_official_odm_1_3_2_schema(known, tmp_path):
    written, data = export(known.trial)
    assert written == len(known.randomized)
    assert odm.validate_odm(io.BytesIO(data)) == []
    path = tmp_path / "trial.xml"
    path.write_bytes(data)
    assert odm.validate_odm(path) == []
    assert odm.validate_odm(str(path)) == []

    doc = etree.fromstring(data)
    assert doc.get("ODMVersion") == "1.3.2" and doc.get("FileType") == "Snapshot"
    assert doc.get("Granularity") == "All"
    assert doc.findtext("o:Study/o:GlobalVariables/o:ProtocolName", namespaces=NS) == "NCT01361698"
    assert doc.findtext("o:Study/o:GlobalVariables/o:StudyName", namespaces=NS) == known.trial.name
    subjects = doc.findall("o:ClinicalData/o:SubjectData", NS)
    assert len(subjects) == written
    assert {s.get("SubjectKey") for s in subjects} == {p.participant_id for p in known.randomized}


def test_every_oid_the_document_uses_is_defined_in_it(known):
    # The schema checks uniqueness but not references; a dangling OID is an unusable file.
    doc = etree.fromstring(export(known.trial)[1])
    defined = {
        el.get("OID") for el in doc.iter() if isinstance(el.tag, str) and el.get("OID") is not None
    }
    references = [
        "StudyEventOID",
        "FormOID",
        "ItemGroupOID",
        "ItemOID",
        "CodeListOID",
        "MethodOID",
        "LocationOID",
        "StudyOID",
        "MetaDataVersionOID",
    ]
    used = {el.get(a) for el in doc.iter() for a in references if el.get(a) is not None}
    assert used and used <= defined
    # The schedule: one StudyEventDef per timepoint, in order, each listing its instruments.
    refs = doc.findall(".//o:Protocol/o:StudyEventRef", NS)
    timepoints = list(known.trial.timepoints.order_by("order"))
    assert [r.get("StudyEventOID") for r in refs] == [
        *(f"SE.{t.code}" for t in timepoints),
        odm.RAND_EVENT,
    ]
    post = doc.find(".//o:StudyEventDef[@OID='SE.post']", NS)
    due = [f"F.{code}" for code in timepoints[1].instruments]
    assert [f.get("FormOID") for f in post.iterfind("o:FormRef", NS)] == due


def test_a_document_that_breaks_the_schema_is_reported(known):
    data = export(known.trial)[1]
    wrong_element = data.replace(b"<SiteRef ", b"<SiteReference ", 1)
    errors = odm.validate_odm(io.BytesIO(wrong_element))
    assert errors and "SiteReference" in errors[0]
    wrong_value = data.replace(b'FileType="Snapshot"', b'FileType="Draft"', 1)
    assert any("FileType" in e for e in odm.validate_odm(io.BytesIO(wrong_value)))
    assert odm.validate_odm(io.BytesIO(data[: len(data) // 2])) != []


def test_the_schema_loads_only_its_own_local_files(tmp_path):
    assert odm.odm_schema() is odm.odm_schema()  # loaded once
    remote = tmp_path / "remote.xsd"
    remote.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t">'
        '<xs:import namespace="urn:r" schemaLocation="http://example.invalid/r.xsd"/>'
        '<xs:element name="a"/></xs:schema>'
    )
    with pytest.raises((etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError)):
        etree.XMLSchema(etree.parse(str(remote), odm._offline_parser()))


@pytest.mark.skipif(not SHARED_SCHEMA.is_dir(), reason="the official schema folder is not here")
def test_the_vendored_schema_is_the_official_one_unchanged():
    names = sorted(p.name for p in SHARED_SCHEMA.glob("*.xsd"))
    assert names and {"ODM1-3-2.xsd", "ODM1-3-2-foundation.xsd"} <= set(names)
    match, mismatch, errors = filecmp.cmpfiles(SHARED_SCHEMA, odm.SCHEMA_DIR, names, shallow=False)
    assert (mismatch, errors) == ([], [])
    assert (odm.SCHEMA_DIR / "LICENSE").read_text() == (SHARED_SCHEMA / "LICENSE").read_text()


def test_counting_entries_are_written_with_their_values_scores_and_sites(known):
    found = item_data(etree.fromstring(export(known.trial)[1]))
    me, them = known.first.participant_id, known.other.participant_id
    post = (me, "SE.post")
    assert found[(*post, "F.panss", "IG.panss.positive", "I.panss.p1")] == "3"
    assert found[(*post, "F.gaf_f", "IG.gaf_f.gaf_f", "I.gaf_f.gaf_f")] == "55"  # verified
    assert found[(*post, "F.substance_use", "IG.substance_use.use", "I.substance_use.drugs")] == "2"
    base = (me, "SE.baseline", "F.baseline")
    assert found[(*base, "IG.baseline.demographics", "I.baseline.year_of_birth")] == "1981"
    assert found[(*base, "IG.baseline.clinical", "I.baseline.past_suicide_attempt")] == "true"
    assert found[(them, "SE.post", "F.gaf_s", "IG.gaf_s.gaf_s", "I.gaf_s.gaf_s")] == "61"
    # The reconciled paper form, with the value the data manager chose.
    assert found[(*post, "F.ahs", "IG.ahs.items", "I.ahs.h1")] == "7"
    assert found[(*post, "F.ahs", "IG.ahs.items", "I.ahs.h2")] == "5"
    # Scores as ItemData of the scores group: PANSS total prorated over the one missing item.
    entry = FormEntry.objects.get(participant=known.first, instrument="panss")
    total = found[(*post, "F.panss", "IG.panss.SCORES", "I.panss.SCORE.total")]
    assert float(total) == entry.scores["total"] == pytest.approx(90.0)


def form_flags(doc):
    """{(subject, timepoint, instrument): status} of every FormData's status flag."""
    found = {}
    for form in doc.iterfind(".//o:FormData", NS):
        subject = form.getparent().getparent().get("SubjectKey")
        event = form.getparent().get("StudyEventOID").removeprefix("SE.")
        flags = form.findall("o:Annotation/o:Flag", NS)
        if form.get("FormOID") == odm.RAND_FORM:
            assert not flags
            continue
        (flag,) = flags
        assert flag.find("o:FlagType", NS).text == odm.FORM_STATUS_FLAG
        found[subject, event, form.get("FormOID").removeprefix("F.")] = flag.find(
            "o:FlagValue", NS
        ).text
    return found


def test_each_form_carries_the_status_the_csv_gives_it(known, data_manager, assessor):
    """A verified form that was changed later is complete again, in ODM as in CSV."""
    gaf = FormEntry.objects.get(participant=known.first, instrument="gaf_f")
    assert gaf.status == FormEntry.Status.VERIFIED
    me = known.first.participant_id

    def both():
        doc = etree.fromstring(export(known.trial)[1])
        assert odm.validate_odm(io.BytesIO(etree.tostring(doc))) == []
        data = Dataset(known.trial, "long")
        text = io.StringIO()
        writers.write_csv(data, text)
        # The form status columns (not an item such as baseline's living_status).
        statuses = {
            c.name: c.source.removesuffix(" status")
            for c in data.columns
            if c.source.endswith(" status")
        }
        csv_flags = {
            (r["participant_id"], r["timepoint"], statuses[name]): r[name]
            for r in csv.DictReader(io.StringIO(text.getvalue()))
            for name in statuses
            if r[name]
        }
        return form_flags(doc), csv_flags

    odm_flags, csv_flags = both()
    assert odm_flags == csv_flags and len(odm_flags) >= 6
    assert odm_flags[me, "post", "gaf_f"] == "verified"
    assert odm_flags[me, "post", "panss"] == "complete"
    crf.save_entry(
        gaf.visit,
        "gaf_f",
        {"gaf_f": "56"},
        by=assessor,
        kind=gaf.kind,
        version=gaf.version,
        reason="typo",
    )
    odm_flags, csv_flags = both()
    assert odm_flags == csv_flags
    assert odm_flags[me, "post", "gaf_f"] == "complete"


def test_drafts_raw_double_entries_free_text_and_missing_codes_are_left_out(known):
    data = export(known.trial)[1]
    doc = etree.fromstring(data)
    found = item_data(doc)
    me = known.first.participant_id
    forms = {(s, e, f) for s, e, f, _, _ in found}
    assert (me, "SE.post", "F.panss") in forms
    assert (me, "SE.post", "F.ymrs") not in forms  # draft
    assert (me, "SE.post", "F.csq8") not in forms  # first and second entry, not reconciled
    # Missing-value codes have no ItemData (ODM has none), and the file says so.
    post = (me, "SE.post", "F.panss", "IG.panss.positive")
    assert (*post, "I.panss.p2") not in found and (*post, "I.panss.p3") in found
    assert (
        me,
        "SE.baseline",
        "F.baseline",
        "IG.baseline.demographics",
        "I.baseline.employment",
    ) not in found
    assert "ND" not in found.values() and "RF" not in found.values()
    mdv = doc.find(".//o:MetaDataVersion", NS)
    assert "no missing-value codes" in mdv.get("Description")
    assert "no missing-value codes" in mdv.findtext(
        "o:Protocol/o:Description/o:TranslatedText", namespaces=NS
    )
    # Free text: neither the value nor the item.
    assert NOTE.encode() not in data
    assert b"I.substance_use.notes" not in data
    text_items = {d.get("OID") for d in doc.iterfind(".//o:ItemDef[@DataType='text']", NS)}
    assert text_items == {odm.ARM_ITEM, odm.SITE_ITEM}  # coded, with their code lists


def test_no_arm_label_reaches_the_file_and_the_arm_is_a_neutral_code(known):
    data = export(known.trial)[1]
    doc = etree.fromstring(data)
    arms = list(known.trial.arms.all())
    assert b"IMR + TAU" not in data
    # "TAU" is also a word of an instrument item ("TAU visits", counted in both arms): no
    # attribute or text of the file may be an arm's label or code.
    values = {v for el in doc.iter() for v in el.attrib.values()} | {
        el.text for el in doc.iter() if el.text and el.text.strip()
    }
    for arm in arms:
        assert arm.label not in values and arm.code not in values
    # The allocation code list decodes A as "A" and B as "B": the key is not in the file.
    code_list = doc.find(".//o:CodeList[@OID='CL.ARM']", NS)
    decoded = {
        i.get("CodedValue"): i.findtext("o:Decode/o:TranslatedText", namespaces=NS)
        for i in code_list.iterfind("o:CodeListItem", NS)
    }
    assert decoded == {arm.export_code: arm.export_code for arm in arms}
    codes = {s: v for (s, e, _, _, i), v in item_data(doc).items() if i == odm.ARM_ITEM}
    expected = {
        p.participant_id: allocation_facts.neutral_codes(known.trial)[p.pk][0]
        for p in known.randomized
    }
    assert codes == expected and set(codes.values()) == {"A", "B"}
    assert known.unrandomized.participant_id not in codes


def _odm_source(item_oid):
    """The dataset column source an ODM ItemDef stands for ("panss.p1", "panss score total")."""
    _, instrument, *rest = item_oid.split(".")
    return f"{instrument}.{rest[0]}" if len(rest) == 1 else f"{instrument} score {rest[1]}"


def test_odm_holds_the_participants_columns_and_values_of_the_csv(known):
    """ODM reads through the blinded dataset's rules, like CSV, SPSS and Stata: the same
    participants (randomized only), the same item and score columns, the same cells filled."""
    data = Dataset(known.trial, "long")
    text = io.StringIO()
    writers.write_csv(data, text)
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))
    columns = [c for c in data.columns if c.instrument]  # items and scores, not covariates
    missing = set(data.missing_codes)
    csv_cells = {
        (r["participant_id"], r["timepoint"], c.source)
        for r in rows
        for c in columns
        if r[c.name] not in ("", *missing)
    }

    doc = etree.fromstring(export(known.trial)[1])
    subjects = {s.get("SubjectKey") for s in doc.iterfind("o:ClinicalData/o:SubjectData", NS)}
    items = {
        _odm_source(d.get("OID"))
        for d in doc.iterfind(".//o:ItemDef", NS)
        if not d.get("OID").startswith("I.RANDOMIZATION.")
    }
    odm_cells = {
        (subject, event.removeprefix("SE."), _odm_source(item))
        for (subject, event, _, _, item) in item_data(doc)
        if event != odm.RAND_EVENT
    }

    randomized = {p.participant_id for p in known.randomized}
    assert {r["participant_id"] for r in rows} == subjects == randomized
    assert known.unrandomized.participant_id not in subjects
    assert {c.source for c in columns} == items
    assert "substance_use.notes" not in items  # free text, in neither
    assert csv_cells == odm_cells and len(odm_cells) > 50


def test_a_participant_who_withdrew_consent_keeps_a_subject_row_and_no_clinical_data(known):
    doc = etree.fromstring(export(known.trial)[1])
    leaver = doc.find(f".//o:SubjectData[@SubjectKey='{known.leaver.participant_id}']", NS)
    assert leaver is not None and leaver.find("o:SiteRef", NS) is not None
    events = [e.get("StudyEventOID") for e in leaver.iterfind("o:StudyEventData", NS)]
    assert events == [odm.RAND_EVENT]
    # The entry still exists (never deleted), emptied by the erasure.
    assert FormEntry.objects.filter(participant=known.leaver, instrument="gaf_f").exists()


def test_progress_is_reported_as_subjects_are_written(known, monkeypatch):
    monkeypatch.setattr(odm, "PROGRESS_EVERY", 2)
    calls = []
    written, _ = export(known.trial, progress=lambda done, total: calls.append((done, total)))
    n = len(known.randomized)
    assert calls[-1] == (n, n)
    assert [done for done, _ in calls] == sorted({*range(2, n + 1, 2), n})


# --- Streaming --------------------------------------------------------------------------------


def bulk_trial(trial, n, user):
    """n participants with three complete forms each, written in bulk (the services are tested
    above; here only the volume matters)."""
    site = trial.sites.order_by("code").first()
    start = Participant.objects.filter(trial=trial).count()
    people = Participant.objects.bulk_create(
        Participant(
            trial=trial,
            site=site,
            participant_id=f"DK-{start + i:05d}",
            randomized_on=datetime.date(2026, 1, 5),  # only randomized participants are written
        )
        for i in range(n)
    )
    panss = {item.code: 4 for item in registry.get("panss").items}
    hamd6 = {item.code: 1 for item in registry.get("hamd6").items}
    forms = [("panss", panss), ("gaf_f", {"gaf_f": 50}), ("hamd6", hamd6)]
    FormEntry.objects.bulk_create(
        FormEntry(
            participant=p,
            instrument=code,
            timepoint="baseline",
            values=values,
            status=FormEntry.Status.COMPLETE,
            entered_by=user,
        )
        for p in people
        for code, values in forms
    )


def peak_memory(trial, path):
    """(subjects written, peak of Python memory while writing them to a file)."""
    gc.collect()  # garbage left by earlier work would blur the peak
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with path.open("wb") as out:
            written = odm.write_odm(trial, out)
        return written, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_trial_grows(study, tmp_path, monkeypatch):
    user = make_user("bulk")
    # Small chunks so that a small, fast trial already spans many of them.
    monkeypatch.setattr(odm, "CHUNK_SIZE", 30)
    n = 60
    bulk_trial(study, n, user)
    peak_memory(study, tmp_path / "warm-up.xml")  # first-use caches (schema, adapters, ...)
    small = peak_memory(study, tmp_path / "small.xml")
    bulk_trial(study, 3 * n, user)
    large = peak_memory(study, tmp_path / "large.xml")
    assert (small[0], large[0]) == (n, 4 * n)
    assert odm.validate_odm(tmp_path / "large.xml") == []
    # Four times the subjects (2,160 more PANSS values) must not cost four times the memory.
    assert large[1] < small[1] * 1.5, (small, large)
    # The yardstick can fail: reading every row at once (no chunking) is caught by it.
    monkeypatch.setattr(odm, "CHUNK_SIZE", 10**6)
    buffered = peak_memory(study, tmp_path / "buffered.xml")
    assert buffered[1] > small[1] * 1.5, (small, buffered)


def test_numbers_are_written_as_odm_decimals_never_with_an_exponent():
    assert odm._number_text(0.00001) == "0.00001"
    assert odm._number_text(90.0) == "90.0" and odm._number_text(21) == "21"
    decimal = Item(code="dose", label="Dose", type="decimal", section="s", min=0, max=1)
    assert odm._value_text(decimal, 1e-7, {}) == "0.0000001"
    assert odm._value_text(decimal, "ND", {"ND": "Not done"}) is None
    assert odm._value_text(decimal, True, {}) is None  # not a number of this item


def test_a_score_with_reversed_items_says_so_in_its_method():
    from assessments import registry
    from exports.odm import _method_text

    ismi = registry.get("ismi")
    total = next(s for s in ismi.scores if s.reverse)
    assert f"Items {', '.join(total.reverse)} reversed first" in _method_text(total)
