"""Pages of the participant's own questionnaires: the tablet handed over, and the link.

Both ways show the same screens (a `Sitting`): the list of the questionnaires with progress,
one question per screen with a way back, and a last screen per questionnaire that completes it.
Every answer is saved as a draft at once (selfreport.services.save_answers), so a participant
can stop and come back. The screens need no JavaScript, are written in the participant's
language, and show nothing of the site around them: no navigation, no participant id, no trial
name.

The tablet: the assessor's session, confined to the hand-over's pages by
selfreport.middleware until the assessor's password ends it. The link: no account; the token
finds the link, the year of birth is asked once per browser session, and every page of the link
asks again whether it is usable. An unknown, expired, used or blocked link gets one plain page,
the same for each, in the browser's language; failed lookups are counted per address and
limited (GUESSES_PER_WINDOW). No page of a participant is kept by the browser's cache
(never_cache): a tablet or a shared computer shows nobody the answers of the one before."""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from assessments import registry
from assessments.models import FormEntry, Visit
from assessments.services import FormInvalid
from assessments.views import _visit_or_404, shown_value
from imrtrial import access
from imrtrial.audit import attribute
from imrtrial.errors import Refused
from imrtrial.models import Participant, Perm

from . import messaging, services
from .forms import ContactForm
from .models import HandOver

SESSION_HAND_OVER = "selfreport_hand_over"
SESSION_LINKS = "selfreport_links"  # the links whose check this browser passed
SESSION_FINISHED = "selfreport_finished"  # the link this browser has just finished
# Unknown tokens from one address before it must wait (the window, in seconds).
GUESSES_PER_WINDOW = 20
GUESS_WINDOW = 600
PREFER_NOT = "RF"  # the missing-value code of "I prefer not to answer"


@dataclass
class Sitting:
    """One participant answering: the visit, the forms, who is responsible, how, in what
    language, and where its pages are."""

    visit: Visit
    codes: list
    by: object  # the member of staff: entered_by of every entry
    via: str
    language: str
    route: str  # "hand_over" or "link"
    key: object  # the hand-over's pk or the link's token

    def url(self, page="", *args):
        name = f"selfreport:{self.route}{'_' + page if page else ''}"
        return reverse(name, args=[self.key, *args])

    def open_codes(self):
        return services.open_forms(self.visit, self.codes)

    def drafts(self, codes):
        """{code: the participant's single entry} of the forms `codes`, in one query."""
        return {
            entry.instrument: entry
            for entry in FormEntry.objects.filter(
                participant_id=self.visit.participant_id,
                instrument__in=codes,
                timepoint=self.visit.timepoint.code,
                kind=FormEntry.Kind.SINGLE,
            )
        }

    def draft(self, code):
        return self.drafts([code]).get(code)


def _questionnaires(sitting):
    """[(instrument, state, next url, questions answered)] for the index page."""
    open_codes = set(sitting.open_codes())
    drafts = sitting.drafts(open_codes)
    rows = []
    for code in sitting.codes:
        instrument = registry.get(code)
        entry = drafts.get(code)
        answered = len(entry.values) if entry else 0
        if code not in open_codes:
            state, url = "done", None
        else:
            state = "started" if answered else "new"
            number = min(answered + 1, len(services.asked(instrument)))
            url = sitting.url("item", code, number)
        rows.append((instrument, state, url, answered))
    return rows


def _index(request, sitting):
    rows = _questionnaires(sitting)
    if all(state == "done" for _, state, _, _ in rows):
        return None
    done = sum(1 for _, state, _, _ in rows if state == "done")
    return render(
        request,
        "selfreport/index.html",
        {"sitting": sitting, "rows": rows, "done": done, "total": len(rows)},
    )


def _instrument_or_404(sitting, code):
    if code not in sitting.codes:
        raise Http404(_("Not found."))
    return registry.get(code)


