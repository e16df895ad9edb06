"""Plain keyword factories: make_<thing>(**overrides)."""

import itertools

from django.contrib.auth import get_user_model

from imrtrial.models import Arm, Membership, Participant, Role, Site, StratificationFactor, Trial
from randomization.models import Allocation, Stratum

_seq = itertools.count(1)


def make_trial(*, imr_rules="danish", **overrides):
    """A 1:1 two-arm trial with two centres and a diagnosis x centre stratification, computing
    IMR exposure and fidelity by the `imr_programme:` rules of the preset named `imr_rules`."""
    n = next(_seq)
    fields = {
        "key": f"trial-{n}",
        "name": f"Trial {n}",
        "registration_id": f"NCT{n:08d}",
        "status": Trial.Status.OPEN,
        "block_sizes": [6, 8, 10],
    }
    fields.update(overrides)
    trial = Trial.objects.create(**fields)
    Arm.objects.create(
        trial=trial, code="imr", label="IMR + TAU", export_code="B", is_intervention=True
    )
    Arm.objects.create(trial=trial, code="tau", label="Treatment as usual", export_code="A")
    Site.objects.create(trial=trial, code="north", name="North CMHC")
    Site.objects.create(trial=trial, code="south", name="South CMHC")
    StratificationFactor.objects.create(
        trial=trial,
        code="diagnosis",
        label="Diagnosis",
        order=0,
        levels=[
            {"code": "schizophrenia", "label": "Schizophrenia"},
            {"code": "bipolar", "label": "Bipolar disorder"},
        ],
    )
    StratificationFactor.objects.create(
        trial=trial, code="centre", label="Centre", from_site=True, order=1
    )
    add_criteria(trial)
    give_imr_rules(trial, imr_rules)
    return trial


def give_imr_rules(trial, preset, **overrides):
    """The trial computes by the preset's `imr_programme:` rules, with `overrides`."""
    import yaml

    from fidelity.config import SECTION, check
    from fidelity.models import ImrRules
    from imrtrial.trialconfig import _Checker, resolve

    checker = _Checker()
    value = check(checker, yaml.safe_load(resolve(preset).read_text())[SECTION], {})
    assert not checker.problems, checker.problems
    ImrRules.objects.update_or_create(trial=trial, defaults={**value, **overrides})
    trial._state.fields_cache.pop("imr_rules", None)  # a stale cached row, if it was read
    return trial


def load_preset(preset, /, **overrides):
    """A trial made from a shipped preset (imrtrial.trialconfig.PRESETS_DIR), open for recruitment.
    `overrides` replace top-level keys of the configuration: a `key` for a second copy, a `name`."""
    from imrtrial.trialconfig import create_trial, parse, resolve

    config = parse(resolve(preset).read_text())
    config.update(overrides)
    trial = create_trial(config)
    trial.status = Trial.Status.OPEN
    trial.save(update_fields=["status"])
    return trial


def load_list_trial():
    """The Dutch preset set up to follow an uploaded randomization list, not yet open."""
    trial = load_preset("dutch", key="dutch-list")
    Trial.objects.filter(pk=trial.pk).update(method=Trial.Method.UPLOADED_LIST, status="setup")
    trial.refresh_from_db()
    return trial


def make_user(username=None, password="correct-horse-battery-staple", **fields):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(username=username, password=password, **fields)


