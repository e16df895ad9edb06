"""CRF entry through the services: validation, audit with reason, lock, conflicts, double entry,
unblinding incidents and the blinding guess."""

import datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from assessments import registry, services
from assessments.models import FormEntry, Visit
from imrtrial.audit import ReasonRequired
from imrtrial.errors import Refused
from imrtrial.models import Role
from tests.factories import grant, make_user

pytestmark = pytest.mark.django_db


def panss_raw(value="3"):
    return {item.code: value for item in registry.get("panss").items}


def test_the_schedule_gives_each_randomized_participant_visits_with_windows(randomized):
    visits = {v.timepoint.code: v for v in randomized.visits.all()}
    assert set(visits) == {"baseline", "post", "followup"}
    post = visits["post"]
    assert post.target_date == randomized.randomized_on + datetime.timedelta(days=274)
    assert (post.target_date - post.window_start).days == 30
    assert (post.window_end - post.target_date).days == 30
    assert post.status(post.window_start - datetime.timedelta(days=1)) == Visit.Status.UPCOMING
    assert post.status(post.window_start) == Visit.Status.OPEN
    assert post.status(post.window_end) == Visit.Status.OPEN
    assert post.status(post.window_end + datetime.timedelta(days=1)) == Visit.Status.OVERDUE


def test_a_complete_panss_is_saved_whole_with_scores(post_visit, assessor):
    entry = services.save_entry(
        post_visit, "panss", panss_raw(), by=assessor, kind="single", complete=True
    )
    assert entry.status == FormEntry.Status.COMPLETE
    assert entry.scores == {"positive": 21, "negative": 21, "general": 48, "total": 90}
    assert entry.history.first().history_user == assessor


def test_bad_input_is_refused_item_by_item_and_nothing_is_saved(post_visit, assessor):
    raw = panss_raw() | {"p1": "8", "n2": "three", "g16": ""}
    with pytest.raises(services.FormInvalid) as caught:
        services.save_entry(post_visit, "panss", raw, by=assessor, kind="single", complete=True)
    assert set(caught.value.errors) == {"p1", "n2", "g16"}
    assert not FormEntry.objects.exists()


def test_after_complete_a_change_needs_a_reason_which_the_trail_keeps(post_visit, assessor):
    entry = services.save_entry(
        post_visit, "panss", panss_raw(), by=assessor, kind="single", complete=True
    )
    with pytest.raises(ReasonRequired):
        services.save_entry(
            post_visit, "panss", panss_raw("4"), by=assessor, kind="single", version=entry.version
        )
    entry = services.save_entry(
        post_visit,
        "panss",
        panss_raw("4"),
        by=assessor,
        kind="single",
        version=entry.version,
        reason="misread scale",
    )
    newest, older = entry.history.all()[:2]
    assert newest.history_change_reason == "misread scale"
    assert older.values["p1"] == 3 and newest.values["p1"] == 4


def test_a_second_save_from_an_outdated_page_is_refused(post_visit, assessor):
    entry = services.save_entry(post_visit, "panss", panss_raw(), by=assessor, kind="single")
    opened = entry.version
    services.save_entry(
        post_visit, "panss", panss_raw("2"), by=assessor, kind="single", version=opened
    )
    with pytest.raises(services.Conflict):
        services.save_entry(
            post_visit, "panss", panss_raw("5"), by=assessor, kind="single", version=opened
        )
    assert FormEntry.objects.get().values["p1"] == 2


def test_the_data_manager_verifies_and_locks_and_a_locked_form_is_read_only(
    post_visit, assessor, data_manager
):
    entry = services.save_entry(
        post_visit, "gaf_f", {"gaf_f": "55"}, by=assessor, kind="single", complete=True
    )
    with pytest.raises(Refused):
        services.set_status(entry, "locked", by=assessor)
    services.set_status(entry, "verified", by=data_manager)
    services.set_status(entry, "locked", by=data_manager)
    with pytest.raises(Refused, match="locked"):
        services.save_entry(
            post_visit,
            "gaf_f",
            {"gaf_f": "60"},
            by=assessor,
            kind="single",
            reason="late correction",
        )
    assert FormEntry.objects.get().values == {"gaf_f": 55}


