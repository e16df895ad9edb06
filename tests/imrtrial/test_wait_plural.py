"""The two-factor throttle message counts its seconds in proper English (issue 16)."""

import datetime

from django.utils import timezone

from imrtrial.twofactor_views import _throttled_message


class _Throttled:
    def __init__(self, seconds):
        self.until = timezone.now() + datetime.timedelta(seconds=seconds)


def test_one_second_is_singular_and_more_are_plural():
    assert "Wait 1 second," in _throttled_message(_Throttled(0.5))
    assert "Wait 1 seconds" not in _throttled_message(_Throttled(0.5))
    assert "Wait 3 seconds," in _throttled_message(_Throttled(2.5))
