"""The register pages: upload, the dry-run report, the import with a reason, the batches; who
may open them; hostile files; and the same pages whatever the arms."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from imrtrial.models import Role
from randomization.models import Allocation
from registers.models import ImportBatch, RegisterRecord
from tests.factories import import_register_rows, make_person, register_file, year_before_baseline

pytestmark = pytest.mark.django_db


def post(client, dataset, content, **data):
    url = reverse("registers:import", args=[dataset.trial.key, dataset.code])
    upload = SimpleUploadedFile("extract.csv", content, "text/csv")
    return client.post(url, {"file": upload, **data})


def test_upload_report_then_import_with_a_reason(client, hospital, randomized, data_manager):
    a = randomized()
    content = register_file(hospital, [(a.participant_id, *year_before_baseline(a), 3, 21)])
    client.force_login(data_manager)
    checked = post(client, hospital, content)
    page = checked.content.decode()
    assert checked.status_code == 200 and "No problem found: 1 row ready to import" in page
    assert a.participant_id in page and ImportBatch.objects.count() == 0
    sha = checked.context["report"].sha256
    refused = post(client, hospital, content, action="import", checked=sha)  # no reason
    assert "Say why this file is imported" in refused.content.decode()
    other = register_file(hospital, [(a.participant_id, *year_before_baseline(a), 3, 22)])
    refused = post(client, hospital, other, action="import", checked=sha, reason="HIS")
    assert "not the file you checked" in refused.content.decode()
    assert RegisterRecord.objects.count() == 0
    done = post(client, hospital, content, action="import", checked=sha, reason="HIS 2026")
    assert done.status_code == 302
    batch = ImportBatch.objects.get()
    assert (batch.sha256, batch.reason, batch.rows) == (sha, "HIS 2026", 1)
    listing = client.get(done.url).content.decode()
    assert "HIS 2026" in listing and sha in listing and "1 rows imported" in listing


def test_a_report_with_problems_offers_no_import(client, hospital, randomized, data_manager):
    a = randomized()
    content = register_file(
        hospital, [(a.participant_id, *year_before_baseline(a), 3, 21), ("NOBODY", "x", "y", 1, 1)]
    )
    client.force_login(data_manager)
    page = post(client, hospital, content).content.decode()
    assert "Not importable" in page and "Malformed rows: 2" in page
    assert 'value="import"' not in page


@pytest.mark.parametrize(
    "content, message",
    [
        (b"x" * (3 * 1024 * 1024), "larger than 2 MB"),
        ("participant_id\n".encode("utf-16"), "not UTF-8"),
        (b"participant_id,period_start\x00\n", "NUL bytes"),
        (b"", "empty"),
        (b'participant_id,period_start,period_end,admissions,admission_days\n"P-1,', "not CSV"),
    ],
)
def test_a_hostile_file_is_refused_with_the_reason_and_nothing_is_stored(
    client, hospital, data_manager, content, message
):
    client.force_login(data_manager)
    response = post(client, hospital, content)
    assert response.status_code == 200 and message in response.content.decode()
    assert ImportBatch.objects.count() == 0


def test_a_formula_in_a_cell_is_refused(client, hospital, randomized, data_manager):
    a = randomized()
    start, end = year_before_baseline(a)
    content = register_file(hospital, [(a.participant_id, start, end, '=HYPERLINK("x")', 1)])
    client.force_login(data_manager)
    page = post(client, hospital, content).content.decode()
    assert "spreadsheet formulas are refused" in page and "Not importable" in page


def test_only_a_data_manager_of_every_site_opens_the_pages(client, hospital, trial, north):
    urls = [
        reverse("registers:datasets", args=[trial.key]),
        reverse("registers:batches", args=[trial.key, hospital.code]),
        reverse("registers:import", args=[trial.key, hospital.code]),
    ]
    for user in (
        make_person(trial, Role.DATA_MANAGER, north),
        make_person(trial, Role.ASSESSOR),
        make_person(trial, Role.FACILITATOR, north),
        make_person(trial, Role.KEY_HOLDER),
    ):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [404] * 3
        assert "Register data" not in client.get("/").content.decode()
    client.force_login(make_person(trial, Role.DATA_MANAGER))
    assert [client.get(url).status_code for url in urls] == [200] * 3
    assert urls[0] in client.get("/").content.decode()  # the home page links it


def test_the_register_pages_are_the_same_whatever_the_arms(
    client, hospital, randomized, data_manager, coordinator
):
    """Two participants with the same register data, one in each arm: swapping their arms
    changes nothing a data manager sees, on the pages or in the dry run of the same file."""
    people = [randomized("imr"), randomized("tau")]
    rows = [(p.participant_id, *year_before_baseline(p), 2, 9) for p in people]
    import_register_rows(hospital, rows[:1], by=data_manager, reason="first")
    import_register_rows(hospital, rows[1:], by=data_manager, reason="second")
    client.force_login(data_manager)
    content = register_file(hospital, rows)

    def seen():
        pages = [
            client.get(reverse("registers:datasets", args=[hospital.trial.key])),
            client.get(reverse("registers:batches", args=[hospital.trial.key, hospital.code])),
            post(client, hospital, content),
        ]
        return [
            re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", r.content.decode())
            for r in pages
        ]

    before = seen()
    a, b = (Allocation.objects.get(participant=p) for p in people)
    a.arm, b.arm = b.arm, a.arm
    Allocation.objects.bulk_update([a, b], ["arm"])
    assert seen() == before
    assert "already imported" in before[2]


def test_an_unblinded_importers_name_and_reason_are_withheld_from_a_blinded_reader(
    client, hospital, randomized, trial, data_manager
):
    from imrtrial.access import NEUTRAL_AUTHOR, TEXT_WITHHELD
    from tests.factories import grant

    importer = make_person(trial, Role.DATA_MANAGER, username="dm-and-key-holder")
    grant(importer, trial, Role.KEY_HOLDER)
    a = randomized()
    import_register_rows(
        hospital,
        [(a.participant_id, *year_before_baseline(a), 1, 1)],
        by=importer,
        reason="Quince: the IMR arm's extract",
    )
    client.force_login(data_manager)
    page = client.get(reverse("registers:batches", args=[trial.key, hospital.code]))
    text = page.content.decode()
    assert "Quince" not in text and "dm-and-key-holder" not in text
    assert TEXT_WITHHELD in text and NEUTRAL_AUTHOR in text
