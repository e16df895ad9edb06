"""The instruments issue 15 adds for the two trials as they were run: the Dutch secondary
outcomes (SES treatment adherence, ASI item 24, Insight Scale, SFS, SERS-SF, ISMI now scored),
the Dutch baseline characteristics, and Danish employment at every visit.

Each is checked against its source (item count, ranges), scored on a worked example computed
here from the scoring rule, placed at the timepoints where the trial measured it, exported with
its columns, and checked for words that tell the arm. The reverse-scoring flag that ISMI needs
is tested on a small definition of its own."""

import math

import pytest

from assessments import definitions as d
from assessments import registry
from assessments import services as crf
from assessments.models import FormEntry
from exports.dataset import Dataset
from exports.writers import codebook_rows
from imrtrial.blinding_words import names_arm
from imrtrial.models import Participant, Role
from randomization import services as randomization
from tests import factories

INSTRUMENTS = d.load_dir()
DUTCH_OUTCOMES = ["ses_ta", "asi24", "insight", "sfs", "sers_sf", "ismi"]
NEW_FORMS = [*DUTCH_OUTCOMES, "baseline_nl", "employment"]


def enter(instrument, values):
    """Clean and score a complete form given as {item code: value}."""
    raw = {code: str(value) for code, value in values.items()}
    cleaned, errors = d.clean(instrument, raw, complete=True)
    assert errors == {}
    return d.compute_scores(instrument, cleaned)


# --- Items and ranges, as the sources give them ------------------------------------------------


@pytest.mark.parametrize(
    "code, n_items, ranges",
    [
        ("ses_ta", 4, {(0, 3)}),  # 4 items 0-3 (Roosenschoon thesis ch. 4)
        ("asi24", 1, {(0, 4)}),  # one item, the ASI's 0-4 patient rating
        ("insight", 3, {(0, 4)}),  # three dimensions, total 0-12
        ("sfs", 7, {(40, 160)}),  # seven scaled subscale scores (bounds: product choice)
        ("sers_sf", 20, {(1, 7)}),  # 20 items, 10 positive and 10 negative, 1-7
        ("ismi", 29, {(1, 4)}),  # 29 items 1-4
    ],
)
def test_items_and_ranges_are_those_of_the_sources(code, n_items, ranges):
    instrument = INSTRUMENTS[code]
    assert len(instrument.items) == n_items
    assert {item.bounds() for item in instrument.items} == ranges
    assert all(item.required for item in instrument.items)


@pytest.mark.parametrize(
    "code, score, lowest, highest",
    [
        ("ses_ta", "total", 0, 12),
        ("asi24", "asi24", 0, 4),
        ("insight", "total", 0, 12),
        ("sfs", "full_scale", 40, 160),
        ("sers_sf", "positive", 10, 70),
        ("sers_sf", "negative", 10, 70),
        ("ismi", "total", 1, 4),
    ],
)
def test_score_ranges_are_reached_by_the_lowest_and_highest_answers(code, score, lowest, highest):
    instrument = INSTRUMENTS[code]
    declared = next(s for s in instrument.scores if s.code == score)
    assert (declared.min, declared.max) == (lowest, highest)
    # All answers at one end reach that end, except that the ISMI total reverses the five
    # stigma-resistance items: all 1s give (24 * 1 + 5 * 4) / 29, not 1.
    bottom = enter(instrument, {i.code: i.bounds()[0] for i in instrument.items})[score]
    top = enter(instrument, {i.code: i.bounds()[1] for i in instrument.items})[score]
    if code == "ismi":
        assert bottom == round(44 / 29, 4) and top == round((24 * 4 + 5 * 1) / 29, 4)
    else:
        assert (bottom, top) == (lowest, highest)


def test_sers_sf_has_ten_positive_and_ten_negative_items():
    sections = {code: len(items) for code, _, items in INSTRUMENTS["sers_sf"].sections}
    assert sections == {"positive": 10, "negative": 10}


