"""Two-factor sign-in (TOTP): who must use it, the real sign-in with a code, enrolment, and an
administrator's reset. These tests run with enforcement on and a plain force_login (marker
`two_factor`): a password-only session, which the middleware must stop."""

import base64
import datetime
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from imrtrial.models import Participant, Role
from imrtrial.twofactor import requires_two_factor, users_with_two_factor_status
from tests.factories import (
    grant,
    make_allocation,
    make_participant,
    make_ready_participant,
    make_totp_device,
    make_trial,
    make_user,
    totp_code,
)
from tests.security.test_crawler import crawl

pytestmark = [pytest.mark.django_db, pytest.mark.two_factor]
PASSWORD = "correct-horse-battery-staple"
VERIFY = reverse("two_factor:verify")
ENROL = reverse("two_factor:enrol")

# Written out independently of migration 0002: the roles that see allocation-revealing data,
# release the key or manage the trial must use a second factor; the others may.
MUST = {
    Role.TRIAL_ADMIN,
    Role.COORDINATOR,
    Role.FACILITATOR,
    Role.FIDELITY_RATER,
    Role.KEY_HOLDER,
    Role.CASE_MANAGER,
}


def password_login(client, user, next_url=""):
    """Sign in with the password through the login form, and follow the login's redirect once:
    returns the answer of the page the user lands on."""
    data = {"username": user.username, "password": PASSWORD, "next": next_url}
    response = client.post(reverse("login"), data)
    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == (next_url or reverse("home"))
    return client.get(response["Location"])


def full_login(client, user):
    """Password, then the code of the user's device, through the real forms."""
    response = password_login(client, user)
    assert response["Location"].startswith(VERIFY)
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    response = client.post(VERIFY, {"token": totp_code(device)})
    assert response.status_code == 302, response.content.decode()
    return client


def wrong_code(device):
    right = totp_code(device)
    return f"{(int(right) + 1) % 1_000_000:06d}"


def let_back_off_pass(device):
    """django-otp refuses every code for 1, 2, 4... seconds after wrong ones; let that time pass
    (by moving the last failure back) instead of sleeping."""
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - datetime.timedelta(hours=1)
    )


# --- Who must use it -------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_each_role_requires_two_factor_exactly_when_the_policy_says(role, person):
    assert requires_two_factor(person(role)) is (role in MUST)


def test_django_administrators_require_two_factor_without_any_trial_role():
    assert requires_two_factor(make_user("staffer", is_staff=True))
    assert requires_two_factor(make_user("root", is_superuser=True))
    assert not requires_two_factor(make_user("nobody"))


def test_a_role_in_any_trial_counts_and_an_inactive_one_does_not(trial):
    other = make_trial()
    user = make_user("both")
    grant(user, trial, Role.ASSESSOR)
    assert not requires_two_factor(user)
    membership = grant(user, other, Role.FACILITATOR, other.sites.first())
    assert requires_two_factor(user)
    membership.active = False
    membership.save(update_fields=["active"])
    assert not requires_two_factor(user)


def test_a_statistician_needs_two_factor_once_the_trial_is_unblinded(trial, person):
    """Anyone who can see allocations at that moment: the statistician's
    view_unblinded_after_unblinding starts to count when the trial is unblinded."""
    statistician = person(Role.STATISTICIAN)
    assert not requires_two_factor(statistician)
    trial.unblinded_at = timezone.now()
    trial.save(update_fields=["unblinded_at"])
    assert requires_two_factor(statistician)
    annotated = users_with_two_factor_status().get(pk=statistician.pk)
    assert annotated.required


def test_the_staff_list_annotation_follows_the_same_rule(person):
    users = [person(role) for role in Role] + [make_user("st", is_staff=True), make_user("x")]
    annotated = users_with_two_factor_status().filter(pk__in=[u.pk for u in users])
    assert {u.pk: u.required for u in annotated} == {u.pk: requires_two_factor(u) for u in users}


# --- Signing in with a code ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _personas_have_an_authenticator_app(request):
    """In these tests the coordinator and the trial administrator have enrolled a device (the
    personas of tests/conftest.py); anyone else made here has not, unless the test says so."""
    for name in ("coordinator", "trial_admin"):
        if name in request.fixturenames:
            make_totp_device(request.getfixturevalue(name))


