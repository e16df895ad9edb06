"""In a real browser, the data-cleaning round trip: the data manager opens a query from the
record status dashboard, the assessor finds it in the worklist and corrects the value, the data
manager closes the query and locks the participant's casebook."""

import pytest

from assessments import services as crf
from assessments.models import DataQuery, FormEntry
from imrtrial.models import Participant, Role
from randomization.services import randomize
from tests.factories import grant, make_ready_participant, make_user

from .conftest import PASSWORD, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def entered(roles_restored, danish):
    """A randomized participant whose baseline GAF-F the assessor entered, and nothing else of
    theirs waiting (so the casebook may be locked once the query is closed)."""
    danish.status = "open"
    danish.save(update_fields=["status"])
    desk = make_user("desk-c")
    grant(desk, danish, Role.COORDINATOR)
    assessor = make_user("rater", password=PASSWORD)
    grant(assessor, danish, Role.ASSESSOR)
    grant(make_user("dm", password=PASSWORD), danish, Role.DATA_MANAGER)
    participant = make_ready_participant(danish, desk)
    randomize(participant, by=desk)
    visit = participant.visits.get(timepoint__code="baseline")
    crf.save_entry(visit, "gaf_f", {"gaf_f": "16"}, by=assessor, kind="single", complete=True)
    return participant


def test_a_query_goes_round_and_the_casebook_is_locked(browser, live_server, entered):
    pid = entered.participant_id
    dm = sign_in(browser, live_server, "dm")
    dm.get_by_role("link", name="Record status").click()
    dm.get_by_role("link", name=f"visit of {pid}, Baseline").click()
    dm.get_by_role("link", name="Query Global Assessment of Functioning").click()
    dm.get_by_role("link", name="Ask about GAF_F").click()
    dm.get_by_label("Kind of query").select_option("range")
    dm.get_by_label("Question to the site").fill("16 is far below the referral letter's 60.")
    dm.get_by_role("button", name="Open the query").click()
    query = DataQuery.objects.get()
    assert query.status == DataQuery.Status.OPEN and query.item == "gaf_f"

    rater = sign_in(browser, live_server, "rater")
    rater.get_by_role("link", name="Worklist").click()
    rater.get_by_role("link", name=f"#{query.pk}").click()
    rater.get_by_label("Your answer").fill("Typed 16 for 61; the paper says 61.")
    rater.get_by_label("Corrected value of GAF_F (optional)").fill("61")
    rater.get_by_role("button", name="Send the answer").click()
    rater.wait_for_load_state()
    entry = FormEntry.objects.get(participant=entered, instrument="gaf_f")
    assert entry.values["gaf_f"] == 61
    assert entry.history.first().history_change_reason.startswith(f"query #{query.pk}")

    dm.goto(f"{live_server.url}/trials/{entered.trial.key}/queries/{query.pk}/")
    dm.get_by_role("textbox", name="Message").fill("Thank you: matches the paper.")
    dm.get_by_role("button", name="Close").click()
    dm.wait_for_load_state()
    query.refresh_from_db()
    assert query.status == DataQuery.Status.CLOSED

    dm.goto(f"{live_server.url}/trials/{entered.trial.key}/participants/{pid}/")
    dm.get_by_label("Reason for locking").fill("All baseline data clean and verified.")
    dm.get_by_role("button", name="Lock the casebook").click()
    dm.wait_for_load_state()
    assert Participant.objects.get(pk=entered.pk).casebook_locked_at is not None
    assert "Locked since" in dm.content()
    dm.close()
    rater.close()
