"""The row loader gives what the ORM gives: every field of the participant, their trial and
their site (JSON, dates, times, booleans), with the related rows cached, in one query; and the
desk's participant lookup keeps the gate's 404s."""

import datetime as dt

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from imrtrial import access
from imrtrial.models import Participant, Perm, Role
from imrtrial.rowloader import RowLoader
from randomization import services as randomization
from tests.factories import make_person, make_ready_participant, make_user

pytestmark = pytest.mark.django_db


def fields(instance):
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_the_loader_gives_the_orms_objects(trial, coordinator):
    p = make_ready_participant(trial, coordinator)
    randomization.randomize(p, by=coordinator)  # dates, a status, levels in JSON
    orm = Participant.objects.select_related("trial", "site").get(pk=p.pk)
    loader = RowLoader(Participant, related=("trial", "site"), where=("pk",))
    with CaptureQueriesContext(connection) as queries:
        loaded = loader.get(pk=p.pk)
        assert (fields(loaded.trial), fields(loaded.site)) == (fields(orm.trial), fields(orm.site))
    assert len(queries) == 1
    assert fields(loaded) == fields(orm) and loaded.randomized_on == orm.randomized_on
    assert loaded._state.adding is False and loaded._state.db == "default"
    assert loader.get(pk=-1) is None


def test_the_other_side_of_a_one_to_one_loads_as_select_related_does(trial, coordinator):
    """A screening with its identifying details (the other side of their one-to-one field),
    each knowing the other; a screening without them has them cached as missing, so reading
    them raises as after select_related, with no query."""
    from randomization.models import IdentifyingDetails, Screening

    p = make_ready_participant(trial, coordinator, full_name="Ann Example")
    loader = RowLoader(
        Screening, related=("site", "participant", "identifying"), where=("trial", "pk")
    )
    orm = Screening.objects.select_related("site", "participant", "identifying").get(participant=p)
    with CaptureQueriesContext(connection) as queries:
        loaded = loader.get(trial=trial.pk, pk=orm.pk)
        assert fields(loaded) == fields(orm) and fields(loaded.participant) == fields(p)
        assert fields(loaded.identifying) == fields(orm.identifying)
        assert loaded.identifying.full_name == "Ann Example"
        assert loaded.identifying.screening is loaded and loaded.participant.screening is loaded
    assert len(queries) == 1
    IdentifyingDetails.objects.filter(screening=orm).delete()
    with CaptureQueriesContext(connection) as queries:
        bare = loader.get(trial=trial.pk, pk=orm.pk)
        with pytest.raises(Screening.identifying.RelatedObjectDoesNotExist):
            bare.identifying  # noqa: B018
        assert getattr(bare, "identifying", None) is None
    assert len(queries) == 1
    assert loader.get(trial=trial.pk + 1, pk=orm.pk) is None


def test_the_desk_lookup_answers_as_the_gate(trial, coordinator, person):
    p = make_ready_participant(trial, coordinator)
    found = access.desk_participant_or_404(coordinator, trial.key, p.participant_id, Perm.RANDOMIZE)
    assert found.pk == p.pk and found.trial.pk == trial.pk and found.site.pk == p.site_id
    other_site = trial.sites.exclude(pk=p.site_id).first()
    refused = [
        (make_user("nobody"), trial.key, p.participant_id),  # no role in the trial
        (person(Role.ASSESSOR), trial.key, p.participant_id),  # no randomize right
        (make_person(trial, Role.COORDINATOR, other_site), trial.key, p.participant_id),
        (coordinator, trial.key, "no-such-id"),
        (coordinator, "no-such-trial", p.participant_id),
    ]
    for user, key, pid in refused:
        with pytest.raises(Http404):
            access.desk_participant_or_404(user, key, pid, Perm.RANDOMIZE)


