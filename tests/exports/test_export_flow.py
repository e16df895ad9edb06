"""Who may export what, and the record every export leaves: asked through the pages, built by
the (eager) Celery task, downloaded by the person who asked."""

import hashlib
import io
import zipfile

import pytest
from django.urls import reverse

from exports import services
from exports.models import ExportRun
from imrtrial.models import AccessLog, Role, Trial
from tests.factories import grant, make_user


def lock(trial):
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.LOCKED)
    trial.refresh_from_db()


def post_export(client, trial, capture, **data):
    with capture(execute=True):
        return client.post(reverse("exports:list", args=[trial.key]), data)


def test_data_manager_exports_the_blinded_dataset_and_the_export_is_recorded(
    filled_trial, data_manager, client, django_capture_on_commit_callbacks
):
    trial, _ = filled_trial
    client.force_login(data_manager)
    response = post_export(
        client,
        trial,
        django_capture_on_commit_callbacks,
        **{"export-dataset": "long", "export-format": "csv"},
    )
    run = ExportRun.objects.get()
    assert response.status_code == 302 and response.url.endswith(f"/exports/{run.pk}/")
    assert (
        run.status == ExportRun.Status.DONE and run.rows == 36 and run.requested_by == data_manager
    )
    page = client.get(response.url)
    assert b"Ready: 36 rows" in page.content and run.sha256.encode() in page.content
    download = client.get(reverse("exports:download", args=[trial.key, run.pk]))
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == run.sha256
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert f"{run.path.stem}.csv" in names and f"{run.path.stem}-codebook.csv" in names
    actions = list(AccessLog.objects.filter(user=data_manager).values_list("action", flat=True))
    assert actions.count(AccessLog.Action.EXPORT) == 2  # asked for, downloaded


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_statistician_gets_spss_and_stata(filled_trial, statistician, fmt):
    trial, _ = filled_trial
    run = services.request_export(trial, by=statistician, dataset="wide", format=fmt)
    run = services.build(run.pk)
    assert run.status == ExportRun.Status.DONE, run.error
    assert run.rows == 12 and run.path.exists() and run.size == run.path.stat().st_size


def test_blinded_roles_without_export_permission_get_404(
    filled_trial, assessor, facilitator, coordinator, client
):
    trial, _ = filled_trial
    for user in (assessor, facilitator, coordinator):
        client.force_login(user)
        assert client.get(reverse("exports:list", args=[trial.key])).status_code == 404
        response = client.post(
            reverse("exports:list", args=[trial.key]),
            {"export-dataset": "long", "export-format": "csv"},
        )
        assert response.status_code == 404
    assert not ExportRun.objects.exists()


def test_key_and_process_data_are_refused_before_lock_and_to_everyone_but_the_key_holder(
    filled_trial, data_manager, coordinator, assessor, facilitator, statistician, key_holder, client
):
    trial, _ = filled_trial
    for dataset in ("key", "process"):
        with pytest.raises(services.Refused, match="after the database is locked"):
            services.request_export(trial, by=key_holder, dataset=dataset, format="csv", reason="x")
    lock(trial)
    admin = make_user("x-admin")
    grant(admin, trial, Role.TRIAL_ADMIN)
    rater = make_user("x-rater")
    grant(rater, trial, Role.FIDELITY_RATER)
    monitor = make_user("x-monitor")
    grant(monitor, trial, Role.MONITOR)
    investigator = make_user("x-investigator")
    grant(investigator, trial, Role.INVESTIGATOR)
    case_manager = make_user("x-case-manager")
    grant(case_manager, trial, Role.CASE_MANAGER)
    # Every role but the key holder, the unblinded ones included.
    others = (data_manager, statistician, coordinator, assessor, facilitator, rater, admin)
    others += (monitor, investigator, case_manager)
    assert {r for u in others for r in u.memberships.values_list("role", flat=True)} == set(
        Role.values
    ) - {Role.KEY_HOLDER}
    for user in others:
        for dataset in ("key", "process"):
            with pytest.raises(services.Refused):
                services.request_export(trial, by=user, dataset=dataset, format="csv", reason="x")
        client.force_login(user)
        response = client.post(
            reverse("exports:list", args=[trial.key]),
            {"release-dataset": "key", "release-format": "csv", "release-reason": "x"},
        )
        assert response.status_code == 404
        page = client.get(reverse("exports:list", args=[trial.key]))
        assert b"Release" not in page.content
    assert not ExportRun.objects.exists()


