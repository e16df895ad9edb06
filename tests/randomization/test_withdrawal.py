"""Withdrawal at the three protocol levels, each audited; level 3 erases clinical data only."""

import datetime

import pytest

from assessments.models import FormEntry
from assessments.services import withdraw
from imrtrial.models import Participant, Role
from randomization import services
from randomization.models import Allocation, IdentifyingDetails, Withdrawal
from tests.factories import grant, make_ready_participant, make_user, write_form_entry

pytestmark = pytest.mark.django_db
DAY = datetime.date(2026, 11, 10)


@pytest.fixture
def randomized(danish, coordinator):
    p = make_ready_participant(
        danish, coordinator, full_name="Ada Jensen", national_id="010190-1234"
    )
    services.randomize(p, by=coordinator)
    entry = FormEntry(
        participant=p, instrument="gaf_f", timepoint="baseline", entered_by=coordinator
    )
    write_form_entry(entry, {"gaf_f": 40}, by=coordinator, complete=True)
    write_form_entry(entry, {"gaf_f": 42}, by=coordinator, reason="typo")
    return Participant.objects.get(pk=p.pk)


def test_level_1_stops_the_intervention_and_keeps_follow_up(randomized, coordinator):
    withdraw(randomized, 1, by=coordinator, reason="Cannot attend groups", withdrawn_on=DAY)
    randomized.refresh_from_db()
    assert randomized.status == Participant.Status.RANDOMIZED
    assert Withdrawal.objects.get().level == 1


def test_level_2_stops_follow_up_and_keeps_the_data(randomized, coordinator):
    withdraw(randomized, 2, by=coordinator, reason="Moved away", withdrawn_on=DAY)
    randomized.refresh_from_db()
    assert randomized.status == Participant.Status.WITHDRAWN
    assert FormEntry.objects.get().values == {"gaf_f": 42}
    assert randomized.history.first().history_change_reason.startswith("withdrawal level 2")


def test_level_3_erases_clinical_data_and_keeps_allocation_and_an_erasure_record(
    randomized, coordinator
):
    allocation = Allocation.objects.get()
    FormEntry.objects.update(scores={"gaf_f": 42})  # as save_entry would have computed them
    withdraw(randomized, 3, by=coordinator, reason="Withdrew consent", withdrawn_on=DAY)
    entry = FormEntry.objects.get()
    assert entry.values == {} and entry.scores == {}  # scores are computed from the values
    assert all(h.values == {} for h in entry.history.all())  # old values gone from history too
    details = IdentifyingDetails.objects.get()
    assert details.full_name == details.national_id == ""
    assert all(h.full_name == "" for h in details.history.all())
    assert Allocation.objects.get() == allocation  # the sequence stays intact
    record = Withdrawal.objects.get()
    assert record.level == 3 and record.recorded_by == coordinator
    assert record.erased["form_entries"] == 1 and record.erased["identifying_details"]


def test_a_withdrawal_needs_a_reason_and_never_goes_back_down(randomized, coordinator):
    with pytest.raises(services.Refused):
        withdraw(randomized, 2, by=coordinator, reason="  ", withdrawn_on=DAY)
    withdraw(randomized, 2, by=coordinator, reason="Moved", withdrawn_on=DAY)
    with pytest.raises(services.Refused, match="already withdrawn"):
        withdraw(randomized, 1, by=coordinator, reason="x", withdrawn_on=DAY)
    assert Withdrawal.objects.count() == 1


def test_blinded_roles_cannot_record_withdrawals(randomized, danish):
    assessor = make_user("assessor-w")
    grant(assessor, danish, Role.ASSESSOR)
    with pytest.raises(services.Refused):
        withdraw(randomized, 1, by=assessor, reason="x", withdrawn_on=DAY)
