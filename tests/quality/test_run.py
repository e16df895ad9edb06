"""The nightly run: each built-in rule and a cross-visit trial rule open a system data query on
the record that breaks them, the fix closes it by itself, a second run opens and closes nothing,
and locked data is skipped, never written, without failing the run."""

import pytest
from django.utils import timezone

from assessments.models import DataQuery, FormEntry, QueryMessage, Visit
from imrtrial.models import Participant, Trial
from quality import services
from quality.models import Finding, RuleRun
from randomization.models import Withdrawal

from .conftest import DAY, panss

pytestmark = pytest.mark.django_db


def run_rules(trial):
    run = services.run(RuleRun.objects.create(trial=trial).pk)
    assert run.status == RuleRun.Status.DONE, run.error
    return run


def queries_of(rule):
    return DataQuery.objects.filter(
        pk__in=Finding.objects.filter(rule=rule).values("query")
    ).order_by("pk")


def assert_opens_then_closes(trial, rule, fix, *, entry=None, item=None, visit=None):
    first = run_rules(trial)
    assert first.opened >= 1
    (query,) = queries_of(rule)
    assert query.status == DataQuery.Status.OPEN
    assert query.opened_by.username == services.SYSTEM_USERNAME
    if entry is not None:
        assert query.entry_id == entry.pk
    if item is not None:
        assert query.item == item
    if visit is not None:
        assert query.visit_id == visit.pk
    assert sum(first.breaking[rule].values()) == 1
    again = run_rules(trial)
    assert (again.opened, again.closed) == (0, 0)
    fix()
    fixed = run_rules(trial)
    assert fixed.closed == 1 and fixed.opened == 0
    query.refresh_from_db()
    assert query.status == DataQuery.Status.CLOSED
    assert "no longer breaks" in query.messages.get(action=QueryMessage.Action.CLOSE).text
    assert sum(fixed.breaking[rule].values()) == 0
    last = run_rules(trial)
    assert (last.opened, last.closed) == (0, 0)
    return query


def test_a_required_item_left_blank_in_a_complete_form_opens_a_query_the_fix_closes(
    danish, randomized, save
):
    entry = save(randomized, "baseline", "gaf_s", {"gaf_s": 50})
    # A form completed under an earlier definition, or loaded from elsewhere: blank.
    FormEntry.objects.filter(pk=entry.pk).update(values={})
    assert_opens_then_closes(
        danish,
        "required_blank",
        lambda: save(randomized, "baseline", "gaf_s", {"gaf_s": 48}, reason="from the source"),
        entry=entry,
        item="gaf_s",
    )


def test_a_value_far_outside_the_trials_own_values_opens_a_query_the_fix_closes(
    danish, enrol, save
):
    people = [enrol() for _ in range(31)]
    for n, p in enumerate(people[:-1]):
        save(p, "baseline", "gaf_f", {"gaf_f": 45 + n % 10})
    odd = save(people[-1], "baseline", "gaf_f", {"gaf_f": 99})
    query = assert_opens_then_closes(
        danish,
        "outlier",
        lambda: save(people[-1], "baseline", "gaf_f", {"gaf_f": 49}, reason="typo: 49"),
        entry=odd,
        item="gaf_f",
    )
    assert "99" in query.messages.first().text


def test_a_visit_done_outside_its_window_opens_a_query_the_fix_closes(danish, randomized):
    post = randomized.visits.get(timepoint__code="post")
    Visit.objects.filter(pk=post.pk).update(completed_on=post.window_end + 5 * DAY)
    assert_opens_then_closes(
        danish,
        "out_of_window",
        lambda: Visit.objects.filter(pk=post.pk).update(completed_on=post.target_date),
        visit=post,
    )


def test_a_form_complete_after_withdrawal_from_follow_up_opens_a_query_the_fix_closes(
    danish, randomized, save, data_manager
):
    entry = save(randomized, "baseline", "gaf_f", {"gaf_f": 50})
    day = timezone.localdate()
    Visit.objects.filter(pk=entry.visit_id).update(completed_on=day)
    Withdrawal.objects.create(
        participant=randomized,
        level=Withdrawal.Level.FOLLOW_UP,
        withdrawn_on=day - 3 * DAY,
        reason="moved abroad",
        recorded_by=data_manager,
    )
    assert_opens_then_closes(
        danish,
        "after_withdrawal",
        # The withdrawal's date was entered wrong: corrected to the day after the visit.
        lambda: Withdrawal.objects.filter(participant=randomized).update(withdrawn_on=day + DAY),
        entry=entry,
    )


def test_stopping_the_intervention_is_never_read_by_a_rule(danish, randomized, save, data_manager):
    entry = save(randomized, "baseline", "gaf_f", {"gaf_f": 50})
    Visit.objects.filter(pk=entry.visit_id).update(completed_on=timezone.localdate())
    Withdrawal.objects.create(
        participant=randomized,
        level=Withdrawal.Level.INTERVENTION,
        withdrawn_on=timezone.localdate() - 10 * DAY,
        reason="stopped",
        recorded_by=data_manager,
    )
    run = run_rules(danish)
    assert sum(run.breaking["after_withdrawal"].values()) == 0


def test_a_cross_visit_trial_rule_opens_a_query_on_the_later_visit_the_fix_closes(
    danish, randomized, save
):
    save(randomized, "baseline", "gaf_f", {"gaf_f": 30})
    post = save(randomized, "post", "gaf_f", {"gaf_f": 85})
    assert_opens_then_closes(
        danish,
        "gaf_f_change",
        lambda: save(randomized, "post", "gaf_f", {"gaf_f": 58}, reason="typo: 58"),
        entry=post,
        item="gaf_f",
    )


