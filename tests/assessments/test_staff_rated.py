"""Which instruments are staff-rated (their author can reveal the arm): one answer,
registry.is_staff_rated, that takes an instrument no longer installed to be one."""

import pytest

from assessments import audit, registry
from assessments.models import FormEntry
from tests.factories import make_participant, make_trial, make_user


def test_the_definition_says_whether_staff_rate_an_instrument():
    instruments = registry.all_instruments()
    assert instruments["imrs_clinician"].staff_rated and instruments["imrs_s"].staff_rated
    assert not instruments["gaf_f"].staff_rated and not instruments["imrs_client"].staff_rated
    assert registry.staff_rated_codes() == sorted(
        code for code, i in instruments.items() if i.rater == "staff"
    )


def test_an_instrument_no_longer_installed_is_taken_to_be_staff_rated():
    assert "retired_scale" not in registry.all_instruments()
    assert registry.is_staff_rated("retired_scale")
    assert registry.is_staff_rated("imrs_clinician") and not registry.is_staff_rated("gaf_f")


@pytest.mark.django_db
def test_the_audit_report_hides_the_authors_the_registry_calls_staff_rated():
    trial, user = make_trial(), make_user()
    participant = make_participant(trial)
    codes = ["gaf_f", "imrs_client", "imrs_clinician", "imrs_s", "retired_scale"]
    for code in codes:
        FormEntry.objects.create(
            participant=participant, instrument=code, timepoint="post", entered_by=user
        )
    hidden = set(
        FormEntry.objects.filter(audit._staff_rated()).values_list("instrument", flat=True)
    )
    assert hidden == {code for code in codes if registry.is_staff_rated(code)}
    assert hidden == {"imrs_clinician", "imrs_s", "retired_scale"}
