"""seed_demo: the demo trial holds every state a tester needs, two of each role that works in
pairs, blinded demo users who cannot see arms, and a logins file readable by its owner alone,
printed last. The demo is seeded once per module (it is made through the services, which takes
a while) inside a transaction that is rolled back at the end."""

import base64
import configparser
import os
import stat
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from assessments import services as crf
from assessments.models import FormEntry, Visit
from demo import seed
from fidelity.models import Attendance, FidelityRating, ImrGroup, Session
from imrtrial import access
from imrtrial.models import Membership, Participant, Role, Trial
from imrtrial.twofactor import requires_two_factor
from randomization.models import Screening

pytestmark = pytest.mark.django_db

BLINDED = {
    Role.ASSESSOR,
    Role.DATA_MANAGER,
    Role.TRIAL_ADMIN,
    Role.STATISTICIAN,
    Role.MONITOR,
    Role.INVESTIGATOR,
}


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory):
    """(console output, logins path) of one `manage.py seed_demo`, rolled back afterwards."""
    path = tmp_path_factory.mktemp("demo") / "logins.txt"
    out = StringIO()
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]),
        transaction.atomic(),
    ):
        call_command("seed_demo", "--logins-file", str(path), stdout=out)
        yield out.getvalue(), path
        transaction.set_rollback(True)


@pytest.fixture
def trial(seeded):
    return Trial.objects.get(key=seed.DEMO_TRIAL)


def logins_of(path):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return {name: dict(parser[name]) for name in parser.sections()}


def test_every_state_a_tester_needs_is_there(trial):
    screenings = Screening.objects.filter(trial=trial)
    assert screenings.filter(eligible=False).exists(), "excluded"
    assert screenings.filter(eligible=True, participant=None, consent_date=None).exists()
    statuses = Participant.objects.filter(trial=trial).values_list("status", flat=True)
    assert {Participant.Status.CONSENTED, Participant.Status.RANDOMIZED} <= set(statuses)
    today = timezone.localdate()
    visits = Visit.objects.filter(participant__trial=trial, timepoint__code="baseline")
    states = {visit.status(today) for visit in visits}
    assert {Visit.Status.OPEN, Visit.Status.OVERDUE, Visit.Status.DONE, Visit.Status.MISSED} <= (
        states
    )
    # A paper form entered twice, with a discrepancy, not yet reconciled.
    awaiting = [
        entry
        for entry in FormEntry.objects.filter(
            participant__trial=trial, kind=FormEntry.Kind.SECOND, status=FormEntry.Status.COMPLETE
        )
        if not FormEntry.objects.filter(
            participant=entry.participant,
            instrument=entry.instrument,
            timepoint=entry.timepoint,
            kind=FormEntry.Kind.FINAL,
        ).exists()
    ]
    assert awaiting
    assert crf.discrepancies(awaiting[0].participant, awaiting[0].instrument, "baseline")
    # Reconciled double entries on the done visits, by the data manager.
    assert FormEntry.objects.filter(
        participant__trial=trial,
        kind=FormEntry.Kind.FINAL,
        entered_by__username="demo-data-manager",
    ).exists()
    # IMR groups with weeks of sessions and attendance, a fidelity consensus, and a group still
    # without an assessment for the two raters to try.
    groups = ImrGroup.objects.filter(trial=trial)
    assert groups.count() == 2
    for group in groups:
        assert 2 <= group.facilitators.count() <= 3
        assert Session.objects.filter(group=group).count() >= 3
    assert Attendance.objects.filter(session__group__trial=trial).count() >= 10
    consensus = FidelityRating.objects.get(assessment__group__trial=trial, is_consensus=True)
    raw = FidelityRating.objects.filter(assessment=consensus.assessment, is_consensus=False)
    assert raw.values("rater").distinct().count() == 2
    assert groups.filter(fidelity_assessments=None).exists()


def test_two_of_each_role_that_works_in_pairs_and_one_of_every_other(trial):
    held = {}
    for role, site in Membership.objects.filter(trial=trial, active=True).values_list(
        "role", "site__code"
    ):
        held.setdefault(role, []).append(site)
    assert set(held) == {role.value for role in Role}
    assert len(held[Role.ASSESSOR]) >= 2
    assert len(held[Role.FIDELITY_RATER]) >= 2
    # A group has two or three facilitators of its own site.
    assert held[Role.FACILITATOR].count(seed.GROUP_SITE) >= 3


