"""The trial administration's acts. Contract: each function asks the gate (imrtrial.access)
whether `by` may act, refuses with `Refused` (nothing saved) when not, or when a reason is
missing, or when the protocol no longer allows the change (sites, windows and reminders only
while the trial is in set-up); otherwise it saves, writes the audit (the row's own history with
the reason, and an AdminEvent) in one transaction, and returns what it changed.

A withdrawn role or a deactivated account holds from the user's very next request: the gate
reads memberships afresh on every request (access.forget drops what this request cached).

Invitations: the token is 256 random bits, mailed once and stored only as its SHA-256; a link
is spent by the first password set with it (under a row lock, so two tabs cannot both use it)
and expires after INVITATION_DAYS.
"""

import datetime
import logging
import secrets
import smtplib

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from imrtrial import access, outbox
from imrtrial.audit import attribute
from imrtrial.errors import Refused
from imrtrial.i18n import stored
from imrtrial.models import Membership, Perm, Role, Site, Timepoint, Trial

from .models import AdminEvent, Invitation, token_digest

logger = logging.getLogger(__name__)

INVITATION_DAYS = 7
# simple-history keeps a change reason of up to 100 characters; the AdminEvent keeps it whole.
HISTORY_REASON_LENGTH = 100
# Any role of the trial receives its invitation: the invitee holds the role it was sent for.
INVITATION_RULE = outbox.Rule(perms=tuple(Perm), reveals_allocation=False)
# Windows and reminders within these bounds (days): beyond them a value is a typing slip.
MAX_DAYS = 3650

REMINDER_FIELDS = (
    "reminder_lead_days",
    "escalation_after_days",
    "query_reminder_days",
    "attendance_reminder_after_days",
)
WINDOW_FIELDS = ("window_before_days", "window_after_days")
SITE_FIELDS = ("name", "kind", "active")


def _reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise Refused(_("Give the reason: it is kept in the audit trail."))
    return reason


def _history_reason(reason):
    return reason[:HISTORY_REASON_LENGTH]


def _event(trial, action, target, reason, *, by, site=None, changes=None):
    return AdminEvent.objects.create(
        trial=trial,
        site=site,
        action=action,
        target=str(target)[:200],
        changes=changes or {},
        reason=reason,
        by=by,
    )


def _require_configure(by, trial):
    if not access.may_configure_trial(by, trial):
        raise Refused(_("Only a trial administrator of every site changes the trial's settings."))


def _require_setup(trial):
    if trial.status != Trial.Status.SETUP:
        raise Refused(
            _(
                "The trial is no longer in set-up: the protocol fixes this now. "
                "A change needs a protocol amendment and a new configuration."
            )
        )


def _require_may_grant(by, trial, role, site):
    if not access.may_grant_role(by, trial, role, site):
        raise Refused(
            _(
                "The role %(role)s is unblinded: only an administrator who is unblinded at"
                " %(site)s grants it (a blinded administrator cannot give an account unblinded"
                " access)."
            )
            % {"role": role.label, "site": _site_name(site)}
        )


def _site_label(site):
    """Where a role holds, as the audit keeps it (in English, as all stored text)."""
    return site.name if site else "all sites"


def _site_name(site):
    """Where a role holds, in the reader's language."""
    return site.name if site else _("all sites")


# --- Roles -------------------------------------------------------------------------------------


@transaction.atomic
def grant_role(target, trial, role, site, *, by, reason):
    """Give `target` `role` at `site` (None: every site). Re-activates a withdrawn membership."""
    reason = _reason(reason)
    role = Role(role)
    if site is not None and site.trial_id != trial.pk:
        raise Refused(_("That site is not one of this trial's."))
    if target.pk == by.pk:
        raise Refused(_("Nobody grants themselves a role: ask another trial administrator."))
    if not access.may_change_roles_of(by, target, trial):
        raise Refused(_("You may not change this person's roles."))
    if not access.may_manage_staff_at(by, trial, site):
        raise Refused(_("You do not manage the staff of %(site)s.") % {"site": _site_name(site)})
    _require_may_grant(by, trial, role, site)
    if not target.is_active:
        raise Refused(_("This account is deactivated."))
    membership = (
        Membership.objects.select_for_update()
        .filter(user=target, trial=trial, site=site, role=role)
        .first()
    )
    if membership is not None and membership.active:
        raise Refused(
            _("%(user)s already holds this role at %(site)s.")
            % {"user": target.get_username(), "site": _site_name(site)}
        )
    if membership is None:
        membership = Membership(user=target, trial=trial, site=site, role=role)
    membership.active = True
    attribute(membership, by=by, reason=_history_reason(f"granted: {reason}"))
    try:
        with transaction.atomic():
            membership.save()
    except IntegrityError:  # granted in another request meanwhile
        raise Refused(_("This role was granted meanwhile.")) from None
    _event(
        trial,
        AdminEvent.Action.GRANTED,
        f"{target.get_username()}: {stored(role.label)} ({_site_label(site)})",
        reason,
        by=by,
        site=site,
    )
    access.forget(target)
    return membership


