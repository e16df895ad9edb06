"""Audit trail: who, when, what (old and new) and why; nothing clinical is ever deleted."""

import pytest

from assessments.models import FormEntry
from assessments.services import save_form
from imrtrial.audit import ReasonRequired
from imrtrial.models import AccessLog, HardDeleteForbidden, Participant
from randomization.models import Allocation
from tests.factories import make_allocation, make_participant


@pytest.fixture
def entry(trial, assessor):
    participant = make_participant(trial)
    new = FormEntry(
        participant=participant, instrument="gaf_f", timepoint="baseline", entered_by=assessor
    )
    return save_form(new, {"gaf_f": 40}, by=assessor)


def test_creating_a_form_records_who_and_what(entry, assessor):
    (created,) = entry.history.all()
    assert created.history_type == "+"
    assert created.history_user == assessor
    assert created.values == {"gaf_f": 40}
    assert created.history_date is not None


def test_a_draft_changes_without_a_reason_and_keeps_old_and_new_values(entry, assessor):
    save_form(entry, {"gaf_f": 45}, by=assessor)
    newest, older = entry.history.all()[:2]
    delta = newest.diff_against(older)
    (change,) = [c for c in delta.changes if c.field == "values"]
    assert (change.field, change.old, change.new) == ("values", {"gaf_f": 40}, {"gaf_f": 45})


def test_a_completed_form_refuses_a_change_without_a_reason_and_saves_nothing(entry, assessor):
    entry = save_form(entry, {"gaf_f": 41}, by=assessor, complete=True)
    before = entry.history.count()
    with pytest.raises(ReasonRequired):
        save_form(entry, {"gaf_f": 60}, by=assessor, reason="   ")
    entry.refresh_from_db()
    assert entry.values == {"gaf_f": 41}
    assert entry.history.count() == before


def test_a_completed_form_changes_with_a_reason_that_the_trail_keeps(entry, assessor):
    entry = save_form(entry, {"gaf_f": 41}, by=assessor, complete=True)
    save_form(entry, {"gaf_f": 51}, by=assessor, reason="Transcription error: 51 on paper")
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
