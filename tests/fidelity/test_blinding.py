"""Every IMR page is 404 to every blinded role, GET and POST, and to unblinded staff of
another site; no page a blinded role can reach links to any of it."""

import datetime

import pytest
from django.urls import URLPattern, reverse

from fidelity import services
from fidelity import urls as fidelity_urls
from imrtrial.models import Role
from tests.factories import make_allocation, make_participant
from tests.imrtrial.test_roles_and_access import BLINDED_ROLES
from tests.security.test_crawler import crawl

pytestmark = pytest.mark.urls("tests.fidelity.urls")

START = datetime.date(2026, 1, 5)


@pytest.fixture
def study(trial):
    """Unlike the rest of the package, these tests are about the generic trial."""
    return trial


@pytest.fixture
def world(trial, north, person):
    """A group at North with a member, a session and a fidelity assessment with one rating."""
    facilitators = [person(Role.FACILITATOR, north, f"fac{i}") for i in (1, 2)]
    rater = person(Role.FIDELITY_RATER, None, "rater")
    member = make_participant(trial, site=north, participant_id="N-IMR")
    make_allocation(member, "imr")
    group = services.create_group(
        trial,
        north,
        by=facilitators[0],
        name="Tuesday group",
        facilitators=facilitators,
        start_date=START,
        planned_sessions=36,
        capacity=10,
    )
    membership = services.add_member(group, member, by=facilitators[0], joined_on=START)
    session = services.log_session(
        group,
        by=facilitators[0],
        date=START,
        modules=["recovery_strategies"],
        duration_minutes=60,
        facilitators_present=facilitators,
        attendance={member: "attended"},
    )
    assessment = services.create_assessment(
        group, by=rater, kind="end", date=START, data_sources=["interviews"]
    )
    services.submit_rating(assessment, by=rater, scores=dict.fromkeys(range(1, 14), 4))
    return {
        "trial": trial,
        "group": group,
        "groups": [trial.key],
        "group_new": [trial.key],
        "group_pages": {
            "group": [trial.key, group.pk],
            "group_end": [trial.key, group.pk],
            "member_add": [trial.key, group.pk],
            "member_leave": [trial.key, group.pk, membership.pk],
            "session_new": [trial.key, group.pk],
            "session": [trial.key, group.pk, session.pk],
            "report": [trial.key, group.pk],
            "assessment_new": [trial.key, group.pk],
            "assessment": [trial.key, group.pk, assessment.pk],
        },
    }


def every_url(world):
    urls = {"groups": world["groups"], "group_new": world["group_new"], **world["group_pages"]}
    names = {p.name for p in fidelity_urls.urlpatterns if isinstance(p, URLPattern)}
    assert set(urls) == names, "a new fidelity page must be added to this blinding test"
    return [reverse(f"fidelity:{name}", args=args) for name, args in urls.items()]


POSTS = {
    "date": "2026-01-12",
    "modules": "recovery_strategies",
    "duration_minutes": "60",
    "participant_id": "N-IMR",
    "joined_on": "2026-01-05",
    "left_on": "2026-01-06",
    "kind": "midway",
    "data_sources": "interviews",
    "rate": "1",
    **{f"item_{i}": "5" for i in range(1, 14)},
}


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_every_blinded_role_gets_404_on_every_imr_page_get_and_post(role, person, client, world):
    client.force_login(person(role))
    before = _counts()
    for address in every_url(world):
        assert client.get(address).status_code == 404, (role, address)
        assert client.post(address, POSTS).status_code == 404, (role, address)
    assert _counts() == before


def _counts():
    from fidelity.models import (
        Attendance,
        FidelityAssessment,
        FidelityRating,
        GroupMembership,
        Session,
    )

    return [
        m.objects.count()
        for m in (Attendance, FidelityAssessment, FidelityRating, GroupMembership, Session)
    ]


def test_a_facilitator_of_another_site_gets_404_for_the_group(person, client, south, world):
    client.force_login(person(Role.FACILITATOR, south, "fac-south"))
    for name, args in world["group_pages"].items():
        address = reverse(f"fidelity:{name}", args=args)
        assert client.get(address).status_code == 404, address
        assert client.post(address, POSTS).status_code == 404, address
    page = client.get(reverse("fidelity:groups", args=world["groups"])).content.decode()
    assert "Tuesday group" not in page


def test_the_sites_facilitator_reaches_every_page_but_the_raters_own(client, world):
    client.force_login(world["group"].facilitators.first())
    for address in every_url(world):
        if "/leave/" in address or address.endswith("/end/"):
            continue  # POST only
        expected = 404 if address.endswith("/fidelity/new/") else 200  # needs rate_fidelity
        response = client.get(address)
        assert response.status_code == expected, address
        assert b" style=" not in response.content, address  # the CSP blocks inline styles


def test_the_statistician_sees_the_groups_only_after_unblinding(person, client, world):
    trial = world["trial"]
    client.force_login(person(Role.STATISTICIAN))
    address = reverse("fidelity:groups", args=[trial.key])
    assert client.get(address).status_code == 404
    trial.unblinded_at = datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)
    trial.save(update_fields=["unblinded_at"])
    assert client.get(address).status_code == 200


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_no_page_a_blinded_role_reaches_mentions_imr_groups(role, person, client, world):
    client.force_login(person(role))
    pages = crawl(client)
    assert "/" in pages
    for address, html in pages.items():
        assert "/imr-groups/" not in address and "/imr-groups/" not in html, (role, address)
        assert "Tuesday group" not in html and "N-IMR</a> · IMR" not in html


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_blinded_staff_see_no_imr_data_in_the_admin(role, person, client, world):
    user = person(role)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    for model in ("imrgroup", "groupmembership", "session", "attendance", "fidelityassessment"):
        response = client.get(f"/admin/fidelity/{model}/")
        assert response.status_code in (302, 403, 404), model
        assert b"Tuesday group" not in response.content


def test_the_sites_facilitator_sees_the_group_in_the_admin(client, world):
    facilitator = world["group"].facilitators.first()
    facilitator.is_staff = True
    facilitator.save(update_fields=["is_staff"])
    client.force_login(facilitator)
    response = client.get("/admin/fidelity/imrgroup/")
    assert response.status_code == 200 and b"Tuesday group" in response.content


def _home_links_to_groups():
    from imrtrial import urls as project

    return any(getattr(p, "namespace", None) == "fidelity" for p in project.urlpatterns)


@pytest.mark.skipif(not _home_links_to_groups(), reason="fidelity.urls not wired yet")
@pytest.mark.parametrize("role", [*BLINDED_ROLES, Role.FACILITATOR])
def test_the_home_page_links_to_imr_groups_only_for_unblinded_roles(role, person, client, world):
    client.force_login(person(role, None, f"home-{role}"))
    page = client.get("/").content.decode()
    link = reverse("fidelity:groups", args=[world["trial"].key])
    assert (link in page) is (role == Role.FACILITATOR)