@transaction.atomic
def withdraw_role(membership, *, by, reason):
    """End a membership: from the holder's next request on, the gate no longer counts it."""
    reason = _reason(reason)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    target, trial, site = membership.user, membership.trial, membership.site
    if target.pk == by.pk:
        raise Refused(_("Nobody withdraws their own role: ask another trial administrator."))
    if not access.may_change_roles_of(by, target, trial):
        raise Refused(_("You may not change this person's roles."))
    if not access.may_manage_staff_at(by, trial, site):
        raise Refused(_("You do not manage the staff of %(site)s.") % {"site": _site_name(site)})
    if not membership.active:
        raise Refused(_("This role was already withdrawn."))
    membership.active = False
    attribute(membership, by=by, reason=_history_reason(f"withdrawn: {reason}"))
    membership.save(update_fields=["active"])
    _event(
        trial,
        AdminEvent.Action.WITHDRAWN,
        f"{target.get_username()}: {stored(membership.get_role_display())} ({_site_label(site)})",
        reason,
        by=by,
        site=site,
    )
    access.forget(target)
    return membership


@transaction.atomic
def deactivate_account(target, trial, *, by, reason):
    """Switch off `target`'s account: no sign-in, and the gate answers nothing for them from
    their next request (an inactive user has no grants)."""
    reason = _reason(reason)
    target = get_user_model().objects.select_for_update().get(pk=target.pk)
    if target.pk == by.pk:
        raise Refused(_("Nobody deactivates their own account."))
    if not target.is_active:
        raise Refused(_("This account is already deactivated."))
    if not access.may_deactivate(by, target):
        raise Refused(
            _(
                "Only a trial administrator of every site of each of this person's trials may "
                "deactivate their account."
            )
        )
    target.is_active = False
    target.save(update_fields=["is_active"])
    _event(trial, AdminEvent.Action.DEACTIVATED, target.get_username(), reason, by=by)
    access.forget(target)
    return target


# --- Invitations -------------------------------------------------------------------------------


def _new_token():
    return secrets.token_urlsafe(32)


def _username_for(email):
    base = email.split("@")[0][:100] or "staff"
    User = get_user_model()
    name, n = base, 1
    while User.objects.filter(username__iexact=name).exists():
        n += 1
        name = f"{base}{n}"
    return name