def test_password_then_code_wrong_code_refused_back_off_then_right_code_opens_the_site(
    client, coordinator, trial
):
    allocations = reverse("randomization:allocations", args=[trial.key])
    response = password_login(client, coordinator, next_url=allocations)
    assert response.status_code == 302
    assert response["Location"] == f"{VERIFY}?next={quote(allocations, safe='')}"
    assert client.get(reverse("home"))["Location"].startswith(VERIFY)

    device = TOTPDevice.objects.get(user=coordinator)
    verify_url = response["Location"]
    response = client.post(verify_url, {"token": wrong_code(device)})
    assert response.status_code == 400
    assert "That code is not right" in response.content.decode()
    assert client.get(allocations).status_code == 302

    # Straight after a wrong code even the right one is refused: django-otp's back-off.
    response = client.post(verify_url, {"token": totp_code(device)})
    assert response.status_code == 400
    assert "Too many wrong codes" in response.content.decode()

    let_back_off_pass(device)
    response = client.post(verify_url, {"token": totp_code(device)})
    assert response.status_code == 302 and response["Location"] == allocations
    assert client.get(allocations).status_code == 200
    assert client.get(reverse("home")).status_code == 200


def test_verifying_gives_the_session_a_new_key(client, coordinator):
    password_login(client, coordinator)
    before = client.session.session_key
    device = TOTPDevice.objects.get(user=coordinator)
    client.post(VERIFY, {"token": totp_code(device)})
    assert client.session.session_key != before


def test_a_code_is_accepted_once(coordinator):
    device = TOTPDevice.objects.get(user=coordinator)
    code = totp_code(device)
    first, second = Client(), Client()
    password_login(first, coordinator)
    password_login(second, coordinator)
    assert first.post(VERIFY, {"token": code}).status_code == 302
    response = second.post(VERIFY, {"token": code})
    assert response.status_code == 400


@pytest.mark.parametrize("bad", ["", "12345", "abcdef", "1234567"])
def test_a_malformed_code_is_refused_with_a_clear_message_and_counts_nothing(
    client, coordinator, bad
):
    password_login(client, coordinator)
    response = client.post(VERIFY, {"token": bad})
    assert response.status_code == 400
    html = response.content.decode()
    assert "This field is required" in html or "Enter the 6 digits" in html
    assert TOTPDevice.objects.get(user=coordinator).throttling_failure_count == 0


def test_a_code_typed_with_a_space_is_accepted(client, coordinator):
    password_login(client, coordinator)
    code = totp_code(TOTPDevice.objects.get(user=coordinator))
    assert client.post(VERIFY, {"token": f"{code[:3]} {code[3:]}"}).status_code == 302


def test_an_unsafe_next_address_is_ignored(client, coordinator):
    password_login(client, coordinator)
    code = totp_code(TOTPDevice.objects.get(user=coordinator))
    response = client.post(VERIFY, {"token": code, "next": "https://evil.example/"})
    assert response["Location"] == reverse("home")


# --- What an unverified user may reach -------------------------------------------------------


@pytest.fixture
def unblinded_everything(trial):
    """A user holding every unblinded role, and data behind each kind of unblinded page."""
    user = make_user("all-unblinded")
    for role in MUST:
        grant(user, trial, role)
    for pid, arm in [("P-IMR", "imr"), ("P-TAU", "tau")]:
        make_allocation(make_participant(trial, participant_id=pid), arm, by=user)
    make_totp_device(user)
    return user


def test_an_unverified_unblinded_user_is_sent_to_the_code_from_every_page(
    client, unblinded_everything, trial
):
    pages = crawl(full_login(Client(), unblinded_everything))
    unblinded = [
        reverse("randomization:allocations", args=[trial.key]),
        reverse("randomization:desk", args=[trial.key]),
        reverse("fidelity:groups", args=[trial.key]),
        reverse("access_log", args=[trial.key]),
    ]
    assert set(unblinded) <= set(pages), sorted(pages)
    assert len(pages) >= 10, sorted(pages)

    password_login(client, unblinded_everything)
    for url in sorted(set(pages) | {"/admin/", "/admin/auth/user/"}):
        if url in (ENROL, VERIFY):
            continue
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(VERIFY), (url, response["Location"])
        assert "Allocations" not in response.content.decode()


