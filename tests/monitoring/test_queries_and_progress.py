"""Monitors open data queries through assessments.queries (same addressee, same arm-word
refusal) and manage the ones they opened; the SDV progress page counts per site and visit."""

import datetime

import pytest
from django.utils import timezone

from assessments import queries
from assessments import services as crf
from assessments.models import DataQuery, FormEntry
from imrtrial.errors import Refused
from imrtrial.models import Role
from monitoring import progress
from monitoring.models import SdvPlan
from monitoring.services import mark_source_verified
from tests.security.conftest import GROUP_NAME

TODAY = timezone.localdate


def gaf(participant):
    return FormEntry.objects.get(participant=participant, instrument="gaf_f", timepoint="baseline")


def test_a_monitor_opens_a_query_that_reaches_whoever_entered_the_form(world):
    entry = gaf(world.tau)
    query = queries.open_query(
        entry.visit,
        entry,
        "gaf_f",
        by=world.users[Role.MONITOR],
        category="range",
        text="The source document says 52.",
    )
    assert query.addressed_to == entry.entered_by == world.users[Role.ASSESSOR]
    assert query in queries.waiting_on(world.users[Role.ASSESSOR], world.trial, [world.north])


@pytest.mark.parametrize(
    "text, word",
    [
        ("Is this the IMR + TAU participant?", "'IMR + TAU'"),
        ("Check with the IMR staff", "'IMR'"),
        (f"Ask {GROUP_NAME.lower()} about it", "person or group"),
    ],
)
def test_a_monitors_message_naming_an_arm_is_refused(world, text, word):
    entry = gaf(world.tau)
    before = DataQuery.objects.count()
    with pytest.raises(Refused, match="Not sent") as refused:
        queries.open_query(
            entry.visit, entry, by=world.users[Role.MONITOR], category="other", text=text
        )
    assert word in str(refused.value)
    assert DataQuery.objects.count() == before


def test_a_monitor_closes_their_own_query_but_not_a_data_managers(world):
    monitor, assessor = world.users[Role.MONITOR], world.users[Role.ASSESSOR]
    entry = gaf(world.tau)
    mine = queries.open_query(
        entry.visit, entry, by=monitor, category="other", text="Date of the interview?"
    )
    queries.answer_query(mine, by=assessor, text="As on the source.")
    queries.close_query(mine, by=monitor, text="Thank you.")
    theirs = world.extra["visit_queries"][1]  # opened by the data manager
    assert queries.may_see(monitor, theirs) and not queries.may_act(monitor, theirs)
    with pytest.raises(Refused, match="monitor who opened it"):
        queries.cancel_query(theirs, by=monitor, text="Not needed.")
    # Another site's monitor neither opens nor sees.
    south = world.south_tau.visits.get(timepoint__code="baseline")
    north_monitor = world.users["monitor-north"]
    with pytest.raises(Refused):
        queries.open_query(south, by=north_monitor, category="other", text="Date?")


def test_a_monitor_opens_a_query_from_the_pages(world, client):
    key = world.trial.key
    entry = gaf(world.tau)
    client.force_login(world.users[Role.MONITOR])
    form = client.get(f"/trials/{key}/sdv/entries/{entry.pk}/").content.decode()
    new = f"/trials/{key}/visits/{entry.visit_id}/queries/new/"
    assert f"{new}?entry={entry.pk}&amp;item=gaf_f" in form
    response = client.post(
        new, {"entry": entry.pk, "item": "gaf_f", "category": "range", "text": "Source says 52?"}
    )
    assert response.status_code == 302
    query = DataQuery.objects.get(opened_by=world.users[Role.MONITOR])
    assert client.get(f"/trials/{key}/queries/").status_code == 200
    assert f"#{query.pk}" in client.get(f"/trials/{key}/queries/").content.decode()


def test_the_progress_counts_required_forms_per_site_and_visit(world, client):
    monitor = world.users[Role.MONITOR]
    # The data of record: GAF-F at baseline of the two North participants and the South one.
    mark_source_verified(gaf(world.tau), by=monitor, checked_on=TODAY())
    mark_source_verified(gaf(world.imr), by=monitor, checked_on=TODAY())
    crf.save_entry(
        gaf(world.imr).visit,
        "gaf_f",
        {"gaf_f": "44"},
        by=world.users[Role.ASSESSOR],
        kind="single",
        reason="typo",
    )
    counts = progress.counts(world.trial, [world.north, world.south])
    north = counts[(world.north.pk, "baseline")]
    assert (north["required"], north["verified"], north["cleared"]) == (2, 1, 1)
    south = counts[(world.south.pk, "baseline")]
    # South's was verified when the world was built.
    assert (south["required"], south["verified"], south["cleared"]) == (1, 1, 0)
    client.force_login(monitor)
    page = client.get(f"/trials/{world.trial.key}/sdv/").content.decode()
    assert "North CMHC: 2 required, 1 source-verified, 1 cleared by a change, 0 not yet" in page
    assert "<svg" in page and "<title" in page
    # A data manager of North only sees North's.
    client.force_login(world.users["data_manager-north"])
    page = client.get(f"/trials/{world.trial.key}/sdv/").content.decode()
    assert "North CMHC" in page and "South CMHC" not in page
    # The form list shows the states.
    client.force_login(monitor)
    listed = client.get(f"/trials/{world.trial.key}/sdv/forms/?state=cleared").content.decode()
    assert f"SDV cleared by a change on {TODAY():%Y-%m-%d}" in listed
    assert world.imr.participant_id in listed and world.tau.participant_id not in listed


def test_a_form_outside_the_plan_may_be_verified_and_is_not_counted(world):
    SdvPlan.objects.create(trial=world.trial, instruments=["csq8"])
    monitor = world.users[Role.MONITOR]
    mark_source_verified(gaf(world.tau), by=monitor, checked_on=TODAY())
    north = progress.counts(world.trial, [world.north])[(world.north.pk, "baseline")]
    assert north["required"] == 0 and north["verified"] == 0 and north["outside"] == 1


def test_the_source_date_may_be_before_today(world):
    mark = mark_source_verified(
        gaf(world.tau), by=world.users[Role.MONITOR], checked_on=TODAY() - datetime.timedelta(7)
    )
    assert mark.source_checked_on < TODAY()
