"""The row loader gives what the ORM gives: every field of the participant, their trial and
their site (JSON, dates, times, booleans), with the related rows cached, in one query; and the
desk's participant lookup keeps the gate's 404s."""

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
