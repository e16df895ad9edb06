"""Pages of the participant's own questionnaires (being written)."""

from django.http import Http404


def _todo(*args, **kwargs):
    raise Http404


hand_over_start = link_send = contact_edit = hand_over_page = hand_over_item = _todo
hand_over_finish = hand_over_end = link_page = link_item = link_finish = stop_messages = _todo
