"""The `source_data_verification:` section of a trial's YAML (imrtrial.trialconfig), e.g.

    source_data_verification:
      instruments: [panss, gaf_f]   # or: all (the default)
      sample_percent: 25            # of each site's participants (default 100)
      sites: {ballerup: 50}         # a site's own share

Checked with the rest of the file, each problem named with its place; a file without the section
gets the default plan: every form of every participant.
"""

from . import plan

KEY = "source_data_verification"
_KEYS = {"instruments", "sample_percent", "sites"}


def _percent(c, value, where):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        c.fail(where, f"must be a whole percentage from 0 to 100 (got {value!r})")
        return None
    return value


def check(value, c, place, config):
    """The section as SdvPlan fields, or problems reported through the checker `c`."""
    if value is None:
        return dict(plan.EVERY_FORM)
    data = c.mapping(value, place)
    c.unknown_keys(data, _KEYS, place)
    instruments = data.get("instruments", plan.ALL)
    due = {code for tp in config.get("timepoints", []) for code in tp["instruments"]}
    if instruments != plan.ALL:
        where = f"{place}.instruments"
        if not isinstance(instruments, list) or not instruments:
            c.fail(where, "must be 'all' or a non-empty list of instrument codes")
            instruments = []
        for i, code in enumerate(instruments):
            if not isinstance(code, str):
                c.fail(f"{where}[{i}]", f"must be an instrument code (got {code!r})")
            elif code not in due:
                c.fail(f"{where}[{i}]", f"{code!r} is not an instrument of any timepoint")
        c.unique([x for x in instruments if isinstance(x, str)], where, "instrument")
    percent = _percent(c, data.get("sample_percent", 100), f"{place}.sample_percent")
    sites = data.get("sites", {})
    site_codes = {s["code"] for s in config.get("sites", [])}
    shares = {}
    if not isinstance(sites, dict):
        c.fail(f"{place}.sites", "must be a mapping of site codes to percentages")
        sites = {}
    for code, share in sites.items():
        where = f"{place}.sites.{code}"
        if code not in site_codes:
            c.fail(where, f"no site {code!r} in sites")
        shares[str(code)] = _percent(c, share, where)
    return {
        "instruments": instruments,
        "sample_percent": percent if percent is not None else 100,
        "site_sample_percent": shares,
    }


def create(trial, value):
    from .models import SdvPlan

    SdvPlan.objects.create(trial=trial, **value)
