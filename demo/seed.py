"""The demo trial: a running Danish IMR trial with two of every role that needs two, participants
in every state, IMR groups with sessions and a fidelity consensus; and the file of its logins.

Everything is made through the services the pages call (screening, enrolment, randomization,
form entry and reconciliation, groups, sessions, fidelity ratings, two-factor enrolment), so the
data are what the product itself would make, with their history and access checks. The one
exception is the demo's clock: no service writes the past, so after the services have run,
`_backdate` moves the dates of some participants (enrolment, baseline, randomization, their visits)
back by whole days, the only direct writes here, so that visits are overdue and IMR groups have
weeks of sessions behind them.

Contract: `seed(logins_path)` runs in one transaction and refuses (AlreadySeeded) when the demo
trial exists; `reset_passwords(logins_path)` gives every demo user a new password and keeps their
two-factor secrets. Both write the logins file with mode 600 and return the logins. E-mail made
while seeding (the facilitators' allocation notices) is kept in memory and counted, not printed.
"""

import base64
import contextlib
import datetime
import logging
import os
import random
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone
from django_otp.oath import hotp

from assessments import registry
from assessments import services as crf
from assessments.models import FormEntry, Visit
from fidelity import rules as fidelity_rules
from fidelity import services as imr
from fidelity.models import Attendance, FidelityAssessment, Module
from imrtrial import twofactor
from imrtrial.models import Membership, Participant, Role, Trial
from imrtrial.trialconfig import load_trial
from randomization import services as desk
from randomization.models import Allocation, IdentifyingDetails

DEMO_TRIAL = "danish-imr"
PRESET = "danish"
GROUP_SITE = "ballerup"  # the facilitators' centre, where the IMR groups meet
DONE = 3  # participants whose baseline visit is done

# (username, role, site code or None for every site of the trial). Two assessors for double
# data entry, three facilitators (a group has two or three), two fidelity raters for a consensus.
USERS = (
    ("demo-trial-admin", Role.TRIAL_ADMIN, None),
    ("demo-coordinator", Role.COORDINATOR, None),
    ("demo-assessor", Role.ASSESSOR, None),
    ("demo-assessor-2", Role.ASSESSOR, None),
    ("demo-facilitator", Role.FACILITATOR, GROUP_SITE),
    ("demo-facilitator-2", Role.FACILITATOR, GROUP_SITE),
    ("demo-facilitator-3", Role.FACILITATOR, GROUP_SITE),
    ("demo-fidelity-rater", Role.FIDELITY_RATER, None),
    ("demo-fidelity-rater-2", Role.FIDELITY_RATER, None),
    ("demo-data-manager", Role.DATA_MANAGER, None),
    ("demo-statistician", Role.STATISTICIAN, None),
    ("demo-key-holder", Role.KEY_HOLDER, None),
    ("demo-monitor", Role.MONITOR, None),
    ("demo-investigator", Role.INVESTIGATOR, None),
    ("demo-case-manager", Role.CASE_MANAGER, GROUP_SITE),
)


class AlreadySeeded(Exception):
    """The demo trial exists; seeding twice would duplicate people and groups."""


@dataclass
class Login:
    username: str
    password: str
    role: str
    where: str
    secret: str = ""  # base32 TOTP secret, for users who sign in with two factors
    otpauth: str = ""


@dataclass
class Seeded:
    logins: list
    path: Path
    notices: int = 0
    pointers: list = field(default_factory=list)


@contextlib.contextmanager
def _quiet_task_log():
    """Eager Celery tasks (make run) log a line each; the seed's would bury its own output."""
    logger = logging.getLogger("celery.app.trace")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def default_logins_path():
    from django.conf import settings

    return Path(settings.BASE_DIR) / "demo-logins.txt"


# --- Entry points -------------------------------------------------------------------------


