"""The two trials' published flows, rebuilt through the product's own services and read back
from the CONSORT report box by box (DOMAIN.md 6.1 and 6.2).

Danish: 202 randomized (100 IMR / 102 TAU); excluded straight after randomization: 1 IMR (the
only person in an IMR group: a decision of the research group), 2 TAU withdrew consent, 1 TAU
did not meet the diagnostic criteria; 99 / 99 intention to treat; at post-treatment 26 IMR and
11 TAU took part in no assessment, among them the 3 deaths (one suicide, TAU; two natural, one
per arm); GAF-F, the primary outcome, analysed for 72 / 81 (complete cases), so 1 IMR and 7 TAU
were assessed without a GAF-F.

Dutch: 187 randomized (116 IMR + CAU / 71 CAU); the IMRS client version, the primary outcome,
on record for 99 / 58 at T2 and 104 / 61 at T3 (Table 3); the rest lost at each timepoint.

The arms come from an uploaded allocation list, so the published split is reproduced exactly
through the randomize service itself. Visits are moved back in time after randomization, so
the windows have closed by today.
"""

import datetime

import pytest
from django.db.models import F
from django.utils import timezone

from assessments import services as crf
from assessments.models import Death, ExclusionAfterRandomization, Visit
from exports import reports
from imrtrial.models import Participant, Role, Timepoint, Trial
from randomization import listing
from randomization import services as desk
from tests.factories import load_preset, make_person, make_ready_participant

Category = ExclusionAfterRandomization.Category
Because = Visit.MissedBecause


def randomize_from_list(preset, arms, *, days_ago):
    """The preset trial randomizing `arms` (a list of arm codes, in order) at its first site,
    everyone randomized `days_ago` days before today. Returns (trial, {arm: [participants]})."""
    trial = load_preset(preset)
    Trial.objects.filter(pk=trial.pk).update(
        method=Trial.Method.UPLOADED_LIST, status=Trial.Status.SETUP
    )
    trial.refresh_from_db()
    site = trial.sites.order_by("code").first()
    coordinator = make_person(trial, Role.COORDINATOR, site)
    first = make_ready_participant(trial, coordinator, site=site)
    stratum = desk.stratum_key(first, [(f.code, f.from_site) for f in trial.factors.all()])
    rows = "".join(f"{stratum},{slot},{arm}\n" for slot, arm in enumerate(arms, start=1))
    assert listing.import_list(trial, "stratum,slot,arm\n" + rows) == len(arms)
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.OPEN)
    trial.refresh_from_db()
    by_arm = {}
    for i in range(len(arms)):
        participant = (
            Participant.objects.get(pk=first.pk)  # made while the trial was in set-up
            if i == 0
            else make_ready_participant(trial, coordinator, site=site)
        )
        allocation = desk.randomize(participant, by=coordinator)
        by_arm.setdefault(allocation.arm.code, []).append(allocation.participant)
    back = datetime.timedelta(days=days_ago)
    Participant.objects.filter(trial=trial).update(randomized_on=F("randomized_on") - back)
    Visit.objects.filter(participant__trial=trial).exclude(
        timepoint__anchor=Timepoint.Anchor.ENROLMENT
    ).update(
        target_date=F("target_date") - back,
        window_start=F("window_start") - back,
        window_end=F("window_end") - back,
    )
    for participants in by_arm.values():
        for participant in participants:
            participant.refresh_from_db()
    return trial, by_arm


def visit(participant, timepoint):
    return Visit.objects.get(participant=participant, timepoint__code=timepoint)


def flow(trial, view):
    sites = list(trial.sites.all())
    return reports.consort(trial, sites=sites, view=view, today=timezone.localdate())


def miss(people, timepoint, reasons, *, by):
    """Mark the visits missed, `reasons` [(Visit.MissedBecause, n)] in turn."""
    people = iter(people)
    for because, n in reasons:
        for _ in range(n):
            crf.mark_missed(
                visit(next(people), timepoint), by=by, reason="as reported", because=because
            )


