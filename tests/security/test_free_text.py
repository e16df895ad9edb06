"""Free text and authors as a blinding channel (imrtrial.access.may_read_text, author_label).

Unblinded staff write what they know: a coordinator's reason for a follow-up withdrawal, a
facilitator's adverse-event description, incident report or change reason. A reader blinded at
the participant's site sees that such text exists, never its words, and sees its author only by
a role-neutral label: on the participant page, in the audit trail, and in the admin, alike for
every record so that the label itself tells nothing."""

import pytest

from assessments.models import FormEntry
from imrtrial import access, audittrail
from imrtrial.models import Role

from .conftest import (
    ADVERSE_EVENT_TEXT,
    CHANGE_REASON,
    INCIDENT_TEXT,
    UNBLINDED_TEXTS,
    WITHDRAWAL_REASON,
)
from .test_crawler import worst_case_staff

BLINDED_READERS = [Role.DATA_MANAGER, Role.TRIAL_ADMIN]


def _pages(world):
    """Every page where the IMR participant's free text could be read."""
    trial, imr, withdrawn = world.trial, world.imr, world.extra["withdrawn_imr"]
    staff_entry = world.staff_entry.pk
    ae = world.extra["adverse_event"].pk
    return [
        f"/trials/{trial.key}/participants/{withdrawn.participant_id}/",
        f"/trials/{trial.key}/audit/?participant={imr.participant_id}",
        f"/trials/{trial.key}/audit/?participant={withdrawn.participant_id}",
        f"/trials/{trial.key}/audit/",
        f"/admin/imrtrial/participant/{withdrawn.pk}/history/",
        f"/admin/assessments/formentry/{ae}/change/",
        f"/admin/assessments/formentry/{ae}/history/",
        f"/admin/assessments/formentry/{staff_entry}/history/",
    ]


def _unblinded_usernames(world):
    return {
        world.users[key].get_username()
        for key in (Role.FACILITATOR, "facilitator2", Role.COORDINATOR)
    }


@pytest.mark.parametrize("role", BLINDED_READERS)
def test_blinded_readers_never_read_text_written_by_unblinded_staff(role, client, world):
    client.force_login(worst_case_staff(world.users[role]))
    for url in _pages(world):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        for text in UNBLINDED_TEXTS:
            assert text not in page, (role, url, text)


@pytest.mark.parametrize("role", BLINDED_READERS)
def test_blinded_readers_see_that_the_text_exists(role, client, world):
    client.force_login(worst_case_staff(world.users[role]))
    trial, imr, withdrawn = world.trial, world.imr, world.extra["withdrawn_imr"]
    participant = client.get(f"/trials/{trial.key}/participants/{withdrawn.participant_id}/")
    assert access.TEXT_WITHHELD in participant.content.decode()
    audit = client.get(
        f"/trials/{trial.key}/audit/?participant={imr.participant_id}"
    ).content.decode()
    assert access.TEXT_WITHHELD in audit
    ae = world.extra["adverse_event"].pk
    admin_entry = client.get(f"/admin/assessments/formentry/{ae}/change/").content.decode()
    assert access.TEXT_WITHHELD in admin_entry


def test_the_key_holder_unblinded_everywhere_reads_every_text(client, world):
    """The rule withholds from the blinded only: the check can fail."""
    client.force_login(worst_case_staff(world.users[Role.KEY_HOLDER]))
    trial, imr, withdrawn = world.trial, world.imr, world.extra["withdrawn_imr"]
    url = f"/trials/{trial.key}/participants/{withdrawn.participant_id}/"
    assert WITHDRAWAL_REASON in client.get(url).content.decode()
    audit = ""
    for p in (imr, withdrawn):
        response = client.get(f"/trials/{trial.key}/audit/", {"participant": p.participant_id})
        audit += response.content.decode()
    for text in (WITHDRAWAL_REASON, INCIDENT_TEXT, ADVERSE_EVENT_TEXT, CHANGE_REASON):
        assert text in audit, text


@pytest.mark.parametrize("role", BLINDED_READERS)
def test_unblinded_authors_appear_to_blinded_readers_by_a_neutral_label(role, world):
    viewer = audittrail.Viewer(world.users[role], world.trial)
    rows = audittrail.describe(viewer, list(audittrail.changes(viewer)))
    shown = {row.author for row in rows}
    assert not shown & _unblinded_usernames(world)
    assert access.NEUTRAL_AUTHOR in shown
    assert world.users[Role.ASSESSOR].get_username() in shown  # blinded authors keep their name


@pytest.mark.parametrize("role", BLINDED_READERS)
def test_filtering_the_audit_trail_by_an_unblinded_author_finds_nothing(role, world):
    viewer = audittrail.Viewer(world.users[role], world.trial)
    for user in (world.users[Role.FACILITATOR], world.users[Role.COORDINATOR]):
        assert list(audittrail.changes(viewer, user=user)) == []


@pytest.mark.parametrize("role", BLINDED_READERS)
def test_admin_history_shows_unblinded_authors_by_a_neutral_label(role, client, world):
    client.force_login(worst_case_staff(world.users[role]))
    ae = FormEntry.objects.get(pk=world.extra["adverse_event"].pk)
    for url in (
        f"/admin/imrtrial/participant/{world.extra['withdrawn_imr'].pk}/history/",
        f"/admin/assessments/formentry/{ae.pk}/history/",
    ):
        page = client.get(url).content.decode()
        for name in _unblinded_usernames(world):
            assert f">{name}<" not in page and f" {name} " not in page, (url, name)


def test_an_author_whose_unblinded_role_was_withdrawn_stays_neutral(world):
    """A former facilitator knew the arms when they wrote."""
    facilitator = world.users[Role.FACILITATOR]
    facilitator.memberships.update(active=False)
    world.trial.__dict__.pop("_unblinded_staff", None)
    assert access.author_unblinded(facilitator, world.trial, world.north)
    assert not access.may_read_text(
        world.users[Role.DATA_MANAGER], facilitator, world.trial, world.north
    )
