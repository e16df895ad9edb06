"""The register datasets a trial can choose in its file (`registers: [dk_service_use]`), as data.

A dataset is data that belong to a period of a participant's life, not to a visit: counts a
national register or a hospital's records give for "the year after randomization". Each says
how a file's row finds its participant (`key`), the periods a row may cover, and its typed
variables with their ranges. Sources: DOMAIN.md 3.1 (Danish one-year service use, from the
national registers linked by the 10-digit CPR number) and 3.5 (Dutch hospitalisations in the
year before baseline and the year after T2).

Periods: `anchor` is the participant's date the period is counted from (randomization, baseline:
the day the baseline visit was completed, or visit:<timepoint>: the day that visit was done);
`start_days` and `end_days` are the first and last day, counted from the anchor (0: the anchor's
own day). A row's period must be one of its participant's periods exactly.
"""

KEY_KINDS = ("participant_id", "national_id")
VARIABLE_TYPES = ("count", "days", "date")
ANCHORS = ("randomization", "baseline")  # or "visit:<timepoint code>"

PRESETS = {
    "dk_service_use": {
        "label": "Service use in the year after randomization (Danish national registers)",
        "source": (
            "Danish National Patient Register - Psychiatry and the Psychiatric Central Research "
            "Register, linked through the Civil Registration System (CPR)"
        ),
        "key": {
            "kind": "national_id",
            "column": "cpr",
            "label": "CPR number (10 digits)",
            "pattern": r"[0-9]{10}",
        },
        "periods": [
            {
                "code": "year_after_randomization",
                "label": "The year after randomization",
                "anchor": "randomization",
                "start_days": 0,
                "end_days": 364,
            }
        ],
        "variables": [
            {
                "code": "admissions",
                "label": "Hospital admissions (number)",
                "type": "count",
                "min": 0,
                "max": 366,
            },
            {
                "code": "admission_days",
                "label": "Length of hospital admissions (days)",
                "type": "days",
                "min": 0,
                "max": 366,
            },
            {
                "code": "er_visits",
                "label": "Emergency service / ER visits (number)",
                "type": "count",
                "min": 0,
                "max": 366,
            },
            {
                "code": "outpatient_contacts",
                "label": "Outpatient contacts (number)",
                "type": "count",
                "min": 0,
                "max": 1000,
            },
        ],
    },
    "nl_hospitalisation": {
        "label": "Hospitalisation in the year before baseline and the year after T2 (Dutch trial)",
        "source": "Hospital records of the participating mental health institutions",
        "key": {
            "kind": "participant_id",
            "column": "participant_id",
            "label": "Pseudonymous participant id",
            "pattern": "",
        },
        "periods": [
            {
                "code": "year_before_baseline",
                "label": "The year before baseline (T1)",
                "anchor": "baseline",
                "start_days": -365,
                "end_days": -1,
            },
            {
                "code": "year_after_treatment",
                "label": "The year after treatment (after the T2 visit)",
                "anchor": "visit:t2",
                "start_days": 1,
                "end_days": 365,
            },
        ],
        "variables": [
            {
                "code": "admissions",
                "label": "Hospital admissions (number)",
                "type": "count",
                "min": 0,
                "max": 366,
            },
            {
                "code": "admission_days",
                "label": "Days admitted",
                "type": "days",
                "min": 0,
                "max": 366,
            },
        ],
    },
}
