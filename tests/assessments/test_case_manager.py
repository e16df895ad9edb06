"""The case manager: unblinded staff who rate their patients (IMRS clinician version, substance
use, adverse events), without IMR delivery or fidelity rights (issue 15)."""

import pytest

from assessments import registry, services
from assessments.models import FormEntry
from fidelity import services as imr
from imrtrial import access
from imrtrial.errors import Refused
from imrtrial.models import Perm, Role
from tests.factories import grant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def case_manager(danish, post_visit):
    user = make_user("case-manager")
    grant(user, danish, Role.CASE_MANAGER, post_visit.participant.site)
    return user


def test_a_case_manager_enters_staff_ratings_and_nothing_blinded(post_visit, case_manager):
    raw = {f"i{n}": "3" for n in range(1, 16)}
    entry = services.save_entry(post_visit, "imrs_s", raw, by=case_manager, kind="single")
    assert entry.entered_by == case_manager
    panss = {item.code: "3" for item in registry.get("panss").items}
    with pytest.raises(Refused):
        services.save_entry(post_visit, "panss", panss, by=case_manager, kind="single")
    assert list(FormEntry.objects.values_list("instrument", flat=True)) == ["imrs_s"]


def test_a_case_manager_sees_their_sites_arms_but_runs_no_group_and_rates_no_fidelity(
    danish, post_visit, case_manager
):
    site = post_visit.participant.site
    other = danish.sites.exclude(pk=site.pk).first()
    assert access.may_see_allocation(case_manager, danish, site)
    assert not access.may_see_allocation(case_manager, danish, other)
    for perm in (Perm.LOG_ATTENDANCE, Perm.RATE_FIDELITY, Perm.RANDOMIZE, Perm.ENTER_INTERVIEW):
        assert not access.has(case_manager, perm, danish, site), perm
    with pytest.raises(Refused, match="may not log IMR attendance"):
        imr.create_group(
            danish,
            site,
            by=case_manager,
            name="Not theirs",
            facilitators=[case_manager],
            start_date=post_visit.target_date,
            planned_sessions=10,
            capacity=8,
        )