def test_an_unverified_post_is_redirected_and_changes_nothing(client, coordinator, trial):
    participant = make_ready_participant(trial, by=coordinator)
    randomize = reverse("randomization:randomize", args=[trial.key, participant.participant_id])
    password_login(client, coordinator)
    response = client.post(randomize, {"baseline_completed_on": "2026-11-01", "read_back": "on"})
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    participant.refresh_from_db()
    assert participant.status == Participant.Status.CONSENTED
    assert participant.randomized_on is None


def test_an_unverified_user_may_still_sign_out(client, coordinator):
    password_login(client, coordinator)
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("admin", [{"is_staff": True}, {"is_staff": True, "is_superuser": True}])
def test_the_admin_requires_the_code_too(client, admin):
    user = make_user("admin-user", **admin)
    response = password_login(client, user, next_url="/admin/")
    assert response.status_code == 302 and response["Location"].startswith(ENROL)  # no device
    make_totp_device(user)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    response = client.post(response["Location"], {"token": totp_code(user.totpdevice_set.get())})
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_blinded_user_without_a_device_is_not_forced(client, person, trial):
    assessor = person(Role.ASSESSOR)
    home = password_login(client, assessor)
    assert home.status_code == 200
    assert f'href="{ENROL}"' in home.content.decode()  # the optional enrolment, in the nav
    assert client.get(reverse("assessments:worklist", args=[trial.key])).status_code == 200


def test_a_blinded_user_who_enrolled_is_asked_for_the_code_at_each_sign_in(client, person):
    assessor = person(Role.DATA_MANAGER)
    make_totp_device(assessor)
    response = password_login(client, assessor)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    assert client.get(reverse("home"))["Location"].startswith(VERIFY)


def test_the_setting_lifts_the_obligation_but_not_an_enrolled_device(
    client, coordinator, person, settings
):
    settings.TWO_FACTOR_REQUIRED = False
    without_device = person(Role.COORDINATOR, username="desk-without-device")
    assert password_login(client, without_device).status_code == 200
    client.logout()
    # The persona coordinator has enrolled: the code is asked even with the setting off.
    response = password_login(client, coordinator)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)


@pytest.mark.parametrize("required", [True, False])
def test_after_voluntary_enrolment_the_code_is_asked_at_the_next_sign_in(
    client, person, settings, required
):
    """The enrolment page promises a code at each sign-in: it is asked, whether or not the
    setting makes two factors compulsory (it was not when the setting was off)."""
    settings.TWO_FACTOR_REQUIRED = required
    assessor = person(Role.ASSESSOR)
    password_login(client, assessor)
    html = client.get(ENROL).content.decode()
    response = client.post(ENROL, {"token": code_from(secret_on(html))}, follow=True)
    assert "You will be asked for a code each time" in response.content.decode()
    client.logout()

    response = password_login(client, assessor)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    worklist = reverse("assessments:worklist", args=[assessor.memberships.get().trial.key])
    assert client.get(worklist)["Location"].startswith(VERIFY)
    device = TOTPDevice.objects.get(user=assessor, confirmed=True)
    assert client.post(VERIFY, {"token": totp_code(device)}).status_code == 302
    assert client.get(worklist).status_code == 200


# --- Enrolment --------------------------------------------------------------------------------


def secret_on(html):
    match = re.search(r'data-testid="secret">([A-Z2-7 ]+)<', html)
    assert match, "no secret shown"
    return base64.b32decode(match.group(1).replace(" ", ""))


def code_from(secret):
    import time

    return f"{hotp(secret, int(time.time()) // 30):06d}"