def test_a_trial_rule_across_forms_of_a_visit_and_a_form_rule_open_queries(
    danish, randomized, save
):
    save(randomized, "baseline", "gaf_f", {"gaf_f": 20})
    save(randomized, "baseline", "gaf_s", {"gaf_s": 80})
    entry = save(randomized, "baseline", "panss", panss(p1=1, g9=7))
    run = run_rules(danish)
    assert sum(run.breaking["gaf_s_f_apart"].values()) == 1
    (query,) = queries_of("panss.delusions_vs_thought_content")
    assert (query.entry_id, query.item) == (entry.pk, "p1")
    # Visit dates: a post visit dated before randomization breaks the trial's visit rule.
    post = randomized.visits.get(timepoint__code="post")
    Visit.objects.filter(pk=post.pk).update(completed_on=randomized.randomized_on - DAY)
    run = run_rules(danish)
    (query,) = queries_of("visit_before_randomization")
    assert (query.visit_id, query.entry_id) == (post.pk, None)


def test_a_rule_does_not_apply_where_a_value_it_compares_is_missing(danish, randomized, save):
    save(randomized, "baseline", "gaf_f", {"gaf_f": 20})
    save(randomized, "baseline", "gaf_s", {"gaf_s": "RF"})
    run = run_rules(danish)
    assert sum(run.breaking["gaf_s_f_apart"].values()) == 0


def test_a_query_a_data_manager_closed_while_the_data_still_breaks_the_rule_stays_closed(
    danish, randomized, save, data_manager, assessor
):
    from assessments import queries

    save(randomized, "baseline", "gaf_f", {"gaf_f": 30})
    save(randomized, "post", "gaf_f", {"gaf_f": 85})
    run_rules(danish)
    (query,) = queries_of("gaf_f_change")
    queries.answer_query(query, by=assessor, text="The value is right: much better now.")
    queries.close_query(query, by=data_manager, text="Confirmed at the site.")
    again = run_rules(danish)
    assert (again.opened, again.closed) == (0, 0)
    assert Finding.objects.get(rule="gaf_f_change").state == Finding.State.ACCEPTED


def test_the_run_skips_locked_data_writes_nothing_to_it_and_still_finishes(danish, enrol, save):
    locked, open_ = enrol(), enrol()
    for p in (locked, open_):
        save(p, "baseline", "gaf_f", {"gaf_f": 30})
        save(p, "post", "gaf_f", {"gaf_f": 85})
    Participant.objects.filter(pk=locked.pk).update(casebook_locked_at=timezone.now())
    run = run_rules(danish)
    assert sum(run.breaking["gaf_f_change"].values()) == 2  # counted, locked or not
    assert run.skipped_locked >= 1
    assert not DataQuery.objects.filter(participant=locked).exists()
    assert DataQuery.objects.filter(participant=open_).count() == 1

    # The whole database locked: nothing is written, not even a fix's closing.
    save(open_, "post", "gaf_f", {"gaf_f": 40}, reason="typo")
    Trial.objects.filter(pk=danish.pk).update(status=Trial.Status.LOCKED)
    before = (DataQuery.objects.count(), QueryMessage.objects.count(), Finding.objects.count())
    run = run_rules(danish)
    assert (run.opened, run.closed) == (0, 0) and run.skipped_locked >= 1
    after = (DataQuery.objects.count(), QueryMessage.objects.count(), Finding.objects.count())
    assert after == before
    assert DataQuery.objects.get(participant=open_).status == DataQuery.Status.OPEN


def test_a_locked_form_is_skipped(danish, randomized, save):
    save(randomized, "baseline", "gaf_f", {"gaf_f": 30})
    post = save(randomized, "post", "gaf_f", {"gaf_f": 85})
    FormEntry.objects.filter(pk=post.pk).update(status=FormEntry.Status.LOCKED)
    run = run_rules(danish)
    assert run.skipped_locked == 1 and not DataQuery.objects.exists()


def test_the_system_account_cannot_sign_in(danish):
    user = services.system_account()
    assert not user.is_active and not user.has_usable_password()
    assert services.system_account().pk == user.pk


def test_the_nightly_task_runs_every_trial_with_participants(danish, randomized, save):
    from quality import tasks

    save(randomized, "baseline", "gaf_f", {"gaf_f": 30})
    save(randomized, "post", "gaf_f", {"gaf_f": 85})
    (pk,) = tasks.nightly_rules()
    assert RuleRun.objects.get(pk=pk).opened == 1


def test_the_nightly_task_is_on_the_beat_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "quality.tasks.nightly_rules" in tasks


def test_the_name_run_now_queues_is_the_tasks():
    from quality import tasks

    assert tasks.run_rules.name == services.RUN_RULES


def test_run_now_waits_for_a_run_asked_for_but_not_for_one_lost_long_ago(danish, data_manager):
    import datetime

    from django.utils import timezone

    first = services.request_run(danish, by=data_manager)
    assert services.request_run(danish, by=data_manager).pk == first.pk
    RuleRun.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - datetime.timedelta(hours=2)
    )
    assert services.request_run(danish, by=data_manager).pk != first.pk


def test_on_a_database_that_is_not_postgresql_the_run_fails_saying_why(danish, monkeypatch):
    """The `make run` demo is SQLite; the built-in rules are PostgreSQL SQL. The run says so
    (the rules page shows it) and writes nothing, rather than failing on a syntax error."""
    from django.db import connection

    monkeypatch.setattr(connection, "vendor", "sqlite")
    run = services.run(RuleRun.objects.create(trial=danish).pk)
    assert run.status == RuleRun.Status.FAILED and "needs PostgreSQL" in run.error
    assert not Finding.objects.exists() and not DataQuery.objects.exists()
