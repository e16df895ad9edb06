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
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from imrtrial.models import Participant, Undeletable


class SafetyEvent(Undeletable):
    class Kind(models.TextChoices):
        ADVERSE = "adverse", _("Adverse event")
        BENEFICIAL = "beneficial", _("Beneficial event")

    class Category(models.TextChoices):
        # Adverse: the harms the protocol lists first, then the other adverse events it names.
        SUICIDE_ATTEMPT = "suicide_attempt", _("Suicide attempt")
        SUICIDE = "suicide", _("Suicide")
        DEATH = "death", _("Death (other cause)")
        LIFE_THREATENING = "life_threatening", _("Life-threatening condition (not suicide)")
        SYMPTOMS_WORSE = "symptoms_worse", _("More symptoms")
        FUNCTIONING_WORSE = "functioning_worse", _("Worse functioning")
        SUBSTANCE_USE_CHANGE = "substance_use_change", _("Change in alcohol or drug use")
        # Beneficial.
        FUNCTIONING_BETTER = "functioning_better", _("Better functioning")
        MORE_HOPE = "more_hope", _("More hope")
        RECOVERY_PROGRESS = "recovery_progress", _("Progress in recovery")
        # Either kind.
        OTHER = "other", _("Other (see description)")

    class Seriousness(models.TextChoices):
        DEATH = "death", _("Resulted in death")
        LIFE_THREATENING = "life_threatening", _("Life-threatening")
        HOSPITALISATION = "hospitalisation", _("Hospitalisation, or a longer stay")
        DISABILITY = "disability", _("Persistent or significant disability")
        OTHER_IMPORTANT = "other_important", _("Other important medical event")

    class Outcome(models.TextChoices):
        RESOLVED = "resolved", _("Resolved")
        ONGOING = "ongoing", _("Ongoing")
        RESOLVED_WITH_SEQUELAE = "resolved_with_sequelae", _("Resolved with sequelae")
        FATAL = "fatal", _("Fatal")
        UNKNOWN = "unknown", _("Unknown")

    class Relatedness(models.TextChoices):
        NOT_JUDGED = "not_judged", _("Not yet judged")
        NOT_RELATED = "not_related", _("Not related")
        UNLIKELY = "unlikely", _("Unlikely")
        POSSIBLE = "possible", _("Possible")
        PROBABLE = "probable", _("Probable")
        DEFINITE = "definite", _("Definite")

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
