"""The signing pages through the test client: an investigator of the site signs after
re-entering the password (and the code, when they have an authenticator); nobody else opens
the pages; the pages do not differ between the arms; the audit trail and the record status
dashboard show a signature and its invalidation."""

import re

import pytest

from assessments import services as crf
from imrtrial.models import Role
from signoff import services
from signoff.models import Signature
from tests.factories import totp_code

from .conftest import PASSWORD, entered


def url(participant, visit=None):
    trial = participant.trial
    if visit is not None:
        return f"/trials/{trial.key}/visits/{visit.pk}/sign/"
    return f"/trials/{trial.key}/participants/{participant.participant_id}/sign/"


def seen(participant, visit=None):
    """What the signing page carries: the seal of the data's digest, never the digest."""
    return services.seal(services.current_digest(participant, visit))


def post(client, participant, visit=None, **fields):
    data = {"password": PASSWORD, "agree": "on", "seen": seen(participant, visit), **fields}
    return client.post(url(participant, visit), data)


@pytest.mark.two_factor  # a password-only session: the investigator has no authenticator
def test_an_investigator_signs_the_casebook_with_the_password(client, participant, investigator):
    client.force_login(investigator)
    page = client.get(url(participant)).content.decode()
    assert Signature.MEANING_CASEBOOK in page
    assert "Global Assessment of Functioning" in page and "Inge Vestergaard" in page
    assert 'name="token"' not in page  # no authenticator: the password alone
    response = post(client, participant)
    assert response.status_code == 302
    signature = Signature.objects.get()
    assert signature.visit is None and signature.printed_name == "Inge Vestergaard"
    page = client.get(url(participant)).content.decode()
    assert "Signature: Signed" in page and "Signed by <strong>Inge Vestergaard</strong>" in page


@pytest.mark.two_factor
def test_a_wrong_password_on_the_page_signs_nothing(client, participant, baseline, investigator):
    client.force_login(investigator)
    response = post(client, participant, baseline, password="not-my-password")
    assert response.status_code == 200
    page = response.content.decode()
    assert "The password is not right. Nothing was signed." in page
    assert 'value="not-my-password"' not in page  # never sent back
    assert not Signature.objects.exists()


def test_an_enrolled_investigator_gives_the_code_and_a_wrong_code_signs_nothing(
    client, participant, baseline, investigator
):
    client.force_login(investigator)  # the suite's force_login enrols an authenticator
    assert 'name="token"' in client.get(url(participant, baseline)).content.decode()
    response = post(client, participant, baseline)  # no code
    assert response.status_code == 200 and not Signature.objects.exists()
    assert "This field is required" in response.content.decode()
    device = investigator.totpdevice_set.get()
    wrong = f"{(int(totp_code(device)) + 500_000) % 1_000_000:06d}"
    response = post(client, participant, baseline, token=wrong)
    assert "The authentication code is not right" in response.content.decode()
    assert not Signature.objects.exists()
    device.refresh_from_db()
    device.throttling_failure_count, device.throttling_failure_timestamp = 0, None
    device.save()
    response = post(client, participant, baseline, token=totp_code(device))
    assert response.status_code == 302
    assert Signature.objects.get().method == "password and authenticator code"


def test_only_an_investigator_of_the_participants_site_opens_the_pages(
    client, participant, baseline, person, data_manager, assessor
):
    other_site = participant.trial.sites.exclude(pk=participant.site_id).first()
    elsewhere = person(Role.INVESTIGATOR, other_site, first_name="O", last_name="Ther")
    monitor = person(Role.MONITOR)
    for user in (elsewhere, monitor, data_manager, assessor):
        client.force_login(user)
        for address in (url(participant), url(participant, baseline)):
            assert client.get(address).status_code == 404, (user, address)
            assert post(client, participant).status_code == 404
    assert not Signature.objects.exists()
    client.force_login(elsewhere)  # their own list, without this participant
    listed = client.get(f"/trials/{participant.trial.key}/signatures/").content.decode()
    assert participant.participant_id not in listed
    client.force_login(assessor)
    assert client.get(f"/trials/{participant.trial.key}/signatures/").status_code == 404