def make_totp_device(user, confirmed=True):
    """A real django-otp TOTP device, as enrolment leaves it."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=confirmed)


def totp_code(device):
    """The code the user's authenticator app shows now, computed from the device's key. A code is
    accepted only once, so when this step's code is spent (a second sign-in within 30 seconds),
    the next step's, which the server's one step of tolerance also accepts."""
    import time

    from django_otp.oath import hotp

    device.refresh_from_db()
    step = max((int(time.time()) - device.t0) // device.step, device.last_t + 1)
    return f"{hotp(device.bin_key, step, digits=device.digits):0{device.digits}d}"


def grant(user, trial, role, site=None):
    return Membership.objects.create(user=user, trial=trial, role=Role(role), site=site)


def make_person(trial, role, site=None, username=None, **fields):
    """A user holding `role` in `trial`, at `site` or (no site) at every site of the trial.
    The username is `<role>-<site code>` (`<role>-all`) unless given; `fields` go to the user."""
    role = Role(role)
    user = make_user(username or f"{role.value}-{site.code if site else 'all'}", **fields)
    grant(user, trial, role, site)
    return user


def make_participant(trial, site=None, **overrides):
    site = site or trial.sites.order_by("code").first()
    fields = {
        "participant_id": f"P-{next(_seq):05d}",
        "factor_levels": {"diagnosis": "schizophrenia"},
    }
    fields.update(overrides)
    return Participant.objects.create(trial=trial, site=site, **fields)


def make_allocation(participant, arm_code="imr", by=None):
    """An allocation written directly, for tests of who may see it (not of how it is made)."""
    trial = participant.trial
    stratum, _ = Stratum.objects.get_or_create(trial=trial, key=f"site={participant.site.code}")
    slot = stratum.next_slot
    stratum.next_slot += 1
    stratum.save(update_fields=["next_slot"])
    participant.status = Participant.Status.RANDOMIZED
    participant.save(update_fields=["status"])
    return Allocation.objects.create(
        trial=trial,
        participant=participant,
        stratum=stratum,
        slot=slot,
        arm=trial.arms.get(code=arm_code),
        randomization_number=f"R{next(_seq):05d}",
        confirmation_code=f"C{slot:05d}",
        allocated_by=by or make_user(),
    )


def yes_to_all(trial):
    """Answers that make a person eligible: yes to inclusion, no to exclusion."""
    return {c.code: c.kind == "inclusion" for c in trial.criteria.all()}


def make_ready_participant(trial, by, site=None, levels=None, baseline=True, **screen_kw):
    """A participant screened eligible, consented, enrolled (and baseline done), via services."""
    import datetime

    from randomization import services

    site = site or trial.sites.order_by("code").first()
    today = datetime.date(2026, 11, 2)
    screening = services.screen(
        trial,
        site,
        by=by,
        answers=yes_to_all(trial),
        screened_on=today,
        consent_date=today,
        consent_form_version="v1",
        consent_obtained_by="Dr Who",
        **screen_kw,
    )
    participant = services.enrol(
        screening, by=by, factor_levels=levels if levels is not None else default_levels(trial)
    )
    if baseline:
        participant = services.record_baseline(participant, by=by, completed_on=today)
    return participant


def default_levels(trial):
    return {f.code: f.level_codes()[0] for f in trial.factors.filter(from_site=False)}


def add_criteria(trial):
    from imrtrial.models import EligibilityCriterion

    EligibilityCriterion.objects.create(
        trial=trial, code="adult", kind="inclusion", text="Aged 18 or older", order=0
    )
    EligibilityCriterion.objects.create(
        trial=trial, code="guardian", kind="exclusion", text="Has a guardian", order=1
    )


def write_form_entry(entry, values, *, by, reason="", complete=False):
    """Write a form entry's values directly, with its history (who, why), bypassing the
    entry service's checks: for tests of the history itself. Entry through the gate, with
    validation and the reason rule, is assessments.services.save_entry."""
    from imrtrial.audit import attribute

    if entry.pk:
        entry.version += 1
    entry.values = values
    if complete:
        entry.status = "complete"
    attribute(entry, by=by, reason=reason).save()
    return entry


def make_signature(participant, visit=None, *, by, password="correct-horse-battery-staple"):
    """A site investigator's signature of the visit (None: the casebook), through the real
    services: the password (and the authenticator's code, when `by` has one) checked again."""
    from django.test import RequestFactory

    from signoff import services

    token = ""
    if services.needs_code(by):
        token = totp_code(by.totpdevice_set.filter(confirmed=True).first())
    proof = services.reauthenticate(RequestFactory().post("/"), by, password, token)
    seen = services.current_digest(participant, visit)
    return services.sign(participant, visit, by=by, proof=proof, seen=seen)


def year_before_baseline(participant):
    """(first, last) day of the year before the participant's baseline: the period of the
    Dutch hospitalisation dataset's first row (registers.presets)."""
    import datetime

    day = participant.baseline_completed_on
    return day - datetime.timedelta(days=365), day - datetime.timedelta(days=1)


def register_file(dataset, rows, *, header=None):
    """A register CSV of `dataset` (bytes): a row per tuple (key, start, end, *values)."""
    lines = [",".join(header or dataset.columns)]
    lines += [",".join(str(cell) for cell in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def import_register_rows(dataset, rows, *, by, reason="hospital records"):
    """Check and import a register file through the real services; the batch."""
    from registers import checking, services

    report = checking.check_file(dataset, register_file(dataset, rows), "records.csv")
    assert report.ok, (report.file_problems, report.malformed, report.unmatched, report.duplicates)
    return services.import_rows(report, by=by, reason=reason)
