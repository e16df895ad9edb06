"""The admin's query string is a channel of its own. Django's change list answers a lookup on any
field of the model and on any one-step relation, offered as a filter or not: as blinded staff,
`?imr_memberships__isnull=False` on the participants lists exactly the IMR arm. So the admin
answers only the lookups its own list filters read, no filter it offers may split the two arms,
and its other doors (facet counts, autocomplete, `_to_field`, `?o=`) tell nothing either.

Every test is run as blinded staff holding every view permission of Django's
(test_crawler.worst_case_staff): only the admin's own rules stand between them and the arm."""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from assessments import services as crf
from imrtrial.models import Participant, Role, Site, Trial

from .conftest import BLINDED_ROLES, build_world
from .test_crawler import worst_case_staff


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def offered_parameters(model_admin, request):
    """The query-string parameters the admin's declared list filters read, built as Django's
    ChangeList builds them (a filter with a single choice is not shown, but still declared)."""
    names = set()
    for item in model_admin.get_list_filter(request):
        if isinstance(item, (list, tuple)):
            path, filter_class = item
        elif isinstance(item, str):
            path, filter_class = item, admin.FieldListFilter.create
        else:  # a ListFilter class of its own
            names.update(item(request, {}, model_admin.model, model_admin).expected_parameters())
            continue
        field = get_fields_from_path(model_admin.model, path)[-1]
        spec = filter_class(field, request, {}, model_admin.model, model_admin, field_path=path)
        names.update(spec.expected_parameters())
    if model_admin.date_hierarchy:
        names.update(f"{model_admin.date_hierarchy}__{p}" for p in ("year", "month", "day"))
    return names


def arm_counts(response, world):
    """(rows of the IMR participant, rows of the control participant) in a change list."""
    imr = tau = 0
    for row in response.context["cl"].result_list:
        pk = row.pk if isinstance(row, Participant) else getattr(row, "participant_id", None)
        imr += pk == world.imr.pk
        tau += pk == world.tau.pk
    return imr, tau


def sample_value(model, field):
    """A value the lookup `<field>__exact` finds something with, where the data has one."""
    if field.is_relation:
        pk = field.related_model._default_manager.order_by("pk").values_list("pk", flat=True)
        return str(pk.first() or 1)
    value = (
        model._default_manager.exclude(**{f"{field.name}__isnull": True})
        .values_list(field.name, flat=True)
        .first()
    )
    return "1" if value is None else str(value)


@pytest.fixture
def world_rated_in_both_arms(db):
    """The world, with a staff rating of the control participant too (a clinician rates both
    arms; the world's only one is the IMR member's): the rows the admin lists are then the same
    in both arms, and any filter that splits them splits them by arm."""
    world = build_world()
    crf.save_entry(
        world.tau.visits.get(timepoint__code="baseline"),
        "imrs_s",
        {},
        by=world.users["facilitator2"],
        kind="single",
    )
    return world


# --- The leaks the review found ---------------------------------------------------------------

PARTICIPANTS = "/admin/imrtrial/participant/"
LEAKS = [
    # IMR group membership and session attendance exist in the IMR arm only.
    (PARTICIPANTS, "imr_memberships__isnull=False"),
    (PARTICIPANTS, "imr_attendance__isnull=False"),
    (PARTICIPANTS, "imr_attendance__exact={attendance}"),
    # A withdrawal while still "randomized" is level 1, stopping the intervention: IMR only.
    (PARTICIPANTS, "withdrawals__isnull=False&status__exact=randomized"),
    # The facilitator entered the IMR member's staff rating.
    ("/admin/assessments/formentry/", "entered_by__exact={facilitator}&instrument__exact=imrs_s"),
    ("/admin/assessments/formentry/", "entered_by__exact={facilitator}"),
]


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_lookups_that_single_out_the_imr_arm_are_404(role, client, world):
    client.force_login(worst_case_staff(world.users[role]))
    ids = {
        "attendance": world.session.attendance.get().pk,
        "facilitator": world.users[Role.FACILITATOR].pk,
    }
    answered = []
    for url, query in LEAKS:
        response = client.get(f"{url}?{query.format(**ids)}")
        listed = world.imr.participant_id in response.content.decode()
        if response.status_code != 404 or listed:
            answered.append((query, response.status_code, "IMR participant listed" * listed))
    assert answered == [], (role, answered)


