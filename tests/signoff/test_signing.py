"""An investigator signs a visit or a casebook after re-entering the password (and the code of
their authenticator, where they have one); a wrong one signs nothing and counts towards the
lockout; a later change invalidates the signature, and the audit trail shows both."""

import pytest
from axes.models import AccessAttempt
from django.test import RequestFactory
from django.utils import timezone

from assessments import services as crf
from assessments.models import FormEntry
from imrtrial.errors import Refused
from imrtrial.models import Participant, Role, Trial
from signoff import services
from signoff.models import Signature
from tests.factories import make_totp_device, totp_code

from .conftest import PASSWORD


def request():
    return RequestFactory().post("/", REMOTE_ADDR="10.0.0.9")


def proof(user, password=PASSWORD, token=""):
    return services.reauthenticate(request(), user, password, token)


def sign(participant, visit, user, **kw):
    return services.sign(
        participant,
        visit,
        by=user,
        proof=proof(user, **kw),
        seen=services.current_digest(participant, visit),
    )


def page(trial, participant, visit=None):
    if visit is not None:
        return f"/trials/{trial.key}/visits/{visit.pk}/sign/"
    return f"/trials/{trial.key}/participants/{participant.participant_id}/sign/"


# --- The service ---------------------------------------------------------------------------------


def test_a_signature_records_printed_name_time_meaning_method_and_what_was_signed(
    participant, baseline, investigator
):
    signature = sign(participant, baseline, investigator)
    assert signature.printed_name == "Inge Vestergaard"
    assert signature.signed_by == investigator
    assert abs((timezone.now() - signature.signed_at).total_seconds()) < 60
    assert signature.meaning == Signature.MEANING_VISIT
    assert signature.method == "password"
    assert len(signature.digest) == 64
    assert [f["instrument"] for f in signature.forms] == ["gaf_f"]
    status = services.status_of(participant, baseline)
    assert status.state == Signature.State.SIGNED
    assert status.signed_on == timezone.localdate()


def test_a_wrong_password_is_refused_signs_nothing_and_is_counted(
    participant, baseline, investigator
):
    with pytest.raises(Refused, match="password is not right"):
        proof(investigator, password="wrong-password-entirely")
    assert Signature.objects.count() == 0
    assert AccessAttempt.objects.get(username=investigator.username).failures_since_start == 1


def test_five_wrong_passwords_lock_the_signer_out_even_with_the_right_one(
    participant, baseline, investigator
):
    for _ in range(5):
        with pytest.raises(Refused):
            proof(investigator, password="wrong-password-entirely")
    with pytest.raises(Refused, match="locked"):
        proof(investigator)


