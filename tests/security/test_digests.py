"""A digest of a form's values is an oracle for the free text in them: whoever sees the digest
and the other values (a blinded reader sees every value but free text by unblinded staff, which
shows only as "text exists") can test a guess of the withheld words offline. So no blinded
reader is shown the digest of a source data verification mark or of a signature: not in the
audit trail, not in the investigator's signing page."""

from django.utils import timezone

from assessments import services as crf
from assessments.models import FormEntry
from imrtrial.models import Role
from monitoring import plan
from monitoring.models import SourceVerification
from monitoring.services import mark_source_verified
from tests.factories import make_signature, totp_code

from .conftest import ADVERSE_EVENT_TEXT, CHANGE_REASON


def _adverse_event_of_record(world):
    """The IMR participant's adverse event, described by their facilitator, made complete."""
    entry = FormEntry.objects.get(participant=world.imr, instrument="adverse_events")
    crf.save_entry(
        entry.visit,
        "adverse_events",
        {
            "suicide_attempt": "no",
            "life_threatening": "no",
            "death": "no",
            "description": ADVERSE_EVENT_TEXT,
        },
        by=world.users[Role.FACILITATOR],
        kind="single",
        complete=True,
        reason=CHANGE_REASON,
    )
    entry.refresh_from_db()
    return entry


def test_a_digest_confirms_a_guess_of_withheld_text(world):
    """Why it matters: the visible values and a guessed description give the stored digest."""
    entry = _adverse_event_of_record(world)
    mark = mark_source_verified(
        entry, by=world.users[Role.MONITOR], checked_on=timezone.localdate()
    )
    visible = {k: v for k, v in entry.values.items() if k != "description"}
    assert plan.digest({**visible, "description": ADVERSE_EVENT_TEXT}) == mark.digest
    assert plan.digest({**visible, "description": "something else"}) != mark.digest


def test_blinded_auditors_see_no_digest_of_a_mark_or_a_signature(client, world):
    entry = _adverse_event_of_record(world)
    mark_source_verified(entry, by=world.users[Role.MONITOR], checked_on=timezone.localdate())
    investigator = world.users[Role.INVESTIGATOR]
    investigator.first_name, investigator.last_name = "Ina", "Vestigator"
    investigator.save()
    visit = entry.visit
    signature = make_signature(world.imr, visit, by=investigator)
    digests = {SourceVerification.objects.get(entry=entry).digest, signature.digest}
    for role in (Role.DATA_MANAGER, Role.TRIAL_ADMIN):
        client.force_login(world.users[role])
        for kind in ("sdv", "signature"):
            url = f"/trials/{world.trial.key}/audit/"
            page = client.get(url, {"kind": kind, "participant": world.imr.participant_id})
            assert page.status_code == 200, (role, kind)
            text = page.content.decode()
            assert world.imr.participant_id in text, (role, kind)  # the row is there
            assert not [d for d in digests if d in text], (role, kind)


def test_the_signing_page_carries_no_digest_and_still_signs(client, world):
    investigator = world.users[Role.INVESTIGATOR]
    investigator.first_name, investigator.last_name = "Ina", "Vestigator"
    investigator.set_password("correct-horse-battery-staple")
    investigator.save()
    entry = _adverse_event_of_record(world)
    from signoff import services

    digest = services.current_digest(world.imr, entry.visit)
    client.force_login(investigator)
    url = f"/trials/{world.trial.key}/visits/{entry.visit.pk}/sign/"
    page = client.get(url).content.decode()
    assert digest not in page
    seen = page.split('name="seen" value="', 1)[1].split('"', 1)[0]
    response = client.post(url, _credentials(investigator, seen))
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert world.imr.signatures.filter(visit=entry.visit).exists()
    # A page opened before a change no longer signs: its seal is not the data's any more.
    assert services.unseal(world.imr, entry.visit, seen) == digest
    crf.save_entry(
        entry.visit,
        "gaf_f",
        {"gaf_f": "58"},
        by=world.users[Role.ASSESSOR],
        kind="single",
        reason="typo",
    )
    assert services.unseal(world.imr, entry.visit, seen) is None
    assert services.unseal(world.imr, entry.visit, "") is None


def _credentials(investigator, seen):
    data = {"seen": seen, "password": "correct-horse-battery-staple", "agree": "on"}
    device = investigator.totpdevice_set.filter(confirmed=True).first()
    if device is not None:
        data["token"] = totp_code(device)
    return data
