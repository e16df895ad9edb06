"""Visits and case record form entries: the clinical data the audit trail protects most."""

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop  # labels exports read as plain text
from simple_history.models import HistoricalRecords

from imrtrial.models import Participant, Timepoint, Undeletable, UndeletableQuerySet


class VisitQuerySet(models.QuerySet):
    def due(self, today, *, lead_days=30):
        """Visits not done or missed whose window opens within `lead_days` or has passed."""
        return self.filter(
            completed_on__isnull=True,
            missed=False,
            window_start__lte=today + datetime.timedelta(days=lead_days),
        )


class Visit(Undeletable):
    """One timepoint of one participant, with its target date and window."""

    class Status(models.TextChoices):
        UPCOMING = "upcoming", gettext_noop("Upcoming")
        OPEN = "open", gettext_noop("Open")
        OVERDUE = "overdue", gettext_noop("Overdue")
        DONE = "done", gettext_noop("Done")
        OUT_OF_WINDOW = "out_of_window", gettext_noop("Done out of window")
        MISSED = "missed", gettext_noop("Missed")

    class MissedBecause(models.TextChoices):
        """Why a visit was missed: the reasons for loss to follow-up the CONSORT flow gives.
        Neutral words, alike for both arms; the typed reason stays in the visit's history."""

        DIED = "died", gettext_noop("Died")
        MOVED = "moved", gettext_noop("Moved away")
        DECLINED = "declined", gettext_noop("Declined the assessment")
        UNREACHABLE = "unreachable", gettext_noop("Could not be reached")
        TOO_ILL = "too_ill", gettext_noop("Too ill")
        OTHER = "other", gettext_noop("Other reason")

    class Guess(models.TextChoices):
        A = "A", "A"
        B = "B", "B"
        DONT_KNOW = "DK", gettext_noop("Don't know")

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="visits")
    timepoint = models.ForeignKey(Timepoint, on_delete=models.PROTECT, related_name="visits")
    target_date = models.DateField()
    window_start = models.DateField()
    window_end = models.DateField()
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_visits",
    )
    completed_on = models.DateField(null=True, blank=True)
    missed = models.BooleanField(default=False)
    missed_because = models.CharField(max_length=12, choices=MissedBecause.choices, blank=True)
    # Completed outside its window: allowed, and a protocol deviation (DOMAIN.md 10.2).
    deviation = models.BooleanField(default=False)
    needs_reassignment = models.BooleanField(default=False)
    guess = models.CharField(max_length=2, choices=Guess.choices, blank=True)
    guess_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = VisitQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "timepoint"], name="visit_unique")
        ]
        # The worklist and the reminder job ask for open visits by window: a partial index
        # keeps that fast as completed visits pile up.
        indexes = [
            models.Index(
                fields=["window_start", "window_end"],
                condition=models.Q(completed_on__isnull=True, missed=False),
                name="visit_due",
            )
        ]
        ordering = ["target_date"]

    def __str__(self):
        return f"{self.participant} {self.timepoint}"

    def get_status_display(self):
        return self.Status(self.status(timezone.localdate())).label

    def status(self, today):
        return self.status_of(
            today,
            self.completed_on,
            self.missed,
            self.deviation,
            self.window_start,
            self.window_end,
        )

    @classmethod
    def status_of(cls, today, completed_on, missed, deviation, window_start, window_end):
        """The status from the fields alone, for exports that read rows without models."""
        if completed_on:
            return cls.Status.OUT_OF_WINDOW if deviation else cls.Status.DONE
        if missed:
            return cls.Status.MISSED
        if today < window_start:
            return cls.Status.UPCOMING
        if today <= window_end:
            return cls.Status.OPEN
        return cls.Status.OVERDUE


class FormEntryQuerySet(UndeletableQuerySet):
    def counting(self):
        """The entries that are the data of record, at most one per participant, instrument and
        timepoint: a single entry, or the reconciled entry of a double entry, that is complete,
        verified or locked. Never a draft, nor the first or second entry of a paper form (those
        count only through their reconciliation), nor a single entry that a reconciled entry of
        the same form has replaced (the instrument went from interview to paper).

        The one place this rule is written: exports, reports and the visit's completion ask it."""
        # Another row, reconciled and counting, of the same form. Written as one NOT EXISTS
        # beside the other conditions (not inside an OR), so PostgreSQL runs it as one anti-join.
        replaced_by = FormEntry.objects.filter(
            participant=models.OuterRef("participant"),
            instrument=models.OuterRef("instrument"),
            timepoint=models.OuterRef("timepoint"),
            kind=FormEntry.Kind.FINAL,
            status__in=FormEntry.COUNTING_STATUSES,
        ).exclude(pk=models.OuterRef("pk"))
        return self.filter(
            ~models.Exists(replaced_by),
            kind__in=FormEntry.COUNTING_KINDS,
            status__in=FormEntry.COUNTING_STATUSES,
        )