def test_ismi_subscales_cover_every_item_once_with_the_published_sizes():
    ismi = INSTRUMENTS["ismi"]
    subscales = [s for s in ismi.scores if s.code != "total"]
    sizes = {s.code: len(s.items) for s in subscales}
    assert sizes == {
        "alienation": 6,
        "stereotype": 7,
        "discrimination": 5,
        "withdrawal": 6,
        "resistance": 5,
    }
    covered = [item for s in subscales for item in s.items]
    assert sorted(covered) == sorted(i.code for i in ismi.items)
    total = next(s for s in ismi.scores if s.code == "total")
    resistance = next(s for s in ismi.scores if s.code == "resistance")
    assert set(total.reverse) == set(resistance.items) and resistance.reverse == ()


@pytest.mark.parametrize("code", NEW_FORMS)
def test_each_new_form_states_its_source_and_why_anything_is_unverified(code):
    instrument = INSTRUMENTS[code]
    assert instrument.source
    if instrument.status == "unverified":
        assert "UNVERIFIED (reason:" in instrument.notes


# --- Worked examples, computed from the scoring rules -----------------------------------------


def test_ses_treatment_adherence_is_the_sum_of_its_four_items():
    # 3 + 2 + 3 + 1
    assert enter(INSTRUMENTS["ses_ta"], {"ta1": 3, "ta2": 2, "ta3": 3, "ta4": 1}) == {"total": 9}


def test_asi_item_24_is_its_own_score():
    assert enter(INSTRUMENTS["asi24"], {"asi24": 2}) == {"asi24": 2}


def test_insight_total_is_the_sum_of_the_three_dimensions_halves_allowed():
    values = {"awareness": 3.5, "relabelling": 2, "need_treatment": 4}
    assert enter(INSTRUMENTS["insight"], values) == {"total": 9.5}


def test_sfs_full_scale_is_the_mean_of_the_seven_scaled_scores():
    scaled = [100, 110, 95, 105, 120, 90, 115]  # sum 735, mean 105
    sfs = INSTRUMENTS["sfs"]
    values = dict(zip((i.code for i in sfs.items), scaled, strict=True))
    assert enter(sfs, values) == {"full_scale": 105}


def test_sers_sf_subscales_are_sums_and_their_difference_is_the_published_total():
    sers = INSTRUMENTS["sers_sf"]
    values = {f"p{n}": 5 for n in range(1, 11)} | {f"n{n}": 2 for n in range(1, 11)}
    values["p1"], values["n10"] = 7, 1
    scores = enter(sers, values)
    # positive: 9 * 5 + 7 = 52; negative: 9 * 2 + 1 = 19; total = 52 - 19 = 33
    assert scores == {"positive": 52, "negative": 19}
    assert scores["positive"] - scores["negative"] == 33


def test_ismi_total_reverses_stigma_resistance_and_the_subscales_do_not():
    ismi = INSTRUMENTS["ismi"]
    resistance = {"s7", "s14", "s24", "s26", "s27"}
    values = {i.code: (4 if i.code in resistance else 2) for i in ismi.items}
    values["s1"] = 3  # an alienation item
    scores = enter(ismi, values)
    # 23 items at 2, s1 at 3, five resistance items at 4, reversed to 5 - 4 = 1:
    # (23 * 2 + 3 + 5 * 1) / 29 = 54 / 29
    assert scores["total"] == round(54 / 29, 4)
    assert scores["resistance"] == 4
    assert scores["alienation"] == round((3 + 5 * 2) / 6, 4)
    assert scores["stereotype"] == 2
    assert scores["discrimination"] == 2
    assert scores["withdrawal"] == 2


def test_a_missing_item_leaves_the_score_missing_as_no_prorating_is_set():
    ismi = INSTRUMENTS["ismi"]
    raw = {i.code: "2" for i in ismi.items} | {"s7": "RF"}
    values, errors = d.clean(ismi, raw, complete=True)
    assert errors == {}
    scores = d.compute_scores(ismi, values)
    assert scores["total"] is None and scores["resistance"] is None
    assert scores["alienation"] == 2


# --- The reverse-scoring flag -----------------------------------------------------------------


