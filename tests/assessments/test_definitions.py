"""Every shipped instrument: counts, ranges, missing codes and scores on hand-computed cases;
bad input rejected item by item (property-based)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assessments import definitions as d

INSTRUMENTS = d.load_dir()


def full(instrument, value_of):
    return {item.code: str(value_of(item)) for item in instrument.items}


@pytest.mark.parametrize(
    "code, n_items, ranges",
    [
        ("gaf_f", 1, {(1, 100)}),
        ("gaf_s", 1, {(1, 100)}),
        ("panss", 30, {(1, 7)}),
        ("hamd6", 6, {(0, 4), (0, 2)}),
        ("ymrs", 11, {(0, 4), (0, 8)}),
        ("imrs_p", 15, {(1, 5)}),
        ("imrs_s", 15, {(1, 5)}),
        ("mhrm", 30, {(0, 4)}),
        ("ahs", 6, {(1, 8)}),
        ("csq8", 8, {(1, 4)}),
        ("imrs_client", 15, {(1, 5)}),
        ("imrs_clinician", 15, {(1, 5)}),
    ],
)
def test_item_counts_and_ranges_are_those_of_the_sources(code, n_items, ranges):
    instrument = INSTRUMENTS[code]
    assert len(instrument.items) == n_items
    assert {item.bounds() for item in instrument.items if item.scored} == ranges


def test_panss_has_7_positive_7_negative_16_general_items():
    sections = {code: len(items) for code, _, items in INSTRUMENTS["panss"].sections}
    assert sections == {"positive": 7, "negative": 7, "general": 16}


def test_ymrs_items_5_6_8_9_run_to_8_and_the_rest_to_4():
    ymrs = INSTRUMENTS["ymrs"]
    wide = [i for i, item in enumerate(ymrs.items, start=1) if item.bounds() == (0, 8)]
    assert wide == [5, 6, 8, 9]


def test_hamd6_sleep_item_runs_to_2_and_total_to_22():
    hamd6 = INSTRUMENTS["hamd6"]
    values, errors = d.clean(hamd6, full(hamd6, lambda i: i.bounds()[1]), complete=True)
    assert errors == {} and d.compute_scores(hamd6, values) == {"total": 22}


def test_panss_scores_on_a_hand_computed_case():
    panss = INSTRUMENTS["panss"]
    # P items 2, N items 3, G items 1 except G16 = 7
    raw = {
        i.code: "2" if i.code.startswith("p") else "3" if i.code.startswith("n") else "1"
        for i in panss.items
    }
    raw["g16"] = "7"
    values, errors = d.clean(panss, raw, complete=True)
    assert errors == {}
    assert d.compute_scores(panss, values) == {
        "positive": 14,
        "negative": 21,
        "general": 22,
        "total": 57,
    }


def test_panss_prorates_up_to_a_fifth_missing_and_not_beyond():
    panss = INSTRUMENTS["panss"]
    raw = {i.code: "4" for i in panss.items}
    raw["p1"] = "RF"  # one of seven positive items refused
    values, _ = d.clean(panss, raw, complete=True)
    scores = d.compute_scores(panss, values)
    assert scores["positive"] == 28.0  # 6 answered x 4, prorated to 7 items
    assert scores["total"] == 120.0
    raw["p2"] = "ND"  # two of seven missing: below the 6 answered the rule needs
    values, _ = d.clean(panss, raw, complete=True)
    assert d.compute_scores(panss, values)["positive"] is None


def test_imrs_gives_sum_mean_and_the_published_subscales_with_item_12_in_two():
    imrs = INSTRUMENTS["imrs_p"]
    raw = {f"i{n}": str(1 + n % 5) for n in range(1, 16)}  # 2,3,4,5,1,2,3,4,5,1,2,3,4,5,1
    values, errors = d.clean(imrs, raw, complete=True)
    assert errors == {}
    assert d.compute_scores(imrs, values) == {
        "total": 45,
        "mean": 3.0,
        "recovery": 2 + 3 + 5 + 4 + 3,
        "management": 2 + 3 + 5 + 1 + 2,
        "biology": 3 + 5 + 1,
    }


def test_dutch_imrs_is_scored_as_mean_item_score():
    imrs = INSTRUMENTS["imrs_client"]
    values, _ = d.clean(imrs, full(imrs, lambda i: 4), complete=True)
    assert d.compute_scores(imrs, values)["mean"] == 4.0


def test_hope_scale_splits_agency_and_pathways():
    ahs = INSTRUMENTS["ahs"]
    raw = {item.code: str(n) for n, item in enumerate(ahs.items, start=1)}
    values, _ = d.clean(ahs, raw, complete=True)
    scores = d.compute_scores(ahs, values)
    assert scores["total"] == 21 and scores["pathways"] == 1 + 3 + 5 and scores["agency"] == 12


def test_missing_codes_are_kept_and_make_a_score_missing():
    csq = INSTRUMENTS["csq8"]
    raw = full(csq, lambda i: 3) | {csq.items[0].code: "na"}
    values, errors = d.clean(csq, raw, complete=True)
    assert errors == {} and values[csq.items[0].code] == "NA"
    assert d.compute_scores(csq, values)["total"] is None


def test_a_draft_may_be_incomplete_but_complete_needs_every_required_item():
    gaf = INSTRUMENTS["gaf_f"]
    assert d.clean(gaf, {}, complete=False) == ({}, {})
    _, errors = d.clean(gaf, {}, complete=True)
    assert list(errors) == [gaf.items[0].code]


def test_a_tampered_form_with_unknown_fields_is_refused():
    gaf = INSTRUMENTS["gaf_f"]
    _, errors = d.clean(gaf, {gaf.items[0].code: "50", "arm": "imr"}, complete=True)
    assert "Unexpected field" in errors["__all__"]


def test_a_nul_character_in_a_text_item_is_an_item_error():
    """PostgreSQL's jsonb cannot store it: the save answered 500 (found by the form fuzzer)."""
    events = INSTRUMENTS["adverse_events"]
    item = next(i for i in events.items if i.type == "text")
    values, errors = d.clean(events, {item.code: "fell\x00 down"}, complete=False)
    assert item.code in errors and "NUL" in errors[item.code] and item.code not in values