class EnteredVia(models.TextChoices):
    STAFF = "staff", gettext_noop("Staff")
    TABLET = "tablet", gettext_noop("Participant, on a tablet")
    LINK = "link", gettext_noop("Participant, from a link")


class FormEntry(Undeletable):
    """One instrument filled in at one visit. Paper questionnaires are entered twice (first and
    second entry, by different people) and reconciled into the final entry; other forms have a
    single entry. Which entries count as the data of record: FormEntry.objects.counting()."""

    class Status(models.TextChoices):
        DRAFT = "draft", gettext_noop("Draft")
        COMPLETE = "complete", gettext_noop("Complete")
        VERIFIED = "verified", gettext_noop("Verified")
        LOCKED = "locked", gettext_noop("Locked")

    LOCKABLE_FORM = True  # imrtrial.locking refuses every write to a locked entry

    class Kind(models.TextChoices):
        SINGLE = "single", _("Single entry")
        FIRST = "first", _("First entry")
        SECOND = "second", _("Second entry")
        FINAL = "final", _("Reconciled")

    EnteredVia = EnteredVia
    PARTICIPANT_MODES = (EnteredVia.TABLET, EnteredVia.LINK)

    COUNTING_KINDS = (Kind.SINGLE, Kind.FINAL)
    COUNTING_STATUSES = (Status.COMPLETE, Status.VERIFIED, Status.LOCKED)

    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="form_entries"
    )
    visit = models.ForeignKey(
        Visit, on_delete=models.PROTECT, related_name="entries", null=True, blank=True
    )
    instrument = models.CharField(max_length=40)
    instrument_version = models.PositiveSmallIntegerField(default=1)
    timepoint = models.CharField(max_length=40)
    kind = models.CharField(max_length=6, choices=Kind.choices, default=Kind.SINGLE)
    values = models.JSONField(default=dict, blank=True)
    scores = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # Who typed the answers: staff (an interview, or a paper form entered twice), or the
    # participant, on the assessor's tablet or from a link (selfreport). For a participant's
    # entry, entered_by is the member of staff who handed over the tablet or sent the link.
    entered_via = models.CharField(max_length=6, choices=EnteredVia.choices, default="staff")
    # Bumped on every save: a save based on an older version is refused (no lost update).
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FormEntryQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "instrument", "timepoint", "kind"],
                name="formentry_unique",
            )
        ]

    def __str__(self):
        return f"{self.participant} {self.instrument} @ {self.timepoint}"

    @property
    def counts(self):
        """This row's kind and status are those of a counting entry. The queryset's counting()
        also leaves out a single entry replaced by a reconciled one, which one row cannot see."""
        return self.kind in self.COUNTING_KINDS and self.status in self.COUNTING_STATUSES


class Reminder(models.Model):
    """One line of a reminder digest, written to this outbox before anything is sent.

    The unique key (recipient, kind, visit, day) makes the daily job idempotent: running it twice,
    or on two workers, writes each line once. The sender claims unsent lines with SKIP LOCKED,
    so two senders never mail the same line; a line is marked sent in the transaction that
    claimed it, only after the mail server accepted the message."""

    class Kind(models.TextChoices):
        DUE = "due", _("Visit window open or opening soon")
        OVERDUE = "overdue", _("Visit overdue")
        ESCALATION = "escalation", _("Visit overdue: escalated")
        # One line per visit with open data queries older than the trial's query reminder days.
        QUERY = "query", _("Data queries waiting for your answer")

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reminders"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="reminders")
    day = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Set when the gate refused the line at send time (the role was withdrawn, the site
    # changed): the line is kept, never sent and never retried; last_error says why.
    dropped_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "kind", "visit", "day"], name="reminder_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["day"], condition=models.Q(sent_at__isnull=True), name="reminder_pending"
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.recipient} ({self.day})"


class DataQueryQuerySet(UndeletableQuerySet):
    def open(self):
        """Queries still waiting on someone: open (the site's turn) or answered (the data
        manager's turn). They block verifying and locking what they are about."""
        return self.filter(status__in=DataQuery.WAITING)


