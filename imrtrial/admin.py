"""Admin for trial configuration. Clinical rows cannot be deleted here (nor anywhere).

Every admin of the project scopes its rows through imrtrial.access (GateScopedAdmin): a staff
user sees and changes only rows of the sites where the gate lets them, and a guessed id of any
other row is a 404, on the change form, its history and each historical version alike.

Every admin of the site, Django's and the libraries' included, answers only the lookups its own
list filters read (OfferedLookupsOnly): Django's change list would otherwise filter by any
field or one-step relation named in the query string, and `?imr_memberships__isnull=False` on
the participants lists exactly the IMR arm to anyone who may list participants."""

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from . import access
from .models import (
    AccessLog,
    Arm,
    Membership,
    Participant,
    Perm,
    Site,
    StratificationFactor,
    Trial,
)


class NoDeleteMixin:
    def has_delete_permission(self, request, obj=None):
        return False


class OfferedLookupsChangeList(ChangeList):
    """A change list filtered only by what its admin's list filters (and date hierarchy) read."""

    def get_filters(self, request):
        asked = set(self.get_filters_params())
        specs, has_filters, remaining, duplicates, active = super().get_filters(request)
        # The filters took their own parameters out; what is left was asked of the model itself.
        unoffered = set(remaining)
        if self.date_hierarchy:  # Django turns the hierarchy's year/month/day into these two
            unoffered -= {f"{self.date_hierarchy}__gte", f"{self.date_hierarchy}__lt"} - asked
        if unoffered:
            # Before any query uses them, and alike for every lookup and value: a 404 says
            # nothing about what the lookup would have found.
            raise Http404(_("Not found."))
        return specs, has_filters, remaining, duplicates, active


class OfferedLookupsOnly:
    """The admin's query-string channels, closed to what the admin itself offers.

    - Filtering: only the parameters of the admin's list filters (OfferedLookupsChangeList);
      a lookup on any other field or relation, one step or more, is a 404. (Django's popups of
      raw-id widgets filter by `limit_choices_to` in the query string: no admin of ours has
      them.)
    - Counts: no facets (`?_facets=True` would count the rows behind each filter value).
    - Autocomplete: only for fields an admin declares in `autocomplete_fields` (none do);
      Django's view would take any model's field and apply its `limit_choices_to`.
    - `_to_field`: a reverse relation is refused, not a 500 in Django's own check."""

    show_facets = admin.ShowFacets.NEVER

    def get_changelist(self, request, **kwargs):
        return OfferedLookupsChangeList

    def changelist_view(self, request, extra_context=None):
        try:
            return super().changelist_view(request, extra_context)
        except DisallowedModelAdminLookup:  # Django's refusal of longer relations: a 400
            raise Http404(_("Not found.")) from None

    def get_search_fields(self, request):
        match = request.resolver_match
        if (
            match
            and match.url_name == "autocomplete"
            and not _autocomplete_offered(request, self.admin_site)
        ):
            return ()  # Django's autocomplete view answers 404
        return super().get_search_fields(request)

    def to_field_allowed(self, request, to_field):
        try:
            field = self.opts.get_field(to_field)
        except FieldDoesNotExist:
            return False
        return field.concrete and super().to_field_allowed(request, to_field)


def _autocomplete_offered(request, site):
    """Does an admin offer autocomplete on the field the request names? Django's view has
    checked that the model and the field exist before it asks for search fields."""
    source = apps.get_model(request.GET["app_label"], request.GET["model_name"])
    source_admin = site._registry.get(source)
    return source_admin is not None and request.GET["field_name"] in (
        source_admin.get_autocomplete_fields(request)
    )


