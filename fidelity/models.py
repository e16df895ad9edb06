"""IMR groups, their sessions and attendance, and fidelity ratings of the groups.

All of it is allocation-revealing: only participants of the IMR arm are members of a group, so
a membership, an attendance row or a group's fidelity score tells whoever sees it the arm. Every
page, form and admin screen asks imrtrial.access.may_see_allocation first. Rows are written only
through fidelity.services, never hard-deleted, and changes are kept by simple-history.
"""

from django.conf import settings
from django.db import models
from django.db.models import Count, F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from imrtrial.models import Participant, Site, Trial, Undeletable, UndeletableQuerySet

from . import rules


class Module(models.TextChoices):
    """The 11 IMR modules, in the Danish thesis order (DOMAIN.md 4.1). The codes are stable;
    a trial's own wording (e.g. Dutch "Basic facts ...") is a label, not another module."""

    RECOVERY_STRATEGIES = "recovery_strategies", _("Recovery strategies")
    PRACTICAL_FACTS = "practical_facts", _("Practical facts about mental illness")
    STRESS_VULNERABILITY = "stress_vulnerability", _("The stress-vulnerability model")
    SOCIAL_SUPPORT = "social_support", _("Building social support")
    MEDICATION = "medication", _("Using medication effectively")
    DRUGS_ALCOHOL = "drugs_alcohol", _("Drug and alcohol use")
    RELAPSES = "relapses", _("Reducing relapses")
    HEALTHY_LIFESTYLE = "healthy_lifestyle", _("Healthy lifestyle")
    COPING_STRESS = "coping_stress", _("Coping with stress")
    COPING_SYMPTOMS = "coping_symptoms", _("Coping with problems and symptoms")
    NEEDS_MET = "needs_met", _("Having your needs met in the mental health system")


class ImrGroup(Undeletable):
    class Enrolment(models.TextChoices):
        CLOSED = "closed", _("Closed (members join by the start date)")
        ROLLING = "rolling", _("Rolling (members join at any time)")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="imr_groups")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="imr_groups")
    name = models.CharField(max_length=120)
    facilitators = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="imr_groups")
    start_date = models.DateField()
    planned_sessions = models.PositiveSmallIntegerField()
    schedule = models.CharField(max_length=120, blank=True, help_text=_("e.g. Tuesdays 10:00"))
    session_minutes = models.PositiveSmallIntegerField(default=60)
    enrolment = models.CharField(max_length=10, choices=Enrolment.choices, default=Enrolment.CLOSED)
    capacity = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # A group that stopped before its planned sessions (fidelity.services.end_group): no session,
    # member or reminder after this date, and its planned sessions count as those it held.
    ended_on = models.DateField(null=True, blank=True)
    ended_reason = models.CharField(max_length=300, blank=True)

    history = HistoricalRecords(m2m_fields=[facilitators])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "name"], name="imrgroup_unique_name"),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="imrgroup_capacity"),
            models.CheckConstraint(condition=Q(planned_sessions__gte=1), name="imrgroup_planned"),
            models.CheckConstraint(condition=Q(session_minutes__gte=1), name="imrgroup_minutes"),
            models.CheckConstraint(
                condition=Q(ended_on__isnull=True, ended_reason="")
                | (Q(ended_on__gte=F("start_date")) & ~Q(ended_reason="")),
                name="imrgroup_ended_with_reason",
            ),
        ]
        ordering = ["trial", "site", "start_date", "name"]

    def __str__(self):
        return self.name


class GroupMembershipQuerySet(UndeletableQuerySet):
    def on(self, date):
        """Memberships current on `date` (joined by then, not yet left)."""
        return self.filter(joined_on__lte=date).filter(
            Q(left_on__isnull=True) | Q(left_on__gte=date)
        )

    def current(self):
        return self.filter(left_on__isnull=True)