def scale(score, **extra):
    return d.parse(
        {
            "code": "toy",
            "name": "Toy",
            "version": 1,
            "rater": "self_report",
            "sections": [
                {
                    "code": "s",
                    "label": "S",
                    "items": [
                        {"code": "a", "type": "integer", "min": 1, "max": 5},
                        {"code": "b", "type": "integer", "min": 1, "max": 5},
                        {"code": "c", "type": "integer", "min": 0, "max": 3},
                        {"code": "note", "type": "text", "max_length": 20, "required": False},
                    ],
                }
            ],
            "scores": [score | extra],
        }
    )


def test_a_reversed_item_counts_as_lowest_plus_highest_minus_the_answer():
    toy = scale({"code": "t", "method": "sum", "items": "all", "reverse": ["b", "c"]})
    # a = 2; b = 4 reversed on 1-5 -> 2; c = 3 reversed on 0-3 -> 0
    assert d.compute_scores(toy, {"a": 2, "b": 4, "c": 3}) == {"t": 4}
    mean = scale({"code": "t", "method": "mean", "items": ["a", "b"], "reverse": ["a"]})
    # a = 1 reversed -> 5; b = 2; mean 3.5
    assert d.compute_scores(mean, {"a": 1, "b": 2}) == {"t": 3.5}


def test_a_reversed_item_keeps_its_range_so_the_declared_range_is_checked_as_before():
    scale({"code": "t", "method": "sum", "items": "all", "reverse": ["a"], "min": 2, "max": 13})
    with pytest.raises(d.DefinitionError, match=r"max: 12 but the items allow 13"):
        scale({"code": "t", "method": "sum", "items": "all", "reverse": ["a"], "max": 12})


def test_prorating_uses_the_reversed_answers():
    toy = scale(
        {"code": "t", "method": "sum", "items": ["a", "b"], "reverse": ["a"]},
        prorate_min_items=1,
    )
    # b missing; a = 2 reversed on 1-5 -> 4; prorated 4 * 2 / 1
    assert d.compute_scores(toy, {"a": 2, "b": "ND"}) == {"t": 8}
    # a missing; b = 2 is not reversed; prorated 2 * 2 / 1
    assert d.compute_scores(toy, {"b": 2}) == {"t": 4}


@pytest.mark.parametrize(
    "reverse, problem",
    [
        (["zz"], "must be a list of the score's own items"),
        (["c"], "must be a list of the score's own items"),  # c is not in this score
        ("a", "must be a list of the score's own items"),
        (["a", "a"], "lists an item twice"),
    ],
)
def test_a_bad_reverse_list_is_refused_naming_the_score(reverse, problem):
    with pytest.raises(d.DefinitionError) as caught:
        scale({"code": "t", "method": "sum", "items": ["a", "b"], "reverse": reverse})
    assert any(p.startswith("scores[0].reverse") and problem in p for p in caught.value.problems)


def test_no_other_instrument_reverses_anything_so_their_scores_are_unchanged():
    reversing = {
        code
        for code, instrument in INSTRUMENTS.items()
        if any(s.reverse for s in instrument.scores)
    }
    assert reversing == {"ismi"}


# --- Baseline and employment forms ------------------------------------------------------------


def test_dutch_baseline_form_has_a_question_for_each_row_of_table_1():
    form = INSTRUMENTS["baseline_nl"]
    assert form.scores == () and form.rater == "assessor_interview"
    choices = {i.code: [label for _, label in i.choices] for i in form.items if i.type == "choice"}
    assert choices == {
        "sex": ["Male", "Female"],
        "living_situation": [
            "Alone",
            "With others",
            "In an institution (sheltered living or in hospital)",
        ],
        "education_level": ["Low", "Middle", "High"],
        "native_country": ["Netherlands", "Western immigrant", "Non-Western immigrant"],
        "income_source": [
            "Employment",
            "Unemployment, sickness or invalidity benefit",
            "Social security benefit",
            "No income",
        ],
        "problems_start": ["10 years ago or less", "More than 10 years ago"],
        "admissions": ["None", "1-2", "3 or more"],
        "hospital_stay": ["Not hospitalized", "1 year or less", "More than 1 year"],
    }
    booleans = [i.code for i in form.items if i.type == "boolean"]
    assert booleans == ["dx_psychotic", "dx_mood", "dx_personality"]
    assert form.item("age").bounds() == (18, 65)


