"""The trial file's `imr_programme:` section: the rules by which exposure, completion and fidelity
are computed (fidelity.rules, DOMAIN.md 10.4 and 10.5), checked by load_trial with every other
setting (imrtrial.trialconfig.register_section).

Every rule must be stated, even where the trial has none (`exposed_from_sessions: null`): a file
that leaves one out is refused with the name of each missing rule, so a third trial is never
computed by another trial's rules. Example (the Danish trial):

    imr_programme:
      planned_sessions: 36              # a new group's default; a group may plan otherwise
      completer_denominator: held       # held | planned: the share's denominator
      exposed_from_sessions: 11         # null: no exposure rule
      completer_from_share: null        # e.g. 0.5; null: no completer rule
      fidelity_analysis_from_sessions: 10
      fidelity_bands:                   # ascending; a score is in the last band it reaches
        - {from: 1, label: not IMR}
        - {from: 4, label: good}
        - {from: 4.4, label: high}
      fidelity_band_decimals: null      # round the score first to this many decimals; null: not
      raters_may_rate_own_site: false
"""

from decimal import Decimal, InvalidOperation

from imrtrial import trialconfig

from . import rules
from .models import ImrRules

SECTION = "imr_programme"
RULES = {
    "planned_sessions": "the sessions a group plans, by default",
    "completer_denominator": "what a completer's share of sessions is taken of (held or planned)",
    "exposed_from_sessions": "the sessions attended from which a participant is exposed (or null)",
    "completer_from_share": "the share of sessions from which a participant completed (or null)",
    "fidelity_analysis_from_sessions": "the sessions attended to be in fidelity analyses",
    "fidelity_bands": "the fidelity score's bands",
    "fidelity_band_decimals": "the decimals a score is rounded to before banding (or null)",
    "raters_may_rate_own_site": "whether a fidelity rater may rate a group of their own site",
}


def _whole(c, value, where, *, nullable, low=1, high=500):
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        c.fail(where, f"must be a whole number from {low} to {high}" + (" or null" * nullable))
        return None
    return value


def _decimal(c, value, where, *, low, high):
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        c.fail(where, f"must be a number from {low} to {high}")
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or not Decimal(low) <= number <= Decimal(high):
        c.fail(where, f"must be a number from {low} to {high}")
        return None
    return number


def check(c, value, config):
    if value is None:
        c.fail(
            SECTION,
            "missing: a trial states its IMR programme rules "
            f"({', '.join(RULES)}); none is taken from another trial",
        )
        return None
    value = c.mapping(value, SECTION)
    c.unknown_keys(value, set(RULES), SECTION)
    for key, meaning in RULES.items():
        if key not in value:
            c.fail(f"{SECTION}.{key}", f"missing: {meaning}")
    if any(key not in value for key in RULES):
        return None
    out = {
        "planned_sessions": _whole(
            c, value["planned_sessions"], f"{SECTION}.planned_sessions", nullable=False
        ),
        "exposed_from_sessions": _whole(
            c, value["exposed_from_sessions"], f"{SECTION}.exposed_from_sessions", nullable=True
        ),
        "fidelity_analysis_from_sessions": _whole(
            c,
            value["fidelity_analysis_from_sessions"],
            f"{SECTION}.fidelity_analysis_from_sessions",
            nullable=False,
            low=0,
        ),
        "fidelity_band_decimals": _whole(
            c,
            value["fidelity_band_decimals"],
            f"{SECTION}.fidelity_band_decimals",
            nullable=True,
            low=0,
            high=3,
        ),
    }
    denominator = value["completer_denominator"]
    if denominator not in (rules.HELD, rules.PLANNED):
        c.fail(f"{SECTION}.completer_denominator", f"must be {rules.HELD} or {rules.PLANNED}")
    out["completer_denominator"] = denominator
    share = value["completer_from_share"]
    if share is not None:
        share = _decimal(c, share, f"{SECTION}.completer_from_share", low="0.001", high=1)
        if share is not None and share != share.quantize(Decimal("0.001")):
            c.fail(f"{SECTION}.completer_from_share", "may have at most three decimals")
    out["completer_from_share"] = share
    own_site = value["raters_may_rate_own_site"]
    if not isinstance(own_site, bool):
        c.fail(f"{SECTION}.raters_may_rate_own_site", "must be true or false")
    out["raters_may_rate_own_site"] = own_site
    out["fidelity_bands"] = _bands(c, value["fidelity_bands"])
    return out


def _bands(c, value):
    where = f"{SECTION}.fidelity_bands"
    if not isinstance(value, list) or not value:
        c.fail(where, "must be a list of bands, each {from: <score 1-5>, label: <text>}")
        return []
    bands = []
    for i, band in enumerate(value):
        here = f"{where}[{i}]"
        band = c.mapping(band, here)
        c.unknown_keys(band, {"from", "label"}, here)
        lowest = _decimal(c, band.get("from"), f"{here}.from", low=1, high=5)
        label = c.text(band, "label", here, max_length=40)
        if lowest is not None:
            bands.append({"from": str(lowest), "label": label})
    lows = [Decimal(b["from"]) for b in bands]
    if lows and (lows != sorted(set(lows)) or lows[0] != 1):
        c.fail(where, "must ascend, each band from a higher score, the first from 1")
    c.unique([b["label"] for b in bands], where, "band label")
    return bands


def create(trial, value):
    ImrRules.objects.create(trial=trial, **value)


trialconfig.register_section(SECTION, check, create)