def at(column, timepoint_code):
    return next(t for t in column["timepoints"] if t["code"] == timepoint_code)


@pytest.fixture
def danish_as_published(db):
    # 100 IMR and 102 TAU, interleaved as a permuted-block list would be.
    arms = ["imr", "tau"] * 100 + ["tau", "tau"]
    trial, by_arm = randomize_from_list("danish", arms, days_ago=320)
    imr, tau = by_arm["imr"], by_arm["tau"]
    assert (len(imr), len(tau)) == (100, 102)
    admin = make_person(trial, Role.TRIAL_ADMIN, username="steering")
    assessor = make_person(trial, Role.ASSESSOR, username="rater")
    dm = make_person(trial, Role.DATA_MANAGER, username="dm")
    on = timezone.localdate() - datetime.timedelta(days=315)

    def exclude(participant, category):
        crf.exclude_after_randomization(
            participant,
            category,
            by=admin,
            decided_by="The research group",
            excluded_on=on,
            reason="as published",
        )

    exclude(imr[0], Category.RESEARCH_GROUP)  # the only person in an IMR group
    exclude(tau[0], Category.WITHDREW_CONSENT)
    exclude(tau[1], Category.WITHDREW_CONSENT)
    exclude(tau[2], Category.INELIGIBLE)
    imr, tau = imr[1:], tau[3:]  # 99 and 99

    died = timezone.localdate() - datetime.timedelta(days=200)
    crf.record_death(imr[0], by=admin, died_on=died, cause=Death.Cause.NATURAL)
    crf.record_death(tau[0], by=admin, died_on=died, cause=Death.Cause.SUICIDE)
    crf.record_death(tau[1], by=admin, died_on=died, cause=Death.Cause.NATURAL)
    imr, tau = imr[1:], tau[2:]  # 98 and 97 alive

    def gaf(participant, instrument="gaf_f"):
        crf.save_entry(
            visit(participant, "post"),
            instrument,
            {instrument: "55"},
            by=assessor,
            kind="single",
            complete=True,
        )

    for participant in imr[:72] + tau[:81]:
        gaf(participant)
    for participant in imr[72:73] + tau[81:88]:
        gaf(participant, "gaf_s")  # assessed, but no GAF-F
    lost = {
        "imr": [(Because.DECLINED, 10), (Because.UNREACHABLE, 8), (Because.MOVED, 4)],
        "tau": [(Because.DECLINED, 4), (Because.UNREACHABLE, 3), (Because.MOVED, 2)],
    }
    lost["imr"] += [(Because.TOO_ILL, 3)]
    miss(imr[73:], "post", lost["imr"], by=dm)
    miss(tau[88:], "post", lost["tau"], by=dm)
    return trial