def _neutral(html, participant):
    html = html.replace(participant.participant_id, "P")
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    html = re.sub(r'name="seen" value="[0-9a-f]+"', "", html)  # ids differ, so digests do
    return re.sub(r"/visits/\d+/", "/visits/V/", html)


def test_the_pages_do_not_differ_between_the_arms(
    client, danish, coordinator, assessor, person, data_manager
):
    site = danish.sites.order_by("code").first()
    imr = entered(danish, coordinator, assessor, arm="imr", site=site)
    tau = entered(danish, coordinator, assessor, arm="tau", site=site)
    investigator = person(Role.INVESTIGATOR, site, first_name="Inge", last_name="V")
    client.force_login(investigator)
    pages = []
    for p in (imr, tau):
        baseline = p.visits.get(timepoint__code="baseline")
        pages.append(
            [
                _neutral(client.get(url(p)).content.decode(), p),
                _neutral(client.get(url(p, baseline)).content.decode(), p),
            ]
        )
    assert pages[0] == pages[1]
    assert "Trial staff" not in pages[0][0]  # nothing staff-rated is entered here yet


def test_who_entered_a_staff_rated_form_is_a_label(client, participant, baseline, investigator):
    """The rater of a staff-rated form may be an IMR facilitator or someone blinded: either
    way the blinded investigator reads "Trial staff", so the label tells nothing."""
    from assessments import registry
    from tests.exports.conftest import raw_values
    from tests.factories import make_person

    rater = make_person(participant.trial, Role.FACILITATOR, participant.site, "fac-rater")
    raw = raw_values(registry.get("imrs_s"))
    crf.save_entry(baseline, "imrs_s", raw, by=rater, kind="single", complete=True)
    client.force_login(investigator)
    page = client.get(url(participant, baseline)).content.decode()
    assert "Trial staff" in page and "fac-rater" not in page


@pytest.mark.two_factor
def test_the_audit_trail_shows_the_signature_and_its_invalidation(
    client, participant, baseline, investigator, assessor, person
):
    client.force_login(investigator)
    post(client, participant, baseline)
    crf.save_entry(baseline, "gaf_f", {"gaf_f": "58"}, by=assessor, kind="single", reason="typo")
    auditor = person(Role.DATA_MANAGER, username="auditing-dm")  # view_audit, every site
    client.force_login(auditor)
    page = client.get(
        f"/trials/{participant.trial.key}/audit/",
        {"kind": "signature", "participant": participant.participant_id},
    ).content.decode()
    assert "Investigator signature" in page
    assert "signed by Inge Vestergaard" in page
    assert "The signed data changed: a form was saved." in page


@pytest.mark.two_factor
def test_the_dashboard_shows_signed_and_invalidated(
    client, participant, baseline, investigator, assessor, data_manager
):
    client.force_login(investigator)
    post(client, participant, baseline)
    client.force_login(data_manager)
    status = f"/trials/{participant.trial.key}/status/"
    page = client.get(status).content.decode()
    assert "Signed by the investigator</span>" in page
    crf.save_entry(baseline, "gaf_f", {"gaf_f": "58"}, by=assessor, kind="single", reason="typo")
    page = client.get(status).content.decode()
    assert "Signature invalidated: to sign again</span>" in page
    client.force_login(investigator)
    page = client.get(url(participant, baseline)).content.decode()
    assert "Signature: Signature invalidated: to sign again" in page
    assert "The signed data changed: a form was saved." in page


def _dashboard_queries(client, user, trial):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(user)
    url = f"/trials/{trial.key}/status/"
    client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_signatures_cost_the_dashboard_the_same_queries_for_one_signed_casebook_or_many(
    client, danish, coordinator, assessor, data_manager, person
):
    from tests.factories import make_signature

    site = danish.sites.order_by("code").first()
    investigator = person(Role.INVESTIGATOR, site, first_name="Inge", last_name="V")

    def grow(n):
        for _ in range(n):
            p = entered(danish, coordinator, assessor, site=site)
            baseline = p.visits.get(timepoint__code="baseline")
            make_signature(p, baseline, by=investigator)
            make_signature(p, by=investigator)

    grow(1)
    small = _dashboard_queries(client, data_manager, danish)
    grow(6)
    assert _dashboard_queries(client, data_manager, danish) == small