class GateScopedAdmin(OfferedLookupsOnly):
    """Rows the gate lets the user see, at the sites where it lets them.

    `trial_path` and `site_path` are ORM paths from a row to its Trial and Site (`site_path`
    None: trial-level rows, seen by whoever holds `view_perm` somewhere in the trial). Rows of
    an `unblinded` admin are allocation-revealing: they need allocation access at the row's
    site. Changes need `change_perm` at the row's site (None: the admin is read-only) and, like
    every view unless `model_perms=False`, Django's own model permission too.
    Superusers get no exemption from the gate on trial data; on configuration
    (`configuration = True`: trials, factors, memberships) they are the system administrator
    who sets up a new trial's first roles."""

    trial_path = "trial"
    site_path = "site"
    site_nullable = False  # an empty site means "every site": needs the permission everywhere
    view_perm = Perm.VIEW_PARTICIPANTS
    change_perm = None
    unblinded = False
    model_perms = True
    configuration = False

    # --- which rows ---

    def _system_admin(self, user):
        return self.configuration and user.is_superuser

    def _site_ids(self, user, trial, perm):
        sites = list(trial.sites.all())
        ids = {s.pk for s in sites if perm is None or access.has(user, perm, trial, s)}
        if self.unblinded:
            ids &= set(access.unblinded_sites(user, trial).values_list("pk", flat=True))
        return ids, ids == {s.pk for s in sites}

    def scope(self, user, perm=None):
        """Q of the rows the user may see (or, given `perm`, do `perm` to)."""
        perm = perm or self.view_perm
        if self._system_admin(user):
            return Q()
        q = Q(pk__in=[])
        for trial in access.trials_of(user):
            ids, everywhere = self._site_ids(user, trial, perm)
            if not ids:
                continue
            in_trial = Q(**{self.trial_path: trial.pk})
            if self.site_path is None:
                q |= in_trial
                continue
            at = Q(**{f"{self.site_path}__in": ids})
            if self.site_nullable and everywhere:
                at |= Q(**{f"{self.site_path}__isnull": True})
            q |= in_trial & at
        return q

    def _any(self, user, perm=None):
        perm = perm or self.view_perm
        if self._system_admin(user):
            return True
        return any(self._site_ids(user, t, perm)[0] for t in access.trials_of(user))

    def _in_scope(self, request, obj, perm=None):
        return self.model._default_manager.filter(
            self.scope(request.user, perm), pk=obj.pk
        ).exists()

    def get_queryset(self, request):
        return super().get_queryset(request).filter(self.scope(request.user))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:  # Django would redirect with "doesn't exist"; say nothing instead
            raise Http404(_("Not found."))
        return obj

    # --- what they may do ---

    def has_view_permission(self, request, obj=None):
        if not self._any(request.user):
            return False
        if obj is not None and not self._in_scope(request, obj):
            return False
        return not self.model_perms or super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        if self.change_perm is None or not self._any(request.user, self.change_perm):
            return False
        if obj is not None and not self._in_scope(request, obj, self.change_perm):
            return False
        return super().has_change_permission(request, obj)

    def has_add_permission(self, request):
        if self.change_perm is None or not self._any(request.user, self.change_perm):
            return False
        return super().has_add_permission(request)

    def has_module_permission(self, request):
        return self.has_view_permission(request) or self.has_change_permission(request)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            # Read-only pages render no widgets: a select would list every row it could point
            # to, other sites' included. Django's change view does this by itself; the history
            # version view (simple-history) does not.
            opts, hidden = self.model._meta, set(self.get_exclude(request, obj) or ())
            fields += [
                f.name
                for f in [*opts.fields, *opts.many_to_many]
                if f.editable and not f.primary_key and f.name not in {*fields, *hidden}
            ]
        return fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Trials and sites offered on a form: those where the user may make the change."""
        if self._system_admin(request.user):
            return super().formfield_for_foreignkey(db_field, request, **kwargs)
        if self.change_perm and db_field.related_model is Trial:
            kwargs["queryset"] = Trial.objects.filter(
                pk__in=[
                    t.pk
                    for t in access.trials_of(request.user)
                    if self._site_ids(request.user, t, self.change_perm)[0]
                ]
            )
        if self.change_perm and db_field.related_model is Site:
            kwargs["queryset"] = Site.objects.filter(
                pk__in=[
                    pk
                    for t in access.trials_of(request.user)
                    for pk in self._site_ids(request.user, t, self.change_perm)[0]
                ]
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- pages: 404, never 403 or a redirect, for what the user may not see ---

    def changelist_view(self, request, extra_context=None):
        if not self.has_module_permission(request):
            raise Http404(_("Not found."))
        return super().changelist_view(request, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_module_permission(request):
            raise Http404(_("Not found."))
        return super().add_view(request, form_url, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self.get_object(request, unquote(object_id))
        return super().history_view(request, object_id, extra_context)

    # --- authors and free text: as the gate lets the reader see them ---

    object_history_list_template = "admin/imrtrial/history_list.html"
    # Fields of free text on the model; and, for JSON fields holding a form's items, which keys
    # are free text (free_text_keys).
    text_fields = ()

    def free_text_keys(self, obj):
        """{JSON field name: keys of free-text items in it} for `obj`."""
        return {}

    def _where(self, obj):
        """(trial, site) of a row (or a historical version of it)."""
        trial = _follow(obj, self.trial_path) if self.trial_path != "pk" else obj
        site = _follow(obj, self.site_path) if self.site_path else None
        return trial, site

    def _reader_blinded(self, request, obj):
        trial, site = self._where(obj)
        return site is not None and not access.may_see_allocation(request.user, trial, site)

    def _written_by_unblinded(self, obj):
        """Has anyone unblinded at the row's site written any version of it?"""
        trial, site = self._where(obj)
        authors = set(obj.history.values_list("history_user", flat=True))
        return any(access.author_unblinded(a, trial, site) for a in authors)

    def withholds_text(self, request, obj):
        return self._reader_blinded(request, obj) and self._written_by_unblinded(obj)

    def _mask(self, request, obj):
        """callable(field name, value) -> the value as this reader may see it, or None when
        nothing of `obj` is withheld from them."""
        if not (self.text_fields or self.free_text_keys(obj)):
            return None
        if not self.withholds_text(request, obj):
            return None
        keys = self.free_text_keys(obj)

        def mask(field, value):
            if field in self.text_fields:
                return access.TEXT_WITHHELD if value not in (None, "") else value
            if field in keys and isinstance(value, dict):
                return {
                    k: access.TEXT_WITHHELD if k in keys[field] and v not in (None, "") else v
                    for k, v in value.items()
                }
            return value

        return mask

    def get_historical_record_context_helper(self, request, historical_record):
        mask = self._mask(request, historical_record.instance)
        if mask is None:
            return super().get_historical_record_context_helper(request, historical_record)
        return _MaskedChanges(self.model, historical_record, mask)

    def set_history_delta_changes(self, request, historical_records, **kwargs):
        """What changed, as the history page lists it: not the fields the admin's pages exclude
        (the trial's block sizes), which simple-history lists like any other; and authors and
        their reasons as the gate lets the reader see them."""
        super().set_history_delta_changes(request, historical_records, **kwargs)
        opts = self.model._meta
        hidden = {
            capfirst(opts.get_field(name).verbose_name) for name in self.get_exclude(request) or ()
        }
        for record in historical_records if hidden else ():
            if changes := getattr(record, "history_delta_changes", None):
                record.history_delta_changes = [c for c in changes if c["field"] not in hidden]
        records = list(historical_records)
        if not records:
            return
        trial, site = self._where(records[0].instance)
        for record in records:
            user = record.history_user
            record.author_shown = access.author_label(request.user, user, trial, site)
            reason = record.history_change_reason or ""
            record.reason_shown = access.text_for(request.user, reason, user, trial, site)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self.get_object(request, unquote(object_id))
        if request.method != "GET":
            # Reverting to an old version would change clinical data without a reason and
            # around the services that check it: history is for reading.
            return HttpResponseNotAllowed(["GET"])
        return super().history_form_view(request, object_id, version_id, extra_context)


