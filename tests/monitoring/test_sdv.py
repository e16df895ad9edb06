"""Source data verification: a monitor marks a form that is the data of record, with the date the
source was checked; a change of its values afterwards clears the mark, whatever path wrote it;
the refusals; the monitor's read-only pages."""

import datetime

import pytest
from django.apps import apps
from django.utils import timezone

from assessments import queries
from assessments import services as crf
from assessments.models import FormEntry
from imrtrial.errors import Refused
from imrtrial.models import Participant, Role, Trial
from monitoring import progress
from monitoring.models import SourceVerification
from monitoring.services import mark_source_verified

TODAY = timezone.localdate


def snapshot():
    labels = {"imrtrial", "randomization", "assessments", "fidelity", "monitoring"}
    return {
        m._meta.label: m._default_manager.count()
        for m in apps.get_models()
        if m._meta.app_label in labels and m._meta.model_name != "accesslog"
    }


def refused_with_nothing_saved(call):
    before = snapshot()
    with pytest.raises(Refused) as refused:
        call()
    assert snapshot() == before
    return str(refused.value)


def gaf(participant, timepoint="baseline"):
    return FormEntry.objects.get(participant=participant, instrument="gaf_f", timepoint=timepoint)


def monitor(world):
    return world.users[Role.MONITOR]


def change_gaf(world, participant, value):
    visit = participant.visits.get(timepoint__code="baseline")
    return crf.save_entry(
        visit,
        "gaf_f",
        {"gaf_f": value},
        by=world.users[Role.ASSESSOR],
        kind="single",
        reason="corrected from the source",
    )


def test_a_monitor_marks_a_form_with_the_date_the_source_was_checked(world):
    entry = gaf(world.tau)
    checked = TODAY() - datetime.timedelta(days=3)
    mark = mark_source_verified(entry, by=monitor(world), checked_on=checked)
    assert mark.source_checked_on == checked and mark.by == monitor(world)
    sdv = progress.state_of(entry)
    assert sdv.state == progress.VERIFIED
    assert sdv.label == f"Source-verified (source checked on {checked:%Y-%m-%d})"


def test_a_change_through_save_entry_clears_the_mark_with_the_date_of_the_change(world):
    entry = gaf(world.tau)
    mark_source_verified(entry, by=monitor(world), checked_on=TODAY())
    change_gaf(world, world.tau, "61")
    sdv = progress.state_of(gaf(world.tau))
    assert sdv.state == progress.CLEARED
    assert sdv.label == f"SDV cleared by a change on {TODAY():%Y-%m-%d}"
    # The mark itself is kept, and the form can be verified again.
    assert SourceVerification.objects.filter(entry=entry).count() == 1
    mark_source_verified(gaf(world.tau), by=monitor(world), checked_on=TODAY())
    assert progress.state_of(gaf(world.tau)).state == progress.VERIFIED


def test_a_save_with_the_same_values_keeps_the_mark_and_a_change_and_back_clears_it(world):
    entry = gaf(world.tau)
    value = str(entry.values["gaf_f"])
    mark_source_verified(entry, by=monitor(world), checked_on=TODAY())
    change_gaf(world, world.tau, value)  # saved again, nothing changed
    assert progress.state_of(gaf(world.tau)).state == progress.VERIFIED
    change_gaf(world, world.tau, "40")
    change_gaf(world, world.tau, value)  # back to what was checked: checked against 40 since?
    assert progress.state_of(gaf(world.tau)).state == progress.CLEARED


def test_a_query_answer_that_corrects_the_value_clears_the_mark(world):
    entry = gaf(world.tau)
    mark_source_verified(entry, by=monitor(world), checked_on=TODAY())
    query = queries.open_query(
        entry.visit, entry, "gaf_f", by=monitor(world), category="range", text="Source says 62?"
    )
    queries.answer_query(
        query, by=world.users[Role.ASSESSOR], text="Yes, corrected.", values={"gaf_f": "62"}
    )
    assert gaf(world.tau).values["gaf_f"] == 62
    assert progress.state_of(gaf(world.tau)).state == progress.CLEARED


