"""Core models every app needs: the trial and its configuration, sites, participants, and who
holds which role where.

The arm is deliberately not a field of Participant: it lives only in randomization.Allocation,
behind the gate in imrtrial/access.py.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy
from django_otp.plugins.otp_totp.models import TOTPDevice
from simple_history import register
from simple_history.models import HistoricalRecords

from .i18n_text import localized


class HardDeleteForbidden(Exception):
    """Clinical rows are never deleted by the application (ICH E6 / 21 CFR 11 style audit)."""


class UndeletableQuerySet(models.QuerySet):
    def delete(self):
        raise HardDeleteForbidden(f"{self.model.__name__} rows are never deleted.")


class Undeletable(models.Model):
    """Base for clinical models: delete() is refused, on the row and on querysets."""

    objects = UndeletableQuerySet.as_manager()

    class Meta:
        abstract = True

    def delete(self, *args, **kwargs):
        raise HardDeleteForbidden(f"{type(self).__name__} rows are never deleted.")


class Perm(models.TextChoices):
    """Permission codenames (on Trial). Code names them only through this enum, so a typo fails
    at import instead of silently denying (tests/test_layering.py lints for string literals)."""

    MANAGE_TRIAL = "manage_trial", gettext_lazy("Configure the trial, its sites and staff")
    VIEW_PARTICIPANTS = (
        "view_participants",
        gettext_lazy("See pseudonymous participants and their visits"),
    )
    VIEW_IDENTIFYING = (
        "view_identifying",
        gettext_lazy("See identifying details (name, national id, phone)"),
    )
    RANDOMIZE = "randomize", gettext_lazy("Screen and randomize at the phone desk")
    VIEW_UNBLINDED = (
        "view_unblinded",
        gettext_lazy("See allocation-revealing data (arm, IMR groups, attendance)"),
    )
    VIEW_UNBLINDED_AFTER_UNBLINDING = (
        "view_unblinded_after_unblinding",
        gettext_lazy("See allocation data once the trial is unblinded"),
    )
    ENTER_INTERVIEW = (
        "enter_interview",
        gettext_lazy("Enter blinded interview ratings and questionnaires"),
    )
    ENTER_STAFF_RATING = (
        "enter_staff_rating",
        gettext_lazy("Enter unblinded staff ratings (e.g. IMRS clinician version)"),
    )
    VERIFY_FORMS = "verify_forms", gettext_lazy("Verify, reconcile and lock case record forms")
    LOG_ATTENDANCE = "log_attendance", gettext_lazy("Log IMR sessions and attendance")
    RATE_FIDELITY = "rate_fidelity", gettext_lazy("Rate IMR groups on the fidelity scale")
    EXPORT_BLINDED = "export_blinded", gettext_lazy("Export the blinded dataset (arms coded A/B)")
    RELEASE_ALLOCATION_KEY = (
        "release_allocation_key",
        gettext_lazy("Release the arm code key and process data after lock"),
    )
    VIEW_AUDIT = "view_audit", gettext_lazy("Read the audit trail and access log")
    SOURCE_VERIFY = (
        "source_verify",
        gettext_lazy("Verify forms against source documents (SDV) and open data queries"),
    )
    SIGN_CASEBOOK = (
        "sign_casebook",
        gettext_lazy("Sign participants' casebooks as site investigator"),
    )


class Trial(models.Model):
    class Status(models.TextChoices):
        SETUP = "setup", gettext_lazy("In set-up")
        OPEN = "open", gettext_lazy("Open for recruitment")
        CLOSED = "closed", gettext_lazy("Closed to recruitment")
        LOCKED = "locked", gettext_lazy("Database locked")

    class Method(models.TextChoices):
        PERMUTED_BLOCKS = "permuted_blocks", gettext_lazy("Permuted blocks")
        MINIMIZATION = "minimization", gettext_lazy("Pocock-Simon minimization")
        UPLOADED_LIST = "uploaded_list", gettext_lazy("Uploaded allocation list")

    key = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    registration_id = models.CharField(max_length=60, blank=True)
    # Pseudonymous participant ids are <prefix>-<running number>, e.g. DK-0007.
    id_prefix = models.CharField(max_length=6, default="P")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SETUP)
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.PERMUTED_BLOCKS)
    # Allowed block sizes. Never shown on a page: knowing them helps guess the next allocation.
    block_sizes = models.JSONField(default=list)
    # Pocock-Simon: probability of taking the arm that minimizes imbalance.
    minimization_p = models.FloatField(default=0.8)
    baseline_required_before_randomization = models.BooleanField(default=True)
    target_sample_size = models.PositiveIntegerField(null=True, blank=True)
    # Follow-up reminders: how early an assessor hears of a visit window, and after how many
    # days past its window an overdue visit is escalated beyond the coordinator.
    reminder_lead_days = models.PositiveSmallIntegerField(default=14)
    escalation_after_days = models.PositiveSmallIntegerField(default=14)
    # An open data query older than this many days is in its addressee's reminder digest.
    query_reminder_days = models.PositiveSmallIntegerField(default=7)
    # A facilitator is reminded of a weekly session still unlogged this many days after it.
    attendance_reminder_after_days = models.PositiveSmallIntegerField(default=3)
    unblinded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The language of the trial's pages and mail for a member who chose none ("": none, then the
    # browser's); see imrtrial.i18n.
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES)

    history = HistoricalRecords()

    class Meta:
        # One permission per kind of data or action (Perm, below). Roles (groups) are made of
        # these in migration 0002; the gate in imrtrial/access.py reads them through site
        # memberships.
        permissions = Perm.choices

    def __str__(self):
        return self.name

    @property
    def is_unblinded(self):
        return self.unblinded_at is not None


class Arm(models.Model):
    """An arm of a trial. `export_code` (A/B) is what blinded people see; the mapping from code to
    label is the allocation key, visible only to those the gate allows."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="arms")
    code = models.SlugField(max_length=20)
    label = models.CharField(max_length=60)
    # The label in the site's other languages ({"da": ..., "nl": ...}); the field itself holds
    # the English, every reader's fallback (imrtrial.i18n_text).
    translations = models.JSONField(default=dict, blank=True)
    export_code = models.CharField(max_length=4)
    ratio = models.PositiveSmallIntegerField(default=1)
    is_intervention = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="arm_unique_code"),
            models.UniqueConstraint(fields=["trial", "export_code"], name="arm_unique_export_code"),
            models.CheckConstraint(condition=Q(ratio__gte=1), name="arm_ratio_positive"),
        ]
        # The intervention first, then by label (and the arm's own code): never by export code,
        # which would put code A first and show the key to anyone who sees the arms listed.
        ordering = ["trial", "-is_intervention", "label", "code"]

    def __str__(self):
        return self.label

    @property
    def display_label(self):
        """The label in the reader's language (English where the file gave none)."""
        return localized(self.label, self.translations)


