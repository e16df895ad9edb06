"""The web API, version 1 (`/api/v1/`): the trial's data dictionary, the blinded dataset, form
import, record status, data queries, exports and randomization, for personal API tokens.

Why Django REST framework with drf-spectacular: DRF is the most used API library of Django, and
brings what this API needs without new code: authentication and throttling classes (a token
per request, a rate per token counted in the shared cache), request validation by serializers,
content negotiation. drf-spectacular writes the OpenAPI 3 description from those serializers and
views, so the description cannot drift from the code, and Schemathesis tests the API against it
(tests/api/). drf-spectacular-sidecar ships Swagger UI with the package: the docs page loads
nothing from a CDN, and its script comes from this site (the split view), so the site's
Content-Security-Policy holds unchanged on it (ReDoc is not offered: its styles are inline).

Contract:
- Each endpoint asks the gate (imrtrial.access) the same question as its page, through the
  same helpers, and calls the same services; the token's user is narrowed to the token's scope
  (api.authentication), so the gate sees the token's rights only.
- An endpoint the token may not use answers 404, as the unblinded pages do for blinded users,
  and a participant the token may not see is 404 too: never a different answer by arm.
- Every use of an allocation or export endpoint is written to the access log, as on the pages.
- A refusal (4xx) writes nothing.
"""

import csv
import io
import json
import math

from django.db import transaction
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import defaults
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from assessments import dashboard, queries, registry
from assessments import services as crf
from assessments.home import may_see_dashboard
from assessments.models import DataQuery, Visit
from exports import dataset as blinded
from exports import services as exporting
from exports import writers
from exports.models import ExportRun
from imrtrial import access
from imrtrial.audit import ReasonRequired, log_access
from imrtrial.errors import Refused
from imrtrial.models import AccessLog, Participant, Perm
from randomization import services as desk

from . import serializers as s
from . import services

NOT_FOUND = OpenApiResponse(s.Detail, description="Not found, or not for this token.")
REFUSED = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Refused (`detail`: the reason) or not valid (the problem of each field); "
    "nothing was saved.",
)
INVALID = OpenApiResponse(OpenApiTypes.OBJECT, description="A parameter is not valid.")
# Every endpoint: no or a bad token (401), over the token's rate (429).
ALWAYS = {
    401: OpenApiResponse(s.Detail, description="No token, or an invalid, revoked or expired one."),
    429: OpenApiResponse(s.Detail, description="Over the token's rate limit: see Retry-After."),
}
STATUS_PAGE = 200  # participants per page of the record status


def exception_handler(exc, context):
    """The services' refusals as 400 (409 for a lost update), with their message."""
    if isinstance(exc, crf.FormInvalid):
        return Response({"detail": str(exc), "errors": exc.errors}, status=400)
    if isinstance(exc, crf.Conflict):
        return Response({"detail": str(exc)}, status=409)
    if isinstance(exc, ReasonRequired):
        return Response({"detail": exc.messages[0]}, status=400)
    if isinstance(exc, Refused):
        return Response({"detail": str(exc)}, status=400)
    return drf_exception_handler(exc, context)


def not_found(request, exception):
    """The site's 404 (urls.handler404): JSON under /api/, like every answer of the API (a path
    whose id is not a number matches no pattern), the site's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception):
    """The site's 400 (urls.handler400), e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE: JSON
    under /api/, the site's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "Bad request: the body is too large (2.5 MB at most) or malformed."},
            status=400,
        )
    return defaults.bad_request(request, exception)


def _trial(request):
    return request.auth.trial


def _require(allowed):
    if not allowed:
        raise Http404(_("Not found."))


