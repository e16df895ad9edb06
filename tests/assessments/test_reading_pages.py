"""The pages a new user reads (issue 16): the worklist names each form and links it to entry,
the visit page says who rates each form in words, and scores are shown by their decimals with
"prorated" said where the prorating rule filled in missing items."""

import re

import pytest
from django.urls import reverse

from assessments import registry, services
from assessments.definitions import shown_scores
from assessments.models import FormEntry

from .test_entry_views import entry_url, panss_post

pytestmark = pytest.mark.django_db


def test_the_worklist_shows_names_linked_to_entry_and_the_state_in_words(
    client, danish, randomized, assessor
):
    client.force_login(assessor)
    page = client.get(reverse("assessments:worklist", args=[danish.key])).content.decode()
    baseline = randomized.visits.get(timepoint__code="baseline")
    for code in baseline.timepoint.instruments:
        instrument = registry.get(code)
        assert instrument.name in page
        if instrument.rater == "staff":  # an unblinded staff rating: not the assessor's to enter
            assert f"/{code}/" not in page
        else:
            kind = services.entry_kind_for(instrument)
            assert f'href="{entry_url(danish, baseline, code, kind)}"' in page
    assert "○" not in page and "✓" not in page
    assert page.count(">to enter<") >= len(baseline.timepoint.instruments)


def test_the_visit_page_names_the_rater_in_words(client, danish, post_visit, assessor):
    client.force_login(assessor)
    page = client.get(reverse("assessments:visit", args=[danish.key, post_visit.pk])).content
    page = page.decode()
    assert "Assessorinterview" not in page and "Selfreport" not in page
    assert "Assessor interview" in page


def test_a_whole_score_shows_no_decimals_and_a_prorated_one_says_so(
    client, danish, post_visit, assessor
):
    client.force_login(assessor)
    url = entry_url(danish, post_visit, "panss")
    missing = next(iter(registry.get("panss").missing_codes))
    assert client.post(url, panss_post(item_p1=missing, complete="1")).status_code == 302
    entry = FormEntry.objects.get()
    assert entry.scores["positive"] == pytest.approx(3 * 7)
    page = client.get(url).content.decode()
    # 6 of 7 positive items at 3, prorated to 21; the total 87/29*30 = 90, both prorated.
    assert "Positive scale: <strong>21</strong>" in page
    assert "Negative scale: <strong>21</strong>" in page
    assert not re.search(r"<strong>\d+\.\d+</strong>", page)
    assert page.count(">prorated<") == 2  # the positive scale and the total
    assert "Prorated: some of the score" in page


def test_shown_scores_rounds_by_the_scores_decimals():
    panss = registry.get("panss")
    values = {item.code: 3 for item in panss.items} | {"p1": None}
    rows = shown_scores(panss, values, {"positive": 21.0, "negative": 21.0, "total": 81.4286})
    shown = {score.code: (text, prorated) for score, text, prorated in rows}
    assert shown["positive"] == ("21", True)
    assert shown["negative"] == ("21", False)
    assert shown["total"] == ("81", True)
    assert shown["general"] == ("missing", False)
    # Halves round up, as a scale's manual rounds (Python's format would give 22).
    rows = shown_scores(panss, values, {"positive": 22.5})
    assert {score.code: text for score, text, _ in rows}["positive"] == "23"


def test_csq8_items_have_short_names_not_numbers():
    labels = [item.label for item in registry.get("csq8").items]
    assert not any(re.fullmatch(r"Item \d", label) for label in labels)
    assert len(set(labels)) == 8


def test_the_worklist_asks_the_gate_per_participant(
    client, danish, randomized, assessor, coordinator
):
    """The worklist works out the gate's answer once per participant and kind of rater: a
    participant who disclosed their arm to the assessor loses the links of their interview
    forms, and another participant's row on the same page keeps them."""
    from randomization import services as randomization
    from tests.factories import make_ready_participant

    other = make_ready_participant(danish, coordinator)
    randomization.randomize(other, by=coordinator)
    services.schedule_visits(danish)
    baseline = randomized.visits.get(timepoint__code="baseline")
    services.record_unblinding(
        randomized, assessor, by=coordinator, occurred_on=baseline.target_date, description="told"
    )
    client.force_login(assessor)
    page = client.get(reverse("assessments:worklist", args=[danish.key])).content.decode()
    theirs = other.visits.get(timepoint__code="baseline")
    interview = [
        code
        for code in baseline.timepoint.instruments
        if registry.get(code).rater == "assessor_interview"
    ]
    assert interview
    for code in interview:
        kind = services.entry_kind_for(registry.get(code))
        assert f'href="{entry_url(danish, baseline, code, kind)}"' not in page
        assert f'href="{entry_url(danish, theirs, code, kind)}"' in page


def test_the_worklist_links_the_visit_whatever_the_trial_key(client, danish, randomized, assessor):
    """The entry URL is reversed once per form and given each visit's number: a trial key made
    of the very digits used as the placeholder still links the right trial and visit."""
    from assessments.views import _STAND_IN
    from imrtrial.models import Trial

    key = f"t{_STAND_IN}"
    Trial.objects.filter(pk=danish.pk).update(key=key)
    danish.refresh_from_db()
    client.force_login(assessor)
    page = client.get(reverse("assessments:worklist", args=[key])).content.decode()
    baseline = randomized.visits.get(timepoint__code="baseline")
    code = next(c for c in baseline.timepoint.instruments if registry.get(c).rater != "staff")
    kind = services.entry_kind_for(registry.get(code))
    assert f'href="{entry_url(danish, baseline, code, kind)}"' in page
