"""The trial file's `registers:` section: the register datasets the trial collects, each named
by a preset (registers.presets), checked by load_trial with every other setting and written in
its transaction (imrtrial.trialconfig.register_section). Optional: a trial without it collects
no register data. Example (the Danish trial):

    registers: [dk_service_use]
"""

from imrtrial import trialconfig

from .models import RegisterDataset
from .presets import PRESETS

SECTION = "registers"


def check(c, value, config):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        c.fail(SECTION, "must be a list of register dataset names")
        return []
    for code in value:
        if code not in PRESETS:
            c.fail(SECTION, f"no register dataset {code!r} (known: {', '.join(sorted(PRESETS))})")
    c.unique(value, SECTION, "register dataset")
    return [code for code in dict.fromkeys(value) if code in PRESETS]


def create(trial, codes):
    for code in codes:
        add_dataset(trial, code)


def add_dataset(trial, code):
    """Give the trial the preset dataset `code` (a copy: the trial keeps it as it was)."""
    preset = PRESETS[code]
    key = preset["key"]
    return RegisterDataset.objects.create(
        trial=trial,
        code=code,
        label=preset["label"],
        source=preset["source"],
        key_kind=key["kind"],
        key_column=key["column"],
        key_label=key["label"],
        key_pattern=key["pattern"],
        periods=preset["periods"],
        variables=preset["variables"],
    )


trialconfig.register_section(SECTION, check, create)
