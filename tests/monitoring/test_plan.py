"""The trial's SDV plan from its YAML (`source_data_verification:`): every form, a list of
instruments, or a share of each site's participants drawn reproducibly by a hash of the
participant's id, never by arm; a malformed section is refused at load with its place."""

import pytest

from imrtrial import trialconfig
from imrtrial.models import Trial
from monitoring import plan
from monitoring.models import SdvPlan

pytestmark = pytest.mark.django_db


def load(tmp_path, section):
    text = trialconfig.resolve("danish").read_text()
    path = tmp_path / "trial.yaml"
    path.write_text(text + "\n" + section)
    return trialconfig.load_trial(path)


def test_a_trial_without_the_section_verifies_every_form(tmp_path):
    trial = load(tmp_path, "")
    assert SdvPlan.of(trial) == plan.EVERY_FORM
    assert plan.requires(SdvPlan.of(trial), trial.key, "ballerup", "DK-0001", "panss")


def test_a_list_of_instruments_and_site_shares_are_loaded(tmp_path):
    trial = load(
        tmp_path,
        "source_data_verification:\n"
        "  instruments: [panss, gaf_f]\n"
        "  sample_percent: 30\n"
        "  sites: {ballerup: 100, gladsaxe: 0}\n",
    )
    the_plan = SdvPlan.of(trial)
    assert the_plan == {
        "instruments": ["panss", "gaf_f"],
        "sample_percent": 30,
        "site_sample_percent": {"ballerup": 100, "gladsaxe": 0},
    }
    assert plan.requires(the_plan, trial.key, "ballerup", "DK-0001", "panss")
    assert not plan.requires(the_plan, trial.key, "ballerup", "DK-0001", "hamd6")
    assert not plan.requires(the_plan, trial.key, "gladsaxe", "DK-0001", "panss")


def test_the_sample_is_reproducible_near_its_share_and_knows_nothing_but_the_id():
    ids = [f"DK-{n:04d}" for n in range(1, 2001)]
    first = [plan.sampled("danish-imr", pid, 25) for pid in ids]
    assert first == [plan.sampled("danish-imr", pid, 25) for pid in ids]  # the same every time
    assert 400 <= sum(first) <= 600  # about a quarter
    # A larger share keeps everyone a smaller one took: raising it adds participants.
    assert all(plan.sampled("danish-imr", pid, 50) for pid, s in zip(ids, first, strict=True) if s)
    assert plan.sampled("danish-imr", "DK-0001", 100)
    assert not plan.sampled("danish-imr", "DK-0001", 0)


@pytest.mark.parametrize(
    "section, problem",
    [
        ("source_data_verification: everything\n", "source_data_verification: must be a mapping"),
        (
            "source_data_verification:\n  instruments: [panss, nosuch]\n",
            "source_data_verification.instruments[1]: 'nosuch' is not an instrument",
        ),
        (
            "source_data_verification:\n  instruments: some\n",
            "source_data_verification.instruments: must be 'all' or a non-empty list",
        ),
        (
            "source_data_verification:\n  sample_percent: 120\n",
            "source_data_verification.sample_percent: must be a whole percentage from 0 to 100",
        ),
        (
            "source_data_verification:\n  sites: {nowhere: 50}\n",
            "source_data_verification.sites.nowhere: no site 'nowhere'",
        ),
        (
            "source_data_verification:\n  sites: {ballerup: half}\n",
            "source_data_verification.sites.ballerup: must be a whole percentage",
        ),
        (
            "source_data_verification:\n  share: 10\n",
            "source_data_verification: unknown key 'share'",
        ),
        (
            "source_data_verification:\n  instruments: [panss, panss]\n",
            "source_data_verification.instruments: duplicate instrument 'panss'",
        ),
    ],
)
def test_a_malformed_section_is_refused_at_load_with_its_place_and_nothing_loaded(
    tmp_path, section, problem
):
    with pytest.raises(trialconfig.TrialConfigError) as error:
        load(tmp_path, section)
    assert problem in str(error.value), str(error.value)
    assert not Trial.objects.exists() and not SdvPlan.objects.exists()