class DataQuery(Undeletable):
    """A question about an item, a form or a visit (a discrepancy note): opened by a data manager
    (later a monitor or a rule), answered by whoever entered the data, closed, re-opened or
    cancelled. Nothing is deleted; every message is a QueryMessage, every state change is in
    the history. Blinding: the text passes between blinded staff, except on staff-rated forms,
    where it reaches the unblinded raters; either way it may not name an arm or the programme
    (assessments.queries refuses it)."""

    class Category(models.TextChoices):
        MISSING = "missing", _("Missing value")
        RANGE = "range", _("Out of expected range")
        INCONSISTENT = "inconsistent", _("Inconsistent")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ANSWERED = "answered", _("Answered")
        CLOSED = "closed", _("Closed")
        CANCELLED = "cancelled", _("Cancelled")

    WAITING = (Status.OPEN, Status.ANSWERED)

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="queries")
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="queries")
    entry = models.ForeignKey(
        FormEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="queries"
    )
    item = models.CharField(max_length=40, blank=True)  # an item code of the entry's form
    category = models.CharField(max_length=12, choices=Category.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # Whoever entered the form, else the site's blinded assessors (addressed_to empty).
    addressed_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="queries_to_answer",
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DataQueryQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        indexes = [
            # Written as OR, not IN: PostgreSQL prints an IN over varchar differently after a
            # dump and restore, and the backup test compares index definitions.
            models.Index(
                fields=["participant", "visit"],
                condition=models.Q(status="open") | models.Q(status="answered"),
                name="dataquery_waiting",
            )
        ]
        ordering = ["-opened_at"]

    def __str__(self):
        where = f"{self.entry.instrument}" if self.entry_id else "visit"
        return f"Query on {self.participant} {where}{f' {self.item}' if self.item else ''}"


class QueryMessage(Undeletable):
    """One message of a query's thread, in order; never edited or deleted."""

    class Action(models.TextChoices):
        OPEN = "open", _("Opened")
        ANSWER = "answer", _("Answered")
        CLOSE = "close", _("Closed")
        REOPEN = "reopen", _("Re-opened")
        CANCEL = "cancel", _("Cancelled")

    query = models.ForeignKey(DataQuery, on_delete=models.PROTECT, related_name="messages")
    action = models.CharField(max_length=8, choices=Action.choices)
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    # The answer changed the value through the normal save path (the query was its reason).
    changed_value = models.BooleanField(default=False)

    class Meta:
        ordering = ["query", "at", "pk"]

    def __str__(self):
        return f"{self.get_action_display()} by {self.author}"


class ExclusionAfterRandomization(Undeletable):
    """A participant excluded after randomization, with the category the CONSORT flow reports
    and who decided. An allocation made in error is flagged on the allocation itself
    (randomization.services.mark_in_error) and reported beside these as a fourth category.

    The category and the date are alike for both arms; the typed reason may name the arm and is
    shown by author (imrtrial.access.text_for), as withdrawal reasons are."""

    class Category(models.TextChoices):
        WITHDREW_CONSENT = "withdrew_consent", gettext_noop("Withdrew consent")
        INELIGIBLE = "ineligible", gettext_noop("Found ineligible after randomization")
        RESEARCH_GROUP = "research_group", gettext_noop("Decision of the research group")

    participant = models.OneToOneField(
        Participant, on_delete=models.PROTECT, related_name="exclusion"
    )
    category = models.CharField(max_length=20, choices=Category.choices)
    excluded_on = models.DateField()
    decided_by = models.CharField(max_length=120)  # a person or a body: "the steering committee"
    reason = models.TextField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    recorded_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    def __str__(self):
        return f"{self.participant}: excluded ({self.get_category_display()})"


class Death(Undeletable):
    """A participant's death: ends the schedule. The cause is kept coarse and alike for both
    arms; whether it was related to the trial is judged in the safety log."""

    class Cause(models.TextChoices):
        NATURAL = "natural", gettext_noop("Natural causes")
        SUICIDE = "suicide", gettext_noop("Suicide")
        ACCIDENT = "accident", gettext_noop("Accident")
        UNKNOWN = "unknown", gettext_noop("Unknown")

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="death")
    died_on = models.DateField()
    cause = models.CharField(max_length=10, choices=Cause.choices, default=Cause.UNKNOWN)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    recorded_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    def __str__(self):
        return f"{self.participant}: died"


class Outcome(models.Model):
    """A primary, secondary or exploratory outcome of the trial, from its file's `outcomes:`
    section: a score of an instrument at a timepoint. The codebook, the ODM metadata and the
    reports name them; the CONSORT flow counts the participants analysed for the primary one."""

    class Rank(models.TextChoices):
        PRIMARY = "primary", gettext_noop("Primary")
        SECONDARY = "secondary", gettext_noop("Secondary")
        EXPLORATORY = "exploratory", gettext_noop("Exploratory")

    trial = models.ForeignKey("imrtrial.Trial", on_delete=models.PROTECT, related_name="outcomes")
    rank = models.CharField(max_length=12, choices=Rank.choices)
    order = models.PositiveSmallIntegerField(default=0)
    instrument = models.CharField(max_length=40)
    score = models.CharField(max_length=40)
    timepoint = models.CharField(max_length=30)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "instrument", "score", "timepoint"], name="outcome_unique"
            )
        ]
        ordering = ["trial", "order"]

    def __str__(self):
        return f"{self.get_rank_display()}: {self.instrument}.{self.score} at {self.timepoint}"
