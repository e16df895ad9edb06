"""The screening log: eligibility computed, identifying details apart, duplicates flagged."""

import datetime

import pytest

from imrtrial.models import Role
from randomization import services
from randomization.models import IdentifyingDetails, Screening
from tests.factories import grant, make_user, yes_to_all

pytestmark = pytest.mark.django_db
DAY = datetime.date(2026, 11, 3)


def test_eligibility_is_computed_from_the_answers_with_every_reason(danish, coordinator):
    answers = yes_to_all(danish) | {"adult": False, "substance": True}
    s = services.screen(
        danish, danish.sites.first(), by=coordinator, answers=answers, screened_on=DAY
    )
    assert s.eligible is False
    assert s.exclusion_reasons == [
        "Aged 18 or older",
        next(c.text for c in danish.criteria.all() if c.code == "substance"),
    ]
    ok = services.screen(
        danish, danish.sites.first(), by=coordinator, answers=yes_to_all(danish), screened_on=DAY
    )
    assert ok.eligible and ok.exclusion_reasons == []
    assert [s.screening_number, ok.screening_number] == ["S0001", "S0002"]


def test_an_unanswered_criterion_is_refused_and_nothing_is_logged(danish, coordinator):
    answers = yes_to_all(danish)
    del answers["danish"]
    with pytest.raises(services.Refused, match="yes or no"):
        services.screen(
            danish, danish.sites.first(), by=coordinator, answers=answers, screened_on=DAY
        )
    assert Screening.objects.count() == IdentifyingDetails.objects.count() == 0


def test_screening_the_same_national_id_twice_is_flagged(danish, coordinator):
    site = danish.sites.first()
    first = services.screen(
        danish,
        site,
        by=coordinator,
        answers=yes_to_all(danish),
        screened_on=DAY,
        national_id="010190-1234",
    )
    second = services.screen(
        danish,
        site,
        by=coordinator,
        answers=yes_to_all(danish),
        screened_on=DAY,
        national_id="0101901234 ",
    )
    assert second.possible_duplicate_of == first
    third = services.screen(
        danish,
        site,
        by=coordinator,
        answers=yes_to_all(danish),
        screened_on=DAY,
        national_id="020290-4321",
    )
    assert third.possible_duplicate_of is None


def test_identifying_details_live_apart_from_the_pseudonymous_record(danish, coordinator):
    s = services.screen(
        danish,
        danish.sites.first(),
        by=coordinator,
        answers=yes_to_all(danish),
        screened_on=DAY,
        full_name="Ada Jensen",
        national_id="010190-1234",
        phone="+45 1234 5678",
    )
    assert s.identifying.full_name == "Ada Jensen"
    fields = {f.name for f in Screening._meta.get_fields()}
    assert not fields & {"full_name", "national_id", "phone"}


def test_only_coordinators_of_the_site_may_screen(danish, person):
    site, other = danish.sites.order_by("code")[:2]
    coordinator = person(Role.COORDINATOR, site)
    with pytest.raises(services.Refused):
        services.screen(danish, other, by=coordinator, answers=yes_to_all(danish), screened_on=DAY)
    assessor = make_user("a")
    grant(assessor, danish, Role.ASSESSOR)
    with pytest.raises(services.Refused):
        services.screen(danish, site, by=assessor, answers=yes_to_all(danish), screened_on=DAY)
    assert Screening.objects.count() == 0


def test_consent_is_recorded_whole_and_audited(danish, coordinator):
    s = services.screen(
        danish, danish.sites.first(), by=coordinator, answers=yes_to_all(danish), screened_on=DAY
    )
    with pytest.raises(services.Refused):
        services.record_consent(
            s, by=coordinator, consent_date=DAY, form_version="", obtained_by="Dr A"
        )
    services.record_consent(
        s, by=coordinator, consent_date=DAY, form_version="2.1", obtained_by="Dr A"
    )
    s.refresh_from_db()
    assert (s.consent_date, s.consent_form_version, s.consent_obtained_by) == (DAY, "2.1", "Dr A")
    assert s.history.first().history_user == coordinator
