"""Importing a register file: checked whole first (the dry run writes nothing), every problem
named with its line, and only a file without any imported, whole, in one transaction."""

import datetime

import pytest

from imrtrial.errors import Locked, Refused
from imrtrial.models import Participant, Role, Trial
from registers import checking, services
from registers.models import ImportBatch, RegisterRecord
from tests.factories import (
    import_register_rows,
    make_person,
    register_file,
    year_before_baseline,
)

pytestmark = pytest.mark.django_db


def check(dataset, rows, **kw):
    return checking.check_file(dataset, register_file(dataset, rows, **kw), "extract.csv")


def written():
    return (
        ImportBatch.objects.count(),
        RegisterRecord.objects.count(),
        RegisterRecord.history.count(),
    )


def test_the_dry_run_lists_the_matched_rows_and_writes_nothing(hospital, randomized):
    a, b = randomized("imr"), randomized("tau")
    report = check(
        hospital,
        [
            (a.participant_id, *year_before_baseline(a), 2, 10),
            (b.participant_id.lower(), *year_before_baseline(b), 0, 0),
        ],
    )
    assert report.ok and report.problem_count == 0
    assert [(r.line, r.participant_id, r.values) for r in report.rows] == [
        (2, a.participant_id, {"admissions": 2, "admission_days": 10}),
        (3, b.participant_id, {"admissions": 0, "admission_days": 0}),
    ]
    assert report.participant_ids == tuple(sorted((a.pk, b.pk)))
    assert written() == (0, 0, 0)


def test_an_import_writes_one_batch_and_a_record_per_row_with_their_history(
    hospital, randomized, data_manager
):
    a = randomized()
    start, end = year_before_baseline(a)
    batch = import_register_rows(
        hospital, [(a.participant_id, start, end, 1, 4)], by=data_manager, reason="HIS extract"
    )
    assert (batch.rows, batch.by, batch.reason, batch.file_name) == (
        1,
        data_manager,
        "HIS extract",
        "records.csv",
    )
    record = RegisterRecord.objects.get()
    assert (record.participant, record.period_start, record.period_end, record.values) == (
        a,
        start,
        end,
        {"admissions": 1, "admission_days": 4},
    )
    history = record.history.get()
    assert (history.history_user, history.history_change_reason) == (data_manager, "HIS extract")
    assert batch.history.get().history_user == data_manager


def test_unmatched_keys_are_listed_with_the_reason(hospital, randomized, trial, coordinator):
    from tests.factories import make_ready_participant

    a = randomized()
    waiting = make_ready_participant(trial, coordinator)  # enrolled, not randomized
    period = year_before_baseline(a)
    report = check(
        hospital,
        [
            (a.participant_id, *period, 1, 1),
            ("NOBODY-1", *period, 1, 1),
            (waiting.participant_id, *year_before_baseline(waiting), 1, 1),
        ],
    )
    assert not report.ok
    assert report.unmatched == [
        (3, "no participant of this trial has this id"),
        (4, f"{waiting.participant_id} is not randomized"),
    ]
    assert [r.line for r in report.rows] == [2]


def test_duplicates_in_the_file_and_already_imported_are_told_apart(
    hospital, randomized, data_manager
):
    a, b = randomized(), randomized()
    import_register_rows(
        hospital, [(a.participant_id, *year_before_baseline(a), 1, 1)], by=data_manager
    )
    report = check(
        hospital,
        [
            (a.participant_id, *year_before_baseline(a), 1, 1),
            (b.participant_id, *year_before_baseline(b), 1, 1),
            (b.participant_id, *year_before_baseline(b), 2, 2),
        ],
    )
    batch = ImportBatch.objects.get()
    assert report.duplicates == [
        (
            2,
            f"already imported: {a.participant_id}, this period, in batch {batch.pk} "
            f"of {batch.at:%Y-%m-%d}",
        ),
        (4, f"in the file twice: {b.participant_id}, this period, as on line 3"),
    ]
    assert not report.ok


@pytest.mark.parametrize(
    "cells, reason",
    [
        (("{start}", "2026-02-30", "1", "1"), "period_end: '2026-02-30' is not a date"),
        (("01/02/2025", "{end}", "1", "1"), "period_start: '01/02/2025' is not a date"),
        (("{start}", "{end}", "1.5", "1"), "admissions: '1.5' is not a whole number"),
        (("{start}", "{end}", "\u00b2", "1"), "admissions: '\u00b2' is not a whole number"),
        (("{start}", "{end}", "1", "400"), "admission_days: 400 is out of range (0 to 366)"),
        (("{start}", "{end}", "1", ""), "missing value: admission_days"),
        (("{start}", "{end}", "1"), "missing value: admission_days"),
        (("{start}", "{end}", "1", "1", "9"), "more cells than the first line has columns"),
        (("{start}", "{end}", "-1", "1"), "spreadsheet formulas are refused"),
        (("{start}", "{end}", "=1+2", "1"), "spreadsheet formulas are refused"),
        (("{end}", "{start}", "1", "1"), "period_start is after period_end"),
        (("2020-01-01", "2020-12-31", "1", "1"), "is not one of theirs (The year before baseline"),
    ],
)
def test_a_malformed_row_is_named_with_its_line_and_reason(hospital, randomized, cells, reason):
    a = randomized()
    start, end = year_before_baseline(a)
    good = (a.participant_id, start, end, 1, 1)
    bad = [cell.format(start=start, end=end) for cell in cells]
    report = check(hospital, [good, (randomized().participant_id, *bad)])
    assert len(report.malformed) == 1, report.malformed
    line, found = report.malformed[0]
    assert line == 3 and reason in found
    assert not report.ok and [r.line for r in report.rows] == [2]


