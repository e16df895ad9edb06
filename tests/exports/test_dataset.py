"""The blinded dataset: its columns and values on a known trial, and that nothing in it tells
which neutral code is which arm."""

import datetime
import math
import threading

import pytest

from assessments import registry
from assessments import services as crf
from assessments.models import FormEntry
from exports import dataset as dataset_module
from exports.dataset import Dataset
from exports.released import KeyDataset, ProcessDataset
from randomization import export as allocation_facts

from .conftest import raw_values


def table(dataset):
    return [dict(zip(dataset.names, row, strict=True)) for row in dataset.rows()]


def missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def test_long_dataset_has_a_row_per_participant_per_timepoint_and_every_item_and_score(
    filled_trial,
):
    trial, by_code = filled_trial
    data = Dataset(trial, "long")
    rows = table(data)
    assert len(rows) == len(data) == 12 * 3  # the eight randomized and four who left
    names = set(data.names)
    assert {"participant_id", "site", "diagnosis", "arm", "randomized_on", "timepoint"} <= names
    assert {"age_at_randomization", "sex", "withdrawn", "withdrawal_level", "withdrawn_on"} <= names
    assert {"visit_date", "visit_status", "visit_deviation", "blinding_guess"} <= names
    panss = registry.get("panss")
    assert {f"panss_{i.code}" for i in panss.items} <= names
    assert {f"panss_score_{s.code}" for s in panss.scores} <= names
    assert "adverse_events_description" not in names  # free text is never exported
    assert all(len(n) <= 28 for n in data.names) and len(names) == len(data.names)
    assert {r["arm"] for r in rows} == {"A", "B"}


def test_values_are_those_entered(filled_trial):
    trial, by_code = filled_trial
    rows = table(Dataset(trial, "long"))
    first_a = by_code["A"][0]
    mine = {r["timepoint"]: r for r in rows if r["participant_id"] == first_a.participant_id}
    seed = sorted(p.pk for group in by_code.values() for p in group).index(first_a.pk)
    expected = raw_values(registry.get("gaf_f"), seed=seed)["gaf_f"]
    assert mine["baseline"]["gaf_f_gaf_f"] == int(expected)
    assert mine["baseline"]["gaf_f_score_gaf_f"] == int(expected)
    # A missing code stays a code, and PANSS prorates the positive scale with one item missing.
    followup = mine["followup"]
    assert followup["panss_p1"] == "ND"
    others = [followup[f"panss_p{n}"] for n in range(2, 8)]
    assert followup["panss_score_positive"] == round(sum(others) / 6 * 7, 4)
    # Instruments not due at a visit are empty there (service use is not asked at baseline).
    assert mine["baseline"]["service_use_admissions"] is None
    # Entered today, months before its window: done, flagged as a deviation.
    assert mine["post"]["visit_status"] == "out_of_window" and mine["post"]["visit_deviation"] == 1
    assert mine["baseline"]["visit_status"] == "done" and mine["baseline"]["visit_deviation"] == 0
    baseline = raw_values(registry.get("baseline"), seed=seed)
    assert mine["baseline"]["sex"] == int(baseline["sex"])
    assert mine["baseline"]["age_at_randomization"] == (
        first_a.randomized_on.year - int(baseline["year_of_birth"])
    )


def test_each_form_carries_its_status_and_a_verified_form_changed_later_is_complete_again(
    filled_trial, data_manager, assessor
):
    trial, by_code = filled_trial
    participant = by_code["A"][0]
    entry = FormEntry.objects.get(participant=participant, instrument="gaf_f", timepoint="baseline")
    crf.set_status(entry, FormEntry.Status.VERIFIED, by=data_manager)

    def statuses():
        long = {
            r["timepoint"]: r
            for r in table(Dataset(trial, "long"))
            if r["participant_id"] == participant.participant_id
        }
        (wide,) = [
            r
            for r in table(Dataset(trial, "wide"))
            if r["participant_id"] == participant.participant_id
        ]
        return long["baseline"]["gaf_f_status"], wide["t1_gaf_f_status"], long

    assert statuses()[:2] == ("verified", "verified")
    entry.refresh_from_db()
    crf.save_entry(
        entry.visit,
        "gaf_f",
        {"gaf_f": "41"},
        by=assessor,
        kind=entry.kind,
        version=entry.version,
        reason="misread the scale",
    )
    long_status, wide_status, long = statuses()
    assert (long_status, wide_status) == ("complete", "complete")
    assert long["baseline"]["gaf_f_gaf_f"] == 41
    # Every other form entered is complete; a form not due at a timepoint has no status.
    assert long["baseline"]["panss_status"] == "complete"
    assert long["baseline"]["service_use_status"] is None
    column = next(c for c in Dataset(trial, "long").columns if c.name == "gaf_f_status")
    assert set(column.value_labels) == {"complete", "verified", "locked"}


def test_level_1_withdrawal_is_not_in_the_blinded_dataset(filled_trial):
    trial, by_code = filled_trial
    intervention = next(code for code, _, _, i in allocation_facts.key(trial) if i)
    stopped = by_code[intervention][0]
    rows = [
        r for r in table(Dataset(trial, "wide")) if r["participant_id"] == stopped.participant_id
    ]
    assert rows[0]["withdrawn"] == 0 and rows[0]["withdrawal_level"] is None


