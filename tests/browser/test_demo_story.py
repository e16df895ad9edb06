"""The demo tells the product's story with its own users: `seed_demo` runs into the test
database, and only demo users from its logins file (passwords, and the codes an authenticator
app would show from their TOTP secrets) walk the three two-person workflows in Chromium:
double data entry with a discrepancy reconciled, an IMR group session with attendance, and a
fidelity assessment rated by two raters who then agree a consensus."""

import configparser
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_otp.oath import hotp

from assessments.models import FormEntry, Visit
from demo import seed
from fidelity.models import Attendance, FidelityAssessment, FidelityRating, ImrGroup, Session

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

TRIAL = seed.DEMO_TRIAL


@pytest.fixture
def logins(roles_restored, tmp_path):
    path = tmp_path / "demo-logins.txt"
    call_command("seed_demo", "--logins-file", str(path), stdout=StringIO())
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return {name: dict(parser[name]) for name in parser.sections()}


class Authenticator:
    """What an authenticator app shows for a secret; a code is spent once, so a user's second
    sign-in within 30 seconds types the next step's (the server accepts one step ahead)."""

    def __init__(self):
        self.spent = {}

    def code(self, username, secret):
        import base64

        step = max(int(time.time()) // 30, self.spent.get(username, -1) + 1)
        self.spent[username] = step
        return f"{hotp(base64.b32decode(secret), step):06d}"


def sign_in(browser, live_server, logins, username, app):
    login = logins[username]
    page = browser.new_page()
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(login["password"])
    page.get_by_role("button", name="Sign in").click()
    if "totp_secret" in login:
        page.wait_for_url(f"{live_server.url}/account/two-factor/verify/**")
        page.get_by_label("Authentication code").fill(app.code(username, login["totp_secret"]))
        page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}/")
    return page


def enter_csq8(page, live_server, visit, which, values):
    page.goto(f"{live_server.url}/trials/{TRIAL}/visits/{visit.pk}/")
    page.locator("#f-csq8").get_by_role("link", name=f"{which} entry").click()
    assert page.get_by_role("heading", name="Client Satisfaction Questionnaire").is_visible()
    for code, value in values.items():
        page.locator(f'[name="item_{code}"]').fill(str(value))
    page.get_by_role("button", name="Complete").click()
    page.wait_for_url(f"**/visits/{visit.pk}/")


def test_demo_users_walk_double_entry_a_group_session_and_a_fidelity_consensus(
    browser, live_server, logins
):
    app = Authenticator()
    # Only demo users, and the ones that need two factors have their secrets in the file.
    assert all(name.startswith("demo-") for name in logins)
    assert "totp_secret" in logins["demo-facilitator"]
    assert "totp_secret" not in logins["demo-assessor"]

    # --- Double data entry: two assessors type the same paper CSQ-8, one item differs. ------
    visit = Visit.objects.get(
        participant__trial__key=TRIAL,
        timepoint__code="baseline",
        participant__randomized_on=None,
        participant__form_entries=None,
        participant__created_at__date=timezone.localdate(),
    )
    first = {f"c{i}": 1 + i % 4 for i in range(1, 9)}
    second = {**first, "c3": 4 if first["c3"] != 4 else 1}
    page = sign_in(browser, live_server, logins, "demo-assessor", app)
    page.get_by_role("link", name="Worklist").click()
    assert page.get_by_role("link", name=visit.participant.participant_id).first.is_visible()
    enter_csq8(page, live_server, visit, "First", first)
    page.close()
    page = sign_in(browser, live_server, logins, "demo-assessor-2", app)
    enter_csq8(page, live_server, visit, "Second", second)
    page.close()

    page = sign_in(browser, live_server, logins, "demo-data-manager", app)
    page.goto(f"{live_server.url}/trials/{TRIAL}/visits/{visit.pk}/")
    page.locator("#f-csq8").get_by_role("link", name="Reconcile").click()
    assert page.get_by_text("1 discrepancy between the two entries").is_visible()
    page.get_by_label("Value of record for c3").fill(str(first["c3"]))
    page.get_by_label("Reason for c3").fill("checked against the paper form")
    page.get_by_role("button", name="Save the reconciled form").click()
    page.wait_for_url(f"**/visits/{visit.pk}/")
    final = FormEntry.objects.get(
        participant=visit.participant, instrument="csq8", kind=FormEntry.Kind.FINAL
    )
    assert final.values == first and final.entered_by.username == "demo-data-manager"
    page.close()

    # --- An IMR group session with attendance, by a facilitator. -----------------------------
    group = ImrGroup.objects.get(trial__key=TRIAL, name="Monday group")
    members = sorted(group.memberships.values_list("participant__participant_id", flat=True))
    page = sign_in(browser, live_server, logins, "demo-facilitator", app)
    page.get_by_role("link", name="IMR groups").first.click()
    page.get_by_role("link", name="Monday group").first.click()
    page.get_by_role("link", name="Log a session").click()
    page.get_by_label("Coping with stress").check()
    page.locator(f'[data-member="{members[0]}"]').get_by_label("Absent").check()
    page.get_by_role("button", name="Save session").click()
    page.wait_for_url(f"**/imr-groups/{group.pk}/")
    session = Session.objects.get(group=group, date=timezone.localdate())
    assert session.recorded_by.username == "demo-facilitator"
    statuses = dict(session.attendance.values_list("participant__participant_id", "status"))
    assert statuses == {
        pid: Attendance.Status.ABSENT if pid == members[0] else Attendance.Status.ATTENDED
        for pid in members
    }
    page.close()

    # --- A fidelity assessment: two raters rate, one records the agreed rating. ---------------
    group = ImrGroup.objects.get(trial__key=TRIAL, name="Thursday group")
    raters = [
        sign_in(browser, live_server, logins, name, app)
        for name in ("demo-fidelity-rater", "demo-fidelity-rater-2")
    ]
    page = raters[0]
    page.goto(f"{live_server.url}/trials/{TRIAL}/imr-groups/{group.pk}/fidelity/")
    page.get_by_role("link", name="New assessment").click()
    page.get_by_label("Kind").select_option(FidelityAssessment.Kind.MIDWAY)
    page.get_by_label("Observation of a session").check()
    page.get_by_role("button", name="Create assessment").click()
    page.wait_for_url(f"**/imr-groups/{group.pk}/fidelity/*/")
    assessment_url = page.url
    scores = [dict.fromkeys(range(1, 11), 4), {i: 4 if i != 5 else 2 for i in range(1, 11)}]
    for rater, given in zip(raters, scores, strict=True):
        rater.goto(assessment_url)
        for item, score in given.items():
            rater.locator(f'input[name="item_{item}"][value="{score}"]').check()
        rater.get_by_role("button", name="Submit my rating").click()
        assert rater.get_by_text("Your rating is submitted").is_visible()
    page.reload()
    for item in range(1, 11):
        page.locator(f'input[name="item_{item}"][value="{3 if item == 5 else 4}"]').check()
    page.get_by_role("button", name="Record the consensus").click()
    assert page.get_by_text("The consensus rating is recorded").is_visible()
    consensus = FidelityRating.objects.get(assessment__group=group, is_consensus=True)
    assert consensus.rater.username == "demo-fidelity-rater"
    assert consensus.scores["5"] == 3 and consensus.scores["1"] == 4
    raw = FidelityRating.objects.filter(assessment__group=group, is_consensus=False)
    assert sorted(raw.values_list("rater__username", flat=True)) == [
        "demo-fidelity-rater",
        "demo-fidelity-rater-2",
    ]
    for rater in raters:
        rater.close()