def seed(logins_path):
    """Build the demo trial and write its logins. Raises AlreadySeeded, writing nothing."""
    if Trial.objects.filter(key=DEMO_TRIAL).exists():
        raise AlreadySeeded(DEMO_TRIAL)
    with (
        override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
        _quiet_task_log(),
    ):
        mail.outbox = []
        with transaction.atomic():
            if Trial.objects.select_for_update().filter(key=DEMO_TRIAL).exists():
                raise AlreadySeeded(DEMO_TRIAL)  # a second seed_demo running at the same time
            trial = load_trial(PRESET)
            trial.status = Trial.Status.OPEN
            trial.save(update_fields=["status"])
            users, logins = _staff(trial)
            pointers = _story(trial, users)
            logins = [_with_second_factor(login, users[login.username]) for login in logins]
        notices = len(mail.outbox)
        mail.outbox = []
    path = write_logins(logins_path, logins)
    return Seeded(logins=logins, path=path, notices=notices, pointers=pointers)


@transaction.atomic
def reset_passwords(logins_path):
    """New passwords for every demo user; two-factor secrets are kept (enrolled if missing)."""
    User = get_user_model()
    logins = []
    for username, role, site_code in USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            continue
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
        login = Login(username, password, role.label, _where(site_code))
        logins.append(_with_second_factor(login, user))
    path = write_logins(logins_path, logins)
    return Seeded(logins=logins, path=path)


# --- Staff --------------------------------------------------------------------------------


def _where(site_code):
    return f"site {site_code}" if site_code else "all sites"


def _staff(trial):
    User = get_user_model()
    users, logins = {}, []
    for username, role, site_code in USERS:
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user(
            username=username,
            password=password,
            first_name="Demo",
            last_name=username.removeprefix("demo-").replace("-", " ").title(),
            email=f"{username}@example.org",
        )
        site = trial.sites.get(code=site_code) if site_code else None
        Membership.objects.create(user=user, trial=trial, site=site, role=role)
        users[username] = user
        logins.append(Login(username, password, role.label, _where(site_code)))
    return users, logins


def _with_second_factor(login, user):
    """Enrol an authenticator for a user whose role needs two factors, through the enrolment
    services, and put its secret in the login. The code confirming the enrolment is the one of
    the previous 30-second step (accepted within the tolerance of one step), so the code an app
    shows now is still unspent for the tester's first sign-in."""
    if not twofactor.requires_two_factor(user):
        return login
    device = user.totpdevice_set.filter(confirmed=True).first()
    if device is None:
        device = twofactor.pending_device(user)
        step = (int(time.time()) - device.t0) // device.step
        code = f"{hotp(device.bin_key, step - 1, digits=device.digits):0{device.digits}d}"
        device = twofactor.confirm_enrolment(user, code)
        if device is None:
            raise RuntimeError(f"two-factor enrolment of {user.get_username()} failed")
    login.secret = base64.b32encode(device.bin_key).decode()
    login.otpauth = device.config_url
    return login


# --- The story: participants, visits, groups, fidelity --------------------------------------


def _answers(trial, eligible):
    criteria = list(trial.criteria.order_by("pk"))
    answers = {c.code: c.kind == "inclusion" for c in criteria}
    if not eligible:
        exclusion = [c for c in criteria if c.kind == "exclusion"]
        answers[exclusion[0].code] = True
    return answers


def _screen(trial, site, coordinator, n, *, eligible=True, consent=True, day):
    return desk.screen(
        trial,
        site,
        by=coordinator,
        answers=_answers(trial, eligible),
        screened_on=day,
        referral_source="Case manager",
        full_name=f"Demo Caller {n}",
        phone=f"+45 20 00 {n:02d} {n:02d}",
        consent_date=day if consent and eligible else None,
        consent_form_version="1.0" if consent and eligible else "",
        consent_obtained_by="Demo Coordinator" if consent and eligible else "",
    )


def _enrolled(trial, site, coordinator, n, day):
    screening = _screen(trial, site, coordinator, n, day=day)
    # Half of them agreed to links to their own questionnaires (selfreport): the visit page
    # offers to send one (printed to the console by `make run`'s text-message sender).
    IdentifyingDetails.objects.filter(screening=screening).update(
        email=f"caller{n}@example.org",
        birth_year=1960 + n % 35,
        agreed_to_links=n % 2 == 0,
    )
    diagnosis = "bipolar" if n % 3 == 0 else "schizophrenia"
    return desk.enrol(screening, by=coordinator, factor_levels={"diagnosis": diagnosis})