def test_blinded_demo_users_cannot_see_arms(trial):
    blinded = get_user_model().objects.filter(
        memberships__trial=trial, memberships__role__in=BLINDED
    )
    assert blinded.count() >= len(BLINDED) + 1  # two assessors
    for user in blinded:
        assert not (user.is_staff or user.is_superuser), user
        assert not user.user_permissions.exists(), user
        assert set(user.memberships.values_list("role", flat=True)) <= {r.value for r in BLINDED}
        assert not access.unblinded_sites(user, trial).exists(), user
        for site in trial.sites.all():
            assert not access.may_see_allocation(user, trial, site), (user, site)


def test_blinded_demo_users_get_404_on_the_unblinded_pages(trial, client):
    group = ImrGroup.objects.filter(trial=trial).first()
    unblinded = [
        reverse("randomization:allocations", args=[trial.key]),
        reverse("fidelity:groups", args=[trial.key]),
        reverse("fidelity:group", args=[trial.key, group.pk]),
        reverse("fidelity:report", args=[trial.key, group.pk]),
    ]
    for username in ("demo-assessor", "demo-assessor-2", "demo-data-manager", "demo-trial-admin"):
        client.force_login(get_user_model().objects.get(username=username))
        for url in unblinded:
            assert client.get(url).status_code == 404, (username, url)
    client.force_login(get_user_model().objects.get(username="demo-facilitator"))
    assert client.get(unblinded[2]).status_code == 200  # the pages exist: the check can fail


def test_the_logins_file_is_readable_by_its_owner_alone_and_every_login_works(seeded, rf):
    output, path = seeded
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    logins = logins_of(path)
    users = get_user_model().objects.filter(username__startswith="demo-")
    assert set(logins) == set(users.values_list("username", flat=True))
    for username, login in logins.items():
        user = authenticate(rf.get("/"), username=username, password=login["password"])
        assert user is not None, username
        if requires_two_factor(user):
            assert login["two_factor"] == "required"
            device = TOTPDevice.objects.get(user=user, confirmed=True)
            assert login["totp_secret"] == base64.b32encode(device.bin_key).decode()
            assert login["otpauth"].startswith(f"otpauth://totp/imrtrial%3A{username}?secret=")
            assert device.verify_token(f"{totp(device.bin_key):06d}"), username
        else:
            assert "totp_secret" not in login, username


def test_the_logins_are_printed_last_and_name_the_file(seeded):
    output, path = seeded
    lines = output.strip().splitlines()
    assert str(path) in lines[-1] and "mode 600" in lines[-1]
    printed = [line.split()[0] for line in lines if line.startswith("  demo-")]
    assert printed == [username for username, _, _ in seed.USERS]
    assert lines[-len(printed) - 2].startswith("Demo logins")
    assert "Subject:" not in output  # no e-mail on the console


def test_a_second_run_refuses_clearly_and_changes_nothing(seeded, trial):
    _, path = seeded
    before = path.read_text()
    counts = (
        Participant.objects.count(),
        get_user_model().objects.count(),
        Session.objects.count(),
    )
    out = StringIO()
    call_command("seed_demo", "--logins-file", str(path), stdout=out)
    assert "already seeded" in out.getvalue() and "nothing was changed" in out.getvalue()
    assert path.read_text() == before
    assert counts == (
        Participant.objects.count(),
        get_user_model().objects.count(),
        Session.objects.count(),
    )


def test_reset_passwords_rewrites_the_file_and_keeps_the_two_factor_secrets(seeded, rf):
    _, path = seeded
    before = logins_of(path)
    os.chmod(path, 0o644)  # even over a file someone opened up, the new one is 600
    out = StringIO()
    call_command("seed_demo", "--reset-passwords", "--logins-file", str(path), stdout=out)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    after = logins_of(path)
    assert set(after) == set(before)
    for username, login in after.items():
        assert login["password"] != before[username]["password"]
        assert login.get("totp_secret") == before[username].get("totp_secret")
        assert authenticate(rf.get("/"), username=username, password=login["password"])
    assert out.getvalue().strip().splitlines()[-1].endswith("readable by you alone).")
