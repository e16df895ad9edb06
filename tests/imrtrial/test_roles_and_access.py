"""Roles and the blinding gate: every role x every kind of data."""

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from imrtrial import access
from imrtrial.models import Role, Trial

# The policy, written out independently of migration 0002 so that a change there must be
# deliberate here too. Columns are kinds of data or actions; True = allowed (at every site).
KINDS = [
    "manage_trial",
    "view_participants",
    "view_identifying",
    "randomize",
    "allocation",
    "enter_interview",
    "enter_staff_rating",
    "verify_forms",
    "log_attendance",
    "rate_fidelity",
    "export_blinded",
    "view_audit",
    "source_verify",
    "sign_casebook",
]
MATRIX = {
    Role.TRIAL_ADMIN: {"manage_trial", "view_participants", "view_audit"},
    Role.COORDINATOR: {"view_participants", "view_identifying", "randomize", "allocation"},
    Role.ASSESSOR: {"view_participants", "enter_interview"},
    Role.FACILITATOR: {"view_participants", "allocation", "log_attendance", "enter_staff_rating"},
    Role.FIDELITY_RATER: {"allocation", "rate_fidelity"},
    Role.DATA_MANAGER: {"view_participants", "verify_forms", "export_blinded", "view_audit"},
    Role.STATISTICIAN: {"export_blinded"},
    Role.KEY_HOLDER: {"view_participants", "allocation", "export_blinded", "view_audit"},
    Role.MONITOR: {"view_participants", "source_verify"},
    Role.INVESTIGATOR: {"view_participants", "sign_casebook"},
    Role.CASE_MANAGER: {"view_participants", "allocation", "enter_staff_rating"},
}
BLINDED_ROLES = [
    Role.TRIAL_ADMIN,
    Role.ASSESSOR,
    Role.DATA_MANAGER,
    Role.STATISTICIAN,
    Role.MONITOR,
    Role.INVESTIGATOR,
]
UNBLINDED_ROLES = [
    Role.COORDINATOR,
    Role.FACILITATOR,
    Role.FIDELITY_RATER,
    Role.KEY_HOLDER,
    Role.CASE_MANAGER,
]


def can(user, kind, trial, site=None):
    if kind == "allocation":
        return access.may_see_allocation(user, trial, site)
    return access.has(user, kind, trial, site)


@pytest.mark.django_db
def test_every_role_is_a_group_created_by_migration():
    assert set(Group.objects.values_list("name", flat=True)) >= {r.value for r in Role}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_may_do_exactly_what_the_policy_says(role, person, trial, north):
    user = person(role)
    allowed = {kind for kind in KINDS if can(user, kind, trial, north)}
    assert allowed == MATRIX[role]


def test_blinded_and_unblinded_roles_are_the_ones_the_protocol_names(person, trial):
    for role in BLINDED_ROLES:
        assert not access.may_see_allocation(person(role, username=f"b-{role}"), trial)
    for role in UNBLINDED_ROLES:
        assert access.may_see_allocation(person(role, username=f"u-{role}"), trial)


def test_a_role_at_one_site_gives_nothing_at_another(person, trial, north, south):
    facilitator = person(Role.FACILITATOR, site=north)
    assert access.may_see_allocation(facilitator, trial, north)
    assert not access.may_see_allocation(facilitator, trial, south)
    assert list(access.sites_where(facilitator, "view_participants", trial)) == [north]


def test_a_role_in_one_trial_gives_nothing_in_another(coordinator, trial):
    from tests.factories import make_trial

    other = make_trial()
    assert not access.may_see_allocation(coordinator, other)
    assert not access.has(coordinator, "view_participants", other)


def test_statistician_is_unblinded_only_once_the_trial_is(person, trial):
    statistician = person(Role.STATISTICIAN)
    assert not access.may_see_allocation(statistician, trial)
    trial.unblinded_at = timezone.now()
    trial.save(update_fields=["unblinded_at"])
    statistician = type(statistician).objects.get(pk=statistician.pk)  # a new request
    assert access.may_see_allocation(statistician, trial)


def test_allocation_key_is_for_the_key_holder_and_only_after_lock(person, trial):
    holder, admin = person(Role.KEY_HOLDER), person(Role.TRIAL_ADMIN)
    assert not access.may_see_allocation_key(holder, trial)
    trial.status = Trial.Status.LOCKED
    trial.save(update_fields=["status"])
    assert access.may_see_allocation_key(holder, trial)
    assert not access.may_see_allocation_key(admin, trial)


