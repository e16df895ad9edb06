"""Trial reports: the CONSORT flow counted on a scenario with every kind of exclusion and loss,
blinding of the diagram, who may see the reports, and the numbers of the recruitment,
follow-up, completeness and fidelity reports on small known trials.

The scenario (built through the services; arms known because the allocations are written by
tests/factories.make_allocation; "today" is the real date, visits are placed around it):

  screenings   A not adult; B not adult and has a guardian; C has a guardian;
               D eligible, no consent; E consented, never enrolled; F enrolled, never randomized;
               and the 11 randomized below (17 assessed).
  IMR (code B) I1 attended 1 session; baseline entered; post entered in its window.
               I2 absent from the session, stopped the intervention (level 1); baseline; post
               missed.
               I3 allocation made in error.
               I4 attended; baseline; withdrew from follow-up (level 2) after the post window.
               I5 never in a group; no baseline; a post draft only (overdue).
  TAU (code A) T1 baseline; post entered after its window (out of window).
               T2 baseline, then withdrew consent for data use (level 3, data erased).
               T3 baseline; post missed.
               T4 allocation made in error.
               T5 no baseline; post GAF-F entered, GAF-S not (visit still overdue).
               T6 baseline; post missed, then withdrew from follow-up (level 2) today.
"""

import datetime
import re
import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments import services as crf
from assessments.models import Visit
from exports import reports
from fidelity import services as imr
from imrtrial import charts
from imrtrial.models import AccessLog, Role, Site, Timepoint, Trial
from randomization import services as desk
from tests.factories import (
    give_imr_rules,
    grant,
    make_allocation,
    make_participant,
    make_person,
    make_ready_participant,
    make_trial,
    make_user,
    yes_to_all,
)
from tests.imrtrial.test_roles_and_access import BLINDED_ROLES, UNBLINDED_ROLES

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)
EARLY = 250  # days before today: the post window (180 +/- 30 days) has closed
RECENT = 180  # the post window is open today
# The blinded roles that may see reports; the others (assessor, monitor, investigator) may not.
REPORT_ROLES_BLINDED = [Role.TRIAL_ADMIN, Role.DATA_MANAGER, Role.STATISTICIAN]
REPORT_ROLES_UNBLINDED = [
    Role.COORDINATOR,
    Role.FACILITATOR,
    Role.FIDELITY_RATER,
    Role.KEY_HOLDER,
    Role.CASE_MANAGER,
]


def test_every_blinded_role_is_tested_here():
    others = {Role.ASSESSOR, Role.MONITOR, Role.INVESTIGATOR}
    assert {*REPORT_ROLES_BLINDED, *others} == set(BLINDED_ROLES)
    assert set(REPORT_ROLES_UNBLINDED) == set(UNBLINDED_ROLES)


def today():
    return timezone.localdate()


def add_schedule(trial):
    Timepoint.objects.create(
        trial=trial,
        code="baseline",
        label="Baseline",
        order=0,
        anchor=Timepoint.Anchor.ENROLMENT,
        window_before_days=0,
        window_after_days=60,
        instruments=["gaf_f"],
    )
    Timepoint.objects.create(
        trial=trial,
        code="post",
        label="Post",
        order=1,
        offset_days=180,
        instruments=["gaf_f", "gaf_s"],
    )
    Timepoint.objects.create(
        trial=trial,
        code="followup",
        label="Follow-up",
        order=2,
        offset_days=540,
        instruments=["gaf_f"],
    )


def screen(trial, site, by, *, consent=True, **answers):
    return desk.screen(
        trial,
        site,
        by=by,
        answers=yes_to_all(trial) | answers,
        screened_on=today(),
        **(
            {"consent_date": today(), "consent_form_version": "v1", "consent_obtained_by": "Dr A"}
            if consent
            else {}
        ),
    )


def entered(visit_of, instrument, by, *, complete=True):
    crf.save_entry(
        visit_of, instrument, {instrument: "50"}, by=by, kind="single", complete=complete
    )