def test_a_reconciled_form_is_verified_and_a_correction_by_query_clears_it(world):
    dm = world.users[Role.DATA_MANAGER]
    visit = world.tau.visits.get(timepoint__code="baseline")
    final = crf.reconcile(
        visit,
        "csq8",
        {f"c{i}": "1" for i in range(1, 9)},
        by=dm,
        reasons={f"c{i}": "as on paper" for i in range(1, 9)},
    )
    mark_source_verified(final, by=monitor(world), checked_on=TODAY())
    assert progress.state_of(final).state == progress.VERIFIED
    query = queries.open_query(
        visit, final, "c1", by=monitor(world), category="inconsistent", text="Paper says 2?"
    )
    queries.answer_query(
        query, by=world.users[Role.ASSESSOR], text="Paper says 2.", values={"c1": "2"}
    )
    assert progress.state_of(FormEntry.objects.get(pk=final.pk)).state == progress.CLEARED


def test_an_erasure_of_the_values_clears_the_mark(world):
    entry = gaf(world.tau)
    mark_source_verified(entry, by=monitor(world), checked_on=TODAY())
    crf.withdraw(
        world.tau,
        3,
        by=world.users[Role.COORDINATOR],
        reason="consent withdrawn",
        withdrawn_on=TODAY(),
    )
    assert progress.state_of(gaf(world.tau)).state == progress.CLEARED


def test_drafts_first_and_second_entries_are_not_verified(world):
    post = world.tau.visits.get(timepoint__code="post")
    draft = crf.save_entry(
        post, "gaf_f", {"gaf_f": "50"}, by=world.users[Role.ASSESSOR], kind="single"
    )
    message = refused_with_nothing_saved(
        lambda: mark_source_verified(draft, by=monitor(world), checked_on=TODAY())
    )
    assert "draft" in message
    first = FormEntry.objects.get(participant=world.tau, instrument="csq8", kind="first")
    refused_with_nothing_saved(
        lambda: mark_source_verified(first, by=monitor(world), checked_on=TODAY())
    )


def test_only_a_monitor_of_the_participants_site_marks(world):
    south_entry = gaf(world.south_tau)
    message = refused_with_nothing_saved(
        lambda: mark_source_verified(
            south_entry, by=world.users["monitor-north"], checked_on=TODAY()
        )
    )
    assert "monitor" in message
    for role in (Role.DATA_MANAGER, Role.ASSESSOR, Role.INVESTIGATOR, Role.TRIAL_ADMIN):
        refused_with_nothing_saved(
            lambda role=role: mark_source_verified(
                gaf(world.tau), by=world.users[role], checked_on=TODAY()
            )
        )


def test_the_source_date_is_not_in_the_future_and_a_valid_mark_is_not_repeated(world):
    entry = gaf(world.tau)
    message = refused_with_nothing_saved(
        lambda: mark_source_verified(
            entry, by=monitor(world), checked_on=TODAY() + datetime.timedelta(days=1)
        )
    )
    assert "future" in message
    mark_source_verified(entry, by=monitor(world), checked_on=TODAY())
    assert "already" in refused_with_nothing_saved(
        lambda: mark_source_verified(entry, by=monitor(world), checked_on=TODAY())
    )


def test_marking_is_refused_while_the_database_the_casebook_or_the_form_is_locked(world):
    entry = gaf(world.tau)

    def mark():
        return mark_source_verified(entry, by=monitor(world), checked_on=TODAY())

    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
    assert "database is locked" in refused_with_nothing_saved(mark)
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.OPEN)
    Participant.objects.filter(pk=world.tau.pk).update(casebook_locked_at=timezone.now())
    assert "casebook" in refused_with_nothing_saved(mark)
    Participant.objects.filter(pk=world.tau.pk).update(casebook_locked_at=None)
    FormEntry.objects.filter(pk=entry.pk).update(status=FormEntry.Status.LOCKED)
    assert "form is locked" in refused_with_nothing_saved(mark)


# --- Pages --------------------------------------------------------------------------------------


def entry_url(world, entry):
    return f"/trials/{world.trial.key}/sdv/entries/{entry.pk}/"


def test_a_monitor_marks_on_the_form_page_and_sees_the_clearing_there(world, client):
    client.force_login(monitor(world))
    entry = gaf(world.tau)
    page = client.get(entry_url(world, entry)).content.decode()
    assert "57" in page and "Not source-verified" in page and "Date the source was checked" in page
    checked = TODAY() - datetime.timedelta(days=1)
    response = client.post(entry_url(world, entry), {"checked_on": checked.isoformat()})
    assert response.status_code == 302
    page = client.get(entry_url(world, entry)).content.decode()
    assert f"source checked on {checked:%Y-%m-%d}" in page
    change_gaf(world, world.tau, "60")
    page = client.get(entry_url(world, entry)).content.decode()
    assert f"SDV cleared by a change on {TODAY():%Y-%m-%d}" in page


