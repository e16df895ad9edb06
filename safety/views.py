"""The participant's safety event log, and its record, correction and judgement forms.

Every page here is allocation-revealing: each asks the gate for the participant (404 if the user
may not see them) and then for allocation access at their site (404 otherwise), on GET and POST
alike, before reading an event; the forms also need the right to record (safety.services), or
404. A blinded user meets the same 404 for every participant, event id or none: nothing here
tells them an event exists.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from imrtrial import access
from imrtrial.errors import Refused

from . import services
from .forms import CorrectionForm, EventForm, JudgementForm
from .models import SafetyEvent


def _post(request):
    return request.POST if request.method == "POST" else None


def _participant(request, trial_key, participant_id, *, record=False):
    trial = access.trial_or_404(request.user, trial_key)
    participant = access.participant_or_404(request.user, trial, participant_id)
    allowed = services.may_record if record else services.may_read
    if not allowed(request.user, participant):
        raise Http404(_("Not found."))
    return trial, participant


def _event(participant, pk):
    return get_object_or_404(
        SafetyEvent.objects.select_related("participant__site", "judged_by"),
        participant=participant,
        pk=pk,
    )


def _to_log(trial, participant):
    return redirect("safety:events", trial.key, participant.participant_id)


@login_required
def event_list(request, trial_key, participant_id):
    trial, participant = _participant(request, trial_key, participant_id)
    events = participant.safety_events.select_related("entered_by", "judged_by")
    return render(
        request,
        "safety/event_list.html",
        {
            "trial": trial,
            "participant": participant,
            "events": events,
            "may_record": services.may_record(request.user, participant),
        },
    )


def _event_fields(data):
    return {name: data[name] for name in services.EVENT_FIELDS}


@login_required
def event_new(request, trial_key, participant_id):
    trial, participant = _participant(request, trial_key, participant_id, record=True)
    form = EventForm(_post(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.record_event(participant, by=request.user, **_event_fields(form.cleaned_data))
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Event recorded."))
            return _to_log(trial, participant)
    return render(
        request,
        "safety/event_form.html",
        {"trial": trial, "participant": participant, "form": form, "title": _("Record an event")},
    )


@login_required
def event_correct(request, trial_key, participant_id, event_pk):
    trial, participant = _participant(request, trial_key, participant_id, record=True)
    event = _event(participant, event_pk)
    initial = {name: getattr(event, name) for name in services.EVENT_FIELDS}
    form = CorrectionForm(_post(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.correct_event(event, by=request.user, reason=d["reason"], **_event_fields(d))
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Event corrected."))
            return _to_log(trial, participant)
    return render(
        request,
        "safety/event_form.html",
        {
            "trial": trial,
            "participant": participant,
            "form": form,
            "event": event,
            "title": _("Correct an event"),
        },
    )


@login_required
def event_judge(request, trial_key, participant_id, event_pk):
    trial, participant = _participant(request, trial_key, participant_id, record=True)
    event = _event(participant, event_pk)
    initial = {"judged_on": timezone.localdate()}
    if event.judged:
        initial["relatedness"] = event.relatedness
    form = JudgementForm(_post(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.judge_relatedness(
                event,
                by=request.user,
                relatedness=d["relatedness"],
                judged_on=d["judged_on"],
                reason=d["reason"],
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Judgement recorded."))
            return _to_log(trial, participant)
    return render(
        request,
        "safety/event_judge.html",
        {"trial": trial, "participant": participant, "form": form, "event": event},
    )
