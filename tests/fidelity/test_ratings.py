"""The two-rater fidelity protocol: independent raw ratings, then a consensus of record."""

from fractions import Fraction

import pytest

from fidelity import measures, services
from fidelity.models import FidelityRating
from imrtrial import access
from imrtrial.errors import Refused
from imrtrial.models import Role
from tests.factories import grant, make_person

from .conftest import START, D, make_group

SOURCES = ["interviews", "observation", "progress_notes"]
END_DAY = D(2026, 9, 28)


def scores(values):
    return {i + 1: v for i, v in enumerate(values)}


def assess(group, by, kind="end", day=END_DAY):
    return services.create_assessment(group, by=by, kind=kind, date=day, data_sources=SOURCES)


@pytest.fixture
def end(group, raters):
    return assess(group, raters[0])


def test_two_raw_ratings_then_a_consensus_which_is_the_score_of_record(end, raters, group):
    r1, r2 = raters
    services.submit_rating(end, by=r1, scores=scores([5, 4, 4, 5, 3, 5, 4, 5, 5, 5, 5, 5, 4]))
    services.submit_rating(end, by=r2, scores=scores([5, 4, 3, 5, 2, 5, 5, 5, 5, 5, 5, 5, 5]))
    consensus = services.submit_consensus(
        end, by=r2, scores=scores([5, 4, 4, 5, 3, 5, 5, 5, 5, 5, 5, 5, 5]), report="Good work"
    )
    assert consensus.is_consensus and FidelityRating.objects.count() == 3  # both raw kept
    score, band = measures.group_score(group)
    assert score == Fraction(61, 13) and band == "high"  # 4.69 on the Danish bands
    end.refresh_from_db()
    assert end.report == "Good work"


def test_a_consensus_before_both_raw_ratings_is_refused(end, raters):
    r1, _ = raters
    full = scores([4] * 13)
    with pytest.raises(Refused, match="after both raw ratings; 0 of 2 are in"):
        services.submit_consensus(end, by=r1, scores=full)
    services.submit_rating(end, by=r1, scores=full)
    with pytest.raises(Refused, match="1 of 2 are in"):
        services.submit_consensus(end, by=r1, scores=full)
    assert FidelityRating.objects.filter(is_consensus=True).count() == 0


def test_one_rater_cannot_give_both_raw_ratings_or_a_third(end, raters, danish, person):
    r1, r2 = raters
    services.submit_rating(end, by=r1, scores=scores([4] * 13))
    with pytest.raises(Refused, match="already rated"):
        services.submit_rating(end, by=r1, scores=scores([5] * 13))
    services.submit_rating(end, by=r2, scores=scores([4] * 13))
    third = person(Role.FIDELITY_RATER, None, "rater3")
    with pytest.raises(Refused, match="Both raw ratings are in"):
        services.submit_rating(end, by=third, scores=scores([4] * 13))
    with pytest.raises(Refused, match="entered by one of the two raters"):
        services.submit_consensus(end, by=third, scores=scores([4] * 13))
    assert FidelityRating.objects.count() == 2


def test_ratings_out_of_range_or_for_items_the_kind_does_not_cover_are_refused(group, raters):
    r1, _ = raters
    midway = assess(group, r1, kind="midway", day=D(2026, 5, 4))
    with pytest.raises(Refused, match="Item 3 must be rated from 1 to 5, not 6"):
        services.submit_rating(midway, by=r1, scores=scores([4, 4, 6, 4, 4, 4, 4, 4, 4, 4]))
    with pytest.raises(Refused, match="Item 1 must be rated from 1 to 5, not 0"):
        services.submit_rating(midway, by=r1, scores={**scores([4] * 10), 1: 0})
    with pytest.raises(Refused, match=r"Item\(s\) 11, 12, 13 are not rated at a midway"):
        services.submit_rating(midway, by=r1, scores=scores([4] * 13))
    with pytest.raises(Refused, match="missing: 10"):
        services.submit_rating(midway, by=r1, scores=scores([4] * 9))
    assert not FidelityRating.objects.exists()