class EligibilityCriterion(models.Model):
    """One inclusion or exclusion criterion, answered yes/no at screening. A person is eligible
    when every inclusion criterion is answered yes and every exclusion criterion no."""

    class Kind(models.TextChoices):
        INCLUSION = "inclusion", gettext_lazy("Inclusion")
        EXCLUSION = "exclusion", gettext_lazy("Exclusion")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="criteria")
    code = models.SlugField(max_length=40)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    text = models.CharField(max_length=300)
    # The label in the site's other languages ({"da": ..., "nl": ...}); the field itself holds
    # the English, every reader's fallback (imrtrial.i18n_text).
    translations = models.JSONField(default=dict, blank=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="criterion_unique_code")
        ]
        ordering = ["trial", "order"]

    def __str__(self):
        return self.text

    @property
    def display_text(self):
        """The text in the reader's language (English where the file gave none)."""
        return localized(self.text, self.translations)

    def excludes(self, answer):
        """Does this yes/no answer make the person ineligible?"""
        return answer is (self.kind == self.Kind.EXCLUSION)


class Timepoint(models.Model):
    """A visit of the schedule: when it falls, its window, and the instruments due at it."""

    class Anchor(models.TextChoices):
        ENROLMENT = "enrolment", gettext_lazy("Enrolment")
        RANDOMIZATION = "randomization", gettext_lazy("Randomization")
        BASELINE = "baseline", gettext_lazy("Baseline visit done")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="timepoints")
    code = models.SlugField(max_length=30)
    # The label in the site's other languages ({"da": ..., "nl": ...}); the field itself holds
    # the English, every reader's fallback (imrtrial.i18n_text).
    translations = models.JSONField(default=dict, blank=True)
    label = models.CharField(max_length=80)
    order = models.PositiveSmallIntegerField(default=0)
    anchor = models.CharField(max_length=15, choices=Anchor.choices, default=Anchor.RANDOMIZATION)
    offset_days = models.IntegerField(default=0)
    window_before_days = models.PositiveIntegerField(default=30)
    window_after_days = models.PositiveIntegerField(default=30)
    instruments = models.JSONField(default=list)  # instrument codes due at this visit
    # The blinded assessor records a guess of the arm at interview visits after baseline.
    ask_blinding_guess = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="timepoint_unique_code")
        ]
        ordering = ["trial", "order"]

    def __str__(self):
        return self.label

    @property
    def display_label(self):
        """The label in the reader's language (English where the file gave none)."""
        return localized(self.label, self.translations)


