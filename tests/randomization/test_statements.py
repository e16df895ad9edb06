"""randomize() writes its rows with its own SQL (randomization.statements): the history rows it
writes are the rows simple-history writes on save(), column for column, in the one-statement
form PostgreSQL runs and in the five-statement form of the SQLite demo alike."""

import pytest

from imrtrial.audit import attribute
from imrtrial.models import Participant
from randomization import services, statements
from randomization.models import Allocation, Stratum
from tests.factories import make_ready_participant

pytestmark = pytest.mark.django_db

# Columns that differ between two history rows of the same state by nature.
OWN = {"history_id", "history_date", "history_type"}


def history_row(model, **where):
    return model.history.model.objects.filter(**where).order_by("-history_id").values()[0]


def same_but_own(mine, theirs):
    return {k: v for k, v in mine.items() if k not in OWN} == {
        k: v for k, v in theirs.items() if k not in OWN
    }


@pytest.fixture(params=["one statement", "five statements"])
def form(request, monkeypatch):
    sql = statements.Statements(one_statement=request.param == "one statement")
    monkeypatch.setattr(services, "statements", lambda: sql)
    return request.param


def test_the_history_rows_are_those_simple_history_writes(form, danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    baseline = p.baseline_completed_on
    allocation = services.randomize(p, by=coordinator)

    mine = history_row(Allocation, id=allocation.pk, history_type="+")
    stored = Allocation.objects.get(pk=allocation.pk)
    assert mine["history_user_id"] == coordinator.pk and mine["history_change_reason"] == ""
    assert mine["history_date"] == stored.allocated_at
    attribute(stored, by=coordinator).save()  # simple-history writes a row of the same state
    assert same_but_own(mine, history_row(Allocation, id=allocation.pk, history_type="~"))

    mine = history_row(Participant, id=p.pk, history_type="~")
    assert mine["history_change_reason"] == "randomized"
    assert (mine["status"], mine["randomized_on"]) == ("randomized", p.randomized_on)
    assert mine["baseline_completed_on"] == baseline
    fresh = Participant.objects.get(pk=p.pk)
    attribute(fresh, by=coordinator, reason="randomized").save(update_fields=["status"])
    assert same_but_own(mine, history_row(Participant, id=p.pk))


def test_the_baseline_reported_on_the_call_is_written_with_its_reason(form, danish, coordinator):
    p = make_ready_participant(danish, coordinator, baseline=False)
    day = p.created_at.date()
    services.randomize(p, by=coordinator, baseline_completed_on=day)
    stored = Participant.objects.get(pk=p.pk)
    assert stored.baseline_completed_on == day and stored.status == "randomized"
    mine = history_row(Participant, id=p.pk, history_type="~")
    assert mine["baseline_completed_on"] == day
    assert mine["history_change_reason"] == "randomized; baseline date reported at the phone desk"


def test_the_returned_allocation_is_the_stored_one(form, danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    allocation = services.randomize(p, by=coordinator)
    stored = Allocation.objects.get(participant=p)
    for field in Allocation._meta.concrete_fields:
        assert getattr(allocation, field.attname) == getattr(stored, field.attname), field.name
    assert allocation.arm.code in {"imr", "tau"}  # related objects load as on any instance
    assert Stratum.objects.get(pk=stored.stratum_id).next_slot == stored.slot + 1 == 2
    assert (p.status, p.randomized_on) == ("randomized", stored.participant.randomized_on)


def test_a_model_field_the_statements_do_not_know_stops_them(monkeypatch):
    monkeypatch.setattr(
        statements, "ALLOCATION_COLUMNS", statements.ALLOCATION_COLUMNS - {"in_error"}
    )
    with pytest.raises(RuntimeError, match="in_error"):
        statements.Statements()


def test_a_cursor_that_binds_on_the_server_runs_the_statements_unprepared(danish, coordinator):
    """With OPTIONS server_side_binding, psycopg prepares by itself (EXECUTE would refuse the
    bound parameters): the statements run as they are."""
    from django.db import connection
    from django.db.backends.postgresql.base import ServerBindingCursor
    from django.test.utils import CaptureQueriesContext

    p = make_ready_participant(danish, coordinator)
    sql = statements.Statements()
    with CaptureQueriesContext(connection) as captured:
        cursor = connection._prepare_cursor(ServerBindingCursor(connection.connection))
        sql.execute(cursor, "lock_participant", [p.pk])
        assert cursor.fetchone()[:2] == ("consented", True)
    (query,) = captured.captured_queries
    assert query["sql"].startswith("SELECT") and "FOR NO KEY UPDATE" in query["sql"]