@settings(max_examples=200, deadline=None)
@given(code=st.sampled_from(sorted(INSTRUMENTS)), text=st.text(max_size=12), data=st.data())
def test_any_input_is_either_a_valid_value_or_an_error_for_that_item(code, text, data):
    instrument = INSTRUMENTS[code]
    item = data.draw(st.sampled_from(instrument.items))
    values, errors = d.clean(instrument, {item.code: text}, complete=False)
    assert set(errors) <= {item.code}
    if item.code in values:
        value = values[item.code]
        if item.scored and not isinstance(value, str):
            lo, hi = item.bounds()
            assert lo <= value <= hi
    elif text.strip():
        assert item.code in errors


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_out_of_range_numbers_are_rejected(data):
    code = data.draw(st.sampled_from(["panss", "ymrs", "hamd6", "mhrm", "gaf_f", "ahs"]))
    item = data.draw(st.sampled_from(INSTRUMENTS[code].items))
    lo, hi = item.bounds()
    bad = data.draw(st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)))
    values, errors = d.clean(INSTRUMENTS[code], {item.code: str(bad)}, complete=False)
    assert item.code in errors and item.code not in values


def test_a_malformed_definition_names_the_file_and_each_problem(tmp_path):
    (tmp_path / "good.yaml").write_text(
        "code: good\nname: Good\nversion: 1\nrater: self_report\nsections:\n"
        "  - {code: s, label: S, items: [{code: a, label: A, type: integer, min: 1, max: 5}]}\n"
        "scores:\n  - {code: t, label: T, method: sum, items: all, min: 1, max: 5}\n"
    )
    (tmp_path / "bad.yaml").write_text(
        "code: bad\nname: Bad\nversion: 0\nrater: nurse\nsections:\n"
        "  - {code: s, label: S, items: [{code: a, label: A, type: integer, min: 5, max: 1}]}\n"
        "scores:\n  - {code: t, label: T, method: sum, items: [zz]}\n"
    )
    with pytest.raises(d.DefinitionError) as caught:
        d.load_dir(tmp_path)
    problems = caught.value.problems
    assert any(p.startswith("bad.yaml: version") for p in problems)
    assert any("bad.yaml: rater" in p for p in problems)
    assert any("needs numeric min <= max" in p for p in problems)
    assert any("unknown item(s) zz" in p for p in problems)
    assert not any(p.startswith("good.yaml") for p in problems)


def test_a_declared_score_range_must_match_the_items(tmp_path):
    (tmp_path / "x.yaml").write_text(
        "code: x\nname: X\nversion: 1\nrater: staff\nsections:\n"
        "  - {code: s, label: S, items: [{code: a, label: A, type: integer, min: 1, max: 5},"
        " {code: b, label: B, type: integer, min: 1, max: 5}]}\n"
        "scores:\n  - {code: t, label: T, method: sum, items: all, min: 2, max: 11}\n"
    )
    with pytest.raises(d.DefinitionError, match="max: 11 but the items allow 10"):
        d.load_dir(tmp_path)
