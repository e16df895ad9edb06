"""The blinded dataset carries, per visit and per casebook, whether a valid investigator
signature holds and its date, never who signed; the codebook lists the columns; ODM writes the
same signatures as its own Signature elements, and the document stays valid."""

import io

from django.utils import timezone
from lxml import etree

from assessments import services as crf
from exports import odm, writers
from exports.dataset import Dataset
from tests.factories import make_signature

NS = {"o": odm.NS}


def rows(trial, shape):
    data = Dataset(trial, shape)
    return [dict(zip(data.names, row, strict=True)) for row in data.rows()]


def test_signed_visits_and_casebooks_reach_the_dataset_with_their_date_only(
    participant, baseline, investigator, assessor
):
    trial, today = participant.trial, timezone.localdate()
    make_signature(participant, baseline, by=investigator)
    make_signature(participant, by=investigator)
    wide = rows(trial, "wide")[0]
    assert (wide["casebook_signed"], wide["casebook_signed_on"]) == (1, today)
    assert (wide["t1_visit_signed"], wide["t1_visit_signed_on"]) == (1, today)
    assert (wide["t2_visit_signed"], wide["t2_visit_signed_on"]) == (0, None)
    long = {r["timepoint"]: r for r in rows(trial, "long")}
    assert long["baseline"]["visit_signed"] == 1 and long["post"]["visit_signed"] == 0
    cells = {str(v) for r in long.values() for v in r.values()}
    assert not any("Vestergaard" in c or investigator.username in c for c in cells)
    codebook = {row[0] for row in writers.codebook_rows(Dataset(trial, "wide"))}
    assert {"casebook_signed", "casebook_signed_on", "t1_visit_signed_on"} <= codebook

    crf.save_entry(baseline, "gaf_f", {"gaf_f": "40"}, by=assessor, kind="single", reason="typo")
    wide = rows(trial, "wide")[0]  # invalidated: not signed any more
    assert (wide["casebook_signed"], wide["casebook_signed_on"]) == (0, None)
    assert (wide["t1_visit_signed"], wide["t1_visit_signed_on"]) == (0, None)


def test_odm_carries_valid_signatures_as_signature_elements_of_a_role_not_a_person(
    participant, baseline, investigator
):
    make_signature(participant, baseline, by=investigator)
    make_signature(participant, by=investigator)
    out = io.BytesIO()
    odm.write_odm(participant.trial, out)
    data = out.getvalue()
    assert odm.validate_odm(io.BytesIO(data)) == []
    doc = etree.fromstring(data)
    subject = doc.find(f".//o:SubjectData[@SubjectKey='{participant.participant_id}']", NS)
    casebook = subject.find("o:Signature/o:SignatureRef", NS)
    assert casebook.get("SignatureOID") == odm.SIGN_CASEBOOK
    visit = subject.find("o:StudyEventData[@StudyEventOID='SE.baseline']/o:Signature", NS)
    assert visit.find("o:SignatureRef", NS).get("SignatureOID") == odm.SIGN_VISIT
    user = visit.find("o:UserRef", NS).get("UserOID")
    assert user == f"USR.INVESTIGATOR.{participant.site.code}"
    defs = {d.get("OID"): d for d in doc.iterfind(".//o:AdminData/o:SignatureDef", NS)}
    assert set(defs) == {odm.SIGN_VISIT, odm.SIGN_CASEBOOK}
    assert b"Vestergaard" not in data and investigator.username.encode() not in data