def test_double_entry_finds_discrepancies_and_only_the_reconciled_record_counts(
    post_visit, assessor, data_manager, danish
):
    second_ra = make_user("ra2")
    grant(second_ra, danish, Role.ASSESSOR)
    raw = {f"c{n}": "3" for n in range(1, 9)}
    services.save_entry(post_visit, "csq8", raw, by=assessor, kind="first", complete=True)
    with pytest.raises(Refused, match="someone other"):
        services.save_entry(post_visit, "csq8", raw, by=assessor, kind="second")
    services.save_entry(
        post_visit,
        "csq8",
        raw | {"c2": "4", "c7": "RF"},
        by=second_ra,
        kind="second",
        complete=True,
    )
    diffs = services.discrepancies(post_visit.participant, "csq8", "post")
    assert diffs == [("c2", 3, 4), ("c7", 3, "RF")]
    with pytest.raises(services.FormInvalid) as caught:
        services.reconcile(
            post_visit,
            "csq8",
            {"c2": "4", "c7": "3"},
            by=data_manager,
            reasons={"c2": "paper says 4"},
        )
    assert set(caught.value.errors) == {"c7"}
    final = services.reconcile(
        post_visit,
        "csq8",
        {"c2": "4", "c7": "3"},
        by=data_manager,
        reasons={"c2": "paper says 4", "c7": "legible on paper"},
    )
    assert final.kind == FormEntry.Kind.FINAL and final.counts
    assert final.values["c2"] == 4 and final.values["c7"] == 3 and final.scores["total"] == 25
    assert "c2: paper says 4" in final.history.first().history_change_reason
    assert [e.counts for e in FormEntry.objects.order_by("pk")] == [False, False, True]


def test_the_visit_is_done_when_every_form_is_complete_and_flagged_outside_its_window(
    post_visit, assessor, danish
):
    facilitator = make_user("fac")
    grant(facilitator, danish, Role.FACILITATOR)
    data_manager = make_user("dm2")
    grant(data_manager, danish, Role.DATA_MANAGER)
    second = make_user("ra-second")
    grant(second, danish, Role.ASSESSOR)
    for code in post_visit.timepoint.instruments:
        instrument = registry.get(code)
        raw = {i.code: "ND" for i in instrument.items}
        who = facilitator if instrument.rater == "staff" else assessor
        kind = services.entry_kind_for(instrument)
        services.save_entry(post_visit, code, raw, by=who, kind=kind, complete=True)
        if kind == "first":
            services.save_entry(post_visit, code, raw, by=second, kind="second", complete=True)
            services.reconcile(post_visit, code, {}, by=data_manager, reasons={})
    post_visit.refresh_from_db()
    assert post_visit.completed_on is not None
    assert post_visit.deviation  # today is months before the post-treatment window


def test_staff_ratings_are_refused_to_blinded_assessors_and_interviews_to_staff(
    post_visit, assessor, danish
):
    facilitator = make_user("fac2")
    grant(facilitator, danish, Role.FACILITATOR)
    raw = {f"i{n}": "3" for n in range(1, 16)}
    with pytest.raises(Refused):
        services.save_entry(post_visit, "imrs_s", raw, by=assessor, kind="single")
    with pytest.raises(Refused):
        services.save_entry(post_visit, "panss", panss_raw(), by=facilitator, kind="single")
    assert not FormEntry.objects.exists()


def test_an_unblinding_incident_bars_that_assessor_and_flags_the_visit(
    post_visit, assessor, coordinator, danish
):
    other = make_user("assessor2")
    grant(other, danish, Role.ASSESSOR)
    Visit.objects.filter(pk=post_visit.pk).update(assessor=assessor)
    services.record_unblinding(
        post_visit.participant,
        assessor,
        by=coordinator,
        occurred_on=datetime.date(2026, 11, 1),
        description="Mentioned their group sessions",
    )
    post_visit.refresh_from_db()
    assert post_visit.needs_reassignment and post_visit.assessor is None
    with pytest.raises(Refused):
        services.save_entry(post_visit, "panss", panss_raw(), by=assessor, kind="single")
    entry = services.save_entry(post_visit, "panss", panss_raw(), by=other, kind="single")
    assert entry.entered_by == other


