from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from imrtrial.models import Membership, Role, Trial

pytestmark = pytest.mark.django_db


def seed(*args):
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_demo_makes_one_working_login_per_role_and_prints_passwords_once(rf):
    first = seed()
    trial = Trial.objects.get(key="danish-imr")
    assert trial.status == Trial.Status.OPEN
    assert trial.participants.count() == 12
    lines = [line.split() for line in first.splitlines() if line.startswith("  demo-")]
    assert len(lines) == len(Role)
    for username, password, *_ in lines:
        assert authenticate(rf.get("/"), username=username, password=password) is not None
    assert set(Membership.objects.values_list("role", flat=True)) == {r.value for r in Role}

    again = seed()
    assert "already seeded" in again
    assert not any(password in again for _, password, *_ in lines)


def test_reset_passwords_gives_new_ones(rf):
    seed()
    lines = [line.split() for line in seed("--reset-passwords").splitlines() if "demo-" in line]
    username, password, *_ = lines[0]
    assert authenticate(rf.get("/"), username=username, password=password) is not None