# --- Every admin, every field and relation ---------------------------------------------------


def test_every_admin_answers_only_the_lookups_its_filters_offer(client, world_rated_in_both_arms):
    """For every registered admin and every field and relation (reverse ones too) of its model:
    `__isnull` both ways and `__exact` are 404 unless a list filter of the admin reads them, and
    those it reads list as many rows of one arm as of the other."""
    world = world_rated_in_both_arms
    client.force_login(worst_case_staff(world.users[Role.DATA_MANAGER]))
    client.raise_request_exception = False  # a 500 is an answer too, and is counted as one
    answered, split, asked = [], [], 0
    for model, model_admin in admin.site._registry.items():
        url = changelist(model)
        plain = client.get(url)
        offered = set()
        if plain.status_code == 200:
            offered = offered_parameters(model_admin, plain.wsgi_request)
        for field in model._meta.get_fields():
            for lookup, value in [
                (f"{field.name}__isnull", "False"),
                (f"{field.name}__isnull", "True"),
                (f"{field.name}__exact", sample_value(model, field)),
            ]:
                response = client.get(url, {lookup: value})
                asked += 1
                if lookup not in offered:
                    if response.status_code == 200:  # rows of (IMR, control), for the message
                        answered.append((url, lookup, value, arm_counts(response, world)))
                    elif response.status_code != 404:
                        answered.append((url, lookup, value, response.status_code))
                elif response.status_code == 200 and len(set(arm_counts(response, world))) > 1:
                    split.append((url, lookup, value))
    assert asked > 300  # every admin's every field was asked (18 admins at the time of writing)
    assert answered == [], answered[:20]
    assert split == []


def test_lookups_are_refused_whatever_else_the_query_string_says(client, world):
    """Django's own parameters (ordering, search, page, popup, the error flag, facets) and
    preserved filters do not open a way around."""
    client.force_login(worst_case_staff(world.users[Role.DATA_MANAGER]))
    answered = []
    for extra in ["", "&o=1", "&q=", "&p=1", "&e=1", "&_popup=1", "&_facets=True", "&all="]:
        query = f"imr_memberships__isnull=False{extra}"
        if (status := client.get(f"{PARTICIPANTS}?{query}").status_code) != 404:
            answered.append((query, status))
    for query in [
        "_changelist_filters=imr_memberships__isnull%3DFalse",
        "imr_memberships__group__name=x",  # two steps: Django's own refusal, as a 404 here
        "status__exact=randomized&status__in=randomized",  # a lookup the filter does not read
        "trial__exact=1",  # the trial filter reads trial__id__exact, not this
    ]:
        if (status := client.get(f"{PARTICIPANTS}?{query}").status_code) != 404:
            answered.append((query, status))
    assert answered == []


# --- The filters offered ----------------------------------------------------------------------

# Where a filter, search or column of a list blinded staff can open may lead: nowhere near an
# allocation, an IMR group or a withdrawal.
NEUTRAL_MODELS = {Trial, Site, Participant, Group, Permission, apps.get_model("auth", "User")}


def _paths(model_admin, request):
    for item in model_admin.get_list_filter(request):
        if isinstance(item, (list, tuple)):
            yield item[0]
        elif isinstance(item, str):
            yield item
    for name in model_admin.get_search_fields(request):
        yield name.lstrip("^=@")
    for name in model_admin.get_list_display(request):
        if isinstance(name, str):
            yield name


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_no_filter_offered_to_blinded_staff_splits_the_arms(role, client, world_rated_in_both_arms):
    world = world_rated_in_both_arms
    client.force_login(worst_case_staff(world.users[role]))
    seen = 0
    for model, model_admin in admin.site._registry.items():
        url = changelist(model)
        plain = client.get(url)
        if plain.status_code != 200:
            continue
        request = plain.wsgi_request
        for path in _paths(model_admin, request):
            try:
                fields = get_fields_from_path(model, path.replace(".", "__"))
            except Exception:  # noqa: BLE001 - an admin method or model property, not a path
                continue
            for field in fields:
                if field.is_relation:
                    assert field.related_model in NEUTRAL_MODELS, (url, path)
        assert len(set(arm_counts(plain, world))) == 1, url
        cl = plain.context["cl"]
        for spec in cl.filter_specs:
            for choice in spec.choices(cl):
                response = client.get(url + choice["query_string"])
                assert response.status_code == 200, (url, choice["query_string"])
                counts = arm_counts(response, world)
                assert len(set(counts)) == 1, (role, url, choice["query_string"], counts)
                seen += 1
    if role != Role.STATISTICIAN:  # who sees no participant
        assert seen >= 10  # the participants' and the form entries' filters were tried