class UnblindingIncident(models.Model):
    """A participant disclosed their allocation to an assessor. From then on that assessor may
    not rate that participant's interviews (imrtrial.access asks this table)."""

    participant = models.ForeignKey(
        "Participant", on_delete=models.PROTECT, related_name="unblinding_incidents"
    )
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    occurred_on = models.DateField()
    description = models.TextField()
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reported_at = models.DateTimeField(auto_now_add=True)

    objects = UndeletableQuerySet.as_manager()

    class Meta:
        ordering = ["-reported_at"]

    def __str__(self):
        return f"{self.participant}: disclosed to {self.assessor}"

    def delete(self, *args, **kwargs):
        raise HardDeleteForbidden("Unblinding incidents are never deleted.")


class DatabaseLock(Undeletable):
    """A lock or unlock of a trial's database, with who, when and why. Unlocking is the
    exceptional event: the audit trail lists it, and every export made before it says so."""

    class Action(models.TextChoices):
        LOCKED = "locked", gettext_lazy("Database locked")
        UNLOCKED = "unlocked", gettext_lazy("Database UNLOCKED")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="database_locks")
    action = models.CharField(max_length=8, choices=Action.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField()

    class Meta:
        ordering = ["trial", "at"]

    def __str__(self):
        return f"{self.trial}: {self.get_action_display()} {self.at:%Y-%m-%d %H:%M}"


class Site(models.Model):
    class Kind(models.TextChoices):
        CENTRE = "centre", gettext_lazy("Community mental health centre")
        TEAM = "team", gettext_lazy("Community mental health team")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="sites")
    code = models.SlugField(max_length=20)
    name = models.CharField(max_length=120)
    # The label in the site's other languages ({"da": ..., "nl": ...}); the field itself holds
    # the English, every reader's fallback (imrtrial.i18n_text).
    translations = models.JSONField(default=dict, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CENTRE)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trial", "code"], name="site_unique_code")]
        ordering = ["trial", "name"]

    def __str__(self):
        return self.name

    @property
    def display_name(self):
        """The name in the reader's language (English where the file gave none)."""
        return localized(self.name, self.translations)


class StratificationFactor(models.Model):
    """A factor of stratification. Either the participant's site, or a participant attribute with
    a fixed list of levels (e.g. diagnosis: schizophrenia / bipolar)."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="factors")
    code = models.SlugField(max_length=30)
    label = models.CharField(max_length=80)
    # The label in the site's other languages ({"da": ..., "nl": ...}); the field itself holds
    # the English, every reader's fallback (imrtrial.i18n_text).
    translations = models.JSONField(default=dict, blank=True)
    from_site = models.BooleanField(default=False)
    levels = models.JSONField(default=list, blank=True)  # [{"code": ..., "label": ...}]
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trial", "code"], name="factor_unique_code")]
        ordering = ["trial", "order"]

    def __str__(self):
        return self.label

    @property
    def display_label(self):
        """The label in the reader's language (English where the file gave none)."""
        return localized(self.label, self.translations)

    def level_codes(self):
        if self.from_site:
            return list(self.trial.sites.values_list("code", flat=True))
        return [level["code"] for level in self.levels]


class ParticipantQuerySet(UndeletableQuerySet):
    def for_sites(self, sites):
        return self.filter(site__in=sites)


