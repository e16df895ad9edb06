"""In a real browser: a data manager exports the blinded dataset and downloads it."""

import csv
import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from assessments.services import schedule_visits
from exports.models import ExportRun
from imrtrial.models import Role
from randomization import services as randomization
from tests.factories import make_person, make_ready_participant

from .conftest import PASSWORD, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def randomized_trial(roles_restored, settings, tmp_path, danish):
    """The Danish trial with three participants randomized and a data manager who signs in."""
    settings.EXPORT_DIR = tmp_path
    coordinator = make_person(danish, Role.COORDINATOR, username="desk-x")
    for _ in range(3):
        randomization.randomize(make_ready_participant(danish, coordinator), by=coordinator)
    schedule_visits(danish)
    make_person(danish, Role.DATA_MANAGER, username="dm-browser", password=PASSWORD)
    return danish


def test_data_manager_exports_the_blinded_dataset_and_downloads_it(
    browser, live_server, randomized_trial
):
    trial = randomized_trial
    page = sign_in(browser, live_server, "dm-browser")
    page.get_by_role("link", name="Exports").click()
    page.get_by_label("Wide: one row per participant").check()
    page.get_by_label("CSV (UTF-8) with codebook, zipped").check()
    page.get_by_role("button", name="Start export").click()
    page.wait_for_url("**/exports/*/")
    assert page.get_by_text("Ready: 3 rows").is_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download").click()
    body = Path(info.value.path()).read_bytes()
    run = ExportRun.objects.get()
    assert hashlib.sha256(body).hexdigest() == run.sha256
    assert page.get_by_text(run.sha256).is_visible()
    bundle = zipfile.ZipFile(io.BytesIO(body))
    rows = list(csv.DictReader(io.StringIO(bundle.read(f"{run.path.stem}.csv").decode())))
    assert len(rows) == 3 and {r["arm"] for r in rows} <= {"A", "B"}
    assert not {a.label for a in trial.arms.all()} & {v for r in rows for v in r.values()}
    page.close()
