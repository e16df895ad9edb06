"""A real Celery worker, on the local Redis, runs the rules when a data manager presses Run now."""

import pytest

from assessments import services as crf
from imrtrial import celery_app
from imrtrial.models import Role
from quality import services
from quality.models import RuleRun
from randomization import services as randomization
from tests.assessments.test_reminder_worker import redis_broker, wait_for  # noqa: F401
from tests.factories import grant, load_preset, make_ready_participant, make_user

# In a pytest process of their own, as the other worker tests (see the Makefile).
pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_run_now_is_run_by_a_real_worker_through_redis(redis_broker, roles_restored):  # noqa: F811
    from celery.contrib.testing.worker import start_worker

    trial = load_preset("danish", key="danish-rules-worker")
    desk, assessor, dm = make_user("desk-q"), make_user("assessor-q"), make_user("dm-q")
    grant(desk, trial, Role.COORDINATOR)
    grant(assessor, trial, Role.ASSESSOR)
    grant(dm, trial, Role.DATA_MANAGER)
    participant = make_ready_participant(trial, desk)
    randomization.randomize(participant, by=desk)
    crf.schedule_visits(trial)
    for timepoint, value in (("baseline", "30"), ("post", "85")):
        visit = participant.visits.get(timepoint__code=timepoint)
        crf.save_entry(visit, "gaf_f", {"gaf_f": value}, by=assessor, kind="single", complete=True)
    with start_worker(celery_app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        run = services.request_run(trial, by=dm)  # queued on commit: autocommit here
        assert wait_for(lambda: RuleRun.objects.get(pk=run.pk).status == RuleRun.Status.DONE)
    run.refresh_from_db()
    assert run.opened == 1, (run.status, run.error)