def _item(request, sitting, code, number):
    instrument = _instrument_or_404(sitting, code)
    if code not in sitting.open_codes():
        return redirect(sitting.url())
    items = services.asked(instrument)
    if not 1 <= number <= len(items):
        raise Http404(_("Not found."))
    item = items[number - 1]
    entry = sitting.draft(code)
    raw = {k: shown_value(v) for k, v in (entry.values if entry else {}).items()}
    error = None
    if request.method == "POST":
        answer = request.POST.get("answer", "").strip()
        if "prefer_not" in request.POST and PREFER_NOT in instrument.missing_codes:
            answer = PREFER_NOT
        if answer:
            raw[item.code] = answer
        else:
            raw.pop(item.code, None)
        try:
            services.save_answers(sitting.visit, code, raw, by=sitting.by, via=sitting.via)
        except FormInvalid as exc:
            error = exc.errors.get(item.code) or exc.errors.get("__all__")
        except Refused as exc:
            return _refused(request, sitting, exc)
        else:
            if number < len(items):
                return redirect(sitting.url("item", code, number + 1))
            return redirect(sitting.url("finish", code))
        raw[item.code] = request.POST.get("answer", "")
    position = sitting.codes.index(code) + 1
    return render(
        request,
        "selfreport/item.html",
        {
            "sitting": sitting,
            "instrument": instrument,
            "item": item,
            "number": number,
            "count": len(items),
            "percent": round(100 * (number - 1) / len(items)),
            "position": position,
            "forms": len(sitting.codes),
            "scale": _scale(item),
            "value": raw.get(item.code, ""),
            "error": error,
            "prefer_not": PREFER_NOT in instrument.missing_codes and item.type != "text",
            "back": sitting.url("item", code, number - 1) if number > 1 else sitting.url(),
            # The section's heading on its first question.
            "section": _section_label(instrument, item)
            if number == 1 or items[number - 2].section != item.section
            else None,
        },
    )


def _scale(item):
    """The whole numbers a short integer item takes (1 to 5, 0 to 10), offered as buttons to
    touch rather than a number to type; None for a longer range."""
    bounded = item.type == "integer" and item.min is not None and item.max is not None
    if bounded and 0 < item.max - item.min <= 10:
        return range(int(item.min), int(item.max) + 1)
    return None


def _section_label(instrument, item):
    return next((label for code, label, _ in instrument.sections if code == item.section), None)


def _finish(request, sitting, code):
    instrument = _instrument_or_404(sitting, code)
    if code not in sitting.open_codes():
        return redirect(sitting.url())
    entry = sitting.draft(code)
    values = entry.values if entry else {}
    items = services.asked(instrument)
    missing = [
        (number, item)
        for number, item in enumerate(items, 1)
        if item.required and item.code not in values
    ]
    if request.method == "POST" and not missing:
        raw = {k: shown_value(v) for k, v in values.items()}
        try:
            services.save_answers(
                sitting.visit, code, raw, by=sitting.by, via=sitting.via, complete=True
            )
        except FormInvalid:
            pass  # shown below as the questions still to answer
        except Refused as exc:
            return _refused(request, sitting, exc)
        else:
            return redirect(sitting.url())
    return render(
        request,
        "selfreport/finish.html",
        {
            "sitting": sitting,
            "instrument": instrument,
            "answered": len(values),
            "count": len(items),
            "missing": [(n, item, sitting.url("item", code, n)) for n, item in missing],
            "back": sitting.url("item", code, len(items)),
        },
    )


def _refused(request, sitting, exc):
    """A save the services refused (a lock, a role withdrawn, a paper entry begun meanwhile):
    the participant is told plainly and nothing else."""
    return render(request, "selfreport/refused.html", {"sitting": sitting}, status=409)


# --- The tablet handed over -------------------------------------------------------------------


@login_required
@require_POST
def hand_over_start(request, trial_key, visit_pk):
    trial, visit = _visit_or_404(request, trial_key, visit_pk)
    try:
        hand_over = services.start_hand_over(visit, by=request.user)
    except Refused as exc:
        messages.error(request, str(exc))
        return redirect("assessments:visit", trial.key, visit.pk)
    request.session[SESSION_HAND_OVER] = hand_over.pk
    return redirect("selfreport:hand_over", hand_over.pk)


