"""Differential blinding of the participants' messages: what a participant of the IMR arm is
sent, and what a participant of the control arm is sent, are the same text but for their links
and dates; and no message names the trial, the site, the participant, an arm or the programme.

(A message reaches the participant, not a blinded assessor, but it is read at home, where an
assessor may call; and a participant who is told "your recovery programme" may say so.)"""

import datetime
import re

import pytest
from django.core import mail

from imrtrial.blinding_words import names_arm, revealing_words
from randomization.models import IdentifyingDetails
from selfreport import messaging, services, sms

from .conftest import at

LANGUAGES = ["en", "da", "nl"]
CHANNELS = ["email", "sms"]
# Beyond the trials' own revealing words: the diagnoses, the programme and the arms in the
# words a message would use for them, in the three languages.
TELLING = re.compile(
    r"(?i)(recover|herstel|bedring|schizo|skizo|bipolar|diagnos|kontrol|controle|interventi"
    r"|standardbehandling|gebruikelijke zorg|treatment as usual|usual care|\bTAU\b|\bIMR)"
)
URL = re.compile(r"https://trial\.example\.org/r/[A-Za-z0-9_-]+/(stop/)?")
DATE = re.compile(r"\b\d{1,4}[-./]\d{1,2}[-./]\d{1,4}\b")


def placeholders(text):
    text = URL.sub(lambda m: "<STOP>" if m.group(1) else "<LINK>", text)
    return DATE.sub("<DATE>", text)


def sent_to(participant_address, channel):
    """The texts sent to an address so far: (subject, body) of e-mails, or the text message."""
    if channel == "email":
        return [(m.subject, m.body) for m in mail.outbox if m.to == [participant_address]]
    return [(text,) for to, text in sms.outbox if to == participant_address]


def messages_of_both_arms(scene, language, channel):
    """Send each arm's participant a link and its first reminder, in `language` by `channel`;
    {arm: [texts]} as sent."""
    IdentifyingDetails.objects.filter(screening__participant__trial=scene.trial).update(
        language=language
    )
    for participant in (scene.imr, scene.tau):
        services.send_link(scene.visit(participant), channel, by=scene.assessor)
    assert messaging.send_pending(at(1, 10)) == (2, 0, 0)
    assert messaging.queue_reminders(at(4, 10)) == 2
    assert messaging.send_pending(at(4, 10)) == (2, 0, 0)
    found = {}
    for arm, participant in (("imr", scene.imr), ("tau", scene.tau)):
        details = scene.details(participant)
        address = details.email if channel == "email" else details.phone
        found[arm] = sent_to(address, channel)[-2:]
    return found


@pytest.fixture
def every_revealing_word(scene, danish, dutch):
    return revealing_words(scene.trial) + revealing_words(danish) + revealing_words(dutch)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_both_arms_are_sent_the_same_words(scene, language, channel):
    found = messages_of_both_arms(scene, language, channel)
    imr = [[placeholders(part) for part in texts] for texts in found["imr"]]
    tau = [[placeholders(part) for part in texts] for texts in found["tau"]]
    assert len(imr) == 2  # the link and its reminder
    assert imr == tau
    assert imr[0] != imr[1]  # a reminder says so
    # The placeholders took the links and the date out, and only them.
    for texts in imr:
        joined = " ".join(texts)
        assert "<LINK>" in joined and "<STOP>" in joined and "<DATE>" in joined
        assert "http" not in joined


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_date_is_written_as_the_participants_language_writes_it(scene, language):
    found = messages_of_both_arms(scene, language, "sms")
    last_day = scene.visit(scene.imr).window_end
    written = {"en": last_day.isoformat(), "da": last_day.strftime("%d.%m.%Y")}
    written["nl"] = last_day.strftime("%d-%m-%Y")
    assert written[language] in found["imr"][0][0]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_no_message_names_the_trial_site_participant_or_arm(
    scene, language, channel, every_revealing_word
):
    found = messages_of_both_arms(scene, language, channel)
    trial = scene.trial
    facts = [trial.name, trial.key, trial.registration_id]
    facts += list(trial.sites.values_list("name", flat=True))
    facts += list(trial.arms.values_list("label", flat=True))
    facts += [scene.imr.participant_id, scene.tau.participant_id]
    facts += [p.screening.screening_number for p in (scene.imr, scene.tau)]
    facts += ["Baseline"]  # the visit's label: the timepoint can tell how far along they are
    for arm, texts in found.items():
        for text in (part for message in texts for part in message):
            assert names_arm(text, trial, every_revealing_word) is None, (arm, text)
            assert not TELLING.search(text), (arm, text)
            bare = placeholders(text).lower()  # a random token may hold any short string
            for fact in filter(None, facts):
                assert str(fact).lower() not in bare, (arm, fact, text)


def test_a_window_a_day_later_changes_only_the_date(scene):
    """The comparison above would pass if both were wrong alike: a text that differs in its
    date must still differ after the placeholders only there."""
    from assessments.models import Visit

    Visit.objects.filter(participant=scene.tau).update(
        window_end=scene.visit(scene.imr).window_end + datetime.timedelta(days=1)
    )
    found = messages_of_both_arms(scene, "en", "email")
    assert found["imr"][0] != found["tau"][0]
    assert placeholders(found["imr"][0][1]) == placeholders(found["tau"][0][1])
