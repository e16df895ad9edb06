"""Register data in the blinded export: one table per register dataset of the trial
(registers.models), beside the main dataset in the CSV bundle, each with its own codebook.

A row is a participant's period: the pseudonymous id, the period's first and last day and the
dataset's variables. No arm: the main dataset holds the neutral code, joined by participant id.
The participants are those of the main dataset (exports.dataset.randomized, of the sites in
scope), less anyone who withdrew consent for data use.
"""

import datetime

from imrtrial.models import Participant
from randomization.models import Withdrawal
from registers.models import RegisterRecord

from .columns import Column, Names, field_width
from .dataset import randomized

KINDS = {"count": "number", "days": "number", "date": "date"}


class RegisterTable:
    """A register dataset as the writers read a dataset: `columns`, `names`, `rows()`, `len()`."""

    missing_codes = ()
    missing_labels = {}

    def __init__(self, dataset, *, sites=None):
        self.dataset = dataset
        self.sites = sites
        name = Names()
        self.columns = [
            Column(
                name("participant_id"),
                "Pseudonymous participant id",
                "string",
                width=field_width(Participant, "participant_id"),
            ),
            Column(name("period_start"), "First day of the period", "date"),
            Column(name("period_end"), "Last day of the period", "date"),
        ]
        for variable in dataset.variables:
            low, high = variable.get("min"), variable.get("max")
            extent = f" ({low} to {high})" if low is not None and high is not None else ""
            self.columns.append(
                Column(
                    name(variable["code"]),
                    f"{variable['label']}{extent}",
                    KINDS[variable["type"]],
                    instrument=dataset.code,
                    source=f"register {dataset.code}.{variable['code']}",
                )
            )
        self.names = [c.name for c in self.columns]

    def records(self):
        erased = Withdrawal.objects.filter(level=Withdrawal.Level.CONSENT).values("participant")
        return (
            RegisterRecord.objects.filter(
                dataset=self.dataset,
                participant__in=randomized(self.dataset.trial, self.sites),
            )
            .exclude(participant__in=erased)
            .order_by("participant__participant_id", "period_start", "period_end")
        )

    def __len__(self):
        return self.records().count()

    def rows(self):
        codes = [v["code"] for v in self.dataset.variables]
        dates = {v["code"] for v in self.dataset.variables if v["type"] == "date"}
        for pid, start, end, values in self.records().values_list(
            "participant__participant_id", "period_start", "period_end", "values"
        ):
            cells = [pid, start, end]
            for code in codes:
                value = values.get(code)
                if code in dates and isinstance(value, str):
                    value = datetime.date.fromisoformat(value)
                cells.append(value)
            yield cells


def register_tables(trial, sites=None):
    """[(file suffix, RegisterTable)] of the trial's register datasets."""
    return [
        (f"register-{dataset.code}", RegisterTable(dataset, sites=sites))
        for dataset in trial.register_datasets.order_by("code")
    ]
