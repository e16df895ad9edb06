"""The trial's outcomes, as its file states them, named in the codebook and the ODM metadata."""

import io

from lxml import etree

from exports.dataset import Dataset
from exports.odm import NS, write_odm
from exports.writers import codebook_rows


def test_the_codebook_says_which_scores_are_the_trials_outcomes(danish):
    rows = list(codebook_rows(Dataset(danish, "long")))
    header, by_name = rows[0], {row[0]: row for row in rows[1:]}
    outcome = header.index("outcome")
    assert by_name["gaf_f_score_gaf_f"][outcome] == "Primary at post; Secondary at followup"
    assert by_name["panss_score_total"][outcome] == "Secondary at post"
    assert by_name["panss_score_positive"][outcome] == ""


def test_the_odm_metadata_describe_the_outcomes(danish):
    out = io.BytesIO()
    write_odm(danish, out)
    tree = etree.fromstring(out.getvalue())
    texts = {
        item.get("Name"): " ".join(item.itertext()).strip()
        for item in tree.iter(f"{{{NS}}}ItemDef")
        if item.get("Origin") == "Derived"
    }
    assert "Outcome: Primary at post; Secondary at followup." in texts["gaf_f_gaf_f"]
    assert "Outcome" not in texts["panss_positive"]


def test_the_consort_report_lists_the_outcomes_for_a_blinded_reader(client, danish):
    from django.urls import reverse

    from imrtrial.models import Role
    from tests.factories import make_person

    client.force_login(make_person(danish, Role.DATA_MANAGER, username="dm"))
    page = client.get(reverse("exports:report_consort", args=[danish.key])).content.decode()
    assert "Primary: GAF-F at post" in page and "Secondary: GAF-F at followup" in page
    assert "Analysed for the primary outcome, GAF-F (complete cases)" in page