def test_the_danish_flow_is_the_published_one_in_every_view(danish_as_published):
    trial = danish_as_published
    imr, tau = flow(trial, reports.ARMS)["columns"]  # the intervention arm first
    assert (imr["allocated"], tau["allocated"]) == (100, 102)
    assert (imr["excluded"], tau["excluded"]) == (1, 3)
    assert imr["excluded_by"] == {
        "withdrew_consent": 0,
        "ineligible": 0,
        "research_group": 1,
        "in_error": 0,
    }
    assert tau["excluded_by"] == {
        "withdrew_consent": 2,
        "ineligible": 1,
        "research_group": 0,
        "in_error": 0,
    }
    assert (imr["itt"], tau["itt"]) == (99, 99)
    assert (imr["died"], tau["died"]) == (1, 2)
    assert tau["died_by"]["suicide"] == 1 and tau["died_by"]["natural"] == 1
    post = at(imr, "post")["counts"], at(tau, "post")["counts"]
    assert [n[reports.ANALYSED] for n in post] == [72, 81]
    assert [n[reports.NO_PRIMARY] for n in post] == [1, 7]
    # Took part in no post-treatment assessment: 26 and 11, deaths included.
    assert [n[reports.MISSED] + n[reports.DIED] for n in post] == [26, 11]
    assert at(imr, "post")["lost_by"]["too_ill"] == 3
    assert sum(at(tau, "post")["lost_by"].values()) == 9
    for n in post:
        assert sum(n.values()) == 99  # each of the intention-to-treat population once

    # The diagram draws those numbers, and names the primary outcome.
    diagram = reports.consort_diagram(flow(trial, reports.ARMS), trial)
    text = "\n".join(
        line for stage in diagram["stages"] for box in stage["boxes"] if box for _, line in box
    )
    assert "Intention-to-treat population (n=99)" in text
    assert "Analysed for the primary outcome, GAF-F (complete cases)" in text
    assert "Post-treatment (9 months) (n=72)" in text and "(n=81)" in text
    assert "Died during follow-up (n=2)" in text and "Suicide (n=1)" in text
    assert "Decision of the research group (n=1)" in text

    # By neutral code and pooled: the same people, without the arm-only facts (one build of
    # the 202 serves both: it is the slowest set-up of the suite).
    by_code = flow(trial, reports.CODES)["columns"]
    pooled = flow(trial, reports.POOLED)["columns"][0]
    assert sorted(c["itt"] for c in by_code) == [99, 99]
    assert sorted(at(c, "post")["counts"][reports.ANALYSED] for c in by_code) == [72, 81]
    assert (pooled["allocated"], pooled["excluded"], pooled["itt"], pooled["died"]) == (
        202,
        4,
        198,
        3,
    )
    assert at(pooled, "post")["counts"][reports.ANALYSED] == 153
    for column in [*by_code, pooled]:
        assert "excluded_reasons" not in column and "intervention" not in column
    # No typed reason reaches a blinded view: "as published" was typed for every exclusion.
    diagram = reports.consort_diagram(flow(trial, reports.CODES), trial)
    assert "as published" not in repr(diagram)


def test_the_dutch_flow_is_the_published_one(db):
    arms = ["imr", "imr", "imr", "cau", "cau"] * 35 + ["imr"] * 11 + ["cau"]  # 3:2 blocks
    trial, by_arm = randomize_from_list("dutch", arms, days_ago=600)
    imr, cau = by_arm["imr"], by_arm["cau"]
    assert (len(imr), len(cau)) == (116, 71)
    assessor = make_person(trial, Role.ASSESSOR, username="rater")
    dm = make_person(trial, Role.DATA_MANAGER, username="dm-nl")
    values = {f"i{i}": "3" for i in range(1, 16)}

    def imrs(people, timepoint):
        for participant in people:
            crf.save_entry(
                visit(participant, timepoint),
                "imrs_client",
                values,
                by=assessor,
                kind="single",
                complete=True,
            )

    imrs(imr[:99], "t2")
    imrs(cau[:58], "t2")
    imrs(imr[12:], "t3")  # 104
    imrs(cau[10:], "t3")  # 61
    miss(imr[99:], "t2", [(Because.UNREACHABLE, 17)], by=dm)
    miss(cau[58:], "t2", [(Because.DECLINED, 13)], by=dm)
    miss(imr[:12], "t3", [(Because.UNREACHABLE, 12)], by=dm)
    miss(cau[:10], "t3", [(Because.DECLINED, 10)], by=dm)

    imr_column, cau_column = flow(trial, reports.ARMS)["columns"]
    assert (imr_column["itt"], cau_column["itt"]) == (116, 71)
    for timepoint, analysed, lost in (("t2", (99, 58), (17, 13)), ("t3", (104, 61), (12, 10))):
        counts = at(imr_column, timepoint)["counts"], at(cau_column, timepoint)["counts"]
        assert tuple(n[reports.ANALYSED] for n in counts) == analysed
        assert tuple(n[reports.MISSED] for n in counts) == lost
    assert flow(trial, reports.ARMS)["primary"] == "IMRS mean item score (primary)"