class World:
    """The scenario above: people, the trial and its participants by name."""


@pytest.fixture
def world(db):
    w = World()
    w.trial = trial = make_trial(target_sample_size=20)
    add_schedule(trial)
    w.north, w.south = trial.sites.get(code="north"), trial.sites.get(code="south")
    w.coordinator = make_person(trial, Role.COORDINATOR, username="desk")
    w.assessor = make_user("rater-of-forms")
    grant(w.assessor, trial, Role.ASSESSOR)
    w.fac = [make_user(f"fac{i}") for i in (1, 2)]
    for user in w.fac:
        grant(user, trial, Role.FACILITATOR, w.north)

    screen(trial, w.north, w.coordinator, adult=False)
    screen(trial, w.north, w.coordinator, adult=False, guardian=True)
    screen(trial, w.south, w.coordinator, guardian=True)
    screen(trial, w.south, w.coordinator, consent=False)
    screen(trial, w.north, w.coordinator)
    make_ready_participant(trial, w.coordinator, site=w.north)

    plan = {
        "I1": ("imr", w.north, RECENT),
        "I2": ("imr", w.north, EARLY),
        "I3": ("imr", w.north, EARLY),
        "I4": ("imr", w.north, EARLY),
        "I5": ("imr", w.south, EARLY),
        "T1": ("tau", w.north, EARLY),
        "T2": ("tau", w.north, EARLY),
        "T3": ("tau", w.south, EARLY),
        "T4": ("tau", w.north, EARLY),
        "T5": ("tau", w.south, EARLY),
        "T6": ("tau", w.north, EARLY),
    }
    w.p, w.allocation = {}, {}
    for name, (arm, site, days_ago) in plan.items():
        participant = make_ready_participant(trial, w.coordinator, site=site)
        w.allocation[name] = make_allocation(participant, arm, by=w.coordinator)
        participant.randomized_on = today() - days_ago * DAY
        participant.save(update_fields=["randomized_on"])
        w.p[name] = participant
    crf.schedule_visits(trial)

    def visit(name, tp):
        return Visit.objects.get(participant=w.p[name], timepoint__code=tp)

    w.visit = visit
    for name in ("I1", "I2", "I4", "T1", "T2", "T3", "T6"):
        entered(visit(name, "baseline"), "gaf_f", w.assessor)
    for name in ("I1", "T1"):
        entered(visit(name, "post"), "gaf_f", w.assessor)
        entered(visit(name, "post"), "gaf_s", w.assessor)
    entered(visit("T5", "post"), "gaf_f", w.assessor)
    entered(visit("I5", "post"), "gaf_f", w.assessor, complete=False)
    dm = make_user("dm-marks-missed")
    grant(dm, trial, Role.DATA_MANAGER)
    for name in ("I2", "T3", "T6"):
        crf.mark_missed(visit(name, "post"), by=dm, reason="Could not be reached")

    desk.mark_in_error(
        w.allocation["I3"], by=w.coordinator, reason="Randomized before eligibility was confirmed"
    )
    desk.mark_in_error(w.allocation["T4"], by=w.coordinator, reason="Randomized twice by mistake")

    w.group = imr.create_group(
        trial,
        w.north,
        by=w.fac[0],
        name="Monday group",
        facilitators=w.fac,
        start_date=today() - 30 * DAY,
        planned_sessions=36,
        capacity=8,
    )
    for name in ("I1", "I2", "I4"):
        imr.add_member(w.group, w.p[name], by=w.fac[0], joined_on=today() - 30 * DAY)
    imr.log_session(
        w.group,
        by=w.fac[0],
        date=today() - 20 * DAY,
        modules=["recovery_strategies"],
        duration_minutes=60,
        facilitators_present=w.fac,
        attendance={w.p["I1"]: "attended", w.p["I2"]: "absent", w.p["I4"]: "attended"},
    )

    def withdraw(name, level, reason, on):
        crf.withdraw(w.p[name], level, by=w.coordinator, reason=reason, withdrawn_on=on)

    withdraw("I2", 1, "Did not want group sessions", today())
    withdraw("I4", 2, "Moved away", today() - 10 * DAY)
    withdraw("T2", 3, "No longer wants to take part", today())
    withdraw("T6", 2, "Too busy", today())
    return w