def _valid(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Metadata ---------------------------------------------------------------------------------

_DATA_PERMISSIONS = (
    Perm.EXPORT_BLINDED,
    Perm.VIEW_PARTICIPANTS,
    Perm.ENTER_INTERVIEW,
    Perm.ENTER_STAFF_RATING,
    Perm.VERIFY_FORMS,
)


def _instrument(instrument):
    exported = {item.code for item in instrument.exported_items}
    return {
        "code": instrument.code,
        "name": instrument.name,
        "version": instrument.version,
        "rater": instrument.rater,
        "missing_codes": dict(instrument.missing_codes),
        "items": [
            {
                "code": item.code,
                "label": item.label,
                "type": item.type,
                "section": item.section,
                "required": item.required,
                "min": item.min,
                "max": item.max,
                "choices": [{"value": v, "label": label} for v, label in item.choices],
                "exported": item.code in exported,
            }
            for item in instrument.items
        ],
        "scores": [
            {
                "code": score.code,
                "label": score.label,
                "method": score.method,
                "items": list(score.items),
                "min": score.min,
                "max": score.max,
            }
            for score in instrument.scores
        ],
    }


def _columns(data):
    return [
        {
            "name": c.name,
            "label": c.label,
            "kind": c.kind,
            "value_labels": {str(k): v for k, v in c.value_labels.items()},
            "instrument": c.instrument,
            "coded_missing": c.coded_missing,
        }
        for c in data.columns
    ]


@extend_schema(
    summary="The data dictionary",
    description="The trial, its sites, timepoints with windows, and every scheduled instrument "
    "with its items (types, ranges, choices), missing-value codes and scores; and the "
    "variables of the long and wide datasets with their labels (the codebook).",
    responses={**ALWAYS, 200: s.MetadataOut, 404: NOT_FOUND},
)
@api_view(["GET"])
def metadata(request):
    trial = _trial(request)
    _require(access.has_any(request.user, _DATA_PERMISSIONS, trial))
    return Response(
        {
            "key": trial.key,
            "name": trial.name,
            "registration_id": trial.registration_id,
            "status": trial.status,
            "sites": [
                {"code": site.code, "name": site.name, "kind": site.kind}
                for site in trial.sites.order_by("code")
            ],
            "timepoints": [
                {
                    "code": tp.code,
                    "label": tp.label,
                    "order": tp.order,
                    "anchor": tp.anchor,
                    "offset_days": tp.offset_days,
                    "window_before_days": tp.window_before_days,
                    "window_after_days": tp.window_after_days,
                    "instruments": list(tp.instruments),
                }
                for tp in trial.timepoints.order_by("order")
            ],
            "instruments": [_instrument(i) for i in blinded.scheduled_instruments(trial)],
            "columns_long": _columns(blinded.Dataset(trial, "long", sites=[])),
            "columns_wide": _columns(blinded.Dataset(trial, "wide", sites=[])),
        }
    )


# --- Records (the blinded dataset) ------------------------------------------------------------


def _selection(data, shape, form, timepoint):
    """(column indices to keep, timepoint code rows must have or None) for the filters."""
    codes = [tp.code for tp in data.timepoints]
    keep = []
    position = None  # the wide dataset's timepoint of each column, by its t<n>_ prefix
    prefixes = {f"t{n}_": tp for n, tp in enumerate(codes, start=1)}
    for i, column in enumerate(data.columns):
        instrument = column.instrument or (
            column.source.removesuffix(" status") if column.source.endswith(" status") else ""
        )
        if shape == "wide":
            position = next((tp for p, tp in prefixes.items() if column.name.startswith(p)), None)
        if form and instrument and instrument != form:
            continue
        if timepoint and position and position != timepoint:
            continue
        keep.append(i)
    return keep, (timepoint if shape == "long" else None)


def _records(request):
    trial = _trial(request)
    _require(access.has(request.user, Perm.EXPORT_BLINDED, trial))
    query = _valid(s.RecordsQuery, request.query_params)
    shape = query["shape"]
    sites = access.sites_where(request.user, Perm.EXPORT_BLINDED, trial)
    if query.get("site"):
        sites = sites.filter(code=query["site"])
        _require(sites.exists())
    data = blinded.Dataset(trial, shape, sites=sites)
    form, timepoint = query.get("form"), query.get("timepoint")
    if form and form not in {i.code for i in data.instruments}:
        raise ValidationError({"form": f"{form!r} is not an instrument of this trial."})
    if timepoint and timepoint not in {tp.code for tp in data.timepoints}:
        raise ValidationError({"timepoint": f"{timepoint!r} is not a timepoint of this trial."})
    keep, only_timepoint = _selection(data, shape, form, timepoint)
    tp_index = data.names.index("timepoint") if shape == "long" else None
    log_access(
        request,
        trial,
        AccessLog.Action.EXPORT,
        f"API records: {shape} as {query['format']}",
        shape=shape,
        format=query["format"],
        site=query.get("site", ""),
        form=form or "",
        timepoint=timepoint or "",
        token=request.auth.key_id,
    )
    whole = len(keep) == len(data.columns)

    def selected(rows):
        for row in rows:
            if only_timepoint and row[tp_index] != only_timepoint:
                continue
            yield row if whole else [row[i] for i in keep]

    names = [data.names[i] for i in keep]
    if query["format"] == "csv":
        return _csv_response(names, selected(writers.csv_rows(data)), trial, shape)
    return StreamingHttpResponse(
        _json_lines(names, selected(data.rows())), content_type="application/json"
    )


def _csv_response(names, rows, trial, shape):
    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        for n, row in enumerate(rows, start=1):
            writer.writerow(row)
            if n % 200 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{trial.key}-{shape}.csv"'
    return response


def _cell(value):
    """A cell as JSON text: numbers as numbers, dates ISO, codes and text as strings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if hasattr(value, "isoformat"):
        return f'"{value.isoformat()}"'
    return _json_string(value)


def _json_string(text):
    return json.dumps(str(text), ensure_ascii=False)


def _json_lines(names, rows):
    """{"columns": [...], "rows": [[...], ...]} written a batch of rows at a time."""
    yield '{"columns":[' + ",".join(_json_string(n) for n in names) + '],"rows":['
    batch, first = [], True
    for row in rows:
        batch.append("[" + ",".join(_cell(v) for v in row) + "]")
        if len(batch) == 200:
            yield ("" if first else ",") + ",".join(batch)
            batch, first = [], False
    if batch:
        yield ("" if first else ",") + ",".join(batch)
    yield "]}"


@extend_schema(
    summary="The blinded dataset",
    description="Long (a row per participant and timepoint) or wide (a row per participant), "
    "as the export files build it: the arm as the neutral code (A/B), missing-value codes "
    "kept, free text never. Filter by site, form (instrument) and timepoint. Streamed. Every "
    "call is written to the access log as an export.",
    parameters=[s.RecordsQuery],
    responses={
        **ALWAYS,
        (200, "application/json"): s.RecordsOut,
        (200, "text/csv"): OpenApiTypes.STR,
        400: INVALID,
        404: NOT_FOUND,
    },
)
@api_view(["GET"])
def records(request):
    return _records(request)


# --- Import of form data ----------------------------------------------------------------------


def _visit_for(user, trial, participant_id, timepoint):
    """The visit, if the user may see its participant or enter its forms (as the entry page's
    _visit_or_404 asks); else None, with the same answer for every kind of "no"."""
    visit = (
        Visit.objects.select_related(
            "participant", "participant__site", "participant__trial", "timepoint"
        )
        .filter(
            participant__trial=trial,
            participant__participant_id=participant_id,
            timepoint__code=timepoint,
        )
        .first()
    )
    if visit is None:
        return None
    site = visit.participant.site
    if not access.has_any(
        user, (Perm.VIEW_PARTICIPANTS, Perm.ENTER_INTERVIEW, Perm.ENTER_STAFF_RATING), trial, site
    ):
        return None
    return visit


def _problems_of(exc):
    if isinstance(exc, crf.FormInvalid):
        return list(exc.errors.items())
    if isinstance(exc, ReasonRequired):
        return [("__all__", exc.messages[0])]
    return [("__all__", str(exc))]


@extend_schema(
    summary="Import form data",
    description="Save a batch of form entries (up to 1,000, and 2.5 MB) through the same "
    "service as the entry pages (validation, reasons after completion, double entry, locks). "
    "All or nothing: one problem anywhere and nothing is saved; every problem is returned "
    "with its row, record and item.",
    request=s.ImportIn,
    responses={
        **ALWAYS,
        200: s.ImportOut,
        400: OpenApiResponse(
            s.ImportRefused,
            description="Nothing was saved: every problem of the batch, or of the request.",
        ),
        404: NOT_FOUND,
    },
)
@api_view(["POST"])
def import_forms(request):
    trial = _trial(request)
    user = request.user
    _require(access.has_any(user, (Perm.ENTER_INTERVIEW, Perm.ENTER_STAFF_RATING), trial))
    request_data = s.ImportIn(data=request.data)
    if not request_data.is_valid():
        return Response(
            {"detail": "Nothing was saved.", "problems": [], "errors": request_data.errors},
            status=http.HTTP_400_BAD_REQUEST,
        )
    entries = request_data.validated_data["entries"]
    problems, saved = [], []
    with transaction.atomic():
        for row, entry in enumerate(entries):
            where = {
                "row": row,
                "participant_id": entry["participant_id"],
                "timepoint": entry["timepoint"],
                "instrument": entry["instrument"],
            }
            visit = _visit_for(user, trial, entry["participant_id"], entry["timepoint"])
            if visit is None:
                problems.append({**where, "item": "__all__", "message": "No such visit."})
                continue
            try:
                instrument = registry.get(entry["instrument"])
            except KeyError:
                problems.append({**where, "item": "__all__", "message": "No such instrument."})
                continue
            try:
                # Each entry in a savepoint: a refusal rolls back that entry and the batch goes
                # on, so that every problem is found; the batch is rolled back at the end.
                with transaction.atomic():
                    done = crf.save_entry(
                        visit,
                        instrument.code,
                        entry["values"],
                        by=user,
                        kind=entry.get("kind") or crf.entry_kind_for(instrument),
                        version=entry.get("version"),
                        complete=entry["complete"],
                        reason=entry.get("reason", ""),
                    )
            except (crf.FormInvalid, crf.Conflict, ReasonRequired, Refused) as exc:
                problems += [
                    {**where, "item": item, "message": message}
                    for item, message in _problems_of(exc)
                ]
            else:
                saved.append({**where, "status": done.status, "version": done.version})
        if problems:
            transaction.set_rollback(True)
    if problems:
        return Response(
            {"detail": "Nothing was saved.", "problems": problems}, status=http.HTTP_400_BAD_REQUEST
        )
    return Response({"saved": len(saved), "entries": saved})


# --- Record status ----------------------------------------------------------------------------


@extend_schema(
    summary="Record status",
    description="Participants x visits of the user's sites, each form's state in the data life "
    "cycle and the open queries, as the record status page shows them; 200 participants a "
    "page.",
    parameters=[
        OpenApiParameter("site", str, description="A site code."),
        OpenApiParameter("timepoint", str, description="A timepoint code."),
        OpenApiParameter("state", str, enum=[code for code, _label, _order in dashboard.State.ALL]),
        OpenApiParameter("page", int),
    ],
    responses={**ALWAYS, 200: s.StatusOut, 400: INVALID, 404: NOT_FOUND},
)
@api_view(["GET"])
def record_status(request):
    trial = _trial(request)
    user = request.user
    _require(may_see_dashboard(user, trial))
    reader = dashboard.Reader.of(user, trial)
    participants = Participant.objects.filter(trial=trial, site__in=reader.sites)
    site = request.query_params.get("site")
    if site:
        participants = participants.filter(site__code=site)
    timepoints = list(trial.timepoints.order_by("order"))
    chosen = request.query_params.get("timepoint")
    shown = [tp for tp in timepoints if tp.code == chosen] if chosen else timepoints
    if not shown and timepoints:
        raise ValidationError({"timepoint": "Not a timepoint of this trial."})
    state = request.query_params.get("state")
    if state:
        if state not in dashboard.State.LABELS:
            raise ValidationError({"state": "Not a form state."})
        participants = participants.filter(dashboard.in_state(state, shown))
    try:
        page = max(int(request.query_params.get("page", 1)), 1)
    except ValueError:
        raise ValidationError({"page": "A whole number."}) from None
    ids = list(participants.order_by("participant_id").values_list("pk", flat=True))
    pages = max(math.ceil(len(ids) / STATUS_PAGE), 1)
    on_page = list(
        Participant.objects.filter(pk__in=ids[(page - 1) * STATUS_PAGE : page * STATUS_PAGE])
        .select_related("site")
        .order_by("participant_id")
    )
    rows = dashboard.grid(
        reader,
        on_page,
        shown,
        visit_url=lambda pk: "",
        entry_url=lambda pk, code, kind: "",
        reconcile_url=lambda pk, code: "",
    )
    return Response(
        {
            "count": len(ids),
            "page": page,
            "pages": pages,
            "participants": [
                {
                    "participant_id": p.participant_id,
                    "site": p.site.code,
                    "visits": [
                        {
                            "timepoint": tp.code,
                            "scheduled": cell.visit is not None,
                            "open_queries": cell.open_queries,
                            "forms": [
                                {"instrument": f.code, "state": f.state, "needs_my_action": f.act}
                                for f in cell.forms
                            ],
                        }
                        for tp, cell in zip(shown, cells, strict=True)
                    ],
                }
                for p, cells in rows
            ],
        }
    )


# --- Queries ----------------------------------------------------------------------------------


def _query_out(user, query):
    trial, site = query.participant.trial, query.participant.site
    return {
        "id": query.pk,
        "participant_id": query.participant.participant_id,
        "timepoint": query.visit.timepoint.code,
        "instrument": query.entry.instrument if query.entry_id else "",
        "item": query.item,
        "category": query.category,
        "status": query.status,
        "opened_at": query.opened_at,
        "addressed_to": access.author_label(user, query.addressed_to, trial, site)
        if query.addressed_to_id
        else "the site's assessors",
        "may_answer": query.status == DataQuery.Status.OPEN and queries.may_answer(user, query),
        "messages": [
            {
                "action": m.action,
                "author": author,
                "text": text,
                "at": m.at,
                "changed_value": m.changed_value,
            }
            for m, author, text in queries.thread_for(user, query)
        ],
    }


_QUERY_RELATED = (
    "participant",
    "participant__site",
    "participant__trial",
    "visit",
    "visit__timepoint",
    "entry",
    "addressed_to",
)


@extend_schema(
    summary="Data queries",
    description="The queries of the user's sites as a data manager, and those waiting on the "
    "user's answer, oldest first, each with its thread as the user may read it.",
    parameters=[
        OpenApiParameter(
            "status", str, enum=["waiting", *DataQuery.Status.values], description="Default: all."
        )
    ],
    responses={**ALWAYS, 200: s.QueryOut(many=True), 400: INVALID, 404: NOT_FOUND},
)
@api_view(["GET"])
def query_list(request):
    trial = _trial(request)
    user = request.user
    # The sites whose queries the user lists, as on the query list page: a data manager's and a
    # monitor's (access.query_sites); and the queries waiting on whoever enters the forms.
    dm_sites = access.query_sites(user, trial)
    entry_sites = access.sites_where_any(
        user, (Perm.ENTER_INTERVIEW, Perm.ENTER_STAFF_RATING), trial
    )
    _require(dm_sites.exists() or entry_sites.exists())
    status = request.query_params.get("status", "")
    if status and status != "waiting" and status not in DataQuery.Status.values:
        raise ValidationError({"status": "Not a query status."})
    managed = DataQuery.objects.filter(participant__trial=trial, participant__site__in=dm_sites)
    # The status is filtered before the 500 are taken, as the page does: a trial with many
    # closed queries still lists every waiting one.
    if status == "waiting":
        managed = managed.filter(status__in=DataQuery.WAITING)
    elif status:
        managed = managed.filter(status=status)
    managed = list(managed.select_related(*_QUERY_RELATED).order_by("opened_at", "pk")[:500])
    seen = {q.pk for q in managed}
    mine = []
    if status in ("", "waiting", DataQuery.Status.OPEN):  # waiting_on lists open queries only
        mine = queries.waiting_on(user, trial, entry_sites, limit=500)
    mine = [q for q in mine if q.pk not in seen]
    rows = sorted(managed + mine, key=lambda q: (q.opened_at, q.pk))
    return Response([_query_out(user, q) for q in rows])


@extend_schema(
    summary="Answer a data query",
    description="Answer a query addressed to you; with `value`, correct the item through the "
    "form's normal save path, the query standing as the reason.",
    request=s.AnswerIn,
    responses={**ALWAYS, 200: s.QueryOut, 400: REFUSED, 404: NOT_FOUND, 409: REFUSED},
)
@api_view(["POST"])
def query_answer(request, query_pk):
    trial = _trial(request)
    user = request.user
    query = get_object_or_404(
        DataQuery.objects.select_related(*_QUERY_RELATED), pk=query_pk, participant__trial=trial
    )
    _require(queries.may_answer(user, query))
    data = _valid(s.AnswerIn, request.data)
    item = query.item if query.entry_id else ""
    value = data.get("value", "")
    values = {item: value} if item and value.strip() else None
    queries.answer_query(
        query, by=user, text=data["text"], values=values, version=data.get("version")
    )
    query.refresh_from_db()
    return Response(_query_out(user, query))


# --- Exports ----------------------------------------------------------------------------------


def _export_out(request, run):
    rows, done = run.rows, run.done_rows
    if run.status == ExportRun.Status.DONE:
        progress = 1.0
    else:
        progress = min(done / rows, 1.0) if rows else 0.0
    return {
        "id": run.pk,
        "dataset": run.dataset,
        "format": run.format,
        "status": run.status,
        "rows": rows,
        "done_rows": done,
        "progress": progress,
        "sha256": run.sha256,
        "size": run.size,
        "error": run.error,
        "download": reverse("api:export_download", args=[run.pk])
        if run.status == ExportRun.Status.DONE
        else "",
    }


@extend_schema(
    summary="Start an export",
    description="Ask for an export file, as on the exports page; a Celery task builds it. Poll "
    "its progress, then download it.",
    request=s.ExportIn,
    responses={**ALWAYS, 201: s.ExportOut, 400: REFUSED, 404: NOT_FOUND},
)
@api_view(["POST"])
def export_start(request):
    trial = _trial(request)
    _require(access.may_open_exports(request.user, trial))
    data = _valid(s.ExportIn, request.data)
    run = exporting.request_export(
        trial,
        by=request.user,
        dataset=data["dataset"],
        format=data["format"],
        reason=data.get("reason", ""),
        ip_address=request.META.get("REMOTE_ADDR") or None,
    )
    run.refresh_from_db()
    return Response(_export_out(request, run), status=http.HTTP_201_CREATED)


def _run(request, pk):
    trial = _trial(request)
    _require(access.may_open_exports(request.user, trial))
    return get_object_or_404(ExportRun, trial=trial, pk=pk, requested_by=request.user)


@extend_schema(
    summary="An export's progress",
    responses={**ALWAYS, 200: s.ExportOut, 404: NOT_FOUND},
)
@api_view(["GET"])
def export_detail(request, pk):
    return Response(_export_out(request, _run(request, pk)))


@extend_schema(
    summary="Download an export",
    description="The file, with its SHA-256 in the X-Content-SHA256 header (as recorded when it "
    "was built). Written to the access log.",
    responses={**ALWAYS, (200, "application/octet-stream"): OpenApiTypes.BINARY, 404: NOT_FOUND},
)
@api_view(["GET"])
def export_download(request, pk):
    run = _run(request, pk)
    _require(exporting.may_download(run, request.user) and run.path.exists())
    action = AccessLog.Action.RELEASE_KEY if run.unblinded else AccessLog.Action.EXPORT
    log_access(
        request,
        run.trial,
        action,
        f"API download of export {run.pk}",
        export=run.pk,
        sha256=run.sha256,
        token=request.auth.key_id,
    )
    response = FileResponse(
        open(run.path, "rb"),  # noqa: SIM115 (FileResponse closes it)
        as_attachment=True,
        filename=run.file_name,
        content_type="application/octet-stream",
    )
    response["X-Content-SHA256"] = run.sha256
    return response


# --- Randomize --------------------------------------------------------------------------------


@extend_schema(
    summary="Randomize a participant",
    description="For coordinators at the participant's site: allocate (or, for a participant "
    "already randomized, read back) and return what the phone desk shows. The same `key` "
    "again returns the same result; a key used for another participant is refused. Written "
    "to the access log.",
    request=s.RandomizeIn,
    responses={**ALWAYS, 200: s.RandomizeOut, 400: REFUSED, 404: NOT_FOUND},
)
@api_view(["POST"])
def randomize(request):
    trial = _trial(request)
    user = request.user
    # The phone desk's gate: randomize (somewhere, then at the participant's site), and the
    # result page's: allocation access there.
    _require(access.has(user, Perm.RANDOMIZE, trial))
    data = _valid(s.RandomizeIn, request.data)
    participant = access.participant_or_404(user, trial, data["participant_id"])
    access.require(user, Perm.RANDOMIZE, trial, participant.site)
    access.require_allocation_access(user, trial, participant.site)
    allocation = services.randomize_with_key(
        participant,
        by=user,
        key=data["key"],
        baseline_completed_on=data.get("baseline_completed_on"),
    )
    log_access(
        request,
        trial,
        AccessLog.Action.VIEW_ALLOCATION,
        participant,
        api_key=data["key"],
        token=request.auth.key_id,
    )
    return Response(desk.desk_result(allocation))