def _hand_over_sitting(request, pk):
    """The hand-over this session is in, as a Sitting; 404 for any other."""
    if request.session.get(SESSION_HAND_OVER) != pk:
        raise Http404(_("Not found."))
    hand_over = get_object_or_404(
        HandOver.objects.select_related(
            "visit__timepoint", "visit__participant__trial", "visit__participant__site"
        ),
        pk=pk,
        started_by=request.user,
        ended_at__isnull=True,
    )
    return hand_over, Sitting(
        visit=hand_over.visit,
        codes=hand_over.instruments,
        by=request.user,
        via=FormEntry.EnteredVia.TABLET,
        language=hand_over.language,
        route="hand_over",
        key=hand_over.pk,
    )


@never_cache
@login_required
def hand_over_page(request, pk):
    _, sitting = _hand_over_sitting(request, pk)
    with translation.override(sitting.language):
        return _index(request, sitting) or redirect(sitting.url("end"))


@never_cache
@login_required
def hand_over_item(request, pk, instrument, number):
    _, sitting = _hand_over_sitting(request, pk)
    with translation.override(sitting.language):
        return _item(request, sitting, instrument, number)


@never_cache
@login_required
def hand_over_finish(request, pk, instrument):
    _, sitting = _hand_over_sitting(request, pk)
    with translation.override(sitting.language):
        return _finish(request, sitting, instrument)


@never_cache
@login_required
def hand_over_end(request, pk):
    """The end of the hand-over: thanks in the participant's language, then the assessor's
    password (through django-axes, which counts wrong ones) before any other page."""
    hand_over, sitting = _hand_over_sitting(request, pk)
    wrong = False
    if request.method == "POST":
        user = authenticate(
            request,
            username=request.user.get_username(),
            password=request.POST.get("password", ""),
        )
        if user is not None and user.pk == request.user.pk:
            services.end_hand_over(hand_over)
            request.session.pop(SESSION_HAND_OVER, None)
            visit = hand_over.visit
            left = len(sitting.open_codes())
            messages.success(
                request,
                _("The hand-over has ended. Questionnaires left open: %(left)s.") % {"left": left},
            )
            return redirect("assessments:visit", visit.participant.trial.key, visit.pk)
        wrong = True
    with translation.override(sitting.language):
        return render(
            request,
            "selfreport/hand_back.html",
            {"sitting": sitting, "finished": not sitting.open_codes(), "wrong": wrong},
            status=400 if wrong else 200,
        )


# --- The link ---------------------------------------------------------------------------------


def _guesses_key(request):
    return f"selfreport:guesses:{request.META.get('REMOTE_ADDR', '')}"


def _too_many_guesses(request):
    return (cache.get(_guesses_key(request)) or 0) >= GUESSES_PER_WINDOW


def _count_guess(request):
    key = _guesses_key(request)
    if cache.add(key, 1, GUESS_WINDOW):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired in between
        cache.add(key, 1, GUESS_WINDOW)


def _unusable(request, status=404):
    """The one page for every link that does not work, whatever the reason."""
    return render(request, "selfreport/unusable.html", status=status)


def _usable_link(request, token):
    """(link, None) or (None, the page to answer with)."""
    if _too_many_guesses(request):
        return None, render(request, "selfreport/wait.html", status=429)
    link = services.find_link(token)
    if link is None:
        _count_guess(request)
        return None, _unusable(request)
    if not link.is_usable() or services.refusal_to_answer(link.visit):
        if link.finished_at and request.session.pop(SESSION_FINISHED, None) == link.pk:
            # The browser that has just finished: thanks, once; the plain page from then on,
            # as for any other browser.
            with translation.override(services.language_of(link.visit.participant)):
                return None, render(request, "selfreport/thanks.html")
        return None, _unusable(request)
    return link, None


def _link_sitting(link, token):
    return Sitting(
        visit=link.visit,
        codes=link.instruments,
        by=link.created_by,
        via=FormEntry.EnteredVia.LINK,
        language=services.language_of(link.visit.participant),
        route="link",
        key=token,
    )


def _checked(request, link):
    return link.pk in request.session.get(SESSION_LINKS, [])


