"""A small Danish trial with both arms, every instrument entered at every visit, and the events a
dataset must carry without revealing the arm (missing codes, missed visits, withdrawals)."""

import datetime

import pytest

from assessments import registry
from assessments import services as crf
from assessments.models import FormEntry
from imrtrial.models import Participant, Role
from randomization import export as allocation_facts
from tests.factories import make_ready_participant, make_signature

DAY = datetime.date(2026, 11, 2)


def raw_values(instrument, *, seed=0, missing=None):
    """Valid raw input for every item; `missing` = {item code: missing code}."""
    raw = {}
    for n, item in enumerate(instrument.items):
        if missing and item.code in missing:
            raw[item.code] = missing[item.code]
        elif item.type in ("integer", "decimal"):
            lo, hi = item.bounds()
            raw[item.code] = str(int(lo + (n + seed) % (int(hi - lo) + 1)))
        elif item.type == "choice":
            values = [v for v, _ in item.choices]
            raw[item.code] = str(values[(n + seed) % len(values)])
        elif item.type == "boolean":
            raw[item.code] = "yes" if (n + seed) % 2 else "no"
        elif item.type == "date":
            raw[item.code] = "2026-10-01"
        else:
            raw[item.code] = "Talked about the IMR group at length"  # free text: never exported
    return raw


@pytest.fixture
def study(danish):
    """The export tests are about the Danish preset: their people work in it."""
    return danish


@pytest.fixture
def filled_trial(danish, coordinator, assessor, facilitator, data_manager, person):
    """Eight participants at two sites, four per arm, every form of every visit entered; then
    per arm: a missing code, a missed visit, a level-2 withdrawal, a guess. One intervention-arm
    participant also stops the intervention (level 1), which must never show. The forms are
    entered by the personas (and a second assessor for double entry)."""
    second_assessor = person(Role.ASSESSOR, username="second-assessor")

    def fill(visit, code, raw):
        """Enter one form the way the site would: single entry, or double entry reconciled."""
        instrument = registry.get(code)
        if instrument.rater == "staff":
            return crf.save_entry(
                visit, code, raw, by=facilitator, kind=FormEntry.Kind.SINGLE, complete=True
            )
        kind = crf.entry_kind_for(instrument)
        if kind == FormEntry.Kind.SINGLE:
            return crf.save_entry(visit, code, raw, by=assessor, kind=kind, complete=True)
        crf.save_entry(visit, code, raw, by=assessor, kind=FormEntry.Kind.FIRST, complete=True)
        crf.save_entry(
            visit, code, raw, by=second_assessor, kind=FormEntry.Kind.SECOND, complete=True
        )
        return crf.reconcile(visit, code, {}, by=data_manager, reasons={})

    people = _randomize_eight(danish, coordinator)
    crf.schedule_visits(danish)
    codes = allocation_facts.neutral_codes(danish)
    by_code = {"A": [], "B": []}
    for p in people:
        by_code[codes[p.pk][0]].append(Participant.objects.get(pk=p.pk))
    assert len(by_code["A"]) >= 2 and len(by_code["B"]) >= 2, by_code
    unfinished = {group[1].pk for group in by_code.values()}
    for seed, p in enumerate(Participant.objects.filter(trial=danish)):
        for visit in p.visits.select_related("timepoint"):
            if p.pk in unfinished and visit.timepoint.code == "followup":
                crf.mark_missed(visit, by=data_manager, reason="Could not be reached")
                continue
            for code in visit.timepoint.instruments:
                fill(visit, code, raw_values(registry.get(code), seed=seed))
    for group in by_code.values():
        first, second = group[0], group[1]
        post = second.visits.get(timepoint__code="post")
        crf.record_guess(post, "A", by=assessor)
        crf.record_guess(first.visits.get(timepoint__code="followup"), "DK", by=assessor)
        crf.withdraw(second, 2, by=coordinator, reason="Moved away", withdrawn_on=DAY)
    # A missing code in each arm: redo one PANSS item as "not done" with a reason.
    for group in by_code.values():
        visit = group[0].visits.get(timepoint__code="followup")
        raw = raw_values(registry.get("panss"), missing={"p1": "ND"})
        entry = FormEntry.objects.get(
            participant=group[0], instrument="panss", timepoint="followup"
        )
        crf.save_entry(
            visit,
            "panss",
            raw,
            by=assessor,
            kind=entry.kind,
            version=entry.version,
            reason="not rated",
        )
    # The site investigator signs one participant of each arm: every visit with data, and the
    # casebook (after every change above, so each signature holds).
    investigator = person(Role.INVESTIGATOR, first_name="Inge", last_name="Vestergaard")
    for group in by_code.values():
        first = group[0]
        for visit in first.visits.filter(completed_on__isnull=False):
            make_signature(first, visit, by=investigator)
        make_signature(first, by=investigator)
    intervention = next(code for code, _, _, i in allocation_facts.key(danish) if i)
    crf.withdraw(
        by_code[intervention][0],
        1,
        by=coordinator,
        reason="Group clashed with work",
        withdrawn_on=DAY,
    )
    # In each arm one participant excluded after randomization (baseline entered) and one who
    # died before the baseline visit was done (arms written directly: the randomized eight may
    # split unevenly).
    for arm in ("imr", "tau"):
        first, second = danish.sites.order_by("code")[:2]
        excluded = _randomized(danish, coordinator, arm, fill, first)
        died = _randomized(danish, coordinator, arm, None, second)
        crf.exclude_after_randomization(
            excluded,
            "withdrew_consent",
            by=coordinator,
            decided_by="the research group",
            excluded_on=DAY,
            reason="Withdrew consent the next day",
        )
        crf.record_death(died, by=coordinator, died_on=DAY, cause="natural")
    return danish, by_code