class GroupMembership(Undeletable):
    group = models.ForeignKey(ImrGroup, on_delete=models.PROTECT, related_name="memberships")
    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="imr_memberships"
    )
    joined_on = models.DateField()
    left_on = models.DateField(null=True, blank=True)

    objects = GroupMembershipQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        constraints = [
            # One row per participant and group; a participant in one group at a time.
            models.UniqueConstraint(fields=["group", "participant"], name="membership_once"),
            models.UniqueConstraint(
                fields=["participant"],
                condition=Q(left_on__isnull=True),
                name="membership_one_current_group",
            ),
            models.CheckConstraint(
                condition=Q(left_on__isnull=True) | Q(left_on__gte=F("joined_on")),
                name="membership_leaves_after_joining",
            ),
        ]
        ordering = ["group", "participant__participant_id"]

    def __str__(self):
        return f"{self.participant} in {self.group}"


class Session(Undeletable):
    group = models.ForeignKey(ImrGroup, on_delete=models.PROTECT, related_name="sessions")
    date = models.DateField()
    # Module codes (Module values). A JSON list rather than an ArrayField: `make run` uses SQLite.
    modules = models.JSONField(default=list)
    duration_minutes = models.PositiveSmallIntegerField()
    facilitators_present = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+")
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(m2m_fields=[facilitators_present])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "date"], name="session_one_per_day"),
            models.CheckConstraint(condition=Q(duration_minutes__gte=1), name="session_duration"),
        ]
        ordering = ["group", "date"]

    def __str__(self):
        return f"{self.group} {self.date:%Y-%m-%d}"

    def module_labels(self):
        return [Module(code).label for code in self.modules]


class Attendance(Undeletable):
    class Status(models.TextChoices):
        ATTENDED = "attended", _("Attended")
        ABSENT = "absent", _("Absent")
        EXCUSED = "excused", _("Excused")
        # The missed content given one-to-one, e.g. on a hospital ward (DOMAIN.md 4.2, 10.5).
        CATCH_UP = "catch_up", _("Individual catch-up")

    # Catch-up sessions count as attended in every measure of exposure.
    COUNTS_AS_ATTENDED = (Status.ATTENDED, Status.CATCH_UP)

    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="attendance")
    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="imr_attendance"
    )
    status = models.CharField(max_length=10, choices=Status.choices)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "participant"], name="attendance_once")
        ]
        ordering = ["session", "participant__participant_id"]

    def __str__(self):
        return f"{self.participant} {self.session}: {self.get_status_display()}"

    @property
    def counts_as_attended(self):
        return self.status in self.COUNTS_AS_ATTENDED


class FollowUpCall(Undeletable):
    """A facilitator phoned a member who missed a session (DOMAIN.md 4.2, "missed sessions")."""

    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="follow_up_calls")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="+")
    called_on = models.DateField()
    outcome = models.TextField()
    called_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["session", "called_on"]

    def __str__(self):
        return f"Call to {self.participant} on {self.called_on:%Y-%m-%d}"


class FidelityAssessment(Undeletable):
    """One fidelity visit to a group: mid-way (items 1-10) or end (all 13), DOMAIN.md 5.3."""

    class Kind(models.TextChoices):
        MIDWAY = "midway", _("Mid-way (items 1-10)")
        END = "end", _("End (items 1-13)")

    class DataSource(models.TextChoices):
        INTERVIEWS = "interviews", _("Interviews")
        OBSERVATION = "observation", _("Observation of a session")
        CHART_AUDIT = "chart_audit", _("Audit of service records")
        PROGRESS_NOTES = "progress_notes", _("Audit of IMR progress notes")
        GOAL_TRACKING = "goal_tracking", _("Goal-tracking sheets")

    group = models.ForeignKey(
        ImrGroup, on_delete=models.PROTECT, related_name="fidelity_assessments"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    date = models.DateField()
    data_sources = models.JSONField(default=list)  # DataSource values
    report = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "kind"], name="fidelity_one_per_kind")
        ]
        ordering = ["group", "date"]

    def __str__(self):
        return f"{self.group}: {self.get_kind_display()}"

    @property
    def items(self):
        return rules.ITEMS_BY_KIND[self.kind]


class FidelityRatingQuerySet(UndeletableQuerySet):
    def assessments_with_both_raw_in(self, assessment_ids):
        """The ids among `assessment_ids` whose raw ratings are all in: only then may anyone
        read a raw rating's scores (the pages, the audit trail)."""
        return set(
            self.filter(assessment_id__in=assessment_ids, is_consensus=False)
            .values("assessment_id")
            .annotate(n=Count("pk"))
            .filter(n__gte=FidelityRating.RAW_RATINGS)
            .values_list("assessment_id", flat=True)
        )