@never_cache
def link_page(request, token):
    link, answer = _usable_link(request, token)
    if answer:
        return answer
    sitting = _link_sitting(link, token)
    with translation.override(sitting.language):
        if not _checked(request, link):
            return _year_of_birth(request, link, sitting)
        page = _index(request, sitting)
        if page is None:  # answered meanwhile (a hand-over, paper): nothing left to do here
            services.finish_link_if_done(link)
            return render(request, "selfreport/thanks.html", {"sitting": sitting})
        return page


def _year_of_birth(request, link, sitting):
    tries_left, status = None, 200
    if request.method == "POST":
        try:
            services.check_year_of_birth(link, request.POST.get("year", ""))
        except services.CheckFailed as exc:
            if exc.tries_left == 0:
                return _unusable(request)
            tries_left, status = exc.tries_left, 400
        else:
            request.session.cycle_key()  # a new session for the checked participant
            request.session[SESSION_LINKS] = [
                *request.session.get(SESSION_LINKS, []),
                link.pk,
            ]
            return redirect(sitting.url())
    return render(
        request,
        "selfreport/check.html",
        {"sitting": sitting, "tries_left": tries_left},
        status=status,
    )


def _on_link(request, token, page, *args):
    """A question or finish page of a link: usable, checked in this session, in the
    participant's language, with the sender still allowed to enter it (asked by the save)."""
    link, answer = _usable_link(request, token)
    if answer:
        return answer
    if not _checked(request, link):
        return redirect("selfreport:link", token)
    sitting = _link_sitting(link, token)
    with translation.override(sitting.language):
        response = page(request, sitting, *args)
        if request.method == "POST" and services.finish_link_if_done(link):
            request.session[SESSION_FINISHED] = link.pk
        return response


@never_cache
def link_item(request, token, instrument, number):
    return _on_link(request, token, _item, instrument, number)


@never_cache
def link_finish(request, token, instrument):
    return _on_link(request, token, _finish, instrument)


@never_cache
def stop_messages(request, token):
    """The one-click opt-out of every message: a page with one button (a link in a message
    may be opened by a mail scanner, so the GET changes nothing). Works after the link has
    expired too, and says so once the messages are stopped."""
    if _too_many_guesses(request):
        return render(request, "selfreport/wait.html", status=429)
    link = services.find_link(token)
    if link is None:
        _count_guess(request)
        return _unusable(request)
    participant = link.visit.participant
    if request.method == "POST":
        messaging.stop_messages(link)
        return redirect("selfreport:stop", token)
    details = services.details_of(participant)
    with translation.override(services.language_of(participant, details)):
        return render(
            request,
            "selfreport/stop.html",
            {"stopped": details is not None and details.messages_stopped_at is not None},
        )


# --- Staff: sending a link, the contact details -----------------------------------------------


@login_required
@require_POST
def link_send(request, trial_key, visit_pk):
    trial, visit = _visit_or_404(request, trial_key, visit_pk)
    try:
        link, _token = services.send_link(visit, request.POST.get("channel", ""), by=request.user)
    except Refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("The link is on its way (%(channel)s). It works until the visit window closes.")
            % {"channel": _(link.get_channel_display())},
        )
    return redirect("assessments:visit", trial.key, visit.pk)


@login_required
def contact_edit(request, trial_key, participant_id):
    """The participant's contact for questionnaires: for those who may see identifying
    details at the participant's site."""
    participant = get_object_or_404(
        Participant.objects.select_related("trial", "site"),
        trial__key=trial_key,
        participant_id=participant_id,
    )
    if not access.has(request.user, Perm.VIEW_IDENTIFYING, participant.trial, participant.site):
        raise Http404(_("Not found."))
    details = services.details_of(participant)
    if details is None:
        raise Http404(_("Not found."))
    form = ContactForm(request.POST or None, instance=details)
    if request.method == "POST" and form.is_valid():
        saved = attribute(
            form.save(commit=False), by=request.user, reason="contact for questionnaires"
        )
        with transaction.atomic():
            saved.save()
            services.stop_links_to_old_addresses(participant, form.changed_data)
        messages.success(request, _("Saved."))
        return redirect("assessments:participant_detail", participant.trial.key, participant_id)
    return render(
        request,
        "selfreport/contact_form.html",
        {"trial": participant.trial, "participant": participant, "form": form},
        status=400 if form.errors else 200,
    )