@pytest.mark.parametrize(
    "header, problem",
    [
        (
            ["participant_id", "period_start", "period_end", "admissions"],
            "missing column(s): admission_days",
        ),
        (
            ["participant_id", "period_start", "period_end", "admissions", "admission_days", "arm"],
            "unknown column(s): arm",
        ),
    ],
)
def test_a_file_with_the_wrong_columns_is_refused_whole(hospital, randomized, header, problem):
    a = randomized()
    report = check(hospital, [(a.participant_id, *year_before_baseline(a), 1, 1)], header=header)
    assert problem in report.file_problems and not report.ok and report.rows == []


def test_a_file_with_any_problem_is_not_imported_not_even_in_part(
    hospital, randomized, data_manager
):
    a, b = randomized(), randomized()
    report = check(
        hospital,
        [
            (a.participant_id, *year_before_baseline(a), 1, 1),
            ("NOBODY", *year_before_baseline(b), 1, 1),
        ],
    )
    assert report.rows  # a good row is there, and still nothing is written
    with pytest.raises(Refused, match="no longer passes the check"):
        services.import_rows(report, by=data_manager, reason="extract")
    assert written() == (0, 0, 0)


def test_rows_imported_between_the_check_and_the_import_stop_it_whole(
    hospital, randomized, data_manager
):
    a, b = randomized(), randomized()
    rows = [(p.participant_id, *year_before_baseline(p), 1, 1) for p in (a, b)]
    report = check(hospital, rows)
    import_register_rows(hospital, rows[1:], by=data_manager)
    with pytest.raises(Refused):
        services.import_rows(report, by=data_manager, reason="again")
    assert written()[:2] == (1, 1)


def test_an_import_needs_a_reason(hospital, randomized, data_manager):
    a = randomized()
    report = check(hospital, [(a.participant_id, *year_before_baseline(a), 1, 1)])
    with pytest.raises(Refused, match="Say why"):
        services.import_rows(report, by=data_manager, reason="  ")
    assert written() == (0, 0, 0)


def test_only_a_data_manager_of_every_site_imports(hospital, randomized, trial, north):
    a = randomized()
    report = check(hospital, [(a.participant_id, *year_before_baseline(a), 1, 1)])
    for user in (
        make_person(trial, Role.DATA_MANAGER, north),  # one site only
        make_person(trial, Role.ASSESSOR),
        make_person(trial, Role.STATISTICIAN),
        make_person(trial, Role.KEY_HOLDER),
    ):
        with pytest.raises(Refused, match="data manager of every site"):
            services.import_rows(report, by=user, reason="extract")
    assert written() == (0, 0, 0)


def test_a_locked_database_refuses_the_import(hospital, randomized, data_manager, trial):
    a = randomized()
    report = check(hospital, [(a.participant_id, *year_before_baseline(a), 1, 1)])
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.LOCKED)
    with pytest.raises(Locked, match="database is locked"):
        services.import_rows(report, by=data_manager, reason="extract")
    assert written() == (0, 0, 0)


def test_a_locked_casebook_among_the_matched_refuses_the_whole_file(
    hospital, randomized, data_manager
):
    from django.utils import timezone

    a, b = randomized(), randomized()
    report = check(hospital, [(p.participant_id, *year_before_baseline(p), 1, 1) for p in (a, b)])
    Participant.objects.filter(pk=b.pk).update(casebook_locked_at=timezone.now())
    with pytest.raises(Locked, match=f"casebook of {b.participant_id}"):
        services.import_rows(report, by=data_manager, reason="extract")
    assert written() == (0, 0, 0)


def test_the_cpr_number_matches_the_identifying_details_as_the_desk_does_and_is_never_shown(
    service_use, randomized
):
    a = randomized(national_id="010190-1234")
    b = randomized(national_id="0202902345")
    start, end = a.randomized_on, a.randomized_on + datetime.timedelta(days=364)
    report = check(
        service_use,
        [
            ("0101901234", start, end, 1, 12, 2, 30),  # typed without the dash
            ("020290-2345", start, end, 0, 0, 0, 4),  # with it
            ("0303903456", start, end, 0, 0, 0, 4),  # nobody
            ("12345", start, end, 0, 0, 0, 4),  # not a CPR number
        ],
    )
    assert [(r.participant_id, r.values["admission_days"]) for r in report.rows] == [
        (a.participant_id, 12),
        (b.participant_id, 0),
    ]
    assert report.unmatched == [(4, "no participant of this trial has this CPR number (10 digits)")]
    assert report.malformed == [(5, "cpr: not a CPR number (10 digits)")]
    shown = repr((report.unmatched, report.malformed, report.duplicates))
    assert "0303903456" not in shown and "12345" not in shown


def test_a_participant_who_withdrew_consent_for_data_use_is_not_matched(
    hospital, randomized, coordinator
):
    from assessments import services as crf

    a = randomized()
    crf.withdraw(a, 3, by=coordinator, reason="asked", withdrawn_on=a.randomized_on)
    report = check(hospital, [(a.participant_id, *year_before_baseline(a), 1, 1)])
    assert report.unmatched == [(2, f"{a.participant_id} withdrew consent for data use")]
