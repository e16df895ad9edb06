"""Register data in the blinded export (their own file and codebook), the same whatever the
arms; and the trial file's `registers:` section."""

import csv
import io
import zipfile

import pytest

from exports import services as exports
from exports.models import ExportRun
from imrtrial import trialconfig
from randomization.models import Allocation
from registers.models import RegisterDataset
from tests.factories import import_register_rows, load_preset, year_before_baseline

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"


def export_members(trial, user):
    run = exports.build(exports.request_export(trial, by=user, dataset="long", format="csv").pk)
    assert run.status == ExportRun.Status.DONE, run.error
    bundle = zipfile.ZipFile(run.path)
    stem = run.path.stem
    return {
        name.removeprefix(stem): bundle.read(name).decode()
        for name in bundle.namelist()
        if name != "README.txt"
    }, bundle.read("README.txt").decode()


def table(text):
    return list(csv.reader(io.StringIO(text)))


def test_the_export_holds_the_register_records_in_their_own_file_with_a_codebook(
    hospital, randomized, data_manager
):
    a = randomized()
    start, end = year_before_baseline(a)
    import_register_rows(hospital, [(a.participant_id, start, end, 2, 11)], by=data_manager)
    members, readme = export_members(hospital.trial, data_manager)
    rows = table(members["-register-nl_hospitalisation.csv"])
    assert rows == [
        ["participant_id", "period_start", "period_end", "admissions", "admission_days"],
        [a.participant_id, str(start), str(end), "2", "11"],
    ]
    codebook = table(members["-register-nl_hospitalisation-codebook.csv"])
    assert [row[0] for row in codebook[1:]] == rows[0]
    assert codebook[4][1] == "Hospital admissions (number) (0 to 366)"
    assert "register" in readme
    assert not any("arm" in name for name in rows[0])


def test_the_blinded_export_is_the_same_whatever_the_arms(hospital, randomized, data_manager):
    people = [randomized("imr"), randomized("tau")]
    import_register_rows(
        hospital,
        [(p.participant_id, *year_before_baseline(p), 1, 5) for p in people],
        by=data_manager,
    )
    before, _ = export_members(hospital.trial, data_manager)
    a, b = (Allocation.objects.get(participant=p) for p in people)
    a.arm, b.arm = b.arm, a.arm
    Allocation.objects.bulk_update([a, b], ["arm"])
    after, _ = export_members(hospital.trial, data_manager)
    for name in ("-register-nl_hospitalisation.csv", "-register-nl_hospitalisation-codebook.csv"):
        assert after[name] == before[name]
    assert len(table(after["-register-nl_hospitalisation.csv"])) == 3


def test_the_presets_choose_their_register_datasets():
    danish, dutch = load_preset("danish"), load_preset("dutch")
    dk = RegisterDataset.objects.get(trial=danish)
    assert (dk.code, dk.key_kind, dk.key_column) == ("dk_service_use", "national_id", "cpr")
    assert [v["code"] for v in dk.variables] == [
        "admissions",
        "admission_days",
        "er_visits",
        "outpatient_contacts",
    ]
    nl = RegisterDataset.objects.get(trial=dutch)
    assert (nl.code, nl.key_kind) == ("nl_hospitalisation", "participant_id")
    assert [p["anchor"] for p in nl.periods] == ["baseline", "visit:t2"]


@pytest.mark.parametrize(
    "value, problem",
    [
        ("[nowhere]", "no register dataset 'nowhere'"),
        ("dk_service_use", "must be a list"),
        ("[dk_service_use, dk_service_use]", "duplicate register dataset"),
    ],
)
def test_a_bad_registers_section_is_refused_with_its_place(value, problem):
    text = trialconfig.resolve("danish").read_text()
    text = text.replace("registers: [dk_service_use]", f"registers: {value}")
    with pytest.raises(trialconfig.TrialConfigError, match=problem):
        trialconfig.parse(text)


def test_a_trial_without_the_section_has_no_register_data():
    text = trialconfig.resolve("danish").read_text().replace("registers: [dk_service_use]", "")
    trial = trialconfig.create_trial(trialconfig.parse(text))
    assert not trial.register_datasets.exists()
