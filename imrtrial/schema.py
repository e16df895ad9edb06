"""Declarative schemas (pydantic) for the files a trial unit writes: the trial file's own keys
here, each registered section and each instrument definition in its own app. One place states
what a key may hold; `problems()` turns pydantic's errors into this project's messages, each
naming its place in the file ("arms[1].ratio: must be a whole number of at least 1 (got 0)").

Text a participant or staff member reads (arm labels, criteria, timepoint and site names, item
and choice labels) may be given in several languages:

    label: Post-treatment (9 months)                   # English only
    label: {en: Post-treatment (9 months), da: Efter behandling (9 måneder), nl: Na behandeling}

English is required and is the fallback (imrtrial.i18n_text picks the reader's language).
"""

from __future__ import annotations

import functools
import re
import typing
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

# The languages content may be given in; the site's own languages (settings.LANGUAGES).
LANGUAGES = ("en", "da", "nl")
CODE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class Strict(BaseModel):
    """A mapping of the file: unknown keys and loose types (the string "1" for 1, yes for a
    number) are refused rather than guessed at."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


def fail(message, **context):
    """A problem stated in this project's words (its message is shown as written)."""
    return PydanticCustomError("imrtrial", message, context)


def code(max_length):
    def check(value):
        if not isinstance(value, str) or not value.strip():
            raise fail("must be non-empty text")
        if len(value) > max_length:
            raise fail(f"must be at most {max_length} characters")
        if not CODE.match(value):
            raise fail("must be lower-case letters, digits, '-' or '_'")
        return value

    return Annotated[
        str,
        BeforeValidator(check),
        WithJsonSchema({"type": "string", "pattern": CODE.pattern, "maxLength": max_length}),
    ]


def text(max_length):
    def check(value):
        if not isinstance(value, str) or not value.strip():
            raise fail("must be non-empty text")
        if len(value) > max_length:
            raise fail(f"must be at most {max_length} characters")
        return value

    return Annotated[
        str,
        BeforeValidator(check),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": max_length}),
    ]


class Translated(str):
    """English text (the str itself) with its other languages (`.translations`)."""

    translations: dict[str, str]

    def __new__(cls, english, translations=None):
        text = super().__new__(cls, english)
        text.translations = dict(translations or {})
        return text


def label(max_length):
    """Text, or a mapping of language code to text with English required."""

    def one(value, where):
        if not isinstance(value, str) or not value.strip():
            raise fail(f"{where}must be non-empty text")
        if len(value) > max_length:
            raise fail(f"{where}must be at most {max_length} characters")
        return value

    def check(value):
        if isinstance(value, Translated):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(map(str, value)) - set(LANGUAGES))
            if unknown:
                raise fail(f"unknown language {unknown[0]!r}: give text for {', '.join(LANGUAGES)}")
            if "en" not in value:
                raise fail("needs the English text (en), the fallback for every reader")
            texts = {lang: one(text, f"{lang}: ") for lang, text in value.items()}
            return Translated(texts.pop("en"), texts)
        return Translated(one(value, ""))

    schema = {
        "oneOf": [
            {"type": "string", "minLength": 1, "maxLength": max_length},
            {
                "type": "object",
                "required": ["en"],
                "additionalProperties": False,
                "properties": {
                    lang: {"type": "string", "minLength": 1, "maxLength": max_length}
                    for lang in LANGUAGES
                },
            },
        ]
    }
    return Annotated[
        Any,
        BeforeValidator(check),
        PlainSerializer(lambda t: {"en": str(t), **t.translations} if t.translations else str(t)),
        WithJsonSchema(schema),
    ]


def whole(low=None, *, what="a whole number"):
    def check(value):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (low is not None and value < low)
        ):
            at_least = f" of at least {low}" if low else ""
            raise fail(f"must be {what}{at_least} (got {value!r})")
        return value

    bounds = {} if low is None else {"minimum": low}
    return Annotated[int, BeforeValidator(check), WithJsonSchema({"type": "integer", **bounds})]


def number(low, high):
    """A number (whole or decimal) from low to high."""

    def check(value):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise fail(f"must be a number from {low} to {high} (got {value!r})")
        return value

    schema = {"type": "number", "minimum": low, "maximum": high}
    return Annotated[float, BeforeValidator(check), WithJsonSchema(schema)]


def matching(pattern, meaning):
    """Text matching a regular expression, refused in words ("must be 1-4 capital letters")."""
    compiled = re.compile(pattern)

    def check(value):
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise fail(f"must be {meaning}")
        return value

    return Annotated[
        str, BeforeValidator(check), WithJsonSchema({"type": "string", "pattern": pattern})
    ]


def _boolean(value):
    if not isinstance(value, bool):
        raise fail("must be true or false")
    return value


Boolean = Annotated[bool, BeforeValidator(_boolean), WithJsonSchema({"type": "boolean"})]
Code20, Code30, Code40 = code(20), code(30), code(40)
PositiveInt = whole(1)
Label60, Label80, Label120, Label300 = label(60), label(80), label(120), label(300)
Text200 = text(200)


def nonempty_list(item):
    """A list that must hold something (the message the hand-written parser gave)."""

    def check(value):
        if not isinstance(value, list) or not value:
            raise fail("must be a non-empty list")
        return value

    return Annotated[list[item], BeforeValidator(check), Field(json_schema_extra={"minItems": 1})]


def list_of(item, message):
    """A list, refused with `message` when it is something else."""

    def check(value):
        if not isinstance(value, list):
            raise fail(message)
        return value

    return Annotated[list[item], BeforeValidator(check)]


def duplicates(values):
    seen, twice = set(), []
    for value in values:
        if value in seen and value not in twice:
            twice.append(value)
        seen.add(value)
    return twice


def place(loc, top="file"):
    """('arms', 1, 'ratio') -> 'arms[1].ratio'; a key of the file itself -> 'file.key'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    if len(loc) <= 1 and top:
        return f"{top}.{text}" if text else top
    return text


_MESSAGES = {
    "missing": "is required",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "dict_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
    "string_type": "must be non-empty text",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number (got {input!r})",
    "float_type": "must be a number (got {input!r})",
}


def message(e):
    """One of pydantic's errors (an item of ValidationError.errors()) in this project's words."""
    kind = e["type"]
    if kind == "imrtrial":
        return e["msg"]
    if kind == "literal_error":
        allowed = e["ctx"]["expected"].replace("'", "")
        return f"must be one of {allowed} (got {e['input']!r})"
    if kind in _MESSAGES:
        return _MESSAGES[kind].format(input=e.get("input"))
    return e["msg"][0].lower() + e["msg"][1:]


def problems(error: ValidationError, *, prefix=(), top="file", where=None):
    """Every problem pydantic found, in this project's words, with its place in the file
    (`where(loc)` names a place otherwise, e.g. with the item's code)."""
    where = where or (lambda loc: place(loc, top))
    found = []
    for e in error.errors(include_url=False):
        loc = tuple(prefix) + tuple(p for p in e["loc"] if not is_wrapper(p))
        if e["type"] == "extra_forbidden":
            found.append(f"{where(loc[:-1]) or top}: unknown key {loc[-1]!r}")
        else:
            found.append(f"{where(loc)}: {message(e)}")
    return found


def is_wrapper(part):
    # pydantic names the validator of a union or a function wrapper in some locations.
    return isinstance(part, str) and (
        part.startswith("function-") or part in {"str", "dict[str,str]", "list[...]"}
    )


def validate_parts(model, data, *, top="file", where=None):
    """Each key of `data` checked against its field of `model` on its own, and each item of a
    list on its own, so that one bad item neither hides the problems of the others nor the
    cross-key rules that can still be checked. Returns (parts, problems): parts holds what
    validated (a list keeps its valid items); problems name their places."""
    found, parts = [], {}
    for key in sorted(set(data) - set(model.model_fields), key=str):
        found.append(f"{top}: unknown key {key!r}" if top else f"unknown key {key!r}")
    for name, field in model.model_fields.items():
        if name not in data:
            if field.is_required():
                found.append(f"{(where or (lambda loc: place(loc, top)))((name,))}: is required")
            else:
                parts[name] = field.get_default(call_default_factory=True)
            continue
        adapter = _adapter(model, name)
        try:
            parts[name] = adapter.validate_python(data[name])
        except ValidationError as error:
            found += problems(error, prefix=(name,), top=top, where=where)
            item = _item_model(model, name)
            if item is not None and isinstance(data[name], list):
                parts[name] = [_partial(item, x) for x in data[name] if isinstance(x, dict)]
            elif (
                item is None
                and is_model(model.model_fields[name].annotation)
                and isinstance(data[name], dict)
            ):
                parts[name] = _partial(model.model_fields[name].annotation, data[name])
    return parts, found


@functools.cache
def _adapter(model, name):
    return TypeAdapter(model.model_fields[name].rebuild_annotation())


@functools.cache
def _item_model(model, name):
    """The model of a list field's items (a list, or a list or nothing), else None."""
    annotation = model.model_fields[name].annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        while typing.get_origin(candidate) is Annotated:
            candidate = typing.get_args(candidate)[0]
        if typing.get_origin(candidate) is list and is_model(typing.get_args(candidate)[0]):
            return typing.get_args(candidate)[0]
    return None


def is_model(annotation):
    return isinstance(annotation, type) and issubclass(annotation, Strict)


def _partial(model, data, top="file", where=None):
    """The item if it validates; else what of it did (for the cross-key rules, where a field
    that did not validate reads as None)."""
    try:
        return model.model_validate(data)
    except ValidationError:
        parts, _ = validate_parts(model, data, top=top, where=where)
        return Partial(parts)


class Partial:
    """What validated of a mapping that did not: its fields read as None where they failed."""

    def __init__(self, parts):
        self.__dict__.update(parts)

    def __getattr__(self, name):
        return None
