"""The review's race: a paper entry begun at the moment the participant answers the same form.
Each checked that the other was not there, neither saw the other's uncommitted row, and both
were saved, where "whichever was started first stands" (assessments.services
._refuse_paper_beside_participant)."""

import threading

import pytest
from django.db import connection

from assessments import services as crf
from assessments.models import FormEntry
from imrtrial.errors import Refused
from selfreport import services

from . import world as w

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_paper_and_the_participant_at_once_do_not_both_stand(roles_restored, monkeypatch):
    setting = w.build(arms=1)
    visit = setting.visits[0]
    original = crf._refuse_paper_beside_participant
    checked, go = threading.Event(), threading.Event()

    def paper_waits_after_its_check(visit_, instrument, participant_entry):
        original(visit_, instrument, participant_entry)
        if not participant_entry and not checked.is_set():
            checked.set()  # the paper entry has checked; it waits before it writes
            assert go.wait(10)

    monkeypatch.setattr(crf, "_refuse_paper_beside_participant", paper_waits_after_its_check)
    outcome = {}

    def paper():
        try:
            crf.save_entry(visit, "imrs_p", {}, by=setting.assessor, kind=FormEntry.Kind.FIRST)
            outcome["paper"] = "saved"
        except Refused:
            outcome["paper"] = "refused"
        finally:
            connection.close()

    thread = threading.Thread(target=paper)
    thread.start()
    assert checked.wait(10)
    try:
        # While the paper entry waits, the participant answers (a connection of its own).
        def participant():
            try:
                services.save_answers(
                    visit, "imrs_p", {}, by=setting.assessor, via=FormEntry.EnteredVia.LINK
                )
                outcome["participant"] = "saved"
            except Refused:
                outcome["participant"] = "refused"
            finally:
                connection.close()

        other = threading.Thread(target=participant)
        other.start()
        other.join(2)  # it either finishes or waits for the paper entry: both are fine
    finally:
        go.set()
    thread.join(10)
    other.join(10)
    kinds = set(FormEntry.objects.filter(instrument="imrs_p").values_list("kind", flat=True))
    assert kinds in ({"first"}, {"single"}), (outcome, kinds)
