"""Import of form data: through assessments.services.save_entry, all or nothing, every problem
reported with its row, record and item; locks, reasons and double entry apply as on the pages."""

import pytest

from assessments import services as crf
from assessments.models import FormEntry
from imrtrial.models import Participant
from tests.api.conftest import Api
from tests.factories import make_allocation, make_ready_participant
from tests.security.conftest import _timepoints
from tests.security.test_fuzz import table_counts


@pytest.fixture
def people(trial, coordinator):
    _timepoints(trial)
    found = []
    for arm in ("imr", "tau", "tau"):
        p = make_ready_participant(trial, coordinator)
        make_allocation(p, arm, by=coordinator)
        Participant.objects.filter(pk=p.pk).update(randomized_on="2026-03-02")
        found.append(Participant.objects.get(pk=p.pk))
    crf.schedule_visits(trial)
    return found


def row(p, values, timepoint="baseline", instrument="gaf_f", **kw):
    return {
        "participant_id": p.participant_id,
        "timepoint": timepoint,
        "instrument": instrument,
        "values": values,
        **kw,
    }


def test_a_good_batch_is_saved_through_the_entry_service(people, assessor, token):
    api = Api(token(assessor))
    response = api.post(
        "/api/v1/forms/import/",
        {"entries": [row(p, {"gaf_f": "60"}, complete=True) for p in people]},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["saved"] == 3
    entries = FormEntry.objects.filter(instrument="gaf_f")
    assert {(e.values["gaf_f"], e.status, e.entered_by) for e in entries} == {
        (60, "complete", assessor)
    }
    assert entries.first().history.first().history_user == assessor


def test_one_bad_row_writes_nothing_and_every_problem_is_reported(people, assessor, token):
    api = Api(token(assessor))
    first, second, third = people
    before = table_counts()
    response = api.post(
        "/api/v1/forms/import/",
        {
            "entries": [
                row(first, {"gaf_f": "60"}, complete=True),
                row(second, {"gaf_f": "150"}, complete=True),  # out of range
                row(third, {"gaf_f": "61", "colour": "blue"}),  # no such item
                row(third, {}, instrument="no_such_form"),
                {**row(third, {"gaf_f": "1"}), "participant_id": "P-NOBODY"},
            ]
        },
    )
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert [(p["row"], p["participant_id"], p["item"]) for p in problems] == [
        (1, second.participant_id, "gaf_f"),
        (2, third.participant_id, "__all__"),
        (3, third.participant_id, "__all__"),
        (4, "P-NOBODY", "__all__"),
    ]
    assert "100" in problems[0]["message"] and "colour" in problems[1]["message"]
    assert table_counts() == before
    assert not FormEntry.objects.exists()


def test_a_locked_casebook_refuses_the_batch(people, assessor, data_manager, token):
    first, second, _ = people
    crf.lock_casebook(second, by=data_manager, reason="complete and checked")
    api = Api(token(assessor))
    before = table_counts()
    response = api.post(
        "/api/v1/forms/import/",
        {"entries": [row(first, {"gaf_f": "60"}), row(second, {"gaf_f": "60"})]},
    )
    assert response.status_code == 400
    [problem] = response.json()["problems"]
    assert problem["row"] == 1 and "locked" in problem["message"].lower()
    assert table_counts() == before


def test_a_change_to_a_complete_form_needs_a_reason_as_on_the_page(people, assessor, token):
    api = Api(token(assessor))
    p = people[0]
    assert (
        api.post(
            "/api/v1/forms/import/", {"entries": [row(p, {"gaf_f": "60"}, complete=True)]}
        ).status_code
        == 200
    )
    refused = api.post("/api/v1/forms/import/", {"entries": [row(p, {"gaf_f": "62"})]})
    assert refused.status_code == 400
    assert "reason" in refused.json()["problems"][0]["message"].lower()
    changed = api.post(
        "/api/v1/forms/import/", {"entries": [row(p, {"gaf_f": "62"}, reason="typo on paper")]}
    )
    assert changed.status_code == 200
    entry = FormEntry.objects.get(participant=p, instrument="gaf_f")
    assert entry.values == {"gaf_f": 62}
    assert entry.history.first().history_change_reason == "typo on paper"


def test_a_staff_rating_is_refused_to_a_blinded_assessor_alike_for_both_arms(
    people, assessor, token
):
    api = Api(token(assessor))
    answers = [
        api.post("/api/v1/forms/import/", {"entries": [row(p, {}, instrument="imrs_s")]}).json()
        for p in people[:2]
    ]
    assert [a["problems"][0]["message"] for a in answers] == [
        "You may not enter this form for this participant."
    ] * 2


def test_a_token_without_entry_permissions_gets_404(people, data_manager, token):
    response = Api(token(data_manager)).post(
        "/api/v1/forms/import/", {"entries": [row(people[0], {"gaf_f": "60"})]}
    )
    assert response.status_code == 404


def test_a_body_over_the_size_limit_is_a_json_400_and_writes_nothing(people, assessor, token):
    api = Api(token(assessor))
    before = table_counts()
    response = api.post(
        "/api/v1/forms/import/", {"entries": [row(people[0], {"x": "y" * 3_000_000})]}
    )
    assert response.status_code == 400 and "too large" in response.json()["detail"]
    assert table_counts() == before
