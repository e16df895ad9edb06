"""The data manager's queue (counts per site, query ageing) and the lock pages: the database
lock refused while something blocks it, casebook and database lock and unlock with a reason
that the audit trail shows. Plus the small fixes of the entry pages."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments import registry
from assessments.models import DataQuery, FormEntry, Visit
from imrtrial.models import Participant
from imrtrial.models import Trial as TrialModel
from tests.assessments.test_dashboard import K, S, Trial

pytestmark = pytest.mark.django_db


@pytest.fixture
def t():
    return Trial()


def test_the_queue_counts_what_waits_per_site(client, t):
    north, south = t.participant(), t.participant(site=t.south)
    t.entry(north, "csq8", K.FIRST)
    t.entry(north, "csq8", K.SECOND, by=t.other)  # to reconcile
    entry = t.entry(south, "gaf_f")  # to verify
    t.entry(south, "gaf_f", tp="post")  # to verify
    DataQuery.objects.create(
        participant=south,
        visit=entry.visit,
        entry=entry,
        category="range",
        status="answered",
        opened_by=t.dm,
        opened_at=timezone.now() - datetime.timedelta(days=20),
    )  # to close; the entry is not to verify while its query waits
    Visit.objects.filter(participant=north, timepoint=t.post).update(
        window_end=t.today - datetime.timedelta(days=1)
    )  # overdue
    client.force_login(t.dm)
    response = client.get(reverse("assessments:queue", args=[t.trial.key]))
    assert response.status_code == 200
    rows = {row["site"].code: row for row in response.context["site_rows"]}
    # reconcile, verify, answered, ready to lock, overdue
    assert rows["north"]["counts"] == [1, 0, 0, 0, 1]
    assert rows["south"]["counts"] == [0, 1, 1, 0, 0]
    assert rows["south"]["ageing"] == [0, 0, 1, 0]  # 20 days open
    html = response.content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and "<desc" in html
    visit = north.visits.get(timepoint=t.baseline)
    assert reverse("assessments:reconcile", args=[t.trial.key, visit.pk, "csq8"]) in html


def test_a_casebook_with_nothing_left_is_ready_to_lock(client, t):
    ready, busy = t.participant(), t.participant()
    for p in (ready, busy):
        Participant.objects.filter(pk=p.pk).update(randomized_on=t.today)
        t.entry(p, "gaf_f", status=S.VERIFIED)
    Visit.objects.filter(participant__in=[ready, busy]).update(completed_on=t.today)
    t.entry(busy, "imrs_s", status=S.DRAFT)
    client.force_login(t.dm)
    response = client.get(reverse("assessments:queue", args=[t.trial.key]))
    assert [p.pk for p in response.context["ready"]] == [ready.pk]


def lock_url(t):
    return reverse("assessments:database_lock", args=[t.trial.key])


def test_the_database_lock_is_refused_while_something_blocks_it(client, t):
    p = t.participant()
    t.entry(p, "gaf_f", status=S.DRAFT)
    t.trial.status = TrialModel.Status.CLOSED
    t.trial.save(update_fields=["status"])
    client.force_login(t.dm)
    page = client.get(lock_url(t)).content.decode()
    assert "1 forms in draft" in page
    response = client.post(lock_url(t), {"action": "lock", "reason": "end of follow-up"})
    assert response.status_code == 200 and "Nothing was changed" in response.content.decode()
    t.trial.refresh_from_db()
    assert t.trial.status == TrialModel.Status.CLOSED


def test_the_database_is_locked_and_unlocked_with_reasons_in_the_audit_trail(client, t):
    t.trial.status = TrialModel.Status.CLOSED
    t.trial.save(update_fields=["status"])
    client.force_login(t.dm)
    assert client.post(lock_url(t), {"action": "lock", "reason": ""}).status_code == 200
    response = client.post(lock_url(t), {"action": "lock", "reason": "last visit done"})
    assert response.status_code == 302
    t.trial.refresh_from_db()
    assert t.trial.status == TrialModel.Status.LOCKED
    page = client.get(lock_url(t)).content.decode()
    assert "Unlock the database" in page and "exceptional" in page
    client.post(lock_url(t), {"action": "unlock", "reason": "a site found lost forms"})
    t.trial.refresh_from_db()
    assert t.trial.status == TrialModel.Status.CLOSED
    trail = client.get(reverse("audit_trail", args=[t.trial.key])).content.decode()
    assert "database locked: last visit done" in trail
    assert "database UNLOCKED: a site found lost forms" in trail


def casebook_url(t, p):
    return reverse("assessments:casebook_lock", args=[t.trial.key, p.participant_id])


def test_a_casebook_is_locked_and_unlocked_from_the_participant_page(client, t):
    p = t.participant()
    client.force_login(t.dm)
    detail = reverse("assessments:participant_detail", args=[t.trial.key, p.participant_id])
    assert "Lock the casebook" in client.get(detail).content.decode()
    client.post(casebook_url(t, p), {"action": "lock", "reason": ""})
    p.refresh_from_db()
    assert p.casebook_locked_at is None  # a reason is required
    client.post(casebook_url(t, p), {"action": "lock", "reason": "clean"})
    p.refresh_from_db()
    assert p.casebook_locked_at is not None
    page = client.get(detail).content.decode()
    assert "Unlock the casebook" in page and "The casebook of" in page
    status = client.get(reverse("assessments:status", args=[t.trial.key])).content.decode()
    assert "(casebook locked)" in status
    client.post(casebook_url(t, p), {"action": "unlock", "reason": "query from monitor"})
    p.refresh_from_db()
    assert p.casebook_locked_at is None
    trail = client.get(reverse("audit_trail", args=[t.trial.key])).content.decode()
    assert "casebook locked: clean" in trail and "casebook unlocked: query from monitor" in trail


def test_a_casebook_with_a_draft_is_not_locked(client, t):
    p = t.participant()
    t.entry(p, "gaf_f", status=S.DRAFT)
    client.force_login(t.dm)
    response = client.post(casebook_url(t, p), {"action": "lock", "reason": "clean"}, follow=True)
    assert "Resolve first: 1 forms in draft" in response.content.decode()
    p.refresh_from_db()
    assert p.casebook_locked_at is None


def test_an_assessor_cannot_lock(client, t):
    p = t.participant()
    client.force_login(t.assessor)
    assert client.post(casebook_url(t, p), {"action": "lock", "reason": "x"}).status_code == 404
    assert client.get(lock_url(t)).status_code == 404
    detail = reverse("assessments:participant_detail", args=[t.trial.key, p.participant_id])
    assert "Lock the casebook" not in client.get(detail).content.decode()


# --- Small fixes of the entry pages -----------------------------------------------------------


def entry_url(t, p, instrument, kind):
    visit = p.visits.get(timepoint=t.baseline)
    return reverse("assessments:entry", args=[t.trial.key, visit.pk, instrument, kind])


def test_the_second_entry_page_refuses_the_first_enterer_before_typing(client, t):
    p = t.participant()
    client.force_login(t.assessor)
    response = client.get(entry_url(t, p, "csq8", "second"), follow=True)
    assert "after the first entry" in response.content.decode()  # no first entry yet
    t.entry(p, "csq8", K.FIRST, by=t.assessor)
    response = client.get(entry_url(t, p, "csq8", "second"))
    assert response.status_code == 302
    assert "you made the first" in client.get(response["Location"]).content.decode()
    client.force_login(t.other)
    assert client.get(entry_url(t, p, "csq8", "second")).status_code == 200


def test_verify_says_what_it_verified(client, t):
    p = t.participant()
    entry = t.entry(p, "gaf_f")
    client.force_login(t.dm)
    url = reverse("assessments:entry_status", args=[t.trial.key, entry.visit_id, entry.pk])
    page = client.post(url, {"status": "verified"}, follow=True).content.decode()
    assert f"{registry.get('gaf_f').name} at Baseline is verified." in page
    entry.refresh_from_db()
    assert entry.status == FormEntry.Status.VERIFIED


def test_after_a_failed_save_the_focus_is_on_the_first_wrong_item(client, t):
    p = t.participant()
    client.force_login(t.assessor)
    instrument = registry.get("csq8")
    data = {f"item_{item.code}": "2" for item in instrument.items}
    wrong = [item.code for item in instrument.items][2:4]
    for code in wrong:
        data[f"item_{code}"] = "99"
    data["complete"] = "1"
    page = client.post(entry_url(t, p, "csq8", "first"), data).content.decode()
    assert page.count("autofocus") == 1
    focused = page.split("autofocus")[0].rsplit("<input", 1)[1]
    assert f'id="id_item_{wrong[0]}"' in focused


def test_a_reason_with_a_nul_character_is_refused_not_a_server_error(client, t):
    p = t.participant()
    client.force_login(t.dm)
    response = client.post(casebook_url(t, p), {"action": "lock", "reason": "a\x00b"}, follow=True)
    assert response.status_code == 200 and "cannot be stored" in response.content.decode()
    visit = p.visits.get(timepoint=t.baseline)
    url = reverse("assessments:manage", args=[t.trial.key, visit.pk])
    response = client.post(url, {"action": "missed", "reason": "a\x00b"})
    assert response.status_code == 302
    assert not Visit.objects.get(pk=visit.pk).missed


def test_a_trial_without_a_schedule_filters_to_nothing(client, t):
    from imrtrial.models import Timepoint

    Timepoint.objects.filter(trial=t.trial).delete()
    from tests.factories import make_participant

    make_participant(t.trial)
    client.force_login(t.dm)
    url = reverse("assessments:status", args=[t.trial.key])
    for params in ({"state": "draft"}, {"mine": "1"}):
        assert "No participant matches" in client.get(url, params).content.decode()
