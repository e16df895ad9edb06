"""What a dataset column is, and how variables are named: shared by the blinded dataset
(exports.dataset) and the released ones (exports.released), read by exports.writers."""

import re
from dataclasses import dataclass, field

# Stata allows 32 characters, but pyreadstat names each value-label set <variable><counter>
# (up to 4 digits for a big trial), and that name must fit in 32 too.
STATA_NAME_MAX = 28
YES_NO = {0: "No", 1: "Yes"}


@dataclass(frozen=True)
class Column:
    name: str  # variable name: lower case, <= 32 characters (Stata), unique
    label: str
    kind: str  # "string" | "number" | "date"
    value_labels: dict = field(default_factory=dict)
    instrument: str = ""
    # May hold a missing-value code (e.g. "ND") instead of a number.
    coded_missing: bool = False
    source: str = ""
    # The trial's outcomes this score is (assessments.outcomes), e.g. "Primary at post".
    outcome: str = ""
    # Bytes a string column holds in SPSS and Stata (0: its longest value-label code). Declared
    # here, never measured on the rows, so an interim file and the final one have one layout.
    width: int = 0

    def storage_width(self):
        longest = max((len(str(code).encode()) for code in self.value_labels), default=0)
        width = max(self.width, longest)
        if self.kind == "string" and not width:
            raise ValueError(f"String column {self.name!r} declares no width")
        return width


def field_width(model, field):
    """The width of a string column holding a model's text field: the field's max_length."""
    return model._meta.get_field(field).max_length


def _slug(text):
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


class Names:
    """Variable names unique and short enough for Stata; the label keeps the full meaning."""

    def __init__(self):
        self.taken = set()

    def __call__(self, name):
        name = _slug(name)
        if not name[:1].isalpha():
            name = "v" + name
        name = name[:STATA_NAME_MAX]
        base, n = name, 1
        while name in self.taken:
            n += 1
            suffix = f"_{n}"
            name = base[: STATA_NAME_MAX - len(suffix)] + suffix
        self.taken.add(name)
        return name


def outcome_text(ranks):
    """ "Primary at post; Secondary at followup" from [(rank label, timepoint code)], or ""."""
    return "; ".join(f"{rank} at {timepoint}" for rank, timepoint in ranks or ())
