"""The statistician's tools: verify against the secret, and import an uploaded list."""

import pytest
from django.core.management import CommandError, call_command

from imrtrial.models import Role, Trial
from randomization import listing, services
from randomization.models import Allocation
from tests.factories import load_list_trial, make_person, make_ready_participant

pytestmark = pytest.mark.django_db


def test_verify_command_confirms_every_allocation_with_the_right_secret(
    danish, coordinator, monkeypatch, capsys
):
    for _ in range(8):
        services.randomize(make_ready_participant(danish, coordinator), by=coordinator)
    monkeypatch.setenv("THE_SECRET", "test-secret")
    call_command(
        "randomization_list", danish.key, "--secret-env", "THE_SECRET", "--per-stratum", "12"
    )
    out = capsys.readouterr().out
    assert "All 8 allocations match" in out
    assert out.count("slot,block,block_size,position,arm") == 1  # one stratum in use
    monkeypatch.setenv("THE_SECRET", "a-wrong-secret")
    with pytest.raises(CommandError, match="do not match"):
        call_command("randomization_list", danish.key, "--secret-env", "THE_SECRET")


def test_randomization_follows_an_uploaded_list_and_refuses_when_it_runs_out():
    trial = load_list_trial()
    text = "stratum,slot,arm\nteam=team-01,1,cau\nteam=team-01,2,imr\nteam=team-02,1,imr\n"
    assert listing.import_list(trial, text) == 3
    Trial.objects.filter(pk=trial.pk).update(status="open")
    trial.refresh_from_db()
    coordinator = make_person(trial, Role.COORDINATOR)
    team1 = trial.sites.get(code="team-01")
    arms = [
        services.randomize(
            make_ready_participant(trial, coordinator, site=team1), by=coordinator
        ).arm.code
        for _ in range(2)
    ]
    assert arms == ["cau", "imr"]
    with pytest.raises(services.Refused, match="no entry left"):
        services.randomize(make_ready_participant(trial, coordinator, site=team1), by=coordinator)
    assert Allocation.objects.filter(trial=trial).count() == 2


@pytest.mark.parametrize(
    "text, problem",
    [
        ("stratum;slot;arm\nteam=team-01;1;imr\n", "header"),
        ("stratum,slot,arm\nteam=team-01,1,placebo\n", "arm 'placebo' is not one of"),
        ("stratum,slot,arm\nteam=team-99,1,imr\n", "is not a stratum of this trial"),
        ("stratum,slot,arm\nteam=team-01,0,imr\n", "not a whole number from 1"),
        ("stratum,slot,arm\nteam=team-01,1,imr\nteam=team-01,1,cau\n", "repeats line 2"),
        ("stratum,slot,arm\nteam=team-01,1,imr\nteam=team-01,3,cau\n", "without gaps"),
        ("stratum,slot,arm\nteam=team-01,1,imr,extra\n", "more than three columns"),
        ("stratum,slot,arm\n", "no rows"),
        ('stratum,slot,arm\n"=HYPERLINK(""x"")",1,imr\n', "spreadsheet formulas are refused"),
    ],
)
def test_a_malformed_list_is_rejected_whole(text, problem):
    trial = load_list_trial()
    with pytest.raises(listing.ListError, match=problem):
        listing.import_list(trial, text)
    assert trial.list_entries.count() == 0


def test_the_import_command_reports_problems_and_imports_nothing(tmp_path):
    trial = load_list_trial()
    path = tmp_path / "list.csv"
    path.write_text("stratum,slot,arm\nteam=team-01,1,imr\nteam=team-01,1,imr\n")
    with pytest.raises(CommandError, match="repeats line 2"):
        call_command("import_allocation_list", trial.key, str(path))
    assert trial.list_entries.count() == 0


def test_the_key_holder_uploads_a_list_through_the_page_and_sees_each_problem(client):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from imrtrial.models import Role
    from tests.factories import grant, make_user

    trial = load_list_trial()
    holder, assessor = make_user("holder"), make_user("blind")
    grant(holder, trial, Role.KEY_HOLDER)
    grant(assessor, trial, Role.ASSESSOR)
    url = reverse("randomization:list_upload", args=[trial.key])
    client.force_login(assessor)
    assert client.get(url).status_code == 404
    client.force_login(holder)
    bad = SimpleUploadedFile("l.csv", b"stratum,slot,arm\nteam=team-01,2,imr\n")
    page = client.post(url, {"file": bad}).content.decode()
    assert "without gaps" in page and trial.list_entries.count() == 0
    big = SimpleUploadedFile("l.csv", b"x" * (2 * 1024 * 1024 + 1))
    assert "larger than 2 MB" in client.post(url, {"file": big}).content.decode()
    good = SimpleUploadedFile("l.csv", b"stratum,slot,arm\nteam=team-01,1,imr\n")
    assert client.post(url, {"file": good}).status_code == 302
    assert trial.list_entries.count() == 1