# --- Other doors ------------------------------------------------------------------------------


def test_no_list_shows_counts_per_filter_value(client, world):
    """Facets (Django 5, `?_facets=True`) count the rows behind each filter value."""
    client.force_login(worst_case_staff(world.users[Role.DATA_MANAGER]))
    for model in admin.site._registry:
        response = client.get(changelist(model), {"_facets": "True"})
        if response.status_code != 200:
            continue
        assert not response.context["cl"].add_facets, model
        assert "Show counts" not in response.content.decode(), model


def test_autocomplete_answers_only_for_fields_an_admin_offers_it_on(client, world):
    """Django's autocomplete view takes any model and field pointing at an admin with search
    fields, and applies that field's limit_choices_to: no admin of ours offers autocomplete, so
    it answers nothing (a field limited to one arm's participants would list them)."""
    client.force_login(worst_case_staff(world.users[Role.DATA_MANAGER]))
    client.raise_request_exception = False  # Django's view fails (500) on a reverse relation
    url = reverse("admin:autocomplete")
    asked, answered = 0, []
    for model in apps.get_models():
        for field in model._meta.get_fields():
            target = getattr(field.remote_field, "model", None) if field.is_relation else None
            target_admin = admin.site._registry.get(target)
            if target_admin is None or not target_admin.search_fields:
                continue
            source_admin = admin.site._registry.get(model)
            offered = source_admin is not None and field.name in source_admin.autocomplete_fields
            query = {
                "app_label": model._meta.app_label,
                "model_name": model._meta.model_name,
                "field_name": field.name,
                "term": "",
            }
            response = client.get(url, query)
            asked += 1
            if not offered and response.status_code not in (403, 404):
                answered.append((model._meta.label, field.name, response.status_code))
    assert asked > 10
    assert answered == [], answered[:10]


def test_to_field_and_ordering_reach_no_column_the_list_does_not_show(client, world):
    """`_to_field` names only the primary key (no foreign key of ours targets another field),
    and `?o=` orders by the displayed columns only: out-of-range or odd indexes are dropped
    (Django then orders as the admin or the model does by itself)."""
    client.force_login(worst_case_staff(world.users[Role.DATA_MANAGER]))
    client.raise_request_exception = False  # Django's check fails (500) on a reverse relation
    refused, ordered = [], []
    for model, model_admin in admin.site._registry.items():
        url = changelist(model)
        plain = client.get(url)
        if plain.status_code != 200:
            continue
        for field in model._meta.get_fields():
            if getattr(field, "primary_key", False):
                continue
            status = client.get(url, {"_to_field": field.name}).status_code
            if status != 400:
                refused.append((url, field.name, status))
        shown = plain.context["cl"].list_display
        chosen = [*(model_admin.get_ordering(plain.wsgi_request) or ()), *model._meta.ordering]
        allowed = {*shown, *(f.lstrip("-") for f in chosen), "pk", model._meta.pk.name}
        n = len(shown)
        for o in [*map(str, range(n)), str(n), str(n + 5), f"-{n}", "x", "1.2", "0.x", "0.-9"]:
            response = client.get(url, {"o": o})
            assert response.status_code == 200, (url, o)
            by = {f.lstrip("-") for f in response.context["cl"].queryset.query.order_by}
            if not by <= allowed:
                ordered.append((url, o, by - allowed))
    assert refused == [], refused
    assert ordered == [], ordered


def test_participant_history_reads_alike_in_both_arms(client, world):
    """Who changed a participant's row, and what: the same steps for both arms."""
    client.force_login(worst_case_staff(world.users[Role.DATA_MANAGER]))

    def page(participant):
        html = client.get(f"{PARTICIPANTS}{participant.pk}/history/").content.decode()
        html = html.replace(participant.participant_id, "PID")
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
        html = re.sub(r'nonce="[^"]*"', "", html)
        return re.sub(r"\d+", "0", html)

    assert page(world.imr) == page(world.tau)
