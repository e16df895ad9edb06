"""CRF pages through HTTP: worklist, entry, conflicts, reconciliation, and blinded seats."""

import re

import pytest
from django.urls import reverse

from assessments import registry
from assessments.models import FormEntry
from imrtrial.models import Role
from tests.factories import grant, make_user

pytestmark = pytest.mark.django_db


def entry_url(trial, visit, instrument, kind="single"):
    return reverse("assessments:entry", args=[trial.key, visit.pk, instrument, kind])


def panss_post(value="3", **extra):
    data = {f"item_{i.code}": value for i in registry.get("panss").items}
    data.update(extra)
    return data


def test_the_worklist_lists_due_visits_with_their_forms(client, danish, randomized, assessor):
    client.force_login(assessor)
    page = client.get(reverse("assessments:worklist", args=[danish.key])).content.decode()
    assert randomized.participant_id in page and "Baseline" in page and "panss" in page


def test_an_assessor_enters_and_completes_a_panss(client, danish, post_visit, assessor):
    client.force_login(assessor)
    url = entry_url(danish, post_visit, "panss")
    page = client.get(url).content.decode()
    assert page.count('inputmode="numeric"') == 30 and "autofocus" in page
    response = client.post(url, panss_post(complete="1"))
    assert response.status_code == 302
    entry = FormEntry.objects.get()
    assert entry.status == "complete" and entry.scores["total"] == 90
    page = client.get(url).content.decode()
    assert "PANSS total: <strong>90</strong>" in page and "Reason for the change" in page


def test_errors_show_beside_their_items_and_nothing_is_saved(client, danish, post_visit, assessor):
    client.force_login(assessor)
    page = client.post(
        entry_url(danish, post_visit, "panss"), panss_post(item_p3="9", item_g2="x", complete="1")
    ).content.decode()
    assert "Must be from 1 to 7." in page and "Enter a whole number." in page
    assert "Nothing was saved" in page
    assert not FormEntry.objects.exists()


def test_a_tampered_post_with_extra_fields_is_refused(client, danish, post_visit, assessor):
    client.force_login(assessor)
    page = client.post(
        entry_url(danish, post_visit, "panss"), panss_post(item_arm="imr", complete="1")
    ).content.decode()
    assert "Unexpected field" in page and not FormEntry.objects.exists()


def test_a_stale_page_cannot_overwrite_a_newer_save(client, danish, post_visit, assessor):
    client.force_login(assessor)
    url = entry_url(danish, post_visit, "panss")
    client.post(url, panss_post(draft="1"))
    client.post(url, panss_post("4", version="1", draft="1"))
    page = client.post(url, panss_post("5", version="1", draft="1")).content.decode()
    assert "Someone else saved this form" in page
    assert FormEntry.objects.get().values["p1"] == 4


def test_blinded_roles_never_see_the_arm_on_crf_pages(
    client, danish, post_visit, assessor, data_manager
):
    arms = list(danish.arms.values_list("label", flat=True))
    for user in (assessor, data_manager):
        client.force_login(user)
        for url in [
            reverse("assessments:visit", args=[danish.key, post_visit.pk]),
            reverse(
                "assessments:participant_detail",
                args=[danish.key, post_visit.participant.participant_id],
            ),
        ]:
            text = re.sub(r"<[^>]+>", " ", client.get(url).content.decode())
            for label in arms:
                assert label not in text


def test_staff_forms_are_404_for_the_assessor(client, danish, post_visit, assessor):
    client.force_login(assessor)
    assert client.get(entry_url(danish, post_visit, "imrs_s")).status_code == 404
    other = make_user("stranger")
    grant(other, danish, Role.FIDELITY_RATER)
    client.force_login(other)
    assert client.get(entry_url(danish, post_visit, "panss")).status_code == 404
    assert client.get(reverse("assessments:worklist", args=[danish.key])).status_code == 404


def test_a_visit_at_another_site_is_404(client, danish, post_visit):
    other_site = danish.sites.exclude(pk=post_visit.participant.site_id).first()
    elsewhere = make_user("elsewhere-assessor")
    grant(elsewhere, danish, Role.ASSESSOR, other_site)
    client.force_login(elsewhere)
    assert (
        client.get(reverse("assessments:visit", args=[danish.key, post_visit.pk])).status_code
        == 404
    )
    assert client.get(entry_url(danish, post_visit, "panss")).status_code == 404
