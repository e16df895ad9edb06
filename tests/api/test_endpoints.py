"""The endpoints against their pages: the dataset is the export's file, an export is started,
polled and downloaded with its checksum, randomization answers what the phone desk shows and
is idempotent by the client's key, and allocation and export use goes to the access log."""

import hashlib
import io
import json
import zipfile

import pytest

from api.models import RandomizationKey
from assessments.models import DataQuery, FormEntry
from exports import services as exporting
from exports.models import ExportRun
from imrtrial.models import AccessLog, Perm, Role
from randomization.services import allocation_of
from tests.api.conftest import Api, body
from tests.exports import conftest as exports_fixtures
from tests.factories import make_participant, make_ready_participant

# The exports' filled Danish trial (both arms, every form) and their export folder per test.
filled_trial = exports_fixtures.filled_trial
_export_dir = exports_fixtures._export_dir


@pytest.fixture
def study(danish):
    return danish


def export_csv(trial, user, dataset):
    run = exporting.request_export(trial, by=user, dataset=dataset, format="csv")
    run = exporting.build(run.pk)
    with zipfile.ZipFile(run.path) as bundle:
        return bundle.read(f"{run.path.stem}.csv").decode()


@pytest.mark.parametrize("shape", ["long", "wide"])
def test_the_csv_records_are_the_export_files_csv(filled_trial, data_manager, token, shape):
    trial, _ = filled_trial
    api = Api(token(data_manager))
    response = api.get("/api/v1/records/", {"shape": shape, "format": "csv"})
    assert response.status_code == 200 and response.streaming
    assert body(response) == export_csv(trial, data_manager, shape)
    logged = AccessLog.objects.filter(user=data_manager, target__startswith="API records")
    assert logged.get().action == AccessLog.Action.EXPORT


def test_the_json_records_hold_the_same_cells_with_the_arm_as_the_neutral_code(
    filled_trial, data_manager, token
):
    trial, by_code = filled_trial
    data = Api(token(data_manager)).get("/api/v1/records/", {"shape": "wide"})
    data = json.loads(body(data))
    arm = data["columns"].index("arm")
    assert {row[arm] for row in data["rows"]} == set(by_code)
    assert {row[arm] for row in data["rows"]} <= {"A", "B"}
    assert len(data["rows"]) == 12


def test_the_records_filter_by_site_form_and_timepoint(filled_trial, data_manager, token):
    trial, _ = filled_trial
    api = Api(token(data_manager))
    site = trial.sites.order_by("code").first()
    tp = trial.timepoints.order_by("order").first()
    long = json.loads(
        body(api.get("/api/v1/records/", {"shape": "long", "site": site.code, "form": "gaf_f"}))
    )
    assert {row[long["columns"].index("site")] for row in long["rows"]} == {site.code}
    assert any(c.startswith("gaf_f_") for c in long["columns"])
    assert not any(c.startswith("panss_") for c in long["columns"])
    wide = json.loads(body(api.get("/api/v1/records/", {"shape": "wide", "timepoint": tp.code})))
    assert any(c.startswith("t1_") for c in wide["columns"])
    assert not any(c.startswith("t2_") for c in wide["columns"])
    only = json.loads(body(api.get("/api/v1/records/", {"shape": "long", "timepoint": tp.code})))
    assert {row[only["columns"].index("timepoint")] for row in only["rows"]} == {tp.code}
    assert api.get("/api/v1/records/", {"form": "nothing"}).status_code == 400
    assert api.get("/api/v1/records/", {"site": "nowhere"}).status_code == 404


def test_the_metadata_is_a_data_dictionary(filled_trial, statistician, token):
    trial, _ = filled_trial
    data = Api(token(statistician)).get("/api/v1/metadata/").json()
    assert data["key"] == trial.key
    assert [t["code"] for t in data["timepoints"]] == list(
        trial.timepoints.order_by("order").values_list("code", flat=True)
    )
    gaf = next(i for i in data["instruments"] if i["code"] == "gaf_f")
    assert gaf["items"][0]["min"] == 1 and gaf["items"][0]["max"] == 100
    assert gaf["missing_codes"]["ND"]
    assert "arm" in [c["name"] for c in data["columns_wide"]]


def test_an_export_is_started_polled_and_downloaded_with_its_checksum(
    filled_trial, data_manager, token, django_capture_on_commit_callbacks
):
    trial, _ = filled_trial
    api = Api(token(data_manager))
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post("/api/v1/exports/", {"dataset": "wide", "format": "csv"})
    assert started.status_code == 201, started.json()
    run_id = started.json()["id"]
    polled = api.get(f"/api/v1/exports/{run_id}/").json()
    assert polled["status"] == "done" and polled["progress"] == 1.0
    download = api.get(polled["download"])
    assert download.status_code == 200
    content = b"".join(download.streaming_content)
    assert hashlib.sha256(content).hexdigest() == polled["sha256"] == download["X-Content-SHA256"]
    assert AccessLog.objects.filter(user=data_manager, target__startswith="API download").exists()
    assert zipfile.ZipFile(io.BytesIO(content)).namelist()