def test_no_variable_is_present_for_one_code_only(filled_trial):
    """Every column must carry data in both arms: a column filled for one code only would tell
    which code is the intervention arm. The scenario exercises every column, so a column empty
    in both arms fails too (it would prove nothing)."""
    trial, _ = filled_trial
    for shape in ("long", "wide"):
        rows = table(Dataset(trial, shape))
        one_sided = []
        for name in rows[0]:
            present = {r["arm"] for r in rows if not missing(r[name]) and r[name] != ""}
            if present != {"A", "B"}:
                one_sided.append((name, sorted(present)))
        assert one_sided == [], shape


def test_no_arm_label_or_free_text_anywhere(filled_trial):
    trial, _ = filled_trial
    labels = {label for _, _, label, _ in allocation_facts.key(trial)}
    for shape in ("long", "wide"):
        data = Dataset(trial, shape)
        # Column labels are the same whichever code is which ("TAU visits" is a service-use
        # item of both arms); the cells are what could differ.
        texts = {v for row in data.rows() for v in row if isinstance(v, str)}
        assert not [t for t in texts if any(label in t for label in labels) or "IMR" in t]


def test_a_site_scoped_dataset_holds_that_sites_participants_only(filled_trial):
    trial, _ = filled_trial
    site = trial.sites.order_by("code").first()
    rows = table(Dataset(trial, "wide", sites=trial.sites.filter(pk=site.pk)))
    assert rows and {r["site"] for r in rows} == {site.code}


def test_process_and_key_datasets_reveal_the_arm_on_purpose(filled_trial):
    trial, by_code = filled_trial
    key = table(KeyDataset(trial))
    assert {r["arm"] for r in key} == {"A", "B"}
    intervention = next(r for r in key if r["intervention_arm"] == 1)
    rows = table(ProcessDataset(trial))
    assert len(rows) == 12
    stopped = by_code[intervention["arm"]][0]
    mine = next(r for r in rows if r["participant_id"] == stopped.participant_id)
    assert mine["arm_label"] == intervention["arm_label"]
    assert mine["intervention_stopped_on"] == datetime.date(2026, 11, 2)
    assert mine["sessions_attended"] == 0


def test_every_item_of_every_instrument_is_a_column_except_free_text(filled_trial):
    trial, _ = filled_trial
    sources = {c.source for c in Dataset(trial, "long").columns}
    for tp in trial.timepoints.all():
        for code in tp.instruments:
            instrument = registry.get(code)
            for item in instrument.items:
                exported = f"{code}.{item.code}" in sources
                assert exported == (item.type != "text") == (item in instrument.exported_items)


def test_a_reconciled_entry_is_the_record_where_a_single_entry_of_the_form_exists_too(
    filled_trial, data_manager
):
    """The instrument went from interview to paper: the reconciled entry is exported, whichever
    row the database happens to return first."""
    trial, by_code = filled_trial
    p = by_code["A"][0]
    single = FormEntry.objects.get(participant=p, instrument="gaf_f", timepoint="baseline")
    FormEntry.objects.create(
        participant=p,
        visit=single.visit,
        instrument="gaf_f",
        timepoint="baseline",
        kind=FormEntry.Kind.FINAL,
        values={"gaf_f": 1},
        scores={"gaf_f": 1},
        status=FormEntry.Status.COMPLETE,
        entered_by=data_manager,
    )
    rows = table(Dataset(trial, "long"))
    mine = next(
        r for r in rows if r["participant_id"] == p.participant_id and r["timepoint"] == "baseline"
    )
    assert mine["gaf_f_gaf_f"] == 1 and mine["gaf_f_score_gaf_f"] == 1


@pytest.mark.parametrize("batch", [500, 3])
@pytest.mark.parametrize("shape", ["long", "wide"])
def test_cells_picked_by_postgresql_are_those_picked_in_python(
    filled_trial, shape, batch, monkeypatch
):
    """The fast path (PostgreSQL returns the form cells in column order, a batch ahead on a
    worker thread) gives the same rows, cell for cell and type for type, as the path SQLite
    takes; with batches of 3 participants, each batch's cells are fetched while the one before
    becomes rows."""
    monkeypatch.setattr(dataset_module, "BATCH", batch)
    trial, _ = filled_trial
    fast, plain = Dataset(trial, shape), Dataset(trial, shape)
    assert fast.cells_in_sql
    plain.cells_in_sql = False
    expected = list(plain.rows())
    got = list(fast.rows())
    assert got == expected
    assert [[type(c) for c in row] for row in got] == [[type(c) for c in row] for row in expected]
    assert any(isinstance(c, datetime.date) for row in got for c in row)


def test_a_failing_batch_query_stops_the_rows_and_leaves_no_thread_behind(
    filled_trial, monkeypatch
):
    """An error in the query run ahead on the worker thread reaches the reader of the rows."""
    monkeypatch.setattr(dataset_module, "BATCH", 3)
    trial, _ = filled_trial
    data = Dataset(trial, "long")
    real = data._layout.sql
    calls = []

    def broken(entries):
        calls.append(1)
        sql, params = real(entries)
        return (
            sql.replace("GROUP BY", "GROUP BY no_such_column,") if len(calls) == 2 else sql
        ), params

    monkeypatch.setattr(data._layout, "sql", broken)
    rows = data.rows()
    with pytest.raises(Exception, match="no_such_column"):
        list(rows)
    assert not [t for t in threading.enumerate() if t.name.startswith("form-cells")]