def test_key_holder_releases_the_key_after_lock_with_a_reason_recorded(
    filled_trial, key_holder, client, django_capture_on_commit_callbacks
):
    trial, _ = filled_trial
    lock(trial)
    client.force_login(key_holder)
    data = {"release-dataset": "key", "release-format": "sav", "release-reason": ""}
    response = post_export(client, trial, django_capture_on_commit_callbacks, **data)
    assert response.status_code == 400 and not ExportRun.objects.exists()  # a reason is needed
    data["release-reason"] = "Steering committee conclusions drawn; unblinding"
    response = post_export(client, trial, django_capture_on_commit_callbacks, **data)
    run = ExportRun.objects.get()
    assert run.format == "csv" and run.status == ExportRun.Status.DONE  # the key is CSV
    log = AccessLog.objects.get(action=AccessLog.Action.RELEASE_KEY)
    assert log.user == key_holder and "Steering committee" in log.detail["reason"]
    body = b"".join(
        client.get(reverse("exports:download", args=[trial.key, run.pk])).streaming_content
    )
    text = zipfile.ZipFile(io.BytesIO(body)).read(f"{run.path.stem}.csv").decode()
    for arm in trial.arms.all():
        assert f"{arm.export_code},{arm.code},{arm.label}" in text


def test_only_the_requester_sees_and_downloads_an_export(
    filled_trial, data_manager, statistician, client
):
    trial, _ = filled_trial
    run = services.build(
        services.request_export(trial, by=statistician, dataset="long", format="csv").pk
    )
    client.force_login(data_manager)  # may export too, but did not ask for this one
    assert client.get(reverse("exports:detail", args=[trial.key, run.pk])).status_code == 404
    assert client.get(reverse("exports:download", args=[trial.key, run.pk])).status_code == 404


def test_a_site_scoped_data_manager_exports_their_site_only(filled_trial, client):
    trial, _ = filled_trial
    site = trial.sites.order_by("code").first()
    dm = make_user("x-site-dm")
    grant(dm, trial, Role.DATA_MANAGER, site)
    run = services.build(services.request_export(trial, by=dm, dataset="wide", format="csv").pk)
    assert run.rows == 6  # four of the randomized eight, two who left
    with pytest.raises(services.Refused, match="every site"):
        services.request_export(trial, by=dm, dataset="long", format="odm")


def test_a_role_withdrawn_before_the_build_gets_nothing(filled_trial, data_manager):
    trial, _ = filled_trial
    run = services.request_export(trial, by=data_manager, dataset="long", format="csv")
    data_manager.memberships.update(active=False)
    run = services.build(run.pk)
    assert run.status == ExportRun.Status.FAILED and not run.path.exists()


def test_progress_is_shown_while_an_export_runs(filled_trial, data_manager, client):
    trial, _ = filled_trial
    run = services.request_export(trial, by=data_manager, dataset="long", format="csv")
    ExportRun.objects.filter(pk=run.pk).update(status="running", rows=24, done_rows=12)
    client.force_login(data_manager)
    page = client.get(reverse("exports:detail", args=[trial.key, run.pk])).content.decode()
    assert '<meta http-equiv="refresh"' in page and 'value="50"' in page
    assert "12 of 24 rows" in page


def test_odm_export_through_the_task_validates_against_the_schema(filled_trial, data_manager):
    from exports.odm import validate_odm

    trial, _ = filled_trial
    run = services.build(
        services.request_export(trial, by=data_manager, dataset="long", format="odm").pk
    )
    assert run.status == ExportRun.Status.DONE, run.error
    assert validate_odm(run.path) == []
    assert run.path.read_bytes().count(b"<SubjectData") == 12