def outcomes(**counts):
    return dict.fromkeys(reports.CONSORT_OUTCOMES, 0) | counts


ENROLMENT = {
    "assessed": 17,
    "ineligible": 3,
    "reasons": [("Aged 18 or older", 2), ("Has a guardian", 2)],
    "not_consented": 1,
    "not_enrolled": 1,
    "not_randomized": 1,
    "excluded": 6,
    "randomized": 11,
}
IMR_TIMEPOINTS = [
    outcomes(analysed=3, not_yet_due=1),
    outcomes(analysed=1, missed=1, withdrew_follow_up=1, overdue=1),
    outcomes(not_yet_due=3, withdrew_follow_up=1),
]
TAU_TIMEPOINTS = [
    outcomes(analysed=3, withdrew_consent=1, not_yet_due=1),
    outcomes(analysed=2, withdrew_consent=1, missed=2),
    outcomes(not_yet_due=3, withdrew_consent=1, withdrew_follow_up=1),
]


def counts_of(column):
    return [tp["counts"] for tp in column["timepoints"]]


def consort(w, view, sites=None):
    sites = sites or list(w.trial.sites.all())
    return reports.consort(w.trial, sites=sites, view=view, today=today())


# --- CONSORT counts ---------------------------------------------------------------------------


def test_consort_by_arm_counts_every_exclusion_and_loss_as_counted_by_hand(world):
    flow = consort(world, reports.ARMS)
    assert flow["enrolment"] == ENROLMENT
    assert [t["code"] for t in flow["timepoints"]] == ["baseline", "post", "followup"]
    imr_arm, tau = flow["columns"]  # the intervention arm first
    assert (imr_arm["label"], imr_arm["allocated"], imr_arm["excluded"], imr_arm["itt"]) == (
        "IMR + TAU",
        5,
        1,
        4,
    )
    assert (tau["label"], tau["allocated"], tau["excluded"], tau["itt"]) == (
        "Treatment as usual",
        6,
        1,
        5,
    )
    assert imr_arm["excluded_reasons"] == [("Randomized before eligibility was confirmed", 1)]
    assert tau["excluded_reasons"] == [("Randomized twice by mistake", 1)]
    assert imr_arm["intervention"] == {
        "received": 2,  # I1 and I4 attended; I2 was absent, I5 never joined a group
        "not_received": 2,
        "discontinued": 1,
        "discontinued_reasons": [("Did not want group sessions", 1)],
    }
    assert tau["intervention"] is None
    assert counts_of(imr_arm) == IMR_TIMEPOINTS
    assert counts_of(tau) == TAU_TIMEPOINTS


def test_consort_by_code_and_pooled_count_the_same_people_without_one_arm_facts(world):
    by_code = consort(world, reports.CODES)
    assert by_code["enrolment"] == ENROLMENT
    a, b = by_code["columns"]
    assert (a["label"], a["allocated"], a["excluded"], counts_of(a)) == (
        "Group A",
        6,
        1,
        TAU_TIMEPOINTS,
    )
    assert (b["label"], b["allocated"], b["excluded"], counts_of(b)) == (
        "Group B",
        5,
        1,
        IMR_TIMEPOINTS,
    )
    pooled = consort(world, reports.POOLED)
    (everyone,) = pooled["columns"]
    assert (everyone["allocated"], everyone["excluded"], everyone["itt"]) == (11, 2, 9)
    assert counts_of(everyone) == [
        outcomes(analysed=6, withdrew_consent=1, not_yet_due=2),
        outcomes(analysed=3, missed=3, withdrew_follow_up=1, withdrew_consent=1, overdue=1),
        outcomes(not_yet_due=6, withdrew_follow_up=2, withdrew_consent=1),
    ]
    for column in [a, b, everyone]:
        assert "intervention" not in column and "excluded_reasons" not in column


