"""Adverse and beneficial events: the case manager's event log of each participant (DOMAIN.md
3.1 and 7: all adverse events, all beneficial events, and the harms the trial reports).

All of it is allocation-revealing: an event's relatedness to the intervention, and the words
an unblinded clinician writes about it, can tell the arm (a control participant's event cannot
be "related to IMR"). So only readers who may see allocation data at the participant's site see
any of it (safety.views), it is not in the blinded export, and rows are written only through
safety.services, never deleted; every change is kept by simple-history with its reason.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from imrtrial.models import Participant, Undeletable


class SafetyEvent(Undeletable):
    class Kind(models.TextChoices):
        ADVERSE = "adverse", "Adverse event"
        BENEFICIAL = "beneficial", "Beneficial event"

    class Category(models.TextChoices):
        # Adverse: the harms the protocol lists first, then the other adverse events it names.
        SUICIDE_ATTEMPT = "suicide_attempt", "Suicide attempt"
        SUICIDE = "suicide", "Suicide"
        DEATH = "death", "Death (other cause)"
        LIFE_THREATENING = "life_threatening", "Life-threatening condition (not suicide)"
        SYMPTOMS_WORSE = "symptoms_worse", "More symptoms"
        FUNCTIONING_WORSE = "functioning_worse", "Worse functioning"
        SUBSTANCE_USE_CHANGE = "substance_use_change", "Change in alcohol or drug use"
        # Beneficial.
        FUNCTIONING_BETTER = "functioning_better", "Better functioning"
        MORE_HOPE = "more_hope", "More hope"
        RECOVERY_PROGRESS = "recovery_progress", "Progress in recovery"
        # Either kind.
        OTHER = "other", "Other (see description)"

    class Seriousness(models.TextChoices):
        DEATH = "death", "Resulted in death"
        LIFE_THREATENING = "life_threatening", "Life-threatening"
        HOSPITALISATION = "hospitalisation", "Hospitalisation, or a longer stay"
        DISABILITY = "disability", "Persistent or significant disability"
        OTHER_IMPORTANT = "other_important", "Other important medical event"

    class Outcome(models.TextChoices):
        RESOLVED = "resolved", "Resolved"
        ONGOING = "ongoing", "Ongoing"
        RESOLVED_WITH_SEQUELAE = "resolved_with_sequelae", "Resolved with sequelae"
        FATAL = "fatal", "Fatal"
        UNKNOWN = "unknown", "Unknown"

    class Relatedness(models.TextChoices):
        NOT_JUDGED = "not_judged", "Not yet judged"
        NOT_RELATED = "not_related", "Not related"
        UNLIKELY = "unlikely", "Unlikely"
        POSSIBLE = "possible", "Possible"
        PROBABLE = "probable", "Probable"
        DEFINITE = "definite", "Definite"

    CATEGORIES = {
        Kind.ADVERSE: [
            Category.SUICIDE_ATTEMPT,
            Category.SUICIDE,
            Category.DEATH,
            Category.LIFE_THREATENING,
            Category.SYMPTOMS_WORSE,
            Category.FUNCTIONING_WORSE,
            Category.SUBSTANCE_USE_CHANGE,
            Category.OTHER,
        ],
        Kind.BENEFICIAL: [
            Category.FUNCTIONING_BETTER,
            Category.MORE_HOPE,
            Category.RECOVERY_PROGRESS,
            Category.OTHER,
        ],
    }
    # A death is fatal and serious by its nature: these categories ask for both.
    FATAL_CATEGORIES = (Category.SUICIDE, Category.DEATH)

    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="safety_events"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    category = models.CharField(max_length=20, choices=Category.choices)
    onset_on = models.DateField("onset date")
    description = models.TextField(max_length=2000)
    serious = models.BooleanField(default=False)
    # Codes of Seriousness: one or more for a serious adverse event, none otherwise.
    seriousness = models.JSONField(default=list, blank=True)
    outcome = models.CharField(max_length=22, choices=Outcome.choices)
    relatedness = models.CharField(
        max_length=11, choices=Relatedness.choices, default=Relatedness.NOT_JUDGED
    )
    judged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    judged_on = models.DateField(null=True, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    entered_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["participant", "-onset_on", "-entered_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="adverse") | (Q(serious=False) & ~Q(outcome="fatal")),
                name="safety_beneficial_not_serious_nor_fatal",
            ),
            # A judgement names its clinician and its date; no judgement, neither.
            models.CheckConstraint(
                condition=(
                    Q(relatedness="not_judged", judged_by__isnull=True, judged_on__isnull=True)
                    | (
                        ~Q(relatedness="not_judged")
                        & Q(judged_by__isnull=False, judged_on__isnull=False)
                    )
                ),
                name="safety_judgement_named_and_dated",
            ),
        ]

    def __str__(self):
        return f"{self.participant}: {self.get_category_display()} ({self.onset_on:%Y-%m-%d})"

    def seriousness_labels(self):
        return [self.Seriousness(code).label for code in self.seriousness]

    @property
    def judged(self):
        return self.relatedness != self.Relatedness.NOT_JUDGED
