"""The released datasets: the allocation key (which neutral code is which arm) and the process
dataset (the arm and what the intervention arm received: group, attendance, exposure,
completion, group fidelity, stopping the intervention). Every variable here reveals the arm on
purpose: they are released only by the key holder after lock (exports.services), never mixed
into the blinded dataset (exports.dataset).
"""

from django.db.models import Min
from django.utils import timezone

from fidelity import measures, rules
from fidelity.models import GroupMembership, ImrGroup
from imrtrial.models import Arm, Participant
from randomization import export as allocation_facts
from randomization.models import Withdrawal

from .columns import YES_NO, Column, Names, field_width
from .dataset import randomized

BATCH = 500


class ProcessDataset:
    """The process dataset: one row per randomized participant."""

    missing_codes, missing_labels = [], {}

    def __init__(self, trial, *, today=None):
        self.trial = trial
        self.today = today or timezone.localdate()
        self.rules = rules.for_trial(trial)
        name = Names()
        c = Column
        self.columns = [
            c(
                name("participant_id"),
                "Pseudonymous participant id",
                "string",
                width=field_width(Participant, "participant_id"),
            ),
            c(
                name("arm"),
                "Allocated arm, neutral code (A/B)",
                "string",
                width=field_width(Arm, "export_code"),
            ),
            c(name("arm_code"), "Allocated arm (code)", "string", width=field_width(Arm, "code")),
            c(name("arm_label"), "Allocated arm", "string", width=field_width(Arm, "label")),
            c(name("intervention_arm"), "Allocated to the intervention arm", "number", YES_NO),
            c(name("allocation_in_error"), "Allocation flagged as made in error", "number", YES_NO),
            c(
                name("imr_group"),
                "IMR group (latest)",
                "string",
                width=field_width(ImrGroup, "name"),
            ),
            c(name("sessions_attended"), "IMR sessions attended (catch-up included)", "number"),
            c(name("sessions_held"), "Sessions of their group held while a member", "number"),
            c(name("sessions_planned"), "Sessions planned for their group", "number"),
            c(name("share_of_held"), "Sessions attended / held", "number"),
            c(name("share_of_planned"), "Sessions attended / planned", "number"),
            c(name("days_to_first_session"), "Days from randomization to first session", "number"),
            c(name("modules_received"), "IMR modules received (of 11)", "number"),
            c(name("exposed"), "Exposed (trial's exposure rule)", "number", YES_NO),
            c(name("completer"), "Completer (trial's completion rule)", "number", YES_NO),
            c(name("fidelity_eligible"), "In fidelity analyses (sessions rule)", "number", YES_NO),
            c(name("group_fidelity"), "Group fidelity score of record (end consensus)", "number"),
            c(
                name("group_fidelity_band"),
                "Group fidelity band",
                "string",
                width=max(len(label.encode()) for _, label in self.rules.bands),
            ),
            c(
                name("intervention_stopped_on"),
                "Stopped the intervention (withdrawal level 1)",
                "date",
            ),
        ]
        self.names = [col.name for col in self.columns]

    def participants(self):
        return randomized(self.trial)

    def __len__(self):
        return self.participants().count()

    def rows(self):
        codes = allocation_facts.neutral_codes(self.trial)
        arms = allocation_facts.arm_codes(self.trial)
        key = {
            code: (arm, label, intervention)
            for code, arm, label, intervention in allocation_facts.key(self.trial)
        }
        stopped = dict(
            Withdrawal.objects.stopped_intervention()
            .filter(participant__trial=self.trial)
            .values("participant_id")
            .annotate(first=Min("withdrawn_on"))
            .values_list("participant_id", "first")
        )
        scores = {}
        participants = self.participants().order_by("participant_id")
        batch = []
        for p in participants.iterator(chunk_size=2000):
            batch.append(p)
            if len(batch) == BATCH:
                yield from self._rows(batch, codes, arms, key, stopped, scores)
                batch = []
        if batch:
            yield from self._rows(batch, codes, arms, key, stopped, scores)

    def _rows(self, batch, codes, arms, key, stopped, scores):
        found = measures.exposures(batch, today=self.today)
        groups = {}
        for m in (
            GroupMembership.objects.filter(participant__in=batch)
            .select_related("group")
            .order_by("joined_on")
        ):
            groups[m.participant_id] = m.group
        for p in batch:
            code, in_error = codes.get(p.pk, (None, False))
            arm_code, label, intervention = key.get(code, (arms.get(p.pk), None, None))
            e = found[p.pk]
            group = groups.get(p.pk)
            if group and group.pk not in scores:
                scores[group.pk] = measures.group_score(group)
            score, band = scores[group.pk] if group else (None, None)

            def share(fraction):
                return None if fraction is None else round(float(fraction), 4)

            def flag(value):
                return None if value is None else int(value)

            yield [
                p.participant_id,
                code,
                arm_code,
                label,
                flag(intervention),
                int(in_error),
                group.name if group else None,
                e.attended,
                e.held,
                e.planned,
                share(e.share_of_held),
                share(e.share_of_planned),
                e.days_to_first_session,
                len(e.modules),
                flag(e.exposed),
                flag(e.completer),
                int(e.fidelity_eligible),
                None if score is None else round(float(score), 3),
                str(band) if band else None,
                stopped.get(p.pk),
            ]


class KeyDataset:
    """The allocation key: which neutral code is which arm. Released like the process dataset."""

    missing_codes, missing_labels = [], {}

    def __init__(self, trial):
        self.trial = trial
        self.columns = [
            Column(
                "arm",
                "Neutral code used in the blinded datasets",
                "string",
                width=field_width(Arm, "export_code"),
            ),
            Column("arm_code", "Arm (code)", "string", width=field_width(Arm, "code")),
            Column("arm_label", "Arm", "string", width=field_width(Arm, "label")),
            Column("intervention_arm", "The intervention arm", "number", YES_NO),
        ]
        self.names = [c.name for c in self.columns]

    def __len__(self):
        return self.trial.arms.count()

    def rows(self):
        for code, arm, label, intervention in allocation_facts.key(self.trial):
            yield [code, arm, label, int(intervention)]
