"""Which forms need source data verification, and whether a form still matches what was
verified: pure functions, no Django import (tested and reasoned about alone).

The sample is drawn per participant, reproducibly, from a hash of the trial's key and the
participant's id, never from anything that knows the arm: the same participant is always in or
out, and the share is the same in both arms (in expectation, like any fair coin), at each site
its own share.
"""

import hashlib
import json

ALL = "all"


def sampled(trial_key, participant_id, percent):
    """Is the participant in a `percent` (0-100) sample of the trial's participants?"""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"sdv:{trial_key}:{participant_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percent * 100


def requires(plan, trial_key, site_code, participant_id, instrument):
    """Does the plan (instruments: "all" or a list; sample_percent; site_sample_percent {site
    code: percent}) require this form to be source-verified?"""
    if plan["instruments"] != ALL and instrument not in plan["instruments"]:
        return False
    percent = plan["site_sample_percent"].get(site_code, plan["sample_percent"])
    return sampled(trial_key, participant_id, percent)


EVERY_FORM = {"instruments": ALL, "sample_percent": 100, "site_sample_percent": {}}


def digest(values):
    """A fingerprint of a form's values, as verified: any change of a value changes it."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
