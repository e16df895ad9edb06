"""Rules on the CRF entry page (warnings beside the items, saved once acknowledged, the
acknowledgement in the history) and the rules page (data managers only, Run now, the same
whatever the arms)."""

import re

import pytest
from django.urls import reverse

from assessments.models import FormEntry
from quality.models import RuleRun
from randomization.models import Allocation
from tests.factories import make_allocation, make_ready_participant

from .conftest import panss

pytestmark = pytest.mark.django_db


def entry_url(trial, participant, timepoint, instrument):
    visit = participant.visits.get(timepoint__code=timepoint)
    return reverse("assessments:entry", args=[trial.key, visit.pk, instrument, "single"])


def post_panss(client, url, values, **extra):
    data = {f"item_{k}": str(v) for k, v in values.items()}
    return client.post(url, {**data, "complete": "1", **extra})


def test_a_rule_warns_beside_its_items_and_saves_once_acknowledged(
    client, danish, randomized, assessor
):
    client.force_login(assessor)
    url = entry_url(danish, randomized, "baseline", "panss")
    response = post_panss(client, url, panss(p1=1, g9=6))
    html = response.content.decode()
    assert response.status_code == 200
    assert not FormEntry.objects.filter(instrument="panss").exists()  # nothing saved yet
    assert "P1 absent while G9 severe" in html
    assert 'id="warn_p1"' in html and 'id="warn_g9"' in html
    assert 'aria-describedby="hint_p1 warn_p1"' in html
    assert 'name="acknowledge"' in html

    response = post_panss(client, url, panss(p1=1, g9=6), acknowledge="1")
    assert response.status_code == 302
    entry = FormEntry.objects.get(instrument="panss", participant=randomized)
    assert entry.status == FormEntry.Status.COMPLETE
    reason = entry.history.first().history_change_reason
    assert "data quality warnings acknowledged: panss.delusions_vs_thought_content" in reason


def test_a_form_no_rule_flags_saves_at_once(client, danish, randomized, assessor):
    client.force_login(assessor)
    response = post_panss(client, entry_url(danish, randomized, "baseline", "panss"), panss())
    assert response.status_code == 302
    assert FormEntry.objects.get(instrument="panss").history.first().history_change_reason in (
        "",
        None,
    )


def test_a_trial_rule_across_forms_warns_when_the_second_form_is_saved(
    client, danish, randomized, assessor, save
):
    save(randomized, "baseline", "gaf_f", {"gaf_f": 20})
    client.force_login(assessor)
    url = entry_url(danish, randomized, "baseline", "gaf_s")
    html = client.post(url, {"item_gaf_s": "85", "complete": "1"}).content.decode()
    assert "GAF-S and GAF-F far apart" in html and 'id="warn_gaf_s"' in html


def page(client, trial):
    html = client.get(reverse("quality:rules", args=[trial.key])).content.decode()
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_the_rules_page_lists_every_rule_and_runs_now(
    client, danish, randomized, data_manager, save, django_capture_on_commit_callbacks
):
    save(randomized, "baseline", "gaf_f", {"gaf_f": 30})
    save(randomized, "post", "gaf_f", {"gaf_f": 85})
    client.force_login(data_manager)
    html = page(client, danish)
    for name in (
        "Required item left blank",
        "Value far outside this trial",
        "Visit done outside its window",
        "Form complete after withdrawal from follow-up",
        "GAF-S and GAF-F far apart",
        "Implausible change in GAF-F",
        "P1 absent while G9 severe",
        "Admissions without admission days",
    ):
        assert name in html
    assert "have not run yet" in html
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("quality:run_now", args=[danish.key]), {"run": "now"})
    assert response.status_code == 302
    run = RuleRun.objects.get()
    assert run.status == RuleRun.Status.DONE and run.requested_by == data_manager  # eager
    html = page(client, danish)
    row = re.search(r"Implausible change in GAF-F.*?</tr>", html, re.S).group(0)
    assert re.search(r'<td class="text-end">1</td>', row)
    assert client.get(reverse("quality:run_now", args=[danish.key])).status_code == 405


def test_the_home_page_links_the_rules_page_for_data_managers_only(
    client, danish, data_manager, assessor
):
    url = reverse("quality:rules", args=[danish.key])
    client.force_login(data_manager)
    assert url in client.get(reverse("home")).content.decode()
    client.force_login(assessor)
    assert url not in client.get(reverse("home")).content.decode()
    assert client.get(url).status_code == 404
    run_now = reverse("quality:run_now", args=[danish.key])
    assert client.post(run_now, {"run": "now"}).status_code == 404
    assert not RuleRun.objects.exists()


def test_the_rules_page_is_the_same_whatever_the_arms(
    client, danish, coordinator, data_manager, save, django_capture_on_commit_callbacks
):
    """Two participants with the same data, one in each arm; swapping the arms changes nothing
    on the page, before or after a run."""
    people = []
    for arm in ("imr", "tau"):
        p = make_ready_participant(danish, coordinator)
        make_allocation(p, arm, by=coordinator)
        from assessments.services import schedule_visits

        schedule_visits(danish)
        people.append(p)
        p.refresh_from_db()
        save(p, "baseline", "gaf_f", {"gaf_f": 20})
        save(p, "baseline", "gaf_s", {"gaf_s": 90})
    client.force_login(data_manager)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("quality:run_now", args=[danish.key]), {"run": "now"})
    assert RuleRun.objects.get().breaking["gaf_s_f_apart"] != {}
    page(client, danish)  # shows the "running" message once
    before = page(client, danish)
    a, b = (
        Allocation.objects.get(participant=people[0]),
        Allocation.objects.get(participant=people[1]),
    )
    a.arm, b.arm = b.arm, a.arm
    Allocation.objects.bulk_update([a, b], ["arm"])
    assert page(client, danish) == before