def test_the_session_user_is_the_orms_user_with_its_annotations(trial, coordinator, person):
    """The signed-in user, read by SQL written once per process (CompiledOnce), equals the
    ORM's, annotations included, whoever asks after whom; a session's id that is not a number
    or names nobody gives no user, and an inactive user is refused."""
    from imrtrial import i18n
    from imrtrial.models import UnblindingIncident
    from imrtrial.twofactor import SessionUserBackend, users_with_two_factor_status

    assessor = person(Role.ASSESSOR)
    p = make_ready_participant(trial, coordinator)
    UnblindingIncident.objects.create(
        participant=p,
        assessor=assessor,
        reported_by=coordinator,
        description="said so",
        occurred_on=p.randomized_on or dt.date(2026, 1, 5),
    )
    backend = SessionUserBackend()
    for user in (coordinator, assessor, coordinator):
        orm = (
            i18n.with_languages(access.with_disclosures(users_with_two_factor_status()))
            .filter(pk=user.pk)
            .get()
        )
        with CaptureQueriesContext(connection) as queries:
            loaded = backend.get_user(str(user.pk))  # as the session keeps it
        assert len(queries) == 1
        assert fields(loaded) == fields(orm)
        annotations = ("required", "enrolled", "disclosed_ids", "preferred_language")
        assert [getattr(loaded, a) for a in (*annotations, "trial_language")] == [
            getattr(orm, a) for a in (*annotations, "trial_language")
        ]
    assert backend.get_user(str(assessor.pk)).disclosed_ids == str(p.pk)
    assert backend.get_user("not-a-number") is None and backend.get_user("-5") is None
    assessor.is_active = False
    assessor.save(update_fields=["is_active"])
    assert backend.get_user(str(assessor.pk)) is None


def test_a_compiled_query_needs_its_stand_in_exactly_once():
    from imrtrial.rowloader import CompiledOnce

    twice = CompiledOnce(lambda v: Participant.objects.filter(pk=v, site_id=v))
    with pytest.raises(ValueError):
        twice.first(1)
    once = CompiledOnce(lambda v: Participant.objects.filter(pk=v))
    assert once.first(-1) is None


def test_paths_and_empty_foreign_keys_load_as_select_related_does(danish):
    """A visit with its participant, the participant's site and trial (paths), its timepoint
    and its assessor, who may be none (a LEFT JOIN, cached as None), as the ORM gives them; the
    where may name a column along a path; a visit number out of range finds nothing."""
    from assessments.models import Visit
    from assessments.services import schedule_visits

    coordinator = make_person(danish, Role.COORDINATOR)
    p = make_ready_participant(danish, coordinator)
    randomization.randomize(p, by=coordinator)
    schedule_visits(danish)
    related = ("participant", "participant__site", "participant__trial", "timepoint", "assessor")
    loader = RowLoader(Visit, related=related, where=("pk", "participant__trial__key"))
    visits = list(Visit.objects.filter(participant=p).order_by("pk"))
    assert len(visits) >= 2
    Visit.objects.filter(pk=visits[0].pk).update(assessor=make_person(danish, Role.ASSESSOR))
    for visit in visits[:2]:
        orm = Visit.objects.select_related(*related).get(pk=visit.pk)
        with CaptureQueriesContext(connection) as queries:
            loaded = loader.get(pk=visit.pk, participant__trial__key=danish.key)
            assert fields(loaded) == fields(orm)
            for path in ("participant", "timepoint"):
                assert fields(getattr(loaded, path)) == fields(getattr(orm, path))
            assert fields(loaded.participant.site) == fields(orm.participant.site)
            assert fields(loaded.participant.trial) == fields(orm.participant.trial)
            if orm.assessor is None:
                assert loaded.assessor is None
            else:
                assert fields(loaded.assessor) == fields(orm.assessor)
        assert len(queries) == 1
    assert Visit.objects.get(pk=visits[0].pk).assessor is not None
    assert Visit.objects.get(pk=visits[1].pk).assessor is None
    assert loader.get(pk=visits[0].pk, participant__trial__key="another-trial") is None
    assert loader.get(pk=2**40, participant__trial__key=danish.key) is None
