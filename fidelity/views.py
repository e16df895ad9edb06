"""IMR groups, sessions, attendance and fidelity pages.

Every page here is allocation-revealing: each asks imrtrial.access first (allocation access at
the group's site) and answers 404 to anyone else, on GET and POST alike, before reading anything.
Writing needs log_attendance (groups, members, sessions) or rate_fidelity (ratings) as well.
"""

import datetime

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from imrtrial import access
from imrtrial.audit import log_access
from imrtrial.i18n_text import short_date
from imrtrial.models import AccessLog, Participant, Perm

from . import measures, rules, services
from .forms import (
    AssessmentForm,
    AttendanceChangeForm,
    EndGroupForm,
    FollowUpCallForm,
    GroupForm,
    LeaveForm,
    MemberForm,
    RatingForm,
    SessionForm,
)
from .models import (
    Attendance,
    AttendanceReminder,
    FidelityAssessment,
    GroupMembership,
    ImrGroup,
    Session,
)


def _post(request):
    return request.POST if request.method == "POST" else None


def _trial(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    access.require_allocation_access(request.user, trial)
    return trial


def _group(request, trial, pk):
    group = get_object_or_404(ImrGroup.objects.select_related("trial", "site"), trial=trial, pk=pk)
    access.require_allocation_access(request.user, trial, group.site)
    return group


def _may_log(user, group):
    return access.has(user, Perm.LOG_ATTENDANCE, group.trial, group.site)


def _require_log(user, group):
    if not _may_log(user, group):
        raise Http404(_("Not found."))


def _parse_day(value):
    try:
        return datetime.date.fromisoformat(value or "")
    except ValueError:
        return None


# --- Groups ----------------------------------------------------------------------------------


@login_required
def group_list(request, trial_key):
    trial = _trial(request, trial_key)
    sites = access.unblinded_sites(request.user, trial)
    groups = (
        ImrGroup.objects.filter(trial=trial, site__in=sites)
        .select_related("trial", "site")
        .prefetch_related("facilitators")
    )
    rows = []
    for group in groups:
        score, band = measures.group_score(group)
        rows.append(
            {
                "group": group,
                "members": GroupMembership.objects.current().filter(group=group).count(),
                "sessions": group.sessions.count(),
                "score": score,
                "band": band,
            }
        )
    return render(
        request,
        "fidelity/group_list.html",
        {
            "trial": trial,
            "rows": rows,
            "may_create": access.may_do_unblinded(request.user, Perm.LOG_ATTENDANCE, trial),
            "reminders": AttendanceReminder.objects.filter(group__in=groups)
            .select_related("recipient", "group")
            .order_by("-day", "group__name")[:50],
            "reminders_failing": AttendanceReminder.objects.filter(
                group__in=groups, sent_at__isnull=True, dropped_at__isnull=True, attempts__gt=0
            ).count(),
        },
    )


@login_required
def group_new(request, trial_key):
    trial = _trial(request, trial_key)
    sites = list(access.sites_where_unblinded(request.user, Perm.LOG_ATTENDANCE, trial))
    if not sites:
        raise Http404(_("Not found."))
    candidates = (
        get_user_model()
        .objects.filter(memberships__trial=trial, memberships__active=True)
        .distinct()
    )
    facilitators = [
        u.pk for u in candidates if any(access.has(u, Perm.LOG_ATTENDANCE, trial, s) for s in sites)
    ]
    form = GroupForm(
        _post(request),
        sites=trial.sites.filter(pk__in=[s.pk for s in sites]),
        facilitators=get_user_model().objects.filter(pk__in=facilitators).order_by("username"),
        initial={"planned_sessions": rules.for_trial(trial).planned_sessions},
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            group = services.create_group(
                trial,
                d["site"],
                by=request.user,
                name=d["name"],
                facilitators=list(d["facilitators"]),
                start_date=d["start_date"],
                planned_sessions=d["planned_sessions"],
                capacity=d["capacity"],
                schedule=d["schedule"],
                session_minutes=d["session_minutes"],
                enrolment=d["enrolment"],
            )
        except services.Refused as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("fidelity:group", trial.key, group.pk)
    return render(request, "fidelity/group_form.html", {"trial": trial, "form": form})


@login_required
def group_detail(request, trial_key, pk):
    trial = _trial(request, trial_key)
    group = _group(request, trial, pk)
    memberships = list(
        group.memberships.select_related("participant").order_by("participant__participant_id")
    )
    exposures = measures.exposures([m.participant for m in memberships])
    members = [(m, exposures[m.participant_id]) for m in memberships]
    sessions = list(measures.session_rows(group))
    score, band = measures.group_score(group)
    log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, f"IMR group {group.name}")
    return render(
        request,
        "fidelity/group_detail.html",
        {
            "trial": trial,
            "group": group,
            "rules": rules.for_trial(trial),
            "members": members,
            "sessions": sessions,
            "coverage": measures.module_coverage(group, exposures.values()),
            "score": score,
            "band": band,
            "may_log": _may_log(request.user, group),
            "leave_form": LeaveForm(initial={"left_on": timezone.localdate()}),
            "end_form": EndGroupForm(initial={"ended_on": timezone.localdate()}),
        },
    )


@login_required
def group_end(request, trial_key, pk):
    trial = _trial(request, trial_key)
    group = _group(request, trial, pk)
    _require_log(request.user, group)
    if request.method != "POST":  # asked only after the gate, so a 405 reveals nothing
        return HttpResponseNotAllowed(["POST"])
    form = EndGroupForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the group's last day and why it ended early."))
    else:
        try:
            services.end_group(
                group,
                by=request.user,
                on=form.cleaned_data["ended_on"],
                reason=form.cleaned_data["reason"],
            )
        except services.Refused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, _("%(group)s ended; no more reminders for it.") % {"group": group.name}
            )
    return redirect("fidelity:group", trial.key, group.pk)