def test_superuser_is_not_unblinded_by_being_one(trial):
    from tests.factories import make_user

    root = make_user(is_superuser=True, is_staff=True)
    assert not access.may_see_allocation(root, trial)


def test_inactive_membership_grants_nothing(person, trial):
    coordinator = person(Role.COORDINATOR)
    coordinator.memberships.update(active=False)
    access.forget(coordinator)
    assert not access.may_see_allocation(coordinator, trial)


def test_a_trial_is_found_only_by_someone_holding_an_active_role_in_it(
    person, trial, django_assert_num_queries
):
    """trial_or_404 answers what trials_of says (any active role, even one whose role grants no
    permission), with the same 404 for a trial that does not exist; and the grants it reads
    are the ones the page asks next, so asking the gate after it costs no query."""
    from django.contrib.auth.models import AnonymousUser
    from django.http import Http404

    from imrtrial.models import Membership
    from tests.factories import make_trial, make_user

    assessor = person(Role.ASSESSOR)
    with django_assert_num_queries(2):  # the trial, the grants
        assert access.trial_or_404(assessor, trial.key) == trial
        assert access.has(assessor, "enter_interview", trial)
    assert access.trial_or_404(assessor, trial.key).key == trial.key

    Group.objects.get(name=Role.STATISTICIAN).permissions.clear()
    statistician = person(Role.STATISTICIAN)
    assert access.trial_or_404(statistician, trial.key) == trial
    assert list(access.trials_of(statistician)) == [trial]

    other = make_trial()
    outsider = make_user()
    withdrawn = person(Role.COORDINATOR)
    Membership.objects.filter(user=withdrawn).update(active=False)
    withdrawn = type(withdrawn).objects.get(pk=withdrawn.pk)  # the next request
    for user, key in (
        (assessor, other.key),
        (assessor, "no-such-trial"),
        (outsider, trial.key),
        (withdrawn, trial.key),
        (AnonymousUser(), trial.key),
    ):
        with pytest.raises(Http404) as raised:
            access.trial_or_404(user, key)
        assert str(raised.value) == "No such trial."
        assert not access.trials_of(user).filter(key=key).exists()


def test_entry_rights_for_many_participants_answer_as_may_enter(
    person, trial, north, south, coordinator
):
    """EntryRights (the worklist's hundred participants) asks may_enter once per trial, site,
    kind of rater and disclosure, and answers for each participant what may_enter answers: a
    participant who disclosed their allocation to the assessor is refused an interview rating
    beside one at the same site who did not, and a role at one site gives nothing at another."""
    import datetime as dt

    from imrtrial.models import UnblindingIncident
    from tests.factories import make_ready_participant

    at_north = [make_ready_participant(trial, coordinator, site=north) for _ in range(3)]
    at_south = make_ready_participant(trial, coordinator, site=south)
    users = [
        person(Role.ASSESSOR, site=north, username="assessor-north"),
        person(Role.ASSESSOR, username="assessor-all"),
        person(Role.CASE_MANAGER, site=south, username="case-manager-south"),
        person(Role.FACILITATOR, username="facilitator-all"),
    ]
    for user in users[:2]:
        UnblindingIncident.objects.create(
            participant=at_north[0],
            assessor=user,
            reported_by=coordinator,
            description="said so",
            occurred_on=dt.date(2026, 1, 5),
        )
    raters = ["assessor_interview", "staff", "self_report", "case_manager"]
    seen = set()
    for user in users:
        user = type(user).objects.get(pk=user.pk)  # a request of its own
        rights = access.EntryRights(user)
        for p in [*at_north, at_south]:
            for rater in raters:
                answer = rights(p, rater)
                assert answer == access.may_enter(user, p, rater), (user, p, rater)
                seen.add((user.username, p.site_id, rater, answer))
    assessor_north = type(users[0]).objects.get(pk=users[0].pk)
    rights = access.EntryRights(assessor_north)
    assert not rights(at_north[0], "assessor_interview")  # disclosed to them
    assert rights(at_north[1], "assessor_interview")
    assert not rights(at_south, "assessor_interview")
    assert not rights(at_north[1], "staff")
    assert {answer for *_key, answer in seen} == {True, False}