def _randomized(trial, coordinator, arm, fill, site):
    from tests.factories import make_allocation

    participant = make_ready_participant(trial, coordinator, site=site)
    make_allocation(participant, arm, by=coordinator)
    Participant.objects.filter(pk=participant.pk).update(randomized_on=DAY)
    participant = Participant.objects.get(pk=participant.pk)
    crf.schedule_participant_visits(participant)
    visit = participant.visits.get(timepoint__code="baseline")
    for code in visit.timepoint.instruments if fill else ():
        fill(visit, code, raw_values(registry.get(code), seed=participant.pk))
    return Participant.objects.get(pk=participant.pk)


def _randomize_eight(trial, coordinator):
    from randomization import services as randomization

    sites = list(trial.sites.order_by("code"))[:2]
    people = []
    for n in range(8):
        p = make_ready_participant(
            trial,
            coordinator,
            site=sites[n % 2],
            levels={"diagnosis": ["schizophrenia", "bipolar"][n // 4]},
        )
        randomization.randomize(p, by=coordinator)
        people.append(p)
    return people


@pytest.fixture
def baseline_only_trial(danish, coordinator, facilitator, assessor):
    """Eight randomized participants whose baseline forms of single entry are entered and whose
    later visits are all still empty: the trial of an early interim export."""
    _randomize_eight(danish, coordinator)
    crf.schedule_visits(danish)
    for p in Participant.objects.filter(trial=danish):
        visit = p.visits.select_related("timepoint").order_by("timepoint__order").first()
        for code in visit.timepoint.instruments:
            instrument = registry.get(code)
            single = crf.entry_kind_for(instrument) == FormEntry.Kind.SINGLE
            if instrument.rater != "staff" and not single:
                continue  # double entry: not needed to leave the later visits empty
            crf.save_entry(
                visit,
                code,
                raw_values(instrument),
                by=facilitator if instrument.rater == "staff" else assessor,
                kind=FormEntry.Kind.SINGLE,
                complete=True,
            )
    return danish


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