class _MaskedChanges(HistoricalRecordContextHelper):
    """History deltas with free text withheld (GateScopedAdmin._mask)."""

    def __init__(self, model, record, mask):
        super().__init__(model, record)
        self.mask = mask

    def prepare_delta_change_value(self, change, value):
        return self.mask(change.field, super().prepare_delta_change_value(change, value))


def _follow(obj, path):
    for name in path.split("__"):
        obj = getattr(obj, name)
    return obj


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0
    # The export code is the allocation key: it is not part of the admin at all. The key holder
    # releases it through the key-release page after database lock.
    fields = ["code", "label", "ratio", "is_intervention"]
    # As Arm.Meta says, and here too so that no change of the model's default reorders the
    # rows by export code (the first row would be code A).
    ordering = ["-is_intervention", "label", "code"]

    def has_delete_permission(self, request, obj=None):
        return False


class SiteInline(admin.TabularInline):
    model = Site
    extra = 0

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Trial)
class TrialAdmin(GateScopedAdmin, NoDeleteMixin, SimpleHistoryAdmin):
    list_display = ["name", "key", "registration_id", "status"]
    # Block sizes help predict the next allocation: never shown.
    exclude = ["block_sizes"]
    inlines = [ArmInline, SiteInline]
    trial_path = "pk"
    site_path = None
    view_perm = change_perm = Perm.MANAGE_TRIAL
    configuration = True

    def has_add_permission(self, request):
        # A new trial is loaded from a reviewed YAML file (load_trial), not typed here.
        return False


