"""The API's requests and responses, declared once: DRF validates requests with them and
drf-spectacular writes the OpenAPI description from them, so the description is the code."""

from rest_framework import serializers

from exports.models import ExportRun


class Detail(serializers.Serializer):
    detail = serializers.CharField()


# --- Metadata -------------------------------------------------------------------------------


class SiteOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()


class TimepointOut(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()
    order = serializers.IntegerField()
    anchor = serializers.CharField()
    offset_days = serializers.IntegerField()
    window_before_days = serializers.IntegerField()
    window_after_days = serializers.IntegerField()
    instruments = serializers.ListField(child=serializers.CharField())


class ChoiceOut(serializers.Serializer):
    value = serializers.IntegerField()
    label = serializers.CharField()


class ItemOut(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()
    type = serializers.CharField()
    section = serializers.CharField()
    required = serializers.BooleanField()
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    choices = ChoiceOut(many=True)
    exported = serializers.BooleanField(help_text="Reaches the dataset (free text never does).")


class ScoreOut(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()
    method = serializers.CharField()
    items = serializers.ListField(child=serializers.CharField())
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)


class InstrumentOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    rater = serializers.CharField()
    missing_codes = serializers.DictField(child=serializers.CharField())
    items = ItemOut(many=True)
    scores = ScoreOut(many=True)


class ColumnOut(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.CharField()
    value_labels = serializers.DictField(child=serializers.CharField())
    instrument = serializers.CharField()
    coded_missing = serializers.BooleanField()


class MetadataOut(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    registration_id = serializers.CharField()
    status = serializers.CharField()
    sites = SiteOut(many=True)
    timepoints = TimepointOut(many=True)
    instruments = InstrumentOut(many=True)
    columns_long = ColumnOut(many=True, help_text="The long dataset's variables (codebook).")
    columns_wide = ColumnOut(many=True, help_text="The wide dataset's variables (codebook).")


# --- Records ----------------------------------------------------------------------------------


class RecordsQuery(serializers.Serializer):
    shape = serializers.ChoiceField(["long", "wide"], default="wide")
    format = serializers.ChoiceField(["json", "csv"], default="json")
    site = serializers.CharField(required=False, help_text="A site code.")
    form = serializers.CharField(required=False, help_text="An instrument code.")
    timepoint = serializers.CharField(required=False, help_text="A timepoint code.")


class RecordsOut(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField(allow_null=True))
    )


# --- Import -----------------------------------------------------------------------------------


class EntryIn(serializers.Serializer):
    participant_id = serializers.CharField(max_length=30)
    timepoint = serializers.CharField(max_length=30)
    instrument = serializers.CharField(max_length=60)
    kind = serializers.ChoiceField(
        ["single", "first", "second"],
        required=False,
        help_text="Default: single, or first for paper forms entered twice.",
    )
    values = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=2000),
        help_text="Raw text per item code, as typed on the form (codes ND, RF, NA for missing).",
    )
    complete = serializers.BooleanField(default=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    version = serializers.IntegerField(required=False, min_value=1)


class ImportIn(serializers.Serializer):
    entries = EntryIn(many=True, allow_empty=False, max_length=1000)


class ProblemOut(serializers.Serializer):
    row = serializers.IntegerField()
    participant_id = serializers.CharField()
    timepoint = serializers.CharField()
    instrument = serializers.CharField()
    item = serializers.CharField(help_text='An item code, or "__all__" for the form.')
    message = serializers.CharField()


class ImportOut(serializers.Serializer):
    saved = serializers.IntegerField()
    entries = serializers.ListField(child=serializers.DictField())


class ImportRefused(serializers.Serializer):
    detail = serializers.CharField()
    problems = ProblemOut(
        many=True, required=False, help_text="Every problem of the batch, if it was read."
    )
    errors = serializers.JSONField(
        required=False, help_text="The problem of each field, when the request is not valid."
    )


# --- Record status ----------------------------------------------------------------------------


class FormStateOut(serializers.Serializer):
    instrument = serializers.CharField()
    state = serializers.CharField()
    needs_my_action = serializers.BooleanField()


class VisitStateOut(serializers.Serializer):
    timepoint = serializers.CharField()
    scheduled = serializers.BooleanField()
    open_queries = serializers.IntegerField()
    forms = FormStateOut(many=True)


class ParticipantStatusOut(serializers.Serializer):
    participant_id = serializers.CharField()
    site = serializers.CharField()
    visits = VisitStateOut(many=True)


class StatusOut(serializers.Serializer):
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    participants = ParticipantStatusOut(many=True)


# --- Queries ----------------------------------------------------------------------------------


class MessageOut(serializers.Serializer):
    action = serializers.CharField()
    author = serializers.CharField()
    text = serializers.CharField()
    at = serializers.DateTimeField()
    changed_value = serializers.BooleanField()


class QueryOut(serializers.Serializer):
    id = serializers.IntegerField()
    participant_id = serializers.CharField()
    timepoint = serializers.CharField()
    instrument = serializers.CharField()
    item = serializers.CharField()
    category = serializers.CharField()
    status = serializers.CharField()
    opened_at = serializers.DateTimeField()
    addressed_to = serializers.CharField()
    may_answer = serializers.BooleanField()
    messages = MessageOut(many=True)


class AnswerIn(serializers.Serializer):
    text = serializers.CharField(max_length=2000)
    value = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="A corrected value."
    )
    version = serializers.IntegerField(required=False, min_value=1)


# --- Exports ----------------------------------------------------------------------------------


class ExportIn(serializers.Serializer):
    dataset = serializers.ChoiceField(ExportRun.Dataset.values)
    format = serializers.ChoiceField(ExportRun.Format.values)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300)


class ExportOut(serializers.Serializer):
    id = serializers.IntegerField()
    dataset = serializers.CharField()
    format = serializers.CharField()
    status = serializers.CharField()
    rows = serializers.IntegerField(allow_null=True)
    done_rows = serializers.IntegerField(allow_null=True)
    progress = serializers.FloatField(help_text="0 to 1.")
    sha256 = serializers.CharField(allow_blank=True)
    size = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    download = serializers.CharField(allow_blank=True)


# --- Randomize --------------------------------------------------------------------------------


class RandomizeIn(serializers.Serializer):
    participant_id = serializers.CharField(max_length=30)
    key = serializers.CharField(
        max_length=100, help_text="Your idempotency key: the same key again returns the result."
    )
    baseline_completed_on = serializers.DateField(required=False)


class RandomizeOut(serializers.Serializer):
    participant_id = serializers.CharField()
    arm = serializers.CharField()
    randomization_number = serializers.CharField()
    allocated_at = serializers.DateTimeField()
    confirmation_code = serializers.CharField()
    in_error = serializers.BooleanField()
    in_error_reason = serializers.CharField(allow_blank=True)
