"""The Django admin asks the gate too: a staff user of one site sees and changes only that
site's rows, guessed ids of other rows are 404 (change form, history, historical versions),
allocation-revealing admin pages are 404 to blinded staff, and the author of a staff-rated form
is hidden from them."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from assessments.models import FormEntry
from imrtrial.models import Membership, Participant, Role
from tests.factories import grant, make_user

from .conftest import BLINDED_ROLES, GROUP_NAME


def staff(user, *codenames):
    """Make `user` staff holding Django's model permissions `codenames` ("view_participant")."""
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def admin_url(obj, view="change", *args):
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk, *args])


ALL_VIEW_PERMS = [
    "view_participant",
    "view_formentry",
    "view_membership",
    "view_trial",
    "view_stratificationfactor",
    "view_accesslog",
    "view_allocation",
    "view_imrgroup",
    "view_groupmembership",
    "view_session",
    "view_attendance",
    "view_fidelityassessment",
]


@pytest.fixture
def north_admin(world):
    return staff(world.users["trial_admin-north"], "view_participant", "view_formentry")


def test_staff_of_one_site_list_only_that_sites_participants(client, world, north_admin):
    client.force_login(north_admin)
    page = client.get(reverse("admin:imrtrial_participant_changelist")).content.decode()
    assert world.imr.participant_id in page and world.tau.participant_id in page
    assert world.south_tau.participant_id not in page
    assert "South CMHC" not in page  # nor in the list's filters


@pytest.mark.parametrize("view", ["change", "history"])
def test_another_sites_participant_is_404_whatever_the_admin_page(client, world, north_admin, view):
    client.force_login(north_admin)
    assert client.get(admin_url(world.tau, view)).status_code == 200
    response = client.get(admin_url(world.south_tau, view))
    assert response.status_code == 404
    assert world.south_tau.participant_id not in response.content.decode()


def test_another_sites_historical_version_is_404(client, world, north_admin):
    client.force_login(north_admin)
    mine = world.tau.history.first()
    theirs = world.south_tau.history.first()
    assert client.get(admin_url(world.tau, "simple_history", mine.history_id)).status_code == 200
    url = admin_url(world.south_tau, "simple_history", theirs.history_id)
    assert client.get(url).status_code == 404


def test_another_sites_form_entries_are_404(client, world, north_admin):
    client.force_login(north_admin)
    theirs = FormEntry.objects.filter(participant=world.south_tau).first()
    mine = FormEntry.objects.filter(participant=world.tau).first()
    assert client.get(admin_url(mine)).status_code == 200
    version = admin_url(mine, "simple_history", mine.history.first().history_id)
    page = client.get(version).content.decode()  # no widget listing every visit
    assert "Baseline" in page and world.south_tau.participant_id not in page
    assert client.get(admin_url(theirs)).status_code == 404
    assert client.get(admin_url(theirs, "history")).status_code == 404
    listing = client.get(reverse("admin:assessments_formentry_changelist")).content.decode()
    assert world.south_tau.participant_id not in listing


def test_a_superuser_is_scoped_by_their_memberships_like_anyone(client, world):
    root = make_user("root", is_superuser=True, is_staff=True)
    grant(root, world.trial, Role.TRIAL_ADMIN, world.north)
    client.force_login(root)
    assert client.get(admin_url(world.south_tau)).status_code == 404
    assert client.get(admin_url(world.tau)).status_code == 200
    assert client.get(admin_url(world.group)).status_code == 404  # blinded: no IMR data


def test_participants_and_form_entries_are_read_only_in_the_admin(client, world):
    root = make_user("root", is_superuser=True, is_staff=True)
    grant(root, world.trial, Role.TRIAL_ADMIN)
    client.force_login(root)
    entry = FormEntry.objects.filter(participant=world.tau, instrument="gaf_f").get()
    before = (list(Participant.objects.values()), list(FormEntry.objects.values()))
    response = client.post(admin_url(world.tau), {"status": "withdrawn", "site": world.south.pk})
    assert response.status_code == 403
    assert client.post(admin_url(entry), {"kind": "first", "version": 9}).status_code == 403
    assert (list(Participant.objects.values()), list(FormEntry.objects.values())) == before


def test_history_versions_cannot_be_posted_back_as_a_revert(client, world):
    root = make_user("root", is_superuser=True, is_staff=True)
    grant(root, world.trial, Role.TRIAL_ADMIN)
    client.force_login(root)
    membership = Membership.objects.filter(user=world.users[Role.ASSESSOR]).get()
    old = membership.history.first()
    membership.active = False
    membership.save(update_fields=["active"])
    url = admin_url(membership, "simple_history", old.history_id)
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {"user": membership.user_id, "trial": world.trial.pk, "role": "assessor", "active": "on"},
    )
    assert response.status_code == 405
    membership.refresh_from_db()
    assert membership.active is False


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_allocation_revealing_admin_pages_are_404_to_blinded_staff(role, client, world):
    from randomization.services import allocation_of

    user = staff(world.users[role], *ALL_VIEW_PERMS)
    client.force_login(user)
    rows = [
        world.group,
        world.membership,
        world.session,
        world.session.attendance.first(),
        world.assessment,
        allocation_of(world.imr),
    ]
    for row in rows:
        opts = row._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        for url in (changelist, admin_url(row), admin_url(row, "history")):
            response = client.get(url)
            assert response.status_code == 404, (role, url)
            assert GROUP_NAME not in response.content.decode()
    index = client.get(reverse("admin:index")).content.decode()
    assert "Allocations" not in index and "Imr groups" not in index and "Attendances" not in index