def test_a_coordinator_without_a_device_enrols_with_the_secret_shown_and_a_valid_code(
    client, person, trial
):
    desk = person(Role.COORDINATOR, username="new-desk")
    allocations = reverse("randomization:allocations", args=[trial.key])
    response = password_login(client, desk, next_url=allocations)
    assert response["Location"].startswith(ENROL)
    response = client.get(response["Location"])
    assert response.status_code == 200
    html = response.content.decode()
    # The QR code is inline SVG drawn by the server: no script, no inline style, no image host.
    svg = re.search(r"<svg[^>]*>.*?</svg>", html, re.S).group(0)
    assert 'role="img"' in svg and "aria-label=" in svg and "<path" in svg
    assert "style=" not in svg and "<script" not in svg and "<image" not in svg
    assert "otpauth" not in html  # the address is only inside the QR code
    secret = secret_on(html)
    assert len(secret) == 20
    assert secret_on(client.get(ENROL).content.decode()) == secret  # a reload keeps the secret

    wrong = f"{(int(code_from(secret)) + 1) % 1_000_000:06d}"
    response = client.post(ENROL, {"token": wrong})
    assert response.status_code == 400
    device = TOTPDevice.objects.get(user=desk)
    assert not device.confirmed
    assert client.get(allocations)["Location"].startswith(ENROL)

    let_back_off_pass(device)
    response = client.post(ENROL, {"token": code_from(secret), "next": allocations})
    assert response.status_code == 302 and response["Location"] == allocations
    device.refresh_from_db()
    assert device.confirmed and device.bin_key == secret
    assert client.get(allocations).status_code == 200
    # Now enrolled, the page says so and shows no secret.
    status = client.get(ENROL).content.decode()
    assert "is <strong>on</strong>" in status and 'data-testid="secret"' not in status
    reasons = list(device.history.values_list("history_change_reason", flat=True))
    assert "Enrolment confirmed with a valid code" in reasons


def test_a_password_alone_cannot_add_a_second_device(client, coordinator):
    password_login(client, coordinator)
    response = client.get(ENROL)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    response = client.post(ENROL, {"token": "123456"})
    assert response["Location"].startswith(VERIFY)
    assert TOTPDevice.objects.filter(user=coordinator).count() == 1


def test_a_blinded_user_may_enrol_by_choice(client, person):
    assessor = person(Role.ASSESSOR)
    password_login(client, assessor)
    html = client.get(ENROL).content.decode()
    assert "Optional for your role" in html
    response = client.post(ENROL, {"token": code_from(secret_on(html))})
    assert response.status_code == 302
    assert TOTPDevice.objects.get(user=assessor).confirmed


def test_the_device_history_never_holds_the_secret(coordinator):
    fields = {f.name for f in TOTPDevice.history.model._meta.get_fields()}
    assert "confirmed" in fields and "key" not in fields
    assert TOTPDevice.history.filter(user_id=coordinator.pk).exists()


# --- Reset by an administrator -----------------------------------------------------------------


