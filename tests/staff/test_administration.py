"""The trial administration: invitations, roles, accounts, set-up settings and status, through
the services and through the pages, from the administrator's seat and from everyone else's."""

import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from imrtrial import access
from imrtrial.errors import Refused
from imrtrial.models import Membership, Perm, Role, Timepoint, Trial
from staff import services
from staff.models import AdminEvent, Invitation, token_digest
from tests.factories import make_person

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/invitation/[^/\s]+/)")


def _invite(trial, by, email="new.assessor@example.org", role=Role.ASSESSOR, site=None, **kw):
    fields = {"first_name": "Nina", "last_name": "Holm", "reason": "new assessor"} | kw
    with_link = {}

    def link_for(token):
        with_link["token"] = token
        return f"http://testserver/invitation/{token}/"

    invitation = services.invite(
        trial, email=email, role=role, site=site, by=by, link_for=link_for, **fields
    )
    return invitation, with_link["token"]


@pytest.fixture
def setup_trial(trial):
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.SETUP)
    trial.refresh_from_db()
    Timepoint.objects.create(trial=trial, code="post", label="Post", offset_days=180)
    return trial


# --- Invitations ---------------------------------------------------------------------------------


def test_an_invitation_stores_only_the_hash_of_its_token_and_mails_the_link(
    trial, trial_admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = _invite(trial, trial_admin)
    assert len(token) >= 40
    assert invitation.token_hash == token_digest(token) != token
    assert not Invitation.objects.filter(token_hash=token).exists()
    assert invitation.expires_at > timezone.now() + datetime.timedelta(days=6)
    assert not invitation.user.has_usable_password()
    assert Membership.objects.get(user=invitation.user).role == Role.ASSESSOR
    (message,) = mail.outbox
    assert message.to == ["new.assessor@example.org"]
    assert f"/invitation/{token}/" in message.body


def test_an_invitation_link_sets_the_password_once(client, trial, trial_admin):
    invitation, token = _invite(trial, trial_admin)
    url = f"/invitation/{token}/"
    assert client.get(url).status_code == 200
    password = "a-long-and-unusual-passphrase-42"
    response = client.post(url, {"new_password1": password, "new_password2": password})
    assert response.status_code == 302 and "/account/two-factor/" in response["Location"]
    invitation.refresh_from_db()
    assert invitation.used_at is not None
    assert invitation.user.check_password(password) or get_user_model().objects.get(
        pk=invitation.user.pk
    ).check_password(password)
    client.logout()
    again = client.post(
        url, {"new_password1": "x-other-pass-9876", "new_password2": "x-other-pass-9876"}
    )
    assert again.status_code == 404
    assert get_user_model().objects.get(pk=invitation.user.pk).check_password(password)
    with pytest.raises(Refused):
        services.accept_invitation(token, "yet-another-pass-123")


def test_an_expired_or_unknown_invitation_is_refused(client, trial, trial_admin):
    invitation, token = _invite(trial, trial_admin)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert client.get(f"/invitation/{token}/").status_code == 404
    response = client.post(
        f"/invitation/{token}/",
        {"new_password1": "pass-pass-1234", "new_password2": "pass-pass-1234"},
    )
    assert response.status_code == 404
    assert not get_user_model().objects.get(pk=invitation.user.pk).has_usable_password()
    assert client.get("/invitation/not-a-token/").status_code == 404


def test_a_weak_or_mismatched_password_saves_nothing(client, trial, trial_admin):
    invitation, token = _invite(trial, trial_admin)
    for data in (
        {"new_password1": "abc", "new_password2": "abc"},
        {"new_password1": "a-long-passphrase-1", "new_password2": "a-long-passphrase-2"},
        {},
    ):
        assert client.post(f"/invitation/{token}/", data).status_code == 400
    invitation.refresh_from_db()
    assert invitation.used_at is None
    assert not get_user_model().objects.get(pk=invitation.user.pk).has_usable_password()


def test_a_new_link_replaces_the_old_one(client, trial, trial_admin):
    invitation, old = _invite(trial, trial_admin)
    tokens = []
    services.resend_invitation(
        invitation.user,
        trial,
        by=trial_admin,
        reason="first link expired",
        link_for=lambda token: tokens.append(token) or "",
    )
    assert client.get(f"/invitation/{old}/").status_code == 404
    assert client.get(f"/invitation/{tokens[0]}/").status_code == 200
    assert AdminEvent.objects.filter(action=AdminEvent.Action.INVITED).count() == 2


def test_an_invitation_to_an_existing_address_is_refused(trial, trial_admin):
    make_person(trial, Role.ASSESSOR, username="known", email="known@example.org")
    with pytest.raises(Refused, match="has an account"):
        _invite(trial, trial_admin, email="Known@example.org")
    assert not Invitation.objects.exists()


# --- Roles and accounts --------------------------------------------------------------------------


def test_nobody_grants_or_withdraws_their_own_roles(client, trial, trial_admin, person):
    other_admin = person(Role.TRIAL_ADMIN, username="admin-two")
    with pytest.raises(Refused, match="themselves"):
        services.grant_role(trial_admin, trial, Role.KEY_HOLDER, None, by=trial_admin, reason="x")
    own = Membership.objects.get(user=trial_admin)
    with pytest.raises(Refused):
        services.withdraw_role(own, by=trial_admin, reason="x")
    client.force_login(trial_admin)
    url = f"/trials/{trial.key}/administration/staff/{trial_admin.pk}/grant/"
    data = {"grant-role": Role.KEY_HOLDER, "grant-site": "all", "grant-reason": "x"}
    assert client.post(url, data).status_code == 403
    assert access.roles_of(trial_admin, trial) == {Role.TRIAL_ADMIN}
    # Another administrator may.
    services.grant_role(trial_admin, trial, Role.MONITOR, None, by=other_admin, reason="audit")
    assert Role.MONITOR in access.roles_of(trial_admin, trial)


def test_reasons_are_required_and_nothing_is_saved_without_one(
    client, trial, trial_admin, assessor
):
    before = (Membership.objects.count(), AdminEvent.objects.count())
    with pytest.raises(Refused, match="reason"):
        services.grant_role(assessor, trial, Role.MONITOR, None, by=trial_admin, reason="  ")
    client.force_login(trial_admin)
    base = f"/trials/{trial.key}/administration/staff/{assessor.pk}"
    response = client.post(
        f"{base}/grant/", {"grant-role": Role.MONITOR, "grant-site": "all", "grant-reason": " "}
    )
    assert response.status_code == 400 and "Give the reason" in response.content.decode()
    membership = Membership.objects.get(user=assessor)
    response = client.post(
        f"{base}/withdraw/", {"withdraw-membership": membership.pk, "withdraw-reason": ""}
    )
    assert response.status_code == 400
    assert client.post(f"{base}/deactivate/", {"deactivate-reason": ""}).status_code == 400
    assert (Membership.objects.count(), AdminEvent.objects.count()) == before
    membership.refresh_from_db()
    assessor.refresh_from_db()
    assert membership.active and assessor.is_active


def test_grant_and_withdraw_are_audited_with_their_reasons(trial, trial_admin, assessor, north):
    membership = services.grant_role(
        assessor, trial, Role.MONITOR, north, by=trial_admin, reason="covers north"
    )
    services.withdraw_role(membership, by=trial_admin, reason="left the unit")
    history = list(membership.history.order_by("history_date"))
    assert [h.active for h in history] == [True, False]
    assert [h.history_user_id for h in history] == [trial_admin.pk] * 2
    assert history[-1].history_change_reason == "withdrawn: left the unit"
    events = list(AdminEvent.objects.order_by("at").values_list("action", "reason", "by", "site"))
    assert events == [
        (AdminEvent.Action.GRANTED, "covers north", trial_admin.pk, north.pk),
        (AdminEvent.Action.WITHDRAWN, "left the unit", trial_admin.pk, north.pk),
    ]


def test_the_audit_trail_lists_administration_events(client, trial, trial_admin, assessor):
    services.deactivate_account(assessor, trial, by=trial_admin, reason="left the trial unit")
    client.force_login(trial_admin)
    page = client.get(f"/trials/{trial.key}/audit/", {"kind": "adminevent"}).content.decode()
    assert "Deactivated an account" in page and "left the trial unit" in page


def test_a_withdrawn_role_holds_no_more_from_the_next_request(client, trial, trial_admin, assessor):
    client.force_login(assessor)
    worklist = f"/trials/{trial.key}/worklist/"
    assert client.get(worklist).status_code == 200
    services.withdraw_role(
        Membership.objects.get(user=assessor), by=trial_admin, reason="moved to another trial"
    )
    assert client.get(worklist).status_code == 404
    assert client.get(f"/trials/{trial.key}/participants/").status_code == 404
    assert trial.name not in client.get("/").content.decode()


def test_a_deactivated_account_is_signed_out_at_the_next_request(
    client, trial, trial_admin, assessor
):
    client.force_login(assessor)
    services.deactivate_account(assessor, trial, by=trial_admin, reason="left")
    response = client.get(f"/trials/{trial.key}/worklist/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_administrator_of_one_site_manages_that_site_only(trial, north, south, assessor):
    admin_north = make_person(trial, Role.TRIAL_ADMIN, north)
    services.grant_role(assessor, trial, Role.MONITOR, north, by=admin_north, reason="ok")
    for site in (south, None):
        with pytest.raises(Refused, match="do not manage"):
            services.grant_role(assessor, trial, Role.MONITOR, site, by=admin_north, reason="x")
    with pytest.raises(Refused):
        services.deactivate_account(assessor, trial, by=admin_north, reason="x")
    with pytest.raises(Refused):
        services.add_site(
            trial, code="east", name="East", kind="centre", by=admin_north, reason="x"
        )


# --- Set-up settings and status ------------------------------------------------------------------


def test_set_up_settings_change_in_set_up_and_are_refused_once_open(setup_trial, trial_admin):
    trial = setup_trial
    timepoint = trial.timepoints.get(code="post")
    services.change_window(
        timepoint, by=trial_admin, reason="protocol v2", window_before_days=14, window_after_days=28
    )
    services.change_reminders(trial, by=trial_admin, reason="protocol v2", reminder_lead_days=7)
    site = services.add_site(
        trial, code="east", name="East", kind="centre", by=trial_admin, reason="new"
    )
    services.change_status(trial, "open", by=trial_admin, reason="ethics approval received")
    trial.refresh_from_db()
    assert trial.status == Trial.Status.OPEN
    timepoint.refresh_from_db()
    assert (timepoint.window_before_days, timepoint.window_after_days) == (14, 28)
    events_before = AdminEvent.objects.count()
    for act in (
        lambda: services.change_window(timepoint, by=trial_admin, reason="x", window_after_days=90),
        lambda: services.change_reminders(trial, by=trial_admin, reason="x", reminder_lead_days=1),
        lambda: services.change_site(site, by=trial_admin, reason="x", name="Renamed"),
        lambda: services.add_site(
            trial, code="west", name="W", kind="centre", by=trial_admin, reason="x"
        ),
    ):
        with pytest.raises(Refused, match="no longer in set-up"):
            act()
    timepoint.refresh_from_db()
    trial.refresh_from_db()
    assert timepoint.window_after_days == 28 and trial.reminder_lead_days == 7
    assert AdminEvent.objects.count() == events_before
    # The reason is kept once, in the event the audit trail masks by author; the trial's own
    # history, shown unmasked, says only what happened.
    assert trial.history.first().history_change_reason == "open"
    opened = AdminEvent.objects.order_by("-pk").first()
    assert opened.reason == "ethics approval received"


def test_set_up_pages_refuse_edits_after_opening_with_a_clear_message(client, trial, trial_admin):
    client.force_login(trial_admin)
    url = f"/trials/{trial.key}/administration/reminders/"
    page = client.get(url).content.decode()
    assert "can no longer be changed" in page
    data = {
        "reminder_lead_days": 3,
        "escalation_after_days": 3,
        "query_reminder_days": 3,
        "attendance_reminder_after_days": 3,
        "reason": "try",
    }
    response = client.post(url, data)
    assert response.status_code == 400 and "no longer in set-up" in response.content.decode()
    trial.refresh_from_db()
    assert trial.reminder_lead_days == 14


def test_status_changes_need_a_reason_and_follow_the_order(client, setup_trial, trial_admin):
    trial = setup_trial
    client.force_login(trial_admin)
    url = f"/trials/{trial.key}/administration/status/"
    assert client.post(url, {"move": "open", "reason": ""}).status_code == 400
    assert client.post(url, {"move": "close", "reason": "x"}).status_code == 400
    trial.refresh_from_db()
    assert trial.status == Trial.Status.SETUP
    assert client.post(url, {"move": "open", "reason": "approved"}).status_code == 302
    assert client.post(url, {"move": "close", "reason": "target reached"}).status_code == 302
    trial.refresh_from_db()
    assert trial.status == Trial.Status.CLOSED
    assert list(AdminEvent.objects.order_by("at").values_list("action", flat=True)) == [
        AdminEvent.Action.OPENED,
        AdminEvent.Action.CLOSED,
    ]


def test_bad_numbers_are_refused_with_nothing_saved(client, setup_trial, trial_admin):
    client.force_login(trial_admin)
    timepoint = setup_trial.timepoints.get(code="post")
    url = f"/trials/{setup_trial.key}/administration/schedule/{timepoint.pk}/"
    for value in ("-1", "abc", "99999999"):
        data = {"window_before_days": value, "window_after_days": 10, "reason": "r"}
        assert client.post(url, data).status_code == 400
    timepoint.refresh_from_db()
    assert (timepoint.window_before_days, timepoint.window_after_days) == (30, 30)


# --- Who may open the pages ----------------------------------------------------------------------


def _pages(trial, user_id, site_pk, timepoint_pk):
    base = f"/trials/{trial.key}/administration/"
    return [
        base,
        f"{base}staff/",
        f"{base}staff/invite/",
        f"{base}staff/{user_id}/",
        f"{base}sites/",
        f"{base}sites/{site_pk}/",
        f"{base}schedule/",
        f"{base}schedule/{timepoint_pk}/",
        f"{base}reminders/",
        f"{base}status/",
    ]


@pytest.mark.parametrize("role", [r for r in Role if r != Role.TRIAL_ADMIN])
def test_every_page_is_a_404_for_roles_without_manage_trial(client, setup_trial, trial_admin, role):
    user = make_person(setup_trial, role, username=f"other-{role.value}")
    client.force_login(user)
    site = setup_trial.sites.first()
    timepoint = setup_trial.timepoints.first()
    for url in _pages(setup_trial, trial_admin.pk, site.pk, timepoint.pk):
        assert client.get(url).status_code == 404, url
    for action in ("grant", "withdraw", "deactivate"):
        url = f"/trials/{setup_trial.key}/administration/staff/{trial_admin.pk}/{action}/"
        assert client.post(url, {"reason": "x"}).status_code == 404


def test_every_page_opens_for_the_administrator_and_is_a_404_once_withdrawn(
    client, setup_trial, trial_admin, person
):
    other_admin = person(Role.TRIAL_ADMIN, username="admin-two")
    client.force_login(trial_admin)
    urls = _pages(
        setup_trial, other_admin.pk, setup_trial.sites.first().pk, setup_trial.timepoints.first().pk
    )
    for url in urls:
        assert client.get(url).status_code == 200, url
    services.withdraw_role(Membership.objects.get(user=trial_admin), by=other_admin, reason="left")
    for url in urls:
        assert client.get(url).status_code == 404, url


def test_the_home_page_links_the_administration_and_the_two_factor_reset(
    client, trial, trial_admin
):
    client.force_login(trial_admin)
    home = client.get("/").content.decode()
    overview = f"/trials/{trial.key}/administration/"
    assert f'href="{overview}"' in home
    assert 'href="/account/two-factor/staff/"' in client.get(overview).content.decode()


def test_administration_pages_name_no_arm(client, trial, trial_admin, facilitator, person):
    """A blinded administrator sees roles and sites, never an arm (labels, codes, counts)."""
    client.force_login(trial_admin)
    arms = list(trial.arms.values_list("label", "code", "export_code"))
    base = f"/trials/{trial.key}/administration/"
    for url in (
        base,
        f"{base}staff/?withdrawn=1",
        f"{base}staff/{facilitator.pk}/",
        f"{base}status/",
    ):
        page = client.get(url).content.decode()
        for label, code, _ in arms:
            assert label not in page and not re.search(rf"\b{code}\b", page), (url, label)
        assert not re.search(r"(?i)\ballocat|\barm\b|IMR group", page), url
    assert access.has(trial_admin, Perm.MANAGE_TRIAL, trial)
    assert not access.may_see_allocation(trial_admin, trial)


# --- Sock puppets: a blinded administrator cannot make an unblinded account ----------------------
# The trial administrator is blinded. Were they free to invite an address they own, or to grant
# an account of theirs, a role that sees the allocation (or its key), they would unblind
# themselves by a second login. The gate's may_grant_role: roles that see the allocation are
# granted only by an administrator who is unblinded where the role holds.

UNBLINDED_ROLES = [
    Role.COORDINATOR,
    Role.FACILITATOR,
    Role.FIDELITY_RATER,
    Role.KEY_HOLDER,
    Role.CASE_MANAGER,
    Role.STATISTICIAN,  # unblinded once the trial is
]


@pytest.mark.parametrize("role", UNBLINDED_ROLES)
def test_a_blinded_administrator_cannot_invite_an_unblinded_role(
    client, trial, north, trial_admin, role
):
    users = get_user_model().objects.count()
    for site in (north, None):
        with pytest.raises(Refused, match="unblinded"):
            _invite(trial, trial_admin, email="me.again@example.org", role=role, site=site)
    client.force_login(trial_admin)
    data = {
        "email": "me.again@example.org",
        "first_name": "Me",
        "last_name": "Again",
        "role": role,
        "site": str(north.pk),
        "reason": "extra pair of hands",
    }
    response = client.post(f"/trials/{trial.key}/administration/staff/invite/", data)
    assert response.status_code == 400
    assert get_user_model().objects.count() == users
    assert not Invitation.objects.exists() and not mail.outbox


@pytest.mark.parametrize("role", UNBLINDED_ROLES)
def test_a_blinded_administrator_cannot_grant_an_unblinded_role_to_an_account_of_theirs(
    client, trial, north, trial_admin, role
):
    puppet, _ = _invite(trial, trial_admin, email="admin.private@example.org")  # an assessor
    puppet = puppet.user
    with pytest.raises(Refused, match="unblinded"):
        services.grant_role(puppet, trial, role, north, by=trial_admin, reason="cover")
    client.force_login(trial_admin)
    url = f"/trials/{trial.key}/administration/staff/{puppet.pk}/grant/"
    data = {"grant-role": role, "grant-site": str(north.pk), "grant-reason": "cover"}
    assert client.post(url, data).status_code == 400
    assert access.roles_of(puppet, trial) == {Role.ASSESSOR}
    assert not access.may_see_allocation(puppet, trial, north)
    assert not AdminEvent.objects.filter(action=AdminEvent.Action.GRANTED).exists()


def test_blinded_roles_are_still_granted_and_unblinded_ones_by_an_unblinded_administrator(
    trial, north, south, trial_admin, person
):
    assessor = person(Role.ASSESSOR, site=north, username="plain-assessor")
    services.grant_role(assessor, trial, Role.MONITOR, north, by=trial_admin, reason="cover")
    assert Role.MONITOR in access.roles_of(assessor, trial)
    # An administrator who is also the key holder at north (unblinded there) may grant a
    # facilitator at north, but not at south, nor at every site.
    unblinded_admin = person(Role.TRIAL_ADMIN, username="admin-unblinded")
    Membership.objects.create(user=unblinded_admin, trial=trial, site=north, role=Role.KEY_HOLDER)
    access.forget(unblinded_admin)
    assert access.may_grant_role(unblinded_admin, trial, Role.FACILITATOR, north)
    assert not access.may_grant_role(unblinded_admin, trial, Role.FACILITATOR, south)
    assert not access.may_grant_role(unblinded_admin, trial, Role.FACILITATOR, None)
    assert not access.may_grant_role(trial_admin, trial, Role.FACILITATOR, north)
    assert access.may_grant_role(trial_admin, trial, Role.ASSESSOR, None)
    by = unblinded_admin
    services.grant_role(assessor, trial, Role.FACILITATOR, north, by=by, reason="x")
    with pytest.raises(Refused, match="unblinded"):
        services.grant_role(assessor, trial, Role.FACILITATOR, south, by=by, reason="x")
    assert access.may_see_allocation(assessor, trial, north)
    assert not access.may_see_allocation(assessor, trial, south)


def test_roles_at_every_site_and_the_key_need_a_granter_unblinded_by_an_all_sites_role(
    trial, north, south, person
):
    """Unblinded at north and at south by two site roles is not unblinded at a site added
    later, which a role at every site would cover; and the key decodes every site's codes."""
    admin = person(Role.TRIAL_ADMIN, username="admin-two-sites")
    for site in (north, south):
        Membership.objects.create(user=admin, trial=trial, site=site, role=Role.KEY_HOLDER)
    access.forget(admin)
    assert access.unblinded_everywhere(admin, trial)  # every site there is today
    assert not access.may_grant_role(admin, trial, Role.COORDINATOR, None)
    assert not access.may_grant_role(admin, trial, Role.KEY_HOLDER, north)
    assert access.may_grant_role(admin, trial, Role.COORDINATOR, north)
    everywhere = person(Role.TRIAL_ADMIN, username="admin-all-sites")
    Membership.objects.create(user=everywhere, trial=trial, site=None, role=Role.KEY_HOLDER)
    access.forget(everywhere)
    assert access.may_grant_role(everywhere, trial, Role.COORDINATOR, None)
    assert access.may_grant_role(everywhere, trial, Role.KEY_HOLDER, north)


def test_a_trial_with_no_site_yet_has_no_every_site_to_act_on(trial_admin, person):
    """With no site, "at every site" held vacuously for anyone: now only a role held at every
    site (a membership without a site) counts."""
    from tests.factories import make_user

    empty = Trial.objects.create(key="empty", name="No sites yet", status=Trial.Status.SETUP)
    nobody = make_user("nobody")
    assert not access.has_everywhere(nobody, Perm.MANAGE_TRIAL, empty)
    assert not access.may_grant_role(nobody, empty, Role.ASSESSOR, None)
    Membership.objects.create(user=nobody, trial=empty, site=None, role=Role.TRIAL_ADMIN)
    access.forget(nobody)
    assert access.has_everywhere(nobody, Perm.MANAGE_TRIAL, empty)
    assert not access.may_grant_role(nobody, empty, Role.COORDINATOR, None)


class RefusingMailServer:
    """An e-mail backend whose server refuses every message, as a mail server that is down or
    rejects the address does (settings.EMAIL_BACKEND in the test below)."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        import smtplib

        raise smtplib.SMTPRecipientsRefused({"x@example.org": (550, b"no such user")})


@pytest.mark.django_db(transaction=True)
def test_a_mail_server_that_refuses_the_invitation_gives_a_plain_warning_not_an_error(
    client, roles_restored, settings
):
    """The account and the invitation are committed before the mail goes: a refusal by the mail
    server is told on the person's page, from where a new link can be sent, instead of a server
    error after the work was saved."""
    from tests.factories import make_trial

    trial = make_trial()
    admin = make_person(trial, Role.TRIAL_ADMIN, None, "admin-smtp")
    settings.EMAIL_BACKEND = f"{__name__}.RefusingMailServer"
    client.force_login(admin)
    data = {
        "email": "refused@example.org",
        "first_name": "Ref",
        "last_name": "Used",
        "role": Role.ASSESSOR,
        "site": str(trial.sites.order_by("code").first().pk),
        "reason": "new assessor",
    }
    response = client.post(f"/trials/{trial.key}/administration/staff/invite/", data, follow=True)
    assert response.status_code == 200, re.findall(r"alert[^>]*>([^<]+)", response.content.decode())
    invited = get_user_model().objects.get(email="refused@example.org")
    assert Invitation.objects.filter(user=invited, used_at__isnull=True).exists()
    page = response.content.decode()
    assert "the mail server did not take the message" in page
    assert "the link to set a password went to" not in page
    url = f"/trials/{trial.key}/administration/staff/{invited.pk}/resend/"
    again = client.post(url, {"resend-reason": "mail bounced"}, follow=True)
    assert again.status_code == 200
    assert "the mail server did not take the message" in again.content.decode()
    assert Invitation.objects.filter(user=invited).count() == 2