def _one_invitation_at_a_time(email):
    """Two invitations of one address (a double click, two administrators) wait for each other
    until the first commits, so the second finds its account: e-mail addresses are not unique
    in the user table, which the check in invite() stands in for."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [email.lower()])


@transaction.atomic
def invite(trial, *, email, first_name, last_name, role, site, by, reason, link_for):
    """Make an account for `email` holding `role` at `site` (None: every site), and mail it a
    one-time link (`link_for(token)` makes the address) to set a password. Returns the
    invitation; the mail goes when the transaction commits."""
    reason = _reason(reason)
    role = Role(role)
    email = get_user_model().objects.normalize_email(email.strip())
    if not email:
        raise Refused(_("Give the e-mail address."))
    _one_invitation_at_a_time(email)
    if get_user_model().objects.filter(email__iexact=email).exists():
        raise Refused(
            _("Someone with this e-mail address has an account: grant the role on their page.")
        )
    if site is not None and site.trial_id != trial.pk:
        raise Refused(_("That site is not one of this trial's."))
    if not access.may_manage_staff_at(by, trial, site):
        raise Refused(_("You do not manage the staff of %(site)s.") % {"site": _site_name(site)})
    _require_may_grant(by, trial, role, site)
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=_username_for(email),
                email=email,
                first_name=first_name.strip()[:150],
                last_name=last_name.strip()[:150],
            )  # no password: it has none until the invitation is used
    except IntegrityError:  # the username was taken meanwhile by another invitation
        raise Refused(_("Another account was made meanwhile: send the invitation again.")) from None
    membership = Membership(user=user, trial=trial, site=site, role=role)
    attribute(membership, by=by, reason=_history_reason(f"invited: {reason}"))
    membership.save()
    _event(
        trial,
        AdminEvent.Action.INVITED,
        f"{user.get_username()} <{email}>: {stored(role.label)} ({_site_label(site)})",
        reason,
        by=by,
        site=site,
    )
    return _send_link(user, trial, site, by=by, link_for=link_for, role=role)


def _send_link(user, trial, site, *, by, link_for, role=None):
    """A new one-time link for `user`, mailed when the transaction commits; every earlier link
    of theirs stops working."""
    now = timezone.now()
    Invitation.objects.filter(user=user, used_at__isnull=True, expires_at__gt=now).update(
        expires_at=now
    )
    token = _new_token()
    invitation = Invitation.objects.create(
        user=user,
        trial=trial,
        token_hash=token_digest(token),
        created_by=by,
        expires_at=now + datetime.timedelta(days=INVITATION_DAYS),
    )
    link = link_for(token)

    def message():  # in the invitee's language (outbox.send_each)
        names = {
            "role": role.label if role else "",
            "trial": trial.name,
            "site": site.name if site else _("all sites"),
            "username": user.get_username(),
            "days": INVITATION_DAYS,
            "link": link,
        }
        if role:
            given = _("You have been given the role %(role)s in %(trial)s (%(site)s).") % names
        else:
            given = _("You have been given a role in %(trial)s (%(site)s).") % names
        body = (
            given
            + "\n\n"
            + ngettext(
                "Your username is %(username)s. Set your password with this link, within"
                " %(days)d day; it works once:",
                "Your username is %(username)s. Set your password with this link, within"
                " %(days)d days; it works once:",
                INVITATION_DAYS,
            )
            % names
            + f"\n\n{link}\n\n"
            + _("If you did not expect this message, ignore it.")
            + "\n"
        )
        return _("%(trial)s: set your password") % names, body

    def send():
        # After the commit: the account and the invitation stand whether or not the mail server
        # takes the message. A failure is told to the caller (mail_failed), who can send a new
        # link from the person's page, instead of a server error after the work was saved.
        try:
            outbox.send_each([user], message, trial=trial, site=site, rule=INVITATION_RULE)
        except (smtplib.SMTPException, OSError):
            logger.exception("The invitation of user %s was not mailed", user.pk)
            invitation.mail_failed = True

    invitation.mail_failed = False
    transaction.on_commit(send)
    return invitation


@transaction.atomic
def resend_invitation(target, trial, *, by, reason, link_for):
    """A new link for someone who has not set a password yet (theirs expired or was lost)."""
    reason = _reason(reason)
    target = get_user_model().objects.select_for_update().get(pk=target.pk)
    if not access.may_change_roles_of(by, target, trial):
        raise Refused(_("You may not invite this person."))
    if target.has_usable_password():
        raise Refused(_("This person has set a password already."))
    if not target.is_active:
        raise Refused(_("This account is deactivated."))
    sites = [m.site for m in Membership.objects.filter(user=target, trial=trial, active=True)]
    if not sites:
        raise Refused(_("This person holds no role in this trial: grant one first."))
    if not any(access.may_manage_staff_at(by, trial, site) for site in sites):
        raise Refused(_("You do not manage the staff of this person's sites."))
    _event(trial, AdminEvent.Action.INVITED, f"{target.get_username()}: new link", reason, by=by)
    site = sites[0] if len(sites) == 1 else None
    return _send_link(target, trial, site, by=by, link_for=link_for)


def invitation_for(token):
    """The usable invitation of `token`, or None (unknown, used, expired or account off)."""
    if not token or len(token) > 200:
        return None
    invitation = (
        Invitation.objects.select_related("user", "trial")
        .filter(token_hash=token_digest(token))
        .first()
    )
    if invitation is None or not invitation.is_usable():
        return None
    return invitation


@transaction.atomic
def accept_invitation(token, password):
    """Set the invited user's password and spend the link; returns the user. Refused when the
    link is unknown, used, or expired."""
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("user")
        .filter(token_hash=token_digest(token or ""))
        .first()
    )
    if invitation is None or not invitation.is_usable():
        raise Refused(
            _("This link is not valid any more. Ask your trial administrator for a new one.")
        )
    user = invitation.user
    user.set_password(password)
    user.save(update_fields=["password"])
    invitation.used_at = timezone.now()
    invitation.save(update_fields=["used_at"])
    return user


# --- Trial set-up ------------------------------------------------------------------------------


def _changes(obj, values, fields):
    return {
        f: [getattr(obj, f), values[f]]
        for f in fields
        if f in values and getattr(obj, f) != values[f]
    }


def _check_days(values, fields):
    for f in fields:
        if f in values and not 0 <= values[f] <= MAX_DAYS:
            raise Refused(_("Days must be between 0 and %(max)d.") % {"max": MAX_DAYS})


@transaction.atomic
def add_site(trial, *, code, name, kind, by, reason):
    reason = _reason(reason)
    trial = Trial.objects.select_for_update().get(pk=trial.pk)
    _require_configure(by, trial)
    _require_setup(trial)
    if Site.objects.filter(trial=trial, code=code).exists():
        raise Refused(_("The trial already has a site with the code %(code)s.") % {"code": code})
    site = Site.objects.create(trial=trial, code=code, name=name.strip(), kind=kind)
    _event(
        trial,
        AdminEvent.Action.SITE_ADDED,
        f"{site.name} ({site.code})",
        reason,
        by=by,
        site=site,
        changes={"code": [None, code], "name": [None, site.name], "kind": [None, kind]},
    )
    return site


@transaction.atomic
def change_site(site, *, by, reason, **values):
    """Name, kind and whether the site recruits. The code is fixed: stratification and the
    participants' records name it."""
    reason = _reason(reason)
    trial = Trial.objects.select_for_update().get(pk=site.trial_id)
    _require_configure(by, trial)
    _require_setup(trial)
    site = Site.objects.select_for_update().get(pk=site.pk)
    changes = _changes(site, values, SITE_FIELDS)
    if not changes:
        raise Refused(_("Nothing changed."))
    for f, (_old, new) in changes.items():
        setattr(site, f, new)
    site.save(update_fields=list(changes))
    _event(
        trial, AdminEvent.Action.SITE_CHANGED, site.name, reason, by=by, site=site, changes=changes
    )
    return site