def test_the_diagram_covers_only_the_sites_in_scope(world):
    flow = consort(world, reports.ARMS, sites=[world.south])
    # South: screenings C and D, and I5, T3, T5.
    assert flow["enrolment"]["assessed"] == 5 and flow["enrolment"]["randomized"] == 3
    assert [c["allocated"] for c in flow["columns"]] == [1, 2]  # IMR, then TAU


# --- Blinding of the diagram ------------------------------------------------------------------


def page_text(content):
    """The text of a page or SVG, tags dropped and white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", content.decode()).split())


def assert_blind(text, trial):
    for arm in trial.arms.all():
        assert arm.label not in text
        assert not re.search(rf"\b{arm.code}\b", text)
    for word in ("intervention", "level 1", "received", "discontinued the"):
        assert word not in text.lower(), word
    assert not re.search(r"\bimr\b", text.lower())


@pytest.mark.parametrize("role", REPORT_ROLES_BLINDED)
def test_blinded_roles_see_no_arm_and_no_one_arm_box(world, client, role):
    user = make_user(f"blind-{role}")
    grant(user, world.trial, role)
    client.force_login(user)
    key = world.trial.key
    page = reverse("exports:report_consort", args=[key])
    svg = reverse("exports:report_consort_svg", args=[key])
    # A trial administrator holds no export_blinded: the pooled diagram only (see
    # test_the_neutral_code_view_is_only_for_blinded_exporters).
    views = ("pooled",) if role == Role.TRIAL_ADMIN else ("pooled", "codes")
    for view in views:
        html = client.get(page, {"view": view})
        download = client.get(svg, {"view": view})
        assert html.status_code == download.status_code == 200
        assert_blind(page_text(html.content), world.trial)
        assert_blind(page_text(download.content), world.trial)
        assert "Assessed for eligibility (n=17)" in download.content.decode()
    if role == Role.TRIAL_ADMIN:
        assert client.get(page, {"view": "codes"}).status_code == 404
        assert client.get(svg, {"view": "codes"}).status_code == 404
    else:
        codes = client.get(svg, {"view": "codes"}).content.decode()
        assert "Allocated to Group A (n=6)" in codes and "Allocated to Group B (n=5)" in codes
    default = client.get(page).content.decode()
    assert "All randomized (n=11)" in default  # blinded roles start on the pooled view
    assert client.get(page, {"view": "arms"}).status_code == 404
    assert client.get(svg, {"view": "arms"}).status_code == 404
    assert client.get(reverse("exports:report_fidelity", args=[key])).status_code == 404
    for name in ("reports", "report_recruitment", "report_follow_up", "report_completeness"):
        response = client.get(reverse(f"exports:{name}", args=[key]))
        assert response.status_code == 200
        assert_blind(page_text(response.content), world.trial)


def render(w, view):
    return charts.consort_svg(reports.consort_diagram(consort(w, view), w.trial))


def swap_arms(w, one, other):
    arm_one, arm_other = w.allocation[one].arm, w.allocation[other].arm
    w.trial.allocations.filter(participant=w.p[one]).update(arm=arm_other)
    w.trial.allocations.filter(participant=w.p[other]).update(arm=arm_one)


def test_blinded_diagrams_do_not_depend_on_which_arm_is_which(world):
    before = {view: render(world, view) for view in reports.VIEWS}
    # I2 (IMR: absent from the session, stopped the intervention) and T3 (TAU) had the same
    # follow-up: swapping their arms changes nothing a blinded person may see, A/B counts
    # included, though the unblinded diagram changes.
    swap_arms(world, "I2", "T3")
    after = {view: render(world, view) for view in reports.VIEWS}
    assert after[reports.POOLED] == before[reports.POOLED]
    assert after[reports.CODES] == before[reports.CODES]
    assert after[reports.ARMS] != before[reports.ARMS]
    # I1 and T1 differ (post in and out of window, attendance): the A/B counts are the same
    # either way, the pooled diagram too.
    swap_arms(world, "I1", "T1")
    assert render(world, reports.POOLED) == before[reports.POOLED]
    # Which arm is the intervention, and the arms' labels: not in any blinded diagram.
    imr_arm, tau = world.trial.arms.get(code="imr"), world.trial.arms.get(code="tau")
    world.trial.arms.filter(pk=imr_arm.pk).update(label=tau.label + " ", is_intervention=False)
    world.trial.arms.filter(pk=tau.pk).update(label=imr_arm.label, is_intervention=True)
    assert render(world, reports.POOLED) == before[reports.POOLED]
    assert render(world, reports.CODES) == after[reports.CODES]


@pytest.mark.parametrize("role", REPORT_ROLES_UNBLINDED)
def test_unblinded_roles_see_the_diagram_by_arm_and_the_view_is_logged(world, client, role):
    user = make_user(f"open-{role}")
    grant(user, world.trial, role)
    client.force_login(user)
    response = client.get(reverse("exports:report_consort", args=[world.trial.key]))
    assert response.status_code == 200
    text = page_text(response.content)
    assert "Allocated to IMR + TAU (n=5)" in text
    assert "Allocated to Treatment as usual (n=6)" in text
    assert "Received the intervention (attended 1 or more sessions) (n=2)" in text
    assert "Discontinued the intervention (n=1)" in text
    assert "Randomized twice by mistake" in text
    log = AccessLog.objects.get(user=user)
    assert (log.action, log.target) == (AccessLog.Action.VIEW_ALLOCATION, "CONSORT diagram by arm")


@pytest.mark.parametrize("role", REPORT_ROLES_UNBLINDED)
def test_the_neutral_code_view_is_only_for_blinded_exporters(world, client, role):
    """Someone who sees the diagram by arm and by code could match the counts: the key. Only
    the key holder after lock (who may see the key) gets both."""
    user = make_user(f"codes-{role}")
    grant(user, world.trial, role)
    client.force_login(user)
    page = reverse("exports:report_consort", args=[world.trial.key])
    svg = reverse("exports:report_consort_svg", args=[world.trial.key])
    assert client.get(page, {"view": "codes"}).status_code == 404
    assert client.get(svg, {"view": "codes"}).status_code == 404
    assert "view=codes" not in client.get(page).content.decode()
    if role == Role.KEY_HOLDER:
        Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
        assert client.get(page, {"view": "codes"}).status_code == 200


def test_the_diagram_by_arm_does_not_follow_the_export_codes(world):
    """Arms are listed in the order of their own codes, so the by-arm diagram is the same
    whichever arm drew code A."""
    before = render(world, reports.ARMS)
    imr, tau = world.trial.arms.get(code="imr"), world.trial.arms.get(code="tau")
    world.trial.arms.filter(pk=imr.pk).update(export_code="X")
    world.trial.arms.filter(pk=tau.pk).update(export_code=imr.export_code)
    world.trial.arms.filter(pk=imr.pk).update(export_code=tau.export_code)
    assert render(world, reports.ARMS) == before


def test_the_svg_download_is_a_well_formed_attachment_and_is_logged(world, client):
    user = make_user("keys")
    grant(user, world.trial, Role.KEY_HOLDER)
    client.force_login(user)
    response = client.get(
        reverse("exports:report_consort_svg", args=[world.trial.key]), {"view": "arms"}
    )
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="{world.trial.key}-consort-arms.svg"'
    )
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title").text.startswith("CONSORT flow diagram")
    assert AccessLog.objects.get(user=user).action == AccessLog.Action.EXPORT


def test_an_unknown_view_is_a_clear_400(world, client):
    user = make_user("dm-typo")
    grant(user, world.trial, Role.DATA_MANAGER)
    client.force_login(user)
    response = client.get(
        reverse("exports:report_consort", args=[world.trial.key]), {"view": "arm"}
    )
    assert response.status_code == 400
    assert b"choose view=pooled or view=codes" in response.content


# --- Who may see the reports ------------------------------------------------------------------

ALL_REPORTS = [
    "reports",
    "report_consort",
    "report_consort_svg",
    "report_recruitment",
    "report_follow_up",
    "report_completeness",
    "report_fidelity",
]


def test_roles_without_report_permissions_and_other_trials_get_404(world, client):
    assessor = make_user("only-assessor")
    grant(assessor, world.trial, Role.ASSESSOR)
    other = make_trial()
    outsider = make_user("dm-of-another-trial")
    grant(outsider, other, Role.DATA_MANAGER)
    for user, key in [(assessor, world.trial.key), (outsider, world.trial.key)]:
        client.force_login(user)
        for name in ALL_REPORTS:
            response = client.get(reverse(f"exports:{name}", args=[key]))
            assert response.status_code == 404, (user, name)
    client.force_login(outsider)  # their own trial works
    assert client.get(reverse("exports:reports", args=[other.key])).status_code == 200
    client.logout()
    assert client.get(reverse("exports:reports", args=[world.trial.key])).status_code == 302


def test_the_home_page_links_to_the_reports_only_for_those_who_may_see_them(world, client):
    link = reverse("exports:reports", args=[world.trial.key])
    client.force_login(world.assessor)
    assert link not in client.get("/").content.decode()
    statistician = make_user("stats")
    grant(statistician, world.trial, Role.STATISTICIAN)
    client.force_login(statistician)
    assert link in client.get("/").content.decode()


def test_a_coordinator_of_one_site_sees_that_site_only(world, client):
    user = make_user("north-desk")
    grant(user, world.trial, Role.COORDINATOR, world.north)
    client.force_login(user)
    text = page_text(client.get(reverse("exports:report_consort", args=[world.trial.key])).content)
    assert "covers the sites you work with only: North CMHC" in text
    assert "Randomized (n=8)" in text and "Assessed for eligibility (n=12)" in text


def test_a_user_blinded_at_one_of_their_sites_gets_the_blinded_diagram(world, client):
    user = make_user("desk-and-dm")
    grant(user, world.trial, Role.COORDINATOR, world.north)
    grant(user, world.trial, Role.DATA_MANAGER)
    client.force_login(user)
    url = reverse("exports:report_consort", args=[world.trial.key])
    assert_blind(page_text(client.get(url).content), world.trial)
    assert client.get(url, {"view": "arms"}).status_code == 404


def test_reports_of_a_trial_with_no_data_yet_render(client):
    trial = make_trial()
    bare = Trial.objects.create(key="bare", name="No arms yet", status=Trial.Status.SETUP)
    give_imr_rules(bare, "danish")  # every trial has its rules (a trial file must state them)
    Site.objects.create(trial=bare, code="one", name="One")
    user = make_user("keys-of-empty")
    grant(user, trial, Role.KEY_HOLDER)
    grant(user, bare, Role.KEY_HOLDER)
    client.force_login(user)
    for key in (trial.key, bare.key):
        for name in ALL_REPORTS:
            for view in ("pooled", "codes", "arms"):
                response = client.get(reverse(f"exports:{name}", args=[key]), {"view": view})
                if view == "codes" and name in ("report_consort", "report_consort_svg"):
                    # Before lock the key holder sees arms, so codes would give the key away.
                    assert response.status_code == 404, (key, name, view)
                    continue
                assert response.status_code == 200, (key, name, view)
                body = response.content.decode()
                for svg in re.findall(r"<svg.*?</svg>", body, re.S):
                    ET.fromstring(svg)


def test_reports_answer_get_only(world, client):
    client.force_login(world.coordinator)
    response = client.post(reverse("exports:report_consort", args=[world.trial.key]))
    assert response.status_code == 405


# --- Follow-up, completeness, recruitment -----------------------------------------------------


def test_follow_up_completion_per_timepoint(world):
    report = reports.follow_up(world.trial, sites=list(world.trial.sites.all()), today=today())
    assert report["participants"] == 9
    counts = {row["code"]: row["counts"] for row in report["timepoints"]}
    zero = dict.fromkeys((k for k, _ in reports.FOLLOW_UP_CATEGORIES), 0)
    assert counts["baseline"] == zero | {"done": 7, "not_yet_due": 2}
    assert counts["post"] == zero | {
        "done": 1,  # I1
        "out_of_window": 1,  # T1
        "missed": 3,  # I2, T3, and T6 (missed before withdrawing)
        "overdue": 2,  # I5 (a draft), T5 (one of two forms)
        "withdrawn": 2,  # I4 (level 2), T2 (level 3)
    }
    assert counts["followup"] == zero | {"not_yet_due": 6, "withdrawn": 3}


def test_completeness_counts_due_forms_with_a_counting_entry(world):
    report = reports.completeness(world.trial, sites=list(world.trial.sites.all()), today=today())
    rows = {row["code"]: row for row in report["instruments"]}
    cells = {
        code: [(c["present"], c["due"]) if c else None for c in row["cells"]]
        for code, row in rows.items()
    }
    # T2's data are erased (level 3): out. Baseline due where done (6); post due for I1, I2,
    # I5, T1, T3, T5, T6 (I4 withdrew before it); follow-up not due yet.
    assert cells["gaf_f"] == [(6, 6), (3, 7), (0, 0)]
    assert cells["gaf_s"] == [None, (2, 7), None]
    assert (rows["gaf_f"]["present"], rows["gaf_f"]["due"]) == (9, 13)
    assert rows["gaf_s"]["short"] == "GAF-S"
    assert report["total"] == {"due": 20, "present": 11, "share": Fraction(11, 20)}
    assert report["per_timepoint"][2]["share"] is None


def test_the_follow_up_and_completeness_pages_show_the_numbers(world, client):
    user = make_user("dm-pages")
    grant(user, world.trial, Role.DATA_MANAGER)
    client.force_login(user)
    page = client.get(reverse("exports:report_completeness", args=[world.trial.key]))
    text = page_text(page.content)
    assert "9 / 13 (69%)" in text and "Of 20 forms due, 11 are entered (55%)" in text
    ET.fromstring(re.search(r"<svg.*?</svg>", page.content.decode(), re.S).group(0))
    page = client.get(reverse("exports:report_follow_up", args=[world.trial.key]))
    row = re.search(r"Post</th>(.*?)</tr>", page.content.decode()).group(1)
    assert re.findall(r">(\d+)</td>", row) == ["1", "1", "3", "2", "0", "2", "9"]


def test_recruitment_per_site_by_month_against_the_target(db):
    trial = make_trial(target_sample_size=10)
    north, south = trial.sites.get(code="north"), trial.sites.get(code="south")
    coordinator = make_person(trial, Role.COORDINATOR, username="recruiter")
    screen(trial, south, coordinator, adult=False)
    days = [
        (north, datetime.date(2025, 1, 15)),
        (north, datetime.date(2025, 1, 31)),
        (south, datetime.date(2025, 2, 10)),
        (north, datetime.date(2025, 3, 1)),
    ]
    for site, day in days:
        participant = make_participant(trial, site=site)
        make_allocation(participant, "tau", by=coordinator)
        participant.randomized_on = day
        participant.save(update_fields=["randomized_on"])
    make_participant(trial, site=south)  # enrolled, not randomized: not recruited
    report = reports.recruitment(
        trial, sites=list(trial.sites.all()), today=datetime.date(2025, 4, 10)
    )
    assert report["months"] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    by_site = {row["code"]: row for row in report["sites"]}
    assert by_site["north"]["cumulative"] == [2, 2, 3, 3]
    assert by_site["south"]["cumulative"] == [0, 1, 1, 1]
    assert (by_site["south"]["screened"], by_site["south"]["eligible"]) == (1, 0)
    assert report["total"]["cumulative"] == [2, 3, 4, 4]
    assert report["share_of_target"] == Fraction(4, 10)
    months, series = reports.recruitment_chart_input(report)
    svg = charts.line_chart(months, series, title="t", description="d", target=10, svg_id="r")
    ET.fromstring(svg)
    assert "Target (10)" in svg and "Total (4)" in svg


def test_the_recruitment_page_shows_the_target(world, client):
    client.force_login(world.coordinator)
    text = page_text(
        client.get(reverse("exports:report_recruitment", args=[world.trial.key])).content
    )
    assert "Randomized: 11 of a target of 20 (55%)" in text


# --- Fidelity ---------------------------------------------------------------------------------


def test_the_fidelity_report_gives_each_group_its_score_and_band(world, client):
    raters = [make_user(f"rater{i}") for i in (1, 2)]
    for user in raters:
        grant(user, world.trial, Role.FIDELITY_RATER)
        grant(user, world.trial, Role.FACILITATOR, world.south)
    south_facs = [make_user(f"sfac{i}") for i in (1, 2)]
    for user in south_facs:
        grant(user, world.trial, Role.FACILITATOR, world.south)
    imr.create_group(
        world.trial,
        world.south,
        by=south_facs[0],
        name="South group",
        facilitators=south_facs,
        start_date=today(),
        planned_sessions=36,
        capacity=8,
    )
    end = imr.create_assessment(
        world.group, by=raters[0], kind="end", date=today(), data_sources=["interviews"]
    )
    imr.submit_rating(end, by=raters[0], scores=dict.fromkeys(range(1, 14), 4))
    imr.submit_rating(end, by=raters[1], scores=dict.fromkeys(range(1, 14), 5))
    imr.submit_consensus(end, by=raters[0], scores={i: 4 if i > 2 else 5 for i in range(1, 14)})

    report = reports.fidelity(world.trial, sites=list(world.trial.sites.all()))
    rows = {row["name"]: row for row in report["groups"]}
    assert (rows["Monday group"]["score"], rows["Monday group"]["band"]) == (
        Fraction(54, 13),
        "good",
    )
    assert (rows["Monday group"]["members"], rows["Monday group"]["sessions"]) == (3, 1)
    assert rows["South group"]["score"] is None
    assert [(label, n) for _, label, n in report["bands"]] == [
        ("not IMR", 0),
        ("good", 1),
        ("high", 0),
    ]

    client.force_login(raters[0])
    page = client.get(reverse("exports:report_fidelity", args=[world.trial.key]))
    assert page.status_code == 200
    text = page_text(page.content)
    assert "4.15" in text and "good" in text and "South group" in text
    assert AccessLog.objects.filter(user=raters[0], target="Fidelity report").exists()


def test_the_fidelity_report_is_404_for_every_blinded_role(world, client):
    for role in [Role.TRIAL_ADMIN, Role.ASSESSOR, Role.DATA_MANAGER, Role.STATISTICIAN]:
        user = make_user(f"nofid-{role}")
        grant(user, world.trial, role)
        client.force_login(user)
        url = reverse("exports:report_fidelity", args=[world.trial.key])
        assert client.get(url).status_code == 404, role


# --- Charts -----------------------------------------------------------------------------------


def test_chart_helpers_wrap_fit_and_tick():
    assert charts.wrap("one two three four", 9) == ["one two", "three", "four"]
    assert charts.wrap("abcdefghijkl", 6) == ["abcde-", "fghij-", "kl"]
    assert (
        charts.fit("Global Assessment of Functioning", 70, 10) == "Global Asse…"
    )  # 12 characters fit in 70 px at 10 px
    assert charts.nice_ticks(17) == [0, 5, 10, 15, 20]
    assert charts.nice_ticks(3) == [0, 1, 2, 3]


def test_chart_text_is_escaped():
    svg = charts.value_bars(
        [{"label": "<b>&", "value": 0.5}],
        title="a < b",
        description="c & d",
        low=0,
        high=1,
        ticks=[0, 1],
        fmt=str,
    )
    ET.fromstring(svg)
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg
