"""Withdrawals by what they reveal: follow_up() (levels 2 and 3, both arms alike) for blinded
readers, stopped_intervention() (level 1, the intervention arm only) for unblinded ones."""

import datetime

import pytest

from randomization.models import Withdrawal
from tests.factories import make_participant, make_trial, make_user

pytestmark = pytest.mark.django_db


def test_the_levels_split_into_what_blinded_and_unblinded_readers_may_count():
    trial, user = make_trial(), make_user()
    made = {}
    for level in Withdrawal.Level:
        made[level] = Withdrawal.objects.create(
            participant=make_participant(trial),
            level=level,
            withdrawn_on=datetime.date(2026, 1, 1),
            reason="x",
            recorded_by=user,
        )
    assert set(Withdrawal.objects.follow_up()) == {
        made[Withdrawal.Level.FOLLOW_UP],
        made[Withdrawal.Level.CONSENT],
    }
    assert list(Withdrawal.objects.stopped_intervention()) == [made[Withdrawal.Level.INTERVENTION]]
    participant = made[Withdrawal.Level.CONSENT].participant
    assert list(participant.withdrawals.follow_up()) == [made[Withdrawal.Level.CONSENT]]
    assert not participant.withdrawals.stopped_intervention().exists()