def _eligible_ids(group):
    """Ids the add-member form suggests: randomized participants of the site not in a group
    whom the contamination guard lets in."""
    candidates = (
        Participant.objects.filter(
            trial=group.trial, site=group.site, status=Participant.Status.RANDOMIZED
        )
        .exclude(pk__in=GroupMembership.objects.current().values("participant_id"))
        .select_related("site")
    )
    return [p.participant_id for p in candidates if services.check_may_join(group, p) is None]


@login_required
def member_add(request, trial_key, pk):
    trial = _trial(request, trial_key)
    group = _group(request, trial, pk)
    _require_log(request.user, group)
    form = MemberForm(_post(request))
    # The suggested ids are the IMR arm of the site: a view of allocation data.
    log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, f"IMR group {group.name}: add")
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        # Ids are typed from paper and phone calls: "br-001" finds BR-001. Should two ids differ
        # only by case, the exact one wins and the other is not guessed.
        typed = d["participant_id"].strip()
        matches = list(
            access.participants_visible_to(request.user, trial)
            .select_related("site")
            .filter(participant_id__iexact=typed)[:2]
        )
        exact = [p for p in matches if p.participant_id == typed]
        participant = exact[0] if exact else matches[0] if len(matches) == 1 else None
        if participant is None:
            form.add_error("participant_id", _("No participant with that id at your sites."))
        else:
            try:
                services.add_member(group, participant, by=request.user, joined_on=d["joined_on"])
            except services.Refused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    _("%(pid)s joined %(group)s.")
                    % {"pid": participant.participant_id, "group": group.name},
                )
                return redirect("fidelity:group", trial.key, group.pk)
    return render(
        request,
        "fidelity/member_form.html",
        {"trial": trial, "group": group, "form": form, "eligible": _eligible_ids(group)},
    )


@login_required
def member_leave(request, trial_key, pk, membership_pk):
    trial = _trial(request, trial_key)
    group = _group(request, trial, pk)
    _require_log(request.user, group)
    membership = get_object_or_404(GroupMembership, group=group, pk=membership_pk)
    if request.method != "POST":  # asked only after the gate, so a 405 reveals nothing
        return HttpResponseNotAllowed(["POST"])
    form = LeaveForm(request.POST)
    if form.is_valid():
        try:
            services.leave_group(
                membership,
                by=request.user,
                left_on=form.cleaned_data["left_on"],
                reason=form.cleaned_data["reason"],
            )
        except services.Refused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _("%(pid)s left the group.") % {"pid": membership.participant.participant_id},
            )
    else:
        messages.error(request, _("Give the date the member left."))
    return redirect("fidelity:group", trial.key, group.pk)


# --- Sessions --------------------------------------------------------------------------------


@login_required
def session_new(request, trial_key, pk):
    trial = _trial(request, trial_key)
    group = _group(request, trial, pk)
    _require_log(request.user, group)
    source = request.POST if request.method == "POST" else request.GET
    day = _parse_day(source.get("date")) or timezone.localdate()
    # The radio rows are the members on the date asked for; the service checks them again.
    members = [
        m.participant
        for m in GroupMembership.objects.on(day)
        .filter(group=group)
        .select_related("participant")
        .order_by("participant__participant_id")
    ]
    form = SessionForm(_post(request), group=group, members=members, date=day)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            session = services.log_session(
                group,
                by=request.user,
                date=d["date"],
                modules=d["modules"],
                duration_minutes=d["duration_minutes"],
                facilitators_present=list(d["facilitators_present"]),
                attendance=form.attendance(),
                notes=d["notes"],
            )
        except services.Refused as exc:
            form.add_error(None, str(exc))
        else:
            present = session.attendance.filter(status__in=Attendance.COUNTS_AS_ATTENDED).count()
            messages.success(
                request,
                _("Session of %(date)s logged: %(present)s of %(n)s members attended.")
                % {"date": short_date(session.date), "present": present, "n": len(members)},
            )
            return redirect("fidelity:group", trial.key, group.pk)
    return render(
        request, "fidelity/session_form.html", {"trial": trial, "group": group, "form": form}
    )