def test_employment_form_asks_what_the_danish_baseline_asked_and_the_baseline_keeps_it():
    employment = INSTRUMENTS["employment"].item("employment")
    at_baseline = INSTRUMENTS["baseline"].item("employment")
    assert employment.type == at_baseline.type == "choice"
    assert employment.choices == at_baseline.choices
    # The baseline form is unchanged: its other variables and its employment item remain, so
    # forms entered before the employment form existed still read and export as they did.
    assert [i.code for i in INSTRUMENTS["baseline"].items] == [
        "sex",
        "year_of_birth",
        "education",
        "employment",
        "living_status",
        "housing",
        "diagnosis",
        "first_contact_year",
        "past_suicide_attempt",
    ]


# --- Presets ----------------------------------------------------------------------------------


def instruments_by_timepoint(trial):
    return {tp.code: list(tp.instruments) for tp in trial.timepoints.order_by("order")}


def test_dutch_preset_measures_the_secondary_outcomes_at_t1_t2_t3_and_table_1_at_t1(dutch):
    schedule = instruments_by_timepoint(dutch)
    assert list(schedule) == ["t1", "t2", "t3"]
    for code in DUTCH_OUTCOMES:
        assert [tp for tp, forms in schedule.items() if code in forms] == ["t1", "t2", "t3"]
    assert [tp for tp, forms in schedule.items() if "baseline_nl" in forms] == ["t1"]
    # What was there before stays.
    for forms in schedule.values():
        assert {"imrs_client", "imrs_clinician", "mspss", "cses", "bsi", "mhrm"} <= set(forms)


def test_danish_preset_asks_employment_at_every_timepoint_and_keeps_the_baseline_form(danish):
    schedule = instruments_by_timepoint(danish)
    assert [tp for tp, forms in schedule.items() if "employment" in forms] == [
        "baseline",
        "post",
        "followup",
    ]
    assert [tp for tp, forms in schedule.items() if "baseline" in forms] == ["baseline"]
    assert not any(
        set(forms) & set(DUTCH_OUTCOMES + ["baseline_nl"]) for forms in schedule.values()
    )


# --- Blinding ---------------------------------------------------------------------------------


def texts_of(instrument):
    yield instrument.name
    for _, label, items in instrument.sections:
        yield label
        for item in items:
            yield item.label
            yield from (label for _, label in item.choices)
    for score in instrument.scores:
        yield score.label


@pytest.mark.parametrize("code", NEW_FORMS)
def test_no_label_of_a_new_form_names_an_arm_or_the_programme(code, danish, dutch):
    texts = list(texts_of(INSTRUMENTS[code]))
    assert len(texts) > 2
    for trial in (danish, dutch):
        found = [(text, str(names_arm(text, trial))) for text in texts if names_arm(text, trial)]
        assert found == [], found


def test_the_blinding_check_would_catch_a_label_that_names_the_programme(dutch):
    # The check above can fail: the Dutch table's own wording "before IMR" is caught.
    assert names_arm("Start of problems: 10 years or less before IMR", dutch) is not None


# --- Export -----------------------------------------------------------------------------------


@pytest.fixture
def dutch_filled(dutch):
    """Two Dutch participants randomized, every T1 form entered through the services."""
    coordinator = factories.make_person(dutch, Role.COORDINATOR)
    assessor = factories.make_person(dutch, Role.ASSESSOR)
    second = factories.make_person(dutch, Role.ASSESSOR, username="second-assessor")
    data_manager = factories.make_person(dutch, Role.DATA_MANAGER)
    facilitator = factories.make_person(dutch, Role.FACILITATOR)
    people = []
    for _ in range(2):
        p = factories.make_ready_participant(dutch, coordinator)
        randomization.randomize(p, by=coordinator)
        people.append(p)
    crf.schedule_visits(dutch)
    entered = {}
    for n, p in enumerate(Participant.objects.filter(trial=dutch).order_by("pk")):
        visit = p.visits.get(timepoint__code="t1")
        for code in visit.timepoint.instruments:
            instrument = registry.get(code)
            raw = worked_raw(instrument, n)
            if instrument.rater == "staff":
                crf.save_entry(
                    visit, code, raw, by=facilitator, kind=FormEntry.Kind.SINGLE, complete=True
                )
            elif crf.entry_kind_for(instrument) == FormEntry.Kind.SINGLE:
                crf.save_entry(
                    visit, code, raw, by=assessor, kind=FormEntry.Kind.SINGLE, complete=True
                )
            else:
                crf.save_entry(
                    visit, code, raw, by=assessor, kind=FormEntry.Kind.FIRST, complete=True
                )
                crf.save_entry(
                    visit, code, raw, by=second, kind=FormEntry.Kind.SECOND, complete=True
                )
                crf.reconcile(visit, code, {}, by=data_manager, reasons={})
            entered[(p.participant_id, code)] = raw
    return dutch, entered


def missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def worked_raw(instrument, n):
    """A valid answer for every item: the lowest value plus n (the participant's index)."""
    raw = {}
    for item in instrument.items:
        if item.type == "boolean":
            raw[item.code] = "yes" if n else "no"
        elif item.type == "choice":
            raw[item.code] = str(item.choices[n % len(item.choices)][0])
        else:
            raw[item.code] = str(int(item.bounds()[0]) + n)
    return raw


def test_the_new_forms_are_columns_of_the_dataset_and_codebook_with_their_values(dutch_filled):
    trial, entered = dutch_filled
    data = Dataset(trial, "long")
    names = set(data.names)
    assert all(len(n) <= 28 for n in data.names) and len(names) == len(data.names)
    for code in NEW_FORMS[:-1]:  # employment is Danish
        instrument = registry.get(code)
        assert {f"{code}_{i.code}" for i in instrument.items} <= names, code
        assert {f"{code}_score_{s.code}" for s in instrument.scores} <= names, code
    codebook = {row[0]: row for row in codebook_rows(data)}
    assert codebook["ismi_score_total"][1].endswith(
        "ISMI total, mean item score (stigma-resistance items reversed) (mean)"
    )
    assert codebook["baseline_nl_income_source"][3].startswith("1 = Employment; 2 = Unemployment")
    rows = [dict(zip(data.names, row, strict=True)) for row in data.rows()]
    t1 = {r["participant_id"]: r for r in rows if r["timepoint"] == "t1"}
    assert len(t1) == 2
    for pid, row in t1.items():
        n = int(entered[(pid, "ses_ta")]["ta1"])  # 0 + n
        assert row["ses_ta_score_total"] == 4 * n
        assert row["sers_sf_score_positive"] == 10 * (1 + n)
        assert row["insight_score_total"] == 3 * n
        # every ISMI item 1 + n; the five reversed items 5 - (1 + n)
        assert row["ismi_score_total"] == round((24 * (1 + n) + 5 * (4 - n)) / 29, 4)
        assert row["baseline_nl_age"] == 18 + n
    t2 = [r for r in rows if r["timepoint"] == "t2"]
    assert t2 and all(missing(r["ismi_score_total"]) for r in t2)  # nothing entered at T2


def test_danish_dataset_has_employment_at_every_timepoint_and_the_baseline_column_too(
    danish, coordinator, assessor
):
    p = factories.make_ready_participant(danish, coordinator)
    randomization.randomize(p, by=coordinator)
    crf.schedule_visits(danish)
    participant = Participant.objects.get(pk=p.pk)
    second = factories.make_person(danish, Role.ASSESSOR, username="second-assessor")
    data_manager = factories.make_person(danish, Role.DATA_MANAGER)
    for code_value, tp in ((1, "baseline"), (3, "post"), (2, "followup")):
        visit = participant.visits.get(timepoint__code=tp)
        raw = {"employment": str(code_value)}
        crf.save_entry(
            visit, "employment", raw, by=assessor, kind=FormEntry.Kind.FIRST, complete=True
        )
        crf.save_entry(
            visit, "employment", raw, by=second, kind=FormEntry.Kind.SECOND, complete=True
        )
        crf.reconcile(visit, "employment", {}, by=data_manager, reasons={})
    data = Dataset(danish, "long")
    assert {"employment_employment", "baseline_employment"} <= set(data.names)
    rows = [dict(zip(data.names, row, strict=True)) for row in data.rows()]
    mine = {r["timepoint"]: r["employment_employment"] for r in rows}
    assert mine == {"baseline": 1, "post": 3, "followup": 2}