def test_a_trial_admin_resets_a_device_with_a_reason_that_the_history_keeps(
    trial_admin, coordinator, trial
):
    desk_session = full_login(Client(), coordinator)
    admin = full_login(Client(), trial_admin)
    staff = admin.get(reverse("two_factor:staff"))
    assert staff.status_code == 200
    reset = reverse("two_factor:reset", args=[coordinator.pk])
    assert f'href="{reset}"' in staff.content.decode()

    response = admin.post(reset, {"reason": "  "})
    assert response.status_code == 400
    assert TOTPDevice.objects.filter(user=coordinator).count() == 1

    response = admin.post(reset, {"reason": "Lost phone; identity checked by phone"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=coordinator).exists()
    (removed,) = TOTPDevice.history.filter(user_id=coordinator.pk, history_type="-")
    assert removed.history_user == trial_admin
    assert removed.history_change_reason == "Lost phone; identity checked by phone"
    assert (
        "Lost phone; identity checked by phone"
        in admin.get(reverse("two_factor:staff")).content.decode()
    )

    # The coordinator's verified session now leads to enrolment of a new device.
    response = desk_session.get(reverse("randomization:allocations", args=[trial.key]))
    assert response.status_code == 302 and response["Location"].startswith(ENROL)


def test_a_reset_is_refused_outside_ones_trials_for_administrators_and_for_oneself(
    client, trial_admin, trial
):
    other_trial = make_trial()
    stranger = make_user("stranger")
    grant(stranger, other_trial, Role.COORDINATOR)
    make_totp_device(stranger)
    staffer = make_user("django-staff", is_staff=True)
    grant(staffer, trial, Role.ASSESSOR)
    make_totp_device(staffer)
    full_login(client, trial_admin)
    for target in (stranger, staffer, trial_admin):
        response = client.post(reverse("two_factor:reset", args=[target.pk]), {"reason": "x"})
        assert response.status_code == 404, target
        assert TOTPDevice.objects.filter(user=target).exists()
    listed = client.get(reverse("two_factor:staff")).content.decode()
    assert "stranger" not in listed and "django-staff" not in listed


def test_a_superuser_may_reset_anyone_but_themselves(client):
    root = make_user("root", is_superuser=True, is_staff=True)
    make_totp_device(root)
    staffer = make_user("django-staff", is_staff=True)
    make_totp_device(staffer)
    full_login(client, root)
    response = client.post(reverse("two_factor:reset", args=[staffer.pk]), {"reason": "New phone"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=staffer).exists()
    response = client.post(reverse("two_factor:reset", args=[root.pk]), {"reason": "x"})
    assert response.status_code == 404


@pytest.mark.parametrize("role", [Role.ASSESSOR, Role.COORDINATOR, Role.KEY_HOLDER])
def test_other_roles_cannot_reach_the_reset_pages(client, person, coordinator, role):
    user = person(role, username=f"r-{role}")
    make_totp_device(user)
    full_login(client, user)
    assert client.get(reverse("two_factor:staff")).status_code == 404
    response = client.post(reverse("two_factor:reset", args=[coordinator.pk]), {"reason": "x"})
    assert response.status_code == 404
    assert TOTPDevice.objects.filter(user=coordinator).exists()


# --- Configuration ------------------------------------------------------------------------------


def deploy_check(**env):
    """`manage.py check --deploy` with production-like variables and nothing else from this
    environment (the browser tests set DJANGO_ALLOW_ASYNC_UNSAFE, which the check refuses)."""
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DEBUG": "false",
        "SECRET_KEY": "k" * 50 + "-deploy-check-2fa",
        "ALLOWED_HOSTS": "trial.example.org",
        "RANDOMIZATION_SECRET": "r" * 40,
        "SITE_URL": "https://trial.example.org",
        # Senders that send (selfreport.W002 flags those that write messages to the log).
        "EMAIL_URL": "smtp://mail.example.org:587",
        "SMS_BACKEND": "selfreport.sms.HttpSender",
        "SMS_API_URL": "https://sms.example.org/v1",
        "SMS_FROM": "Research",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=Path(__file__).resolve().parents[2],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_factor_is_on_in_production_unless_switched_off_which_the_deploy_check_flags():
    on = deploy_check()
    assert on.returncode == 0, on.stderr
    off = deploy_check(TWO_FACTOR_REQUIRED="false")
    assert off.returncode != 0
    assert "imrtrial.W001" in off.stderr + off.stdout


def test_the_otp_middleware_runs_after_authentication_and_before_ours():
    middleware = settings.MIDDLEWARE
    assert (
        middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
        < middleware.index("django_otp.middleware.OTPMiddleware")
        < middleware.index("imrtrial.twofactor.TwoFactorMiddleware")
        < middleware.index("imrtrial.middleware.ResolvedUserMiddleware")
    )


def test_views_get_the_user_object_itself_verified_or_not_as_django_otp_said(client, person):
    """ResolvedUserMiddleware hands on the user behind both lazy wrappers, with django-otp's
    verdict on it: not verified without a device's code in the session."""
    from django.utils.functional import LazyObject

    assessor = person(Role.ASSESSOR)
    anonymous = client.get(reverse("login")).wsgi_request.user
    assert not isinstance(anonymous, LazyObject) and not anonymous.is_authenticated
    client.force_login(assessor)
    user = client.get(reverse("home")).wsgi_request.user
    assert not isinstance(user, LazyObject)
    assert type(user) is type(assessor) and user.pk == assessor.pk
    assert user.is_verified() is False