class FidelityRating(Undeletable):
    """A rater's scores for an assessment. Two raw ratings by different raters, entered blind to
    each other; then one consensus rating, which is the score of record. All three are kept.
    A raw rating's scores are shown to nobody but its rater until both are in."""

    RAW_RATINGS = 2

    assessment = models.ForeignKey(
        FidelityAssessment, on_delete=models.PROTECT, related_name="ratings"
    )
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    is_consensus = models.BooleanField(default=False)
    submitted_at = models.DateTimeField(auto_now_add=True)
    # {"1": 4, "2": 5, ...}: item number (as JSON keys are text) to a score of 1-5.
    scores = models.JSONField()

    objects = FidelityRatingQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assessment", "rater"],
                condition=Q(is_consensus=False),
                name="fidelity_one_raw_rating_per_rater",
            ),
            models.UniqueConstraint(
                fields=["assessment"],
                condition=Q(is_consensus=True),
                name="fidelity_one_consensus",
            ),
        ]
        ordering = ["assessment", "is_consensus", "submitted_at"]

    def __str__(self):
        kind = "consensus" if self.is_consensus else f"raw by {self.rater}"
        return f"{self.assessment} ({kind})"

    def item_scores(self):
        """{item number: score}, items in order."""
        return {int(k): v for k, v in sorted(self.scores.items(), key=lambda kv: int(kv[0]))}


class AttendanceReminder(models.Model):
    """Outbox line: a facilitator has not logged a weekly session of their group. Unique per
    (recipient, group, expected date, day), so the daily job writes each line once; sent like
    the visit reminders (claimed with SKIP LOCKED, marked sent after the mail server accepted)."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(ImrGroup, on_delete=models.PROTECT, related_name="+")
    expected_on = models.DateField()
    day = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Refused by the gate at send time: kept, never sent, never retried (as on Reminder).
    dropped_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "group", "expected_on", "day"],
                name="attendancereminder_unique",
            )
        ]

    def __str__(self):
        return f"{self.group} {self.expected_on} to {self.recipient}"


class ImrRules(models.Model):
    """The trial's IMR programme rules, from its file's `imr_programme:` section (fidelity.config):
    how exposure, completion and fidelity are computed. Written when the trial is loaded."""

    class Denominator(models.TextChoices):
        HELD = rules.HELD, _("Sessions held while a member")
        PLANNED = rules.PLANNED, _("The group's planned sessions")

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="imr_rules")
    planned_sessions = models.PositiveSmallIntegerField()
    completer_denominator = models.CharField(max_length=8, choices=Denominator.choices)
    exposed_from_sessions = models.PositiveSmallIntegerField(null=True, blank=True)
    completer_from_share = models.DecimalField(
        max_digits=4, decimal_places=3, null=True, blank=True
    )
    fidelity_analysis_from_sessions = models.PositiveSmallIntegerField()
    # [{"from": "4.4", "label": "high"}, ...], ascending; "from" as decimal text.
    fidelity_bands = models.JSONField()
    fidelity_band_decimals = models.PositiveSmallIntegerField(null=True, blank=True)
    raters_may_rate_own_site = models.BooleanField()

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(planned_sessions__gte=1), name="imrrules_planned"),
            models.CheckConstraint(
                condition=Q(completer_from_share__isnull=True)
                | Q(completer_from_share__gt=0, completer_from_share__lte=1),
                name="imrrules_share",
            ),
        ]
        verbose_name = _("IMR programme rules")
        verbose_name_plural = _("IMR programme rules")

    def __str__(self):
        return f"IMR programme rules of {self.trial}"

    def as_rules(self):
        return rules.from_config(
            {
                field: getattr(self, field)
                for field in (
                    "planned_sessions",
                    "completer_denominator",
                    "exposed_from_sessions",
                    "completer_from_share",
                    "fidelity_analysis_from_sessions",
                    "fidelity_bands",
                    "fidelity_band_decimals",
                    "raters_may_rate_own_site",
                )
            }
        )