def test_a_facilitator_sees_their_sites_group_and_not_another_sites(client, world):
    south = make_user("facilitator-south", is_staff=True)
    grant(south, world.trial, Role.FACILITATOR, world.south)
    client.force_login(south)
    assert client.get(admin_url(world.group)).status_code == 404
    listing = client.get(reverse("admin:fidelity_imrgroup_changelist")).content.decode()
    assert GROUP_NAME not in listing
    client.force_login(staff(world.users[Role.FACILITATOR]))
    assert GROUP_NAME in client.get(admin_url(world.group)).content.decode()


def test_blinded_staff_never_see_who_entered_a_staff_rated_form(client, world):
    """The IMRS staff rating of the IMR member was entered by their facilitator."""
    facilitator = world.users[Role.FACILITATOR].get_username()
    entry = world.staff_entry
    interview = FormEntry.objects.get(participant=world.tau, instrument="gaf_f")
    client.force_login(staff(world.users[Role.DATA_MANAGER], "view_formentry"))
    for url in (admin_url(entry), admin_url(entry, "history")):
        page = client.get(url).content.decode()
        assert client.get(url).status_code == 200
        assert facilitator not in page, url
    version = admin_url(entry, "simple_history", entry.history.first().history_id)
    assert facilitator not in client.get(version).content.decode()
    # Every staff-rated entry alike, so hiding one tells nothing; interviews show their author.
    assessor = world.users[Role.ASSESSOR].get_username()
    assert assessor in client.get(admin_url(interview, "history")).content.decode()
    # Unblinded staff at the site (the key holder) see the author.
    client.force_login(staff(world.users[Role.KEY_HOLDER], "view_formentry"))
    assert facilitator in client.get(admin_url(entry, "history")).content.decode()
    assert facilitator in client.get(admin_url(entry)).content.decode()


@pytest.fixture
def manager(world):
    """A trial administrator of North who may change memberships in the admin."""
    return staff(
        world.users["trial_admin-north"], "view_membership", "change_membership", "add_membership"
    )


def _membership_form(world, **fields):
    data = {"user": "", "trial": world.trial.pk, "site": world.north.pk, "role": "assessor"}
    data["active"] = "on"
    data.update(fields)
    return data


def test_a_site_administrator_manages_only_their_sites_memberships(client, world, manager):
    client.force_login(manager)
    listing = client.get(reverse("admin:imrtrial_membership_changelist")).content.decode()
    assert "North CMHC" in listing and "South CMHC" not in listing
    assert "all sites" not in listing  # trial-wide memberships are for trial-wide managers
    someone = make_user("new-assessor")
    add = reverse("admin:imrtrial_membership_add")
    assert client.post(add, _membership_form(world, user=someone.pk)).status_code == 302
    assert Membership.objects.filter(user=someone, site=world.north).exists()
    before = Membership.objects.count()
    for fields in ({"site": world.south.pk}, {"site": ""}):
        response = client.post(add, _membership_form(world, user=someone.pk, **fields))
        assert response.status_code == 200, fields  # the form again, with the error
    assert Membership.objects.count() == before
    elsewhere = Membership.objects.filter(site=world.south).first() or Membership.objects.create(
        user=someone, trial=world.trial, site=world.south, role=Role.ASSESSOR
    )
    assert client.get(admin_url(elsewhere)).status_code == 404


def test_nobody_grants_themselves_a_role_in_the_admin(client, world, manager):
    """A blinded trial administrator who made themselves a coordinator would be unblinded."""
    client.force_login(manager)
    before = Membership.objects.count()
    response = client.post(
        reverse("admin:imrtrial_membership_add"),
        _membership_form(world, user=manager.pk, role="coordinator"),
    )
    assert response.status_code == 200
    assert "your own roles" in response.content.decode()
    assert Membership.objects.count() == before


def test_the_system_administrator_sets_up_roles_but_sees_no_trial_data(client, world):
    """A superuser with no role configures a new trial's staff (someone must give the first
    trial administrator their role) and still sees no participant, entry or IMR row."""
    root = make_user("root", is_superuser=True, is_staff=True)
    client.force_login(root)
    someone = make_user("first-admin")
    response = client.post(
        reverse("admin:imrtrial_membership_add"),
        _membership_form(world, user=someone.pk, site="", role="trial_admin"),
    )
    assert response.status_code == 302
    assert Membership.objects.filter(user=someone, site=None, role="trial_admin").exists()
    assert client.get(admin_url(world.trial)).status_code == 200
    for row in (world.tau, FormEntry.objects.first(), world.group):
        assert client.get(admin_url(row)).status_code == 404
    response = client.post(
        reverse("admin:imrtrial_membership_add"),
        _membership_form(world, user=root.pk, role="coordinator"),
    )
    assert "your own roles" in response.content.decode()


def test_the_allocation_admin_never_shows_the_slot(client, world):
    """Slot and arm together show where blocks end (concealment), even to unblinded staff."""
    from randomization.services import allocation_of

    from .test_crawler import worst_case_staff

    user = worst_case_staff(world.users[Role.COORDINATOR])
    client.force_login(user)
    allocation = allocation_of(world.imr)
    page = client.get(f"/admin/randomization/allocation/{allocation.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert allocation.randomization_number in html
    assert "Slot" not in html and "Stratum" not in html


def test_the_allocation_notices_have_no_admin_page_and_no_audit_source():
    """randomization.AllocationNotice tells the arm by its attempts and last error (only a
    notice with recipients, of the intervention arm, can fail): the admin shows it to no one,
    and the audit trail does not read it."""
    from django.contrib import admin

    from imrtrial import audit
    from randomization.models import AllocationNotice

    assert AllocationNotice not in admin.site._registry
    models = [source.model for source in audit.sources()]
    assert models and AllocationNotice not in models