def test_a_rater_sees_only_their_own_rating_until_both_are_in(end, raters):
    r1, r2 = raters
    services.submit_rating(end, by=r1, scores=scores([4] * 13))
    (result,) = measures.assessment_results(end.group)
    assert [r.rater for r in measures.visible_ratings(result, r1)] == [r1]
    assert measures.visible_ratings(result, r2) == []
    assert measures.item_table([result])[0]["cells"][0]["raw"] == []
    services.submit_rating(end, by=r2, scores=scores([5] * 13))
    (result,) = measures.assessment_results(end.group)
    assert [r.rater for r in measures.visible_ratings(result, r2)] == [r1, r2]
    assert measures.item_table([result])[0]["cells"][0]["raw"] == [4, 5]


def test_a_rater_may_not_rate_a_group_of_their_own_site_or_that_they_facilitate(
    danish, site_a, group, facilitators, person
):
    local = person(Role.FIDELITY_RATER, None, "local-rater")
    grant(local, danish, Role.COORDINATOR, site_a)
    with pytest.raises(Refused, match="You hold a role at CMHC Frederiksberg-Vanløse"):
        assess(group, local)
    facilitator_rater = facilitators[1]
    grant(facilitator_rater, danish, Role.FIDELITY_RATER, None)
    access.forget(facilitator_rater)  # their grants were cached when the group was made
    with pytest.raises(Refused, match="You facilitate this group"):
        assess(group, facilitator_rater)
    assessor = person(Role.ASSESSOR, None, "blinded")
    with pytest.raises(Refused, match="You are not a fidelity rater"):
        assess(group, assessor)


def test_a_rater_whose_only_role_is_rating_at_the_site_may_rate_there(
    danish, site_a, group, person
):
    rater = person(Role.FIDELITY_RATER, site_a, "site-rater")
    assert assess(group, rater).created_by == rater


def test_one_assessment_of_each_kind_and_no_future_date(group, raters):
    assess(group, raters[0])
    with pytest.raises(Refused, match="already has an end assessment"):
        assess(group, raters[1])
    with pytest.raises(Refused, match="cannot be in the future"):
        assess(group, raters[0], kind="midway", day=D(2099, 1, 1))


def test_dutch_bands_score_the_group(dutch):
    site = dutch.sites.get(code="team-03")
    facilitators = [make_person(dutch, Role.FACILITATOR, site, f"t{i}") for i in (1, 2)]
    group = make_group(dutch, site, facilitators)
    r1, r2 = (make_person(dutch, Role.FIDELITY_RATER, None, f"auditor{i}") for i in (1, 2))
    end = services.create_assessment(
        group, by=r1, kind="end", date=START, data_sources=["interviews", "goal_tracking"]
    )
    services.submit_rating(end, by=r1, scores=scores([4] * 13))
    services.submit_rating(end, by=r2, scores=scores([4] * 13))
    # Mean 51/13 = 3.92: moderate on the Dutch bands (it would be "not IMR" on the Danish).
    services.submit_consensus(end, by=r1, scores=scores([4] * 12 + [3]))
    assert measures.group_score(group) == (Fraction(51, 13), "moderate")


def test_the_midway_assessment_alone_gives_no_score_of_record(group, raters):
    r1, r2 = raters
    midway = assess(group, r1, kind="midway", day=D(2026, 5, 4))
    for r in raters:
        services.submit_rating(midway, by=r, scores=scores([4] * 10))
    services.submit_consensus(midway, by=r1, scores=scores([4] * 10))
    (result,) = measures.assessment_results(group)
    assert (result.score, result.band) == (4, "good")
    assert measures.group_score(group) == (None, None)


def test_agreement_is_pooled_over_the_raw_pairs_of_the_groups_assessments(group, raters):
    r1, r2 = raters
    midway = assess(group, r1, kind="midway", day=D(2026, 5, 4))
    services.submit_rating(midway, by=r1, scores=scores([1, 2, 2, 3, 3, 4, 4, 4, 4, 4]))
    services.submit_rating(midway, by=r2, scores=scores([1, 2, 3, 1, 3, 4, 4, 4, 4, 4]))
    summary = measures.agreement_of(measures.assessment_results(group))
    assert summary["pairs"] == 10
    assert summary["exact"] == Fraction(8, 10) and summary["adjacent"] == Fraction(9, 10)