@admin.register(StratificationFactor)
class StratificationFactorAdmin(GateScopedAdmin, NoDeleteMixin, admin.ModelAdmin):
    list_display = ["label", "trial", "from_site"]
    site_path = None
    view_perm = change_perm = Perm.MANAGE_TRIAL
    configuration = True


class MembershipForm(forms.ModelForm):
    """Refuses what would widen the author's own reach: granting oneself a role (a blinded
    trial administrator could otherwise make themselves a coordinator), or a role at every
    site from someone who manages only some of them."""

    class Meta:
        model = Membership
        fields = ["user", "trial", "site", "role", "active"]

    def clean(self):
        data = super().clean()
        user, trial, site = data.get("user"), data.get("trial"), data.get("site")
        if user is not None and user == self.author:
            raise forms.ValidationError(
                _("You cannot change your own roles; ask another administrator.")
            )
        if trial is not None and site is not None and site.trial_id != trial.pk:
            self.add_error("site", "That site belongs to another trial.")
        if trial is not None and site is None and not self.may_grant_everywhere(trial):
            self.add_error("site", "Choose a site: you manage only some sites of this trial.")
        return data


@admin.register(Membership)
class MembershipAdmin(GateScopedAdmin, NoDeleteMixin, SimpleHistoryAdmin):
    list_display = ["user", "trial", "site", "role", "active"]
    # Filters list only the trials and sites of rows the user may see.
    list_filter = [("trial", admin.RelatedOnlyFieldListFilter), "role", "active"]
    form = MembershipForm
    site_nullable = True
    view_perm = change_perm = Perm.MANAGE_TRIAL
    configuration = True

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        admin_ = self

        class Bound(form):
            author = request.user

            def may_grant_everywhere(self, trial):
                if admin_._system_admin(request.user):
                    return True
                return admin_._site_ids(request.user, trial, admin_.change_perm)[1]

        return Bound

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        access.forget(obj.user)


@admin.register(Participant)
class ParticipantAdmin(GateScopedAdmin, NoDeleteMixin, SimpleHistoryAdmin):
    """Read-only: participants change through the phone-desk and CRF services, which check the
    rules and record a reason; the admin would do neither."""

    list_display = ["participant_id", "trial", "site", "status"]
    list_filter = [
        ("trial", admin.RelatedOnlyFieldListFilter),
        ("site", admin.RelatedOnlyFieldListFilter),
        "status",
    ]
    search_fields = ["participant_id"]


@admin.register(AccessLog)
class AccessLogAdmin(GateScopedAdmin, NoDeleteMixin, admin.ModelAdmin):
    """Who viewed which participant's allocation is itself allocation-revealing: the rows an
    auditor may read are those of the access-log page (imrtrial.access.access_log_scope)."""

    list_display = ["at", "user", "trial", "action", "target"]
    list_filter = ["action", ("trial", admin.RelatedOnlyFieldListFilter)]
    site_path = None
    view_perm = Perm.VIEW_AUDIT
    model_perms = False

    def scope(self, user, perm=None):
        q = Q(pk__in=[])
        for trial in access.trials_of(user):
            q |= access.access_log_scope(user, trial)
        return q

    def _any(self, user, perm=None):
        return any(access.has(user, Perm.VIEW_AUDIT, t) for t in access.trials_of(user))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _offered_lookups_only(site):
    """Django's own admins (users, groups), django-axes' and django-otp's are registered before
    ours (INSTALLED_APPS order) and would answer any lookup too (`?memberships__isnull=False`
    on users): the same rules for them. tests/security/test_admin_lookups.py asks every
    registered admin, so one registered later without the rules fails there."""
    for model, model_admin in list(site._registry.items()):
        if not isinstance(model_admin, OfferedLookupsOnly):
            cls = type(model_admin)
            site.unregister(model)
            site.register(model, type(cls.__name__, (OfferedLookupsOnly, cls), {}))


_offered_lookups_only(admin.site)