def test_a_signer_with_an_authenticator_must_give_its_code_and_a_wrong_one_is_refused(
    participant, baseline, investigator
):
    device = make_totp_device(investigator)
    with pytest.raises(Refused, match="code is not right"):
        proof(investigator)  # the password alone
    right = totp_code(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    with pytest.raises(Refused, match="code is not right"):
        proof(investigator, token=wrong)
    assert Signature.objects.count() == 0
    device.refresh_from_db()
    assert device.throttling_failure_count >= 1  # django-otp's back-off counts it
    device.throttling_failure_count, device.throttling_failure_timestamp = 0, None
    device.save()
    signature = sign(participant, baseline, investigator, token=totp_code(device))
    assert signature.method == "password and authenticator code"


def test_only_a_site_investigator_of_the_participants_site_signs(
    participant, baseline, person, data_manager
):
    other_site = participant.trial.sites.exclude(pk=participant.site_id).first()
    elsewhere = person(Role.INVESTIGATOR, other_site, first_name="O", last_name="Ther")
    monitor = person(Role.MONITOR, first_name="M", last_name="Onitor")
    for user in (elsewhere, monitor, data_manager):
        with pytest.raises(Refused, match="site investigator"):
            sign(participant, baseline, user)
    assert Signature.objects.count() == 0


def test_a_proof_is_for_its_user_and_short_lived(participant, baseline, investigator, person):
    other = person(Role.INVESTIGATOR, participant.site, "inv-2", first_name="A", last_name="B")
    seen = services.current_digest(participant, baseline)
    stale = services.Proof(investigator.pk, "password", timezone.now() - timezone.timedelta(1))
    for by, given in ((other, proof(investigator)), (investigator, stale), (investigator, None)):
        with pytest.raises(Refused, match="password again"):
            services.sign(participant, baseline, by=by, proof=given, seen=seen)


def test_data_changed_since_the_page_was_opened_are_not_signed(
    participant, baseline, investigator, assessor
):
    seen = services.current_digest(participant, baseline)
    crf.save_entry(baseline, "gaf_f", {"gaf_f": "56"}, by=assessor, kind="single", reason="typo")
    with pytest.raises(Refused, match="changed since you opened"):
        services.sign(participant, baseline, by=investigator, proof=proof(investigator), seen=seen)


def test_nothing_complete_is_nothing_to_sign(participant, investigator):
    post = participant.visits.get(timepoint__code="post")
    with pytest.raises(Refused, match="Nothing to sign"):
        sign(participant, post, investigator)


# --- Invalidation -------------------------------------------------------------------------------


def test_a_change_to_a_signed_form_invalidates_the_signature_and_records_why(
    participant, baseline, investigator, assessor
):
    visit_signature = sign(participant, baseline, investigator)
    casebook_signature = sign(participant, None, investigator)
    crf.save_entry(baseline, "gaf_f", {"gaf_f": "61"}, by=assessor, kind="single", reason="typo")
    for s in (visit_signature, casebook_signature):
        s.refresh_from_db()
        assert s.invalidated_at is not None
        assert s.invalidation == "The signed data changed: a form was saved."
        # The system's record, not the writer's (a rater's name could tell the arm).
        assert s.history.first().history_user is None
    assert services.status_of(participant, baseline).state == Signature.State.INVALIDATED
    assert services.status_of(participant).state == Signature.State.INVALIDATED
    again = sign(participant, baseline, investigator)  # and a new one holds
    assert services.status_of(participant, baseline).signature == again
    assert services.status_of(participant, baseline).state == Signature.State.SIGNED


def test_a_change_by_any_path_reads_invalidated_even_unrecorded(
    participant, baseline, investigator, assessor
):
    """Validity is derived from the data: a write outside the services is still seen."""
    sign(participant, baseline, investigator)
    FormEntry.objects.filter(participant=participant, instrument="gaf_f").update(
        values={"gaf_f": 12}
    )
    assert services.status_of(participant, baseline).state == Signature.State.INVALIDATED


def test_a_form_completed_after_signing_invalidates_the_visit_and_casebook(
    participant, baseline, investigator, assessor
):
    sign(participant, baseline, investigator)
    crf.save_entry(baseline, "gaf_s", {"gaf_s": "50"}, by=assessor, kind="single", complete=True)
    assert services.status_of(participant, baseline).state == Signature.State.INVALIDATED


def test_verifying_or_locking_a_signed_form_keeps_the_signature(
    participant, baseline, investigator, data_manager
):
    sign(participant, baseline, investigator)
    entry = FormEntry.objects.get(participant=participant, instrument="gaf_f")
    crf.set_status(entry, FormEntry.Status.VERIFIED, by=data_manager)
    crf.set_status(entry, FormEntry.Status.LOCKED, by=data_manager)
    assert services.status_of(participant, baseline).state == Signature.State.SIGNED


def test_a_draft_saved_elsewhere_does_not_invalidate(participant, baseline, investigator, assessor):
    sign(participant, baseline, investigator)
    crf.save_entry(baseline, "gaf_s", {"gaf_s": "50"}, by=assessor, kind="single")
    assert services.status_of(participant, baseline).state == Signature.State.SIGNED
    assert Signature.objects.get().invalidated_at is None


# --- Locks ----------------------------------------------------------------------------------------


def test_a_locked_casebook_may_be_signed_and_stays_unchanged(
    participant, baseline, investigator, data_manager
):
    crf.lock_casebook(participant, by=data_manager, reason="clean")
    before = list(FormEntry.objects.filter(participant=participant).values("values", "version"))
    sign(participant, None, investigator)
    after = list(FormEntry.objects.filter(participant=participant).values("values", "version"))
    assert before == after
    assert services.status_of(participant).state == Signature.State.SIGNED


def test_a_locked_database_is_not_signed(participant, baseline, investigator):
    Trial.objects.filter(pk=participant.trial_id).update(status=Trial.Status.LOCKED)
    participant = Participant.objects.get(pk=participant.pk)
    with pytest.raises(Refused, match="database is locked"):
        sign(participant, None, investigator)
    assert Signature.objects.count() == 0


def test_when_the_trial_asks_a_casebook_is_locked_only_once_signed(
    participant, baseline, investigator, data_manager, assessor
):
    from signoff.models import SignoffSetting

    crf.lock_casebook(participant, by=data_manager, reason="clean")  # not asked: no signature
    crf.unlock_casebook(participant, by=data_manager, reason="asked for a signature")
    SignoffSetting.objects.filter(trial=participant.trial).update(lock_requires_signature=True)
    with pytest.raises(Refused, match="1 casebooks without a valid investigator signature"):
        crf.lock_casebook(participant, by=data_manager, reason="clean")
    sign(participant, None, investigator)
    crf.save_entry(baseline, "gaf_f", {"gaf_f": "62"}, by=assessor, kind="single", reason="typo")
    with pytest.raises(Refused, match="without a valid investigator signature"):
        crf.lock_casebook(participant, by=data_manager, reason="clean")  # invalidated
    sign(participant, None, investigator)
    crf.lock_casebook(participant, by=data_manager, reason="clean")
    assert Participant.objects.get(pk=participant.pk).casebook_locked_at is not None