@transaction.atomic
def change_window(timepoint, *, by, reason, **values):
    reason = _reason(reason)
    trial = Trial.objects.select_for_update().get(pk=timepoint.trial_id)
    _require_configure(by, trial)
    _require_setup(trial)
    _check_days(values, WINDOW_FIELDS)
    timepoint = Timepoint.objects.select_for_update().get(pk=timepoint.pk)
    changes = _changes(timepoint, values, WINDOW_FIELDS)
    if not changes:
        raise Refused(_("Nothing changed."))
    for f, (_old, new) in changes.items():
        setattr(timepoint, f, new)
    timepoint.save(update_fields=list(changes))
    _event(trial, AdminEvent.Action.WINDOW_CHANGED, timepoint.label, reason, by=by, changes=changes)
    return timepoint


@transaction.atomic
def change_reminders(trial, *, by, reason, **values):
    reason = _reason(reason)
    trial = Trial.objects.select_for_update().get(pk=trial.pk)
    _require_configure(by, trial)
    _require_setup(trial)
    _check_days(values, REMINDER_FIELDS)
    changes = _changes(trial, values, REMINDER_FIELDS)
    if not changes:
        raise Refused(_("Nothing changed."))
    for f, (_old, new) in changes.items():
        setattr(trial, f, new)
    # The reason is kept once, in the AdminEvent, which the audit trail masks by its author
    # (access.may_read_text); the trial's own history is shown unmasked.
    attribute(trial, by=by, reason="reminders changed")
    trial.save(update_fields=list(changes))
    _event(trial, AdminEvent.Action.REMINDERS_CHANGED, trial.name, reason, by=by, changes=changes)
    return trial


# --- Status: open and close (the database lock is assessments' own page and services) ----------

_STATUS_MOVES = {
    "open": (Trial.Status.SETUP, Trial.Status.OPEN, AdminEvent.Action.OPENED),
    "close": (Trial.Status.OPEN, Trial.Status.CLOSED, AdminEvent.Action.CLOSED),
}


def status_moves(trial):
    """The moves the trial's status allows now: ["open"] in set-up, ["close"] when open."""
    return [
        move for move, (before, _after, _action) in _STATUS_MOVES.items() if trial.status == before
    ]


@transaction.atomic
def change_status(trial, move, *, by, reason):
    reason = _reason(reason)
    trial = Trial.objects.select_for_update().get(pk=trial.pk)
    _require_configure(by, trial)
    if move not in _STATUS_MOVES:
        raise Refused(_("Choose to open or to close the trial."))
    before, after, action = _STATUS_MOVES[move]
    if trial.status != before:
        raise Refused(
            _("The trial is %(status)s: this change is not possible now.")
            % {"status": trial.get_status_display().lower()}
        )
    if move == "open" and not trial.sites.filter(active=True).exists():
        raise Refused(_("Add an active site before opening the trial."))
    trial.status = after
    attribute(trial, by=by, reason=move)  # its reason: the AdminEvent (see change_reminders)
    trial.save(update_fields=["status"])
    _event(trial, action, trial.name, reason, by=by)
    return trial
