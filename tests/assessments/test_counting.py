"""Which form entries are the data of record: FormEntry.objects.counting(), the one place the
rule is written, and FormEntry.counts, its reading of one row."""

import pytest

from assessments.models import FormEntry
from tests.factories import make_participant, make_trial, make_user

pytestmark = pytest.mark.django_db

Kind, Status = FormEntry.Kind, FormEntry.Status


@pytest.fixture
def entry():
    trial = make_trial()
    user = make_user()
    participants = {}

    def make(instrument, kind, status, *, who="p", timepoint="post"):
        if who not in participants:
            participants[who] = make_participant(trial)
        return FormEntry.objects.create(
            participant=participants[who],
            instrument=instrument,
            timepoint=timepoint,
            kind=kind,
            status=status,
            entered_by=user,
        )

    return make


def counting():
    return set(FormEntry.objects.counting().values_list("instrument", "kind"))


def test_single_and_reconciled_entries_count_once_complete(entry):
    entry("gaf_f", Kind.SINGLE, Status.COMPLETE)
    entry("panss", Kind.SINGLE, Status.VERIFIED)
    entry("psp", Kind.SINGLE, Status.LOCKED)
    entry("ymrs", Kind.SINGLE, Status.DRAFT)
    entry("csq8", Kind.FIRST, Status.COMPLETE)
    entry("csq8", Kind.SECOND, Status.COMPLETE)
    entry("ahs", Kind.FIRST, Status.COMPLETE)
    entry("ahs", Kind.SECOND, Status.COMPLETE)
    entry("ahs", Kind.FINAL, Status.COMPLETE)
    assert counting() == {
        ("gaf_f", Kind.SINGLE),
        ("panss", Kind.SINGLE),
        ("psp", Kind.SINGLE),
        ("ahs", Kind.FINAL),
    }
    # The row's own reading agrees wherever one row can tell.
    assert {(e.instrument, e.kind) for e in FormEntry.objects.all() if e.counts} == counting()


def test_a_reconciled_entry_replaces_a_single_entry_of_the_same_form_only(entry):
    # The instrument went from interview to paper: both a single and a reconciled entry exist.
    single = entry("bsi", Kind.SINGLE, Status.COMPLETE)
    final = entry("bsi", Kind.FINAL, Status.COMPLETE)
    # Another participant's, and another timepoint's, single entry of it still count.
    other = entry("bsi", Kind.SINGLE, Status.COMPLETE, who="q")
    later = entry("bsi", Kind.SINGLE, Status.COMPLETE, timepoint="followup")
    found = set(FormEntry.objects.counting().values_list("pk", flat=True))
    assert found == {final.pk, other.pk, later.pk}
    assert single.counts  # one row alone cannot see the reconciled entry beside it


def test_a_single_entry_stays_the_record_while_a_reconciliation_is_not_complete(entry):
    entry("bsi", Kind.SINGLE, Status.COMPLETE)
    entry("bsi", Kind.FINAL, Status.DRAFT)
    assert counting() == {("bsi", Kind.SINGLE)}