def _raw_values(instrument, rng):
    """Plausible raw text for every required item of an instrument, as typed at the keyboard."""
    raw = {}
    for item in instrument.items:
        if not item.required:
            continue
        if item.type == "choice":
            raw[item.code] = str(rng.choice([v for v, _ in item.choices]))
        elif item.type in ("integer", "decimal"):
            low, high = int(item.min), int(item.max)
            middle = (low + high) // 2
            spread = max(1, (high - low) // 4)
            raw[item.code] = str(min(high, max(low, middle + rng.randint(-spread, spread))))
        elif item.type == "boolean":
            raw[item.code] = "no"
        elif item.type == "date":
            raw[item.code] = timezone.localdate().isoformat()
        else:
            raw[item.code] = "Nothing to note."
    return raw


def _baseline(participant):
    return participant.visits.get(timepoint__code="baseline")


def _enter_form(visit, code, *, assessors, staff, data_manager, rng, differ=None, reconcile=True):
    """One form of the visit as the product makes it: an interview or staff rating entered once;
    a paper form entered twice by two assessors and, when `reconcile`, reconciled by the data
    manager. `differ`: an item the second entry types differently (a discrepancy)."""
    instrument = registry.get(code)
    raw = _raw_values(instrument, rng)
    kind = crf.entry_kind_for(instrument)
    if instrument.rater == "staff":
        crf.save_entry(visit, code, raw, by=staff, kind=FormEntry.Kind.SINGLE, complete=True)
        return
    if kind == FormEntry.Kind.SINGLE:
        crf.save_entry(visit, code, raw, by=assessors[0], kind=kind, complete=True)
        return
    crf.save_entry(visit, code, raw, by=assessors[0], kind=FormEntry.Kind.FIRST, complete=True)
    second = dict(raw)
    if differ:
        item = next(i for i in instrument.items if i.code == differ)
        second[differ] = str(int(item.max) if raw[differ] != str(int(item.max)) else int(item.min))
    crf.save_entry(visit, code, second, by=assessors[1], kind=FormEntry.Kind.SECOND, complete=True)
    if not reconcile:
        return
    chosen = {c: raw[c] for c, _, _ in crf.discrepancies(visit.participant, code, "baseline")}
    reasons = dict.fromkeys(chosen, "checked against the paper form")
    crf.reconcile(visit, code, chosen, by=data_manager, reasons=reasons)


def _complete_baseline(participant, users, rng):
    visit = _baseline(participant)
    for code in visit.timepoint.instruments:
        _enter_form(
            visit,
            code,
            assessors=[users["demo-assessor"], users["demo-assessor-2"]],
            staff=users["demo-facilitator"],
            data_manager=users["demo-data-manager"],
            rng=rng,
        )


def _backdate(participant, days):
    """The demo's clock: as if this participant had been enrolled (and randomized, and their
    forms entered) `days` days ago. Moves dates only, by the same number of days."""
    delta = datetime.timedelta(days=days)
    participant.refresh_from_db()
    Participant.objects.filter(pk=participant.pk).update(
        created_at=participant.created_at - delta,
        baseline_completed_on=participant.baseline_completed_on
        and participant.baseline_completed_on - delta,
        randomized_on=participant.randomized_on and participant.randomized_on - delta,
    )
    Allocation.objects.filter(participant=participant).update(allocated_at=timezone.now() - delta)
    for visit in Visit.objects.filter(participant=participant):
        visit.target_date -= delta
        visit.window_start -= delta
        visit.window_end -= delta
        if visit.completed_on:
            visit.completed_on -= delta
        visit.save(update_fields=["target_date", "window_start", "window_end", "completed_on"])
    participant.refresh_from_db()
    return participant


def _story(trial, users):
    """Participants in every state, two IMR groups with sessions, one fidelity consensus.
    Returns pointers for the tester: where each two-person workflow can be tried."""
    today = timezone.localdate()
    rng = random.Random(20261129)
    coordinator = users["demo-coordinator"]
    sites = {s.code: s for s in trial.sites.all()}
    others = [s for code, s in sorted(sites.items()) if code != GROUP_SITE]
    n = iter(range(1, 1000))

    # Screened only: eligible, awaiting consent; excluded: an exclusion criterion applies.
    for site in others:
        _screen(trial, site, coordinator, next(n), consent=False, day=today - datetime.timedelta(3))
        _screen(trial, site, coordinator, next(n), eligible=False, day=today)

    # Enrolled, baseline visit open (due): one left for the tester's double entry, one whose
    # paper CSQ-8 both assessors entered, with a discrepancy the data manager has to reconcile.
    due = _enrolled(trial, others[0], coordinator, next(n), today)
    awaiting = _enrolled(trial, others[1], coordinator, next(n), today)
    _enter_form(
        _baseline(awaiting),
        "csq8",
        assessors=[users["demo-assessor"], users["demo-assessor-2"]],
        staff=None,
        data_manager=None,
        rng=rng,
        differ="c3",
        reconcile=False,
    )
    # Enrolled 75 days ago, baseline never done: overdue.
    overdue = _backdate(
        _enrolled(trial, others[0], coordinator, next(n), today - datetime.timedelta(75)), 75
    )

    # Randomized at the group site until the IMR groups can be filled (the arm is drawn by the
    # concealed sequence, so how many that takes is not known in advance), and at the others.
    randomized, intervention = [], []
    while (len(intervention) < 4 or len(randomized) < DONE + 2) and len(randomized) < 24:
        site = sites[GROUP_SITE]
        participant = _enrolled(trial, site, coordinator, next(n), today)
        participant = desk.record_baseline(participant, by=coordinator, completed_on=today)
        allocation = desk.randomize(participant, by=coordinator)
        randomized.append(participant)
        if allocation.arm.is_intervention:
            intervention.append(participant)
    # Three have their baseline forms entered (done: 13 forms, four of them paper forms entered
    # twice and reconciled); the staff-rated forms are the facilitators', who work at the group
    # site. The others' forms wait: one visit the data manager marks missed, the rest overdue.
    for participant in randomized[:DONE]:
        _complete_baseline(participant, users, rng)
    lagging = []
    for site in others:
        participant = _enrolled(trial, site, coordinator, next(n), today)
        desk.randomize(participant, by=coordinator, baseline_completed_on=today)
        lagging.append(participant)
    randomized = [_backdate(p, 70) for p in randomized]
    lagging = [_backdate(p, 70) for p in lagging]
    intervention = [p for p in randomized if p.pk in {q.pk for q in intervention}]
    missed = randomized[DONE]
    crf.mark_missed(
        _baseline(missed), by=users["demo-data-manager"], reason="Could not be reached in time"
    )

    groups = _groups(trial, sites[GROUP_SITE], users, intervention, today)
    return [
        f"Double data entry: {due.participant_id}, baseline, a paper form (e.g. CSQ-8): "
        "first entry by demo-assessor, second by demo-assessor-2, then demo-data-manager "
        "reconciles.",
        f"Awaiting reconciliation: {awaiting.participant_id}, baseline CSQ-8 (demo-data-manager).",
        "Overdue baseline visits: "
        + ", ".join(p.participant_id for p in [overdue, *randomized[DONE + 1 :], *lagging])
        + f"; missed: {missed.participant_id}; done: "
        + ", ".join(p.participant_id for p in randomized[:DONE])
        + ".",
        f"IMR groups at {sites[GROUP_SITE].name}: {', '.join(g.name for g in groups)} "
        "(demo-facilitator logs this week's session).",
        f"Fidelity: {groups[1].name} has no assessment yet (demo-fidelity-rater and "
        "demo-fidelity-rater-2 rate it; one records the consensus).",
    ]


def _groups(trial, site, users, members, today):
    facilitators = [users[f"demo-facilitator{s}"] for s in ("", "-2", "-3")]
    lead = facilitators[0]
    monday = imr.create_group(
        trial,
        site,
        by=lead,
        name="Monday group",
        facilitators=facilitators,
        start_date=today - datetime.timedelta(days=56),
        planned_sessions=36,
        capacity=10,
        schedule="Mondays 10:00",
    )
    thursday = imr.create_group(
        trial,
        site,
        by=lead,
        name="Thursday group",
        facilitators=facilitators[:2],
        start_date=today - datetime.timedelta(days=35),
        planned_sessions=36,
        capacity=10,
        schedule="Thursdays 14:00",
    )
    half = (len(members) + 1) // 2
    plan = [(monday, members[:half], 8), (thursday, members[half:], 5)]
    modules = list(Module.values)
    statuses = [Attendance.Status.ATTENDED] * 6 + [
        Attendance.Status.ABSENT,
        Attendance.Status.EXCUSED,
    ]
    rng = random.Random(11)
    for group, people, weeks in plan:
        for participant in people:
            imr.add_member(group, participant, by=lead, joined_on=group.start_date)
        for week in range(weeks):
            imr.log_session(
                group,
                by=lead,
                date=group.start_date + datetime.timedelta(weeks=week),
                modules=[modules[week // 3 % len(modules)]],
                duration_minutes=60,
                facilitators_present=list(group.facilitators.all())[:2],
                attendance={p: rng.choice(statuses) for p in people},
            )
    # The mid-way fidelity assessment of the Monday group: two raw ratings and the consensus.
    raters = [users["demo-fidelity-rater"], users["demo-fidelity-rater-2"]]
    assessment = imr.create_assessment(
        monday,
        by=raters[0],
        kind=FidelityAssessment.Kind.MIDWAY,
        date=today - datetime.timedelta(days=7),
        data_sources=[
            FidelityAssessment.DataSource.OBSERVATION,
            FidelityAssessment.DataSource.PROGRESS_NOTES,
        ],
    )
    items = fidelity_rules.ITEMS_BY_KIND[assessment.kind]
    first = {i: 3 + i % 3 for i in items}
    second = {i: 3 + (i + 1) % 3 for i in items}
    imr.submit_rating(assessment, by=raters[0], scores=first)
    imr.submit_rating(assessment, by=raters[1], scores=second)
    consensus = {i: max(first[i], second[i]) for i in items}
    imr.submit_consensus(
        assessment, by=raters[0], scores=consensus, report="Agreed after discussing items 2 and 7."
    )
    return [monday, thursday]


# --- The logins file --------------------------------------------------------------------------

HEADER = """\
# imrtrial demo logins, written by `manage.py seed_demo` on {when}.
# These are secrets: the file is readable by you alone (mode 600); delete it after the demo.
# Sign in at http://127.0.0.1:8000/login/ with a username and password below. Users with a
# totp_secret sign in with two factors, as in production: after the password the site asks
# for the 6-digit code of an authenticator app. Add the account to any TOTP app (Aegis,
# FreeOTP, Google Authenticator, 1Password...) from its otpauth address (most apps read it as
# a QR code; `qrencode -t ansiutf8 'otpauth://...'` draws one in a terminal) or type the
# secret as a time-based key; `oathtool --totp -b SECRET` prints the current code.
# The format is INI: one [section] per user.
"""


def render_logins(logins):
    when = timezone.localtime().strftime("%Y-%m-%d %H:%M %Z")
    parts = [HEADER.format(when=when)]
    for login in logins:
        lines = [
            f"[{login.username}]",
            f"role = {login.role}",
            f"where = {login.where}",
            f"password = {login.password}",
            f"two_factor = {'required' if login.secret else 'optional'}",
        ]
        if login.secret:
            lines += [f"totp_secret = {login.secret}", f"otpauth = {login.otpauth}"]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def write_logins(path, logins):
    """Write the logins to `path` with mode 600: made under another name with that mode from the
    start (never readable by others, not even for a moment), then moved over any older file."""
    path = Path(path).resolve()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(render_logins(logins))
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
