"""Audit trail: who, when, what (old and new) and why; nothing clinical is ever deleted."""

import pytest

from assessments.models import FormEntry
from imrtrial.models import AccessLog, HardDeleteForbidden, Participant
from randomization.models import Allocation
from tests.factories import make_allocation, make_participant, write_form_entry


@pytest.fixture
def entry(trial, assessor):
    participant = make_participant(trial)
    new = FormEntry(
        participant=participant, instrument="gaf_f", timepoint="baseline", entered_by=assessor
    )
    return write_form_entry(new, {"gaf_f": 40}, by=assessor)


def test_creating_a_form_records_who_and_what(entry, assessor):
    (created,) = entry.history.all()
    assert created.history_type == "+"
    assert created.history_user == assessor
    assert created.values == {"gaf_f": 40}
    assert created.history_date is not None


def test_a_draft_changes_without_a_reason_and_keeps_old_and_new_values(entry, assessor):
    write_form_entry(entry, {"gaf_f": 45}, by=assessor)
    newest, older = entry.history.all()[:2]
    delta = newest.diff_against(older)
    (change,) = [c for c in delta.changes if c.field == "values"]
    assert (change.field, change.old, change.new) == ("values", {"gaf_f": 40}, {"gaf_f": 45})


# The reason rule itself (refused without one, nothing saved) is the entry service's:
# tests/assessments/test_entry.py::test_after_complete_a_change_needs_a_reason_which_the_trail_keeps


def test_a_completed_form_changes_with_a_reason_that_the_trail_keeps(entry, assessor):
    entry = write_form_entry(entry, {"gaf_f": 41}, by=assessor, complete=True)
    write_form_entry(entry, {"gaf_f": 51}, by=assessor, reason="Transcription error: 51 on paper")
    newest = entry.history.first()
    assert newest.history_change_reason == "Transcription error: 51 on paper"
    assert newest.history_user == assessor
    assert newest.values == {"gaf_f": 51}


def test_participant_history_records_status_changes(trial, coordinator):
    participant = make_participant(trial)
    make_allocation(participant, by=coordinator)
    statuses = list(participant.history.values_list("status", flat=True))
    assert statuses == [Participant.Status.RANDOMIZED, Participant.Status.CONSENTED]


@pytest.mark.parametrize("model", [Participant, FormEntry, Allocation, AccessLog])
def test_clinical_rows_are_never_hard_deleted(model, entry, coordinator, trial):
    make_allocation(make_participant(trial), by=coordinator)
    AccessLog.objects.create(user=coordinator, trial=trial, action="export")
    row = model.objects.first()
    with pytest.raises(HardDeleteForbidden):
        row.delete()
    with pytest.raises(HardDeleteForbidden):
        model.objects.all().delete()
    assert model.objects.filter(pk=row.pk).exists()
