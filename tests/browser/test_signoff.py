"""In a real browser: a site investigator opens the casebooks to sign from the home page, reads
what the signature means and what it covers, re-enters the password and signs the casebook."""

import pytest

from assessments import services as crf
from imrtrial.models import Role
from randomization.services import randomize
from signoff.models import Signature
from tests.factories import grant, make_ready_participant, make_user

from .conftest import PASSWORD, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def entered(roles_restored, danish):
    """A randomized participant at the first site with a complete baseline GAF-F, and that
    site's investigator (password only: no authenticator)."""
    danish.status = "open"
    danish.save(update_fields=["status"])
    desk = make_user("desk-s")
    grant(desk, danish, Role.COORDINATOR)
    assessor = make_user("rater-s")
    grant(assessor, danish, Role.ASSESSOR)
    participant = make_ready_participant(danish, desk)
    randomize(participant, by=desk)
    visit = participant.visits.get(timepoint__code="baseline")
    crf.save_entry(visit, "gaf_f", {"gaf_f": "42"}, by=assessor, kind="single", complete=True)
    investigator = make_user("pi", password=PASSWORD, first_name="Inge", last_name="Vestergaard")
    grant(investigator, danish, Role.INVESTIGATOR, participant.site)
    return participant


def test_an_investigator_signs_a_casebook_after_re_entering_the_password(
    browser, live_server, entered
):
    pid = entered.participant_id
    page = sign_in(browser, live_server, "pi")
    page.get_by_role("link", name="Casebooks to sign").click()
    page.get_by_role("link", name=f"Not signed (casebook of {pid})").click()
    assert Signature.MEANING_CASEBOOK in page.content()
    assert "Global Assessment of Functioning" in page.content()
    page.get_by_role("button", name="Sign the casebook").click()  # without the password: not signed
    page.wait_for_load_state()
    assert not Signature.objects.exists()
    page.get_by_label("Your password").fill("not the password")
    page.get_by_label("I sign with the meaning stated above.").check()
    page.get_by_role("button", name="Sign the casebook").click()
    page.wait_for_load_state()
    assert "The password is not right. Nothing was signed." in page.content()
    assert not Signature.objects.exists()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("I sign with the meaning stated above.").check()
    page.get_by_role("button", name="Sign the casebook").click()
    page.wait_for_load_state()
    signature = Signature.objects.get()
    assert signature.visit is None and signature.printed_name == "Inge Vestergaard"
    assert "Signature: Signed" in page.content()
    assert "Signed by <strong>Inge Vestergaard</strong>" in page.content()
    page.close()
