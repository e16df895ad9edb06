"""The trial's `signoff:` section: read by load_trial, checked with its place in the file like
every other setting, and stored for the casebook lock."""

import pytest
from django.core.management import CommandError, call_command

from imrtrial import trialconfig
from imrtrial.models import Trial
from signoff.models import SignoffSetting

pytestmark = pytest.mark.django_db


def danish_with(section):
    return trialconfig.resolve("danish").read_text() + section


def test_a_trial_that_asks_for_signatures_before_lock_says_so_in_its_file(tmp_path):
    path = tmp_path / "signed.yaml"
    path.write_text(danish_with("signoff:\n  lock_requires_signature: true\n"))
    call_command("load_trial", str(path))
    setting = SignoffSetting.objects.get(trial__key="danish-imr")
    assert setting.lock_requires_signature is True


def test_without_the_section_a_casebook_is_locked_without_a_signature():
    trial = trialconfig.load_trial("danish")
    assert SignoffSetting.objects.get(trial=trial).lock_requires_signature is False


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("signoff:\n  lock_requires_signature: maybe\n", "signoff.lock_requires_signature: must"),
        ("signoff:\n  lock_requires_signature: 1\n", "signoff.lock_requires_signature: must"),
        ("signoff:\n  sign_by: pi\n", "signoff: unknown key 'sign_by'"),
        ("signoff: [true]\n", "signoff: must be a mapping"),
    ],
)
def test_a_malformed_section_is_refused_with_its_place_and_nothing_is_loaded(
    tmp_path, section, problem
):
    path = tmp_path / "bad.yaml"
    path.write_text(danish_with(section))
    with pytest.raises(CommandError, match=problem):
        call_command("load_trial", str(path))
    assert not Trial.objects.exists() and not SignoffSetting.objects.exists()