class Participant(Undeletable):
    """A randomizable person, known here only by a pseudonymous id."""

    class Status(models.TextChoices):
        CONSENTED = "consented", gettext_lazy("Consented, not yet randomized")
        RANDOMIZED = "randomized", gettext_lazy("Randomized")
        COMPLETED = "completed", gettext_lazy("Completed follow-up")
        WITHDRAWN = "withdrawn", gettext_lazy("Withdrawn")
        EXCLUDED = "excluded", gettext_lazy("Excluded after randomization")
        DIED = "died", gettext_lazy("Died")

    # No more visits, reminders or forms to enter: the schedule has ended for both arms alike.
    FOLLOW_UP_ENDED = (Status.WITHDRAWN, Status.EXCLUDED, Status.DIED)

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="participants")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="participants")
    participant_id = models.CharField(max_length=30)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CONSENTED)
    # Levels of the non-site stratification factors, e.g. {"diagnosis": "bipolar"}.
    factor_levels = models.JSONField(default=dict, blank=True)
    # Set by the CRF services when the baseline visit is complete; some trials randomize only
    # after it (Trial.baseline_required_before_randomization).
    baseline_completed_on = models.DateField(null=True, blank=True)
    # Set by the randomize service; the anchor of the follow-up visits. Both arms have one, so
    # it reveals nothing of the arm.
    randomized_on = models.DateField(null=True, blank=True)
    # The data manager locked this participant's casebook: no service writes to it
    # (imrtrial.locking). Locking and unlocking are audited with their reasons.
    casebook_locked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ParticipantQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "participant_id"], name="participant_unique_id"
            )
        ]
        ordering = ["trial", "participant_id"]

    def __str__(self):
        return self.participant_id


class Role(models.TextChoices):
    """The roles of a trial. Each is a Django group of the same name (migration 0002)."""

    TRIAL_ADMIN = "trial_admin", gettext_lazy("Trial administrator")
    COORDINATOR = "coordinator", gettext_lazy("Coordinator (phone desk)")
    ASSESSOR = "assessor", gettext_lazy("Blinded assessor")
    FACILITATOR = "facilitator", gettext_lazy("IMR facilitator")
    FIDELITY_RATER = "fidelity_rater", gettext_lazy("Fidelity rater")
    DATA_MANAGER = "data_manager", gettext_lazy("Data manager")
    STATISTICIAN = "statistician", gettext_lazy("Statistician")
    KEY_HOLDER = "key_holder", gettext_lazy("Unblinded data administrator")
    MONITOR = "monitor", gettext_lazy("Monitor (clinical research associate)")
    INVESTIGATOR = "investigator", gettext_lazy("Site investigator")
    CASE_MANAGER = "case_manager", gettext_lazy("Case manager")


class Membership(models.Model):
    """A user holds a role in a trial, at one site or (site empty) at every site of the trial."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="memberships")
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "trial", "site", "role"],
                name="membership_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self):
        where = self.site.name if self.site else "all sites"
        return f"{self.user} — {self.get_role_display()} ({self.trial.key}, {where})"


class UserSettings(models.Model):
    """A user's own settings: for now the language of their pages and mail ("": no preference,
    then their trial's language, then the browser's; imrtrial.i18n)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="imrtrial_settings"
    )
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES)

    def __str__(self):
        return f"{self.user}: {self.language or '-'}"


class AccessLog(models.Model):
    """Every view of allocation data and every export: who, when, what."""

    class Action(models.TextChoices):
        VIEW_ALLOCATION = "view_allocation", gettext_lazy("Viewed allocation data")
        EXPORT = "export", gettext_lazy("Exported data")
        RELEASE_KEY = "release_key", gettext_lazy("Released the allocation key")
        VIEW_IDENTIFYING = "view_identifying", gettext_lazy("Viewed identifying details")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT)
    action = models.CharField(max_length=20, choices=Action.choices)
    target = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = UndeletableQuerySet.as_manager()

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.user} {self.get_action_display()} {self.target}"

    def delete(self, *args, **kwargs):
        raise HardDeleteForbidden("The access log is never deleted.")


# Two-factor devices (django-otp) keep a history like clinical rows: enrolment, confirmation,
# each verification or wrong code, and an administrator's reset with who and why
# (imrtrial.twofactor). The secret key never enters the history: a reset must leave no copy.
register(
    TOTPDevice,
    app="imrtrial",
    table_name="imrtrial_historicaltotpdevice",
    excluded_fields=["key"],
)