def test_an_export_belongs_to_who_asked_and_the_key_is_refused_before_lock(
    filled_trial, data_manager, statistician, key_holder, token
):
    trial, _ = filled_trial
    run = exporting.request_export(trial, by=data_manager, dataset="long", format="csv")
    assert Api(token(statistician)).get(f"/api/v1/exports/{run.pk}/").status_code == 404
    refused = Api(token(key_holder)).post(
        "/api/v1/exports/", {"dataset": "key", "format": "csv", "reason": "analysis done"}
    )
    assert refused.status_code == 400
    assert ExportRun.objects.count() == 1


def test_randomize_answers_what_the_phone_desk_shows_and_a_repeated_key_allocates_once(
    danish, coordinator, token
):
    participant = make_ready_participant(danish, coordinator)
    api = Api(token(coordinator))
    payload = {"participant_id": participant.participant_id, "key": "call-0001"}
    first = api.post("/api/v1/randomize/", payload)
    assert first.status_code == 200, first.json()
    allocation = allocation_of(participant)
    assert first.json()["arm"] == allocation.arm.label
    assert first.json()["randomization_number"] == allocation.randomization_number
    assert first.json()["confirmation_code"] == allocation.confirmation_code
    again = api.post("/api/v1/randomize/", payload)
    assert again.json() == first.json()
    assert RandomizationKey.objects.get().participant == participant
    logged = AccessLog.objects.filter(action=AccessLog.Action.VIEW_ALLOCATION, user=coordinator)
    assert logged.count() == 2 and logged.first().target == participant.participant_id
    other = make_ready_participant(danish, coordinator)
    refused = api.post(
        "/api/v1/randomize/", {"participant_id": other.participant_id, "key": "call-0001"}
    )
    assert refused.status_code == 400 and "another participant" in refused.json()["detail"]
    assert allocation_of(other) is None


def test_a_refused_randomization_keeps_no_key_and_the_key_is_free_for_the_next_call(
    danish, coordinator, token
):
    """The key is claimed in the randomization's own transaction: a refusal takes it back."""
    not_ready = make_participant(danish)  # not screened eligible: the desk refuses
    api = Api(token(coordinator))
    refused = api.post(
        "/api/v1/randomize/", {"participant_id": not_ready.participant_id, "key": "call-9"}
    )
    assert refused.status_code == 400 and allocation_of(not_ready) is None
    assert not RandomizationKey.objects.exists()
    ready = make_ready_participant(danish, coordinator)
    done = api.post("/api/v1/randomize/", {"participant_id": ready.participant_id, "key": "call-9"})
    assert done.status_code == 200 and RandomizationKey.objects.get().participant == ready


def test_randomize_needs_the_randomize_scope_even_for_a_coordinator(danish, coordinator, token):
    participant = make_ready_participant(danish, coordinator)
    api = Api(token(coordinator, perms=[Perm.VIEW_PARTICIPANTS, Perm.VIEW_UNBLINDED]))
    response = api.post(
        "/api/v1/randomize/", {"participant_id": participant.participant_id, "key": "k"}
    )
    assert response.status_code == 404 and allocation_of(participant) is None


def test_an_answer_to_a_query_corrects_the_value_through_the_form(
    filled_trial, data_manager, token
):
    trial, _ = filled_trial
    from assessments import queries

    entry = (
        FormEntry.objects.counting()
        .filter(instrument="gaf_f", participant__trial=trial, kind="single")
        .select_related("visit", "entered_by")
        .first()
    )
    query = queries.open_query(
        entry.visit, entry, "gaf_f", by=data_manager, category="range", text="Is it right?"
    )
    api = Api(token(entry.entered_by))
    listed = api.get("/api/v1/queries/", {"status": "open"}).json()
    assert [q["id"] for q in listed if q["may_answer"]] == [query.pk]
    answer = api.post(
        f"/api/v1/queries/{query.pk}/answer/",
        {"text": "Typed wrong.", "value": "42", "version": entry.version},
    )
    assert answer.status_code == 200, answer.json()
    entry.refresh_from_db()
    assert entry.values["gaf_f"] == 42
    assert DataQuery.objects.get(pk=query.pk).status == "answered"


def test_a_monitor_lists_the_queries_of_their_sites_as_on_the_page(
    filled_trial, data_manager, person, token
):
    """The query list page shows a monitor every query of their sites (access.query_sites);
    the API answered 404."""
    from assessments import queries

    trial, _ = filled_trial
    entry = FormEntry.objects.counting().filter(instrument="gaf_f", participant__trial=trial)[0]
    query = queries.open_query(
        entry.visit, entry, "gaf_f", by=data_manager, category="range", text="Is it right?"
    )
    monitor = person(Role.MONITOR, entry.participant.site, username="api-monitor")
    listed = Api(token(monitor)).get("/api/v1/queries/")
    assert listed.status_code == 200, listed.content
    assert query.pk in [q["id"] for q in listed.json()]
    assert all(not q["may_answer"] for q in listed.json())