@login_required
def session_detail(request, trial_key, pk, session_pk):
    trial = _trial(request, trial_key)
    group = _group(request, trial, pk)
    session = get_object_or_404(Session, group=group, pk=session_pk)
    rows = list(session.attendance.select_related("participant"))
    missed = [r.participant for r in rows if not r.counts_as_attended]
    call_form = FollowUpCallForm(missed=missed)
    if request.method == "POST":
        _require_log(request.user, group)
        by_pk = {r.participant.pk: r.participant for r in rows}
        try:
            if "change" in request.POST:
                change = AttendanceChangeForm(request.POST)
                if not change.is_valid() or change.cleaned_data["participant"] not in by_pk:
                    raise services.Refused(_("Choose the new status and give the reason."))
                d = change.cleaned_data
                services.record_attendance(
                    session,
                    by_pk[d["participant"]],
                    by=request.user,
                    status=d["status"],
                    reason=d["reason"],
                )
                messages.success(request, _("Attendance changed."))
                return redirect(request.path)
            call_form = FollowUpCallForm(request.POST, missed=missed)
            if call_form.is_valid():
                d = call_form.cleaned_data
                services.record_follow_up_call(
                    session,
                    by_pk[int(d["participant"])],
                    by=request.user,
                    called_on=d["called_on"],
                    outcome=d["outcome"],
                )
                messages.success(request, _("Call recorded."))
                return redirect(request.path)
        except services.Refused as exc:
            messages.error(request, str(exc))
            return redirect(request.path)
    log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, f"IMR session {session}")
    return render(
        request,
        "fidelity/session_detail.html",
        {
            "trial": trial,
            "group": group,
            "session": session,
            "rows": rows,
            "calls": session.follow_up_calls.select_related("participant", "called_by"),
            "statuses": Attendance.Status.choices,
            "call_form": call_form,
            "may_log": _may_log(request.user, group),
        },
    )


# --- Fidelity --------------------------------------------------------------------------------


@login_required
def fidelity_report(request, trial_key, pk):
    trial = _trial(request, trial_key)
    group = _group(request, trial, pk)
    results = measures.assessment_results(group)
    score, band = measures.group_score(group, results)
    return render(
        request,
        "fidelity/fidelity_report.html",
        {
            "trial": trial,
            "group": group,
            "results": results,
            "score": score,
            "band": band,
            "rules": rules.for_trial(trial),
            "items": measures.item_table(results),
            "agreement": measures.agreement_of(results),
            "may_rate": services.rater_problem(group, request.user) is None,
        },
    )


@login_required
def assessment_new(request, trial_key, pk):
    trial = _trial(request, trial_key)
    group = _group(request, trial, pk)
    access.require(request.user, Perm.RATE_FIDELITY, trial, group.site)
    form = AssessmentForm(_post(request), initial={"date": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            assessment = services.create_assessment(
                group,
                by=request.user,
                kind=d["kind"],
                date=d["date"],
                data_sources=d["data_sources"],
                report=d["report"],
            )
        except services.Refused as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("fidelity:assessment", trial.key, group.pk, assessment.pk)
    return render(
        request, "fidelity/assessment_form.html", {"trial": trial, "group": group, "form": form}
    )


@login_required
def assessment_detail(request, trial_key, pk, assessment_pk):
    trial = _trial(request, trial_key)
    group = _group(request, trial, pk)
    assessment = get_object_or_404(FidelityAssessment, group=group, pk=assessment_pk)
    result = next(r for r in measures.assessment_results(group) if r.assessment == assessment)
    user = request.user
    may_rate = services.rater_problem(group, user) is None
    rated = any(r.rater_id == user.pk for r in result.raw)
    rating_form = consensus_form = None
    if may_rate and not rated and not result.both_raw_in:
        rating_form = RatingForm(assessment=assessment)
    if may_rate and rated and result.both_raw_in and result.consensus is None:
        consensus_form = RatingForm(assessment=assessment, with_report=True)
    if request.method == "POST":
        access.require(user, Perm.RATE_FIDELITY, trial, group.site)
        # Whatever the page offered, the service decides (and says why not).
        consensus = "consensus" in request.POST
        form = RatingForm(request.POST, assessment=assessment, with_report=consensus)
        if form.is_valid():
            try:
                if consensus:
                    services.submit_consensus(
                        assessment,
                        by=user,
                        scores=form.scores(),
                        report=form.cleaned_data["report"],
                    )
                    messages.success(request, _("The consensus rating is recorded."))
                else:
                    services.submit_rating(assessment, by=user, scores=form.scores())
                    messages.success(request, _("Your rating is submitted."))
            except services.Refused as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(request.path)
        if consensus:
            consensus_form = form
        else:
            rating_form = form
    return render(
        request,
        "fidelity/assessment_detail.html",
        {
            "trial": trial,
            "group": group,
            "assessment": assessment,
            "result": result,
            "ratings": measures.visible_ratings(result, user),
            "items": measures.item_table([result]) if result.both_raw_in else [],
            "sources": [
                FidelityAssessment.DataSource(code).label for code in assessment.data_sources
            ],
            "rating_form": rating_form,
            "consensus_form": consensus_form,
            "rules": rules.for_trial(trial),
        },
    )