def test_a_refused_mark_is_shown_on_the_page_with_nothing_saved(world, client):
    client.force_login(monitor(world))
    entry = gaf(world.tau)
    future = (TODAY() + datetime.timedelta(days=2)).isoformat()
    before = snapshot()
    response = client.post(entry_url(world, entry), {"checked_on": future})
    assert response.status_code == 200 and "future" in response.content.decode()
    assert snapshot() == before


def test_free_text_by_unblinded_staff_shows_only_as_text_exists(world, client):
    from tests.security.conftest import ADVERSE_EVENT_TEXT

    entry = world.extra["adverse_event"]
    crf.save_entry(
        entry.visit,
        "adverse_events",
        {
            "description": ADVERSE_EVENT_TEXT,
            "suicide_attempt": "no",
            "life_threatening": "no",
            "death": "no",
        },
        by=world.users[Role.FACILITATOR],
        kind="single",
        complete=True,
        reason="complete",
    )
    client.force_login(monitor(world))
    page = client.get(entry_url(world, entry)).content.decode()
    assert ADVERSE_EVENT_TEXT not in page and "not shown" in page
    assert world.users[Role.FACILITATOR].username not in page


def test_a_monitor_is_read_only_on_clinical_data(world, client):
    key, m = world.trial.key, monitor(world)
    client.force_login(m)
    visit = world.tau.visits.get(timepoint__code="baseline")
    entry = gaf(world.tau)
    base = f"/trials/{key}/visits/{visit.pk}"
    assert client.get(f"{base}/").status_code == 200
    assert client.get(f"/trials/{key}/sdv/visits/{visit.pk}/").status_code == 200
    for url in (
        f"{base}/forms/gaf_f/single/",
        f"{base}/reconcile/csq8/",
        f"{base}/manage/",
    ):
        assert client.get(url).status_code == 404, url
    verify = client.post(f"{base}/entries/{entry.pk}/status/", {"status": "verified"})
    assert verify.status_code == 404
    assert FormEntry.objects.get(pk=entry.pk).status == FormEntry.Status.COMPLETE
    # Another site's participant is not found.
    client.force_login(world.users["monitor-north"])
    south = gaf(world.south_tau)
    assert client.get(entry_url(world, south)).status_code == 404
    assert client.post(entry_url(world, south), {"checked_on": TODAY()}).status_code == 404
    south_visit = south.visit_id
    assert client.get(f"/trials/{key}/sdv/visits/{south_visit}/").status_code == 404


def test_a_data_manager_reads_the_form_page_without_the_mark(world, client):
    client.force_login(world.users[Role.DATA_MANAGER])
    entry = gaf(world.tau)
    page = client.get(entry_url(world, entry))
    assert page.status_code == 200 and "Date the source was checked" not in page.content.decode()
    assert client.post(entry_url(world, entry), {"checked_on": TODAY()}).status_code == 404
    assert not SourceVerification.objects.filter(entry=entry).exists()


def test_others_do_not_reach_the_monitoring_pages(world, client):
    key = world.trial.key
    entry = gaf(world.tau)
    urls = [
        f"/trials/{key}/sdv/",
        f"/trials/{key}/sdv/forms/",
        f"/trials/{key}/sdv/visits/{entry.visit_id}/",
        entry_url(world, entry),
    ]
    for role in (Role.ASSESSOR, Role.STATISTICIAN, Role.COORDINATOR, Role.FACILITATOR):
        client.force_login(world.users[role])
        assert [client.get(u).status_code for u in urls] == [404] * 4, role


def test_the_audit_trail_shows_the_mark_and_the_change_that_cleared_it(world, client):
    entry = gaf(world.tau)
    mark_source_verified(entry, by=monitor(world), checked_on=TODAY())
    change_gaf(world, world.tau, "63")
    client.force_login(world.users[Role.TRIAL_ADMIN])
    trail = f"/trials/{world.trial.key}/audit/?participant={world.tau.participant_id}"
    page = client.get(trail + "&kind=sdv").content.decode()
    assert f"source checked on {TODAY():%Y-%m-%d}" in page and monitor(world).username in page
    page = client.get(trail + "&kind=formentry").content.decode()
    assert "corrected from the source" in page