def test_the_assessor_records_a_guess_at_follow_up_visits_only(randomized, assessor):
    post = randomized.visits.get(timepoint__code="post")
    services.record_guess(post, "DK", by=assessor)
    post.refresh_from_db()
    assert post.guess == "DK" and post.guess_by == assessor
    baseline = randomized.visits.get(timepoint__code="baseline")
    with pytest.raises(Refused):
        services.record_guess(baseline, "A", by=assessor)
    with pytest.raises(Refused):
        services.record_guess(post, "imr", by=assessor)


def test_the_data_manager_assigns_only_assessors_still_blind_to_the_participant(
    post_visit, assessor, data_manager, coordinator, danish
):
    services.record_unblinding(
        post_visit.participant,
        assessor,
        by=coordinator,
        occurred_on=datetime.date(2026, 11, 1),
        description="told",
    )
    with pytest.raises(Refused, match="may not rate"):
        services.assign_assessor(post_visit, assessor, by=data_manager)
    other = make_user("blind-other")
    grant(other, danish, Role.ASSESSOR)
    services.assign_assessor(post_visit, other, by=data_manager)
    post_visit.refresh_from_db()
    assert post_visit.assessor == other and not post_visit.needs_reassignment


def test_a_missed_visit_is_kept_flagged_with_its_reason(post_visit, data_manager, assessor):
    with pytest.raises(Refused):
        services.mark_missed(post_visit, by=assessor, reason="moved")
    with pytest.raises(Refused):
        services.mark_missed(post_visit, by=data_manager, reason=" ")
    services.mark_missed(post_visit, by=data_manager, reason="Moved abroad")
    post_visit.refresh_from_db()
    assert post_visit.status(datetime.date(2030, 1, 1)) == Visit.Status.MISSED
    assert post_visit.history.first().history_change_reason == "Moved abroad"


@pytest.mark.parametrize("code", sorted(registry.all_instruments()))
def test_every_instrument_scores_its_declared_range_at_the_item_extremes(code):
    from assessments import definitions

    instrument = registry.get(code)
    # A score's range is reached with its reversed items at the other end: such a score is
    # checked on answers of its own (ISMI's total), every other one on the shared extremes.
    cases = [(0, "min", None), (1, "max", None)] + [
        (pick, bound, score)
        for score in instrument.scores
        if score.reverse
        for pick, bound in ((0, "min"), (1, "max"))
    ]
    for pick, bound, reversed_in in cases:
        raw = {}
        for item in instrument.items:
            if item.scored:
                flip = reversed_in is not None and item.code in reversed_in.reverse
                raw[item.code] = str(item.bounds()[1 - pick if flip else pick])
            elif item.type == "boolean":
                raw[item.code] = "no"
            elif item.type == "date":
                raw[item.code] = "2026-01-01"
            else:
                raw[item.code] = "x"
        values, errors = definitions.clean(instrument, raw, complete=True)
        assert errors == {}
        scores = definitions.compute_scores(instrument, values)
        for score in instrument.scores:
            if (score.reverse or reversed_in is not None) and score is not reversed_in:
                continue
            if getattr(score, bound) is not None:
                assert scores[score.code] == pytest.approx(getattr(score, bound)), score.code
        # Any one missing code makes every score that uses the item missing (or prorated).
        first = next((i for i in instrument.items if i.scored), None)
        if first:
            values[first.code] = "RF"
            for score in instrument.scores:
                if first.code in score.items and not score.prorate_min_items:
                    assert definitions.compute_scores(instrument, values)[score.code] is None


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.dictionaries(
        st.sampled_from([f"p{n}" for n in range(1, 8)] + ["g1", "n1", "arm", "__x"]),
        st.one_of(
            st.text(max_size=6),
            st.integers(-10, 20).map(str),
            st.sampled_from(["ND", "rf", "NA", "", " 3 ", "1e3", "٣"]),
        ),
        max_size=8,
    )
)
def test_any_posted_input_is_saved_valid_or_refused_whole(raw, post_visit, assessor):
    before = list(FormEntry.objects.values_list("version", "values"))
    try:
        entry = services.save_entry(post_visit, "panss", raw, by=assessor, kind="single")
    except services.FormInvalid as exc:
        assert exc.errors
        assert list(FormEntry.objects.values_list("version", "values")) == before
    else:
        for code, value in entry.values.items():
            assert value in ("ND", "RF", "NA") or 1 <= value <= 7, (code, value)
