"""Every e-mail the project sends goes through here, and asks one check when it goes out.

Contract:
- `refusal(user, trial, site, rule)` is the send-time check: it asks imrtrial.access afresh
  whether the recipient still holds a role that receives this mail at this site and, for mail
  that reveals allocation (an arm, an IMR group or session), whether they are still unblinded
  there. It is asked when a message is delivered, not only when it was queued, as the export
  task asks the gate again when it builds: a role withdrawn in between silences the mail.
- Digests from an outbox table (the visit and the attendance reminders): an outbox model has
  recipient, day, sent_at, dropped_at, attempts and last_error. `send_pending` sends one digest
  per (recipient, day) with pending lines; `claim` takes the lines (SELECT ... FOR UPDATE SKIP
  LOCKED, inside the transaction `send_digest` opens) and returns them as `Line`s, or nothing
  when another sender holds them. Each line is checked on its own: a refused line is kept,
  marked dropped with the reason in last_error, and never sent or retried; the digest is
  `render`ed from the lines that pass. Lines are marked sent in the same transaction, only after
  the mail server accepted the message; any failure leaves them pending with the error counted.
  A digest may add `check(recipient, lines)` for what a line is about beyond its rule (the
  query digest asks, query by query, whether the recipient may still answer it).
- Single notices (the allocation notice, an invitation): `send_each` mails one message to each
  user who passes the check at that moment; a refusal is logged, as there is no line to mark.
- Every message is written in its recipient's language (imrtrial.i18n.language_for: their
  preference, else the trial's language): a digest's `render` and a notice's `message` are
  called under translation.override of it, whatever the language of the request that queued it.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail, send_mass_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation

from . import access
from .i18n import language_for, read_preferences, with_languages
from .models import Trial

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    """What the recipient of a kind of mail must hold, at the site the mail is about."""

    perms: tuple[str, ...]  # any one of these: the mark of the roles this mail is for
    reveals_allocation: bool  # names an arm, an IMR group or a session


@dataclass(frozen=True)
class Line:
    """One claimed outbox line: where it is about, the rule its recipient must pass, and what
    the digest shows of it."""

    pk: int
    trial_id: int
    site_id: int
    rule: Rule
    shows: tuple


def refusal(user, trial, site, rule):
    """Why `user` may not receive mail under `rule` about `site` of `trial` now; "" if they may.

    Asked at send time, with the user's grants read again from the database."""
    if not user.is_active:
        return "Not sent: the recipient's account is no longer active."
    access.forget(user)
    if not any(access.has(user, perm, trial, site) for perm in rule.perms):
        return "Not sent: the recipient no longer holds a role that receives this at this site."
    if rule.reveals_allocation and not access.may_see_allocation(user, trial, site):
        return "Not sent: the recipient is no longer unblinded at this site."
    return ""


def send_each(users, message, *, trial, site, rule):
    """Mail one message to each of `users` who passes the check now; returns how many went.
    `message()` returns (subject, body); it is called in each recipient's language (once per
    language)."""
    by_language = defaultdict(set)
    users = list({u.pk: u for u in users}.values())
    read_preferences(users)
    for user in users:
        if reason := refusal(user, trial, site, rule):
            logger.info("%s to user %s: %s", getattr(message, "__name__", "mail"), user.pk, reason)
        elif user.email:
            by_language[language_for(user, trial)].add(user.email)
    messages = []
    for language, addresses in sorted(by_language.items()):
        with translation.override(language):
            subject, body = message()
            subject, body = str(subject), str(body)
        messages += [(subject, body, settings.DEFAULT_FROM_EMAIL, [a]) for a in sorted(addresses)]
    return send_mass_mail(messages, fail_silently=False) if messages else 0


def pending(model):
    """Lines neither sent nor dropped."""
    return model.objects.filter(sent_at__isnull=True, dropped_at__isnull=True)


def send_pending(model, claim, render, *, limit=500, check=None):
    """(digests sent, digests failed). `check(recipient, lines) -> {line pk: reason}` refuses
    lines on what they are about, beyond their rule (asked after it, at send time too)."""
    keys = list(
        pending(model)
        .values_list("recipient_id", "day")
        .distinct()
        .order_by("day", "recipient_id")[:limit]
    )
    sent = failed = 0
    for recipient_id, day in keys:
        try:
            sent += send_digest(model, claim, render, recipient_id, day, check=check)
        except Exception as exc:  # the mail server said no or is unreachable: keep for later
            failed += 1
            logger.warning(
                "%s digest to user %s for %s failed: %s", model.__name__, recipient_id, day, exc
            )
            pending(model).filter(recipient_id=recipient_id, day=day).update(
                attempts=F("attempts") + 1, last_error=str(exc)[:300]
            )
    return sent, failed


@transaction.atomic
def send_digest(model, claim, render, recipient_id, day, *, check=None):
    # With their language preference, read in the same query (imrtrial.i18n.with_languages).
    recipient = with_languages(get_user_model().objects).get(pk=recipient_id)
    lines = claim(recipient, day)
    if not lines:
        return 0  # another sender holds these lines
    trials = Trial.objects.in_bulk({line.trial_id for line in lines})
    verdicts, kept, dropped = {}, [], defaultdict(list)
    for line in lines:
        key = (line.trial_id, line.site_id, line.rule)
        if key not in verdicts:
            verdicts[key] = refusal(recipient, trials[line.trial_id], line.site_id, line.rule)
        if reason := verdicts[key]:
            dropped[reason].append(line.pk)
        else:
            kept.append(line)
    if check and kept:
        refused = check(recipient, kept)
        for line in kept:
            if line.pk in refused:
                dropped[refused[line.pk]].append(line.pk)
        kept = [line for line in kept if line.pk not in refused]
    for reason, ids in dropped.items():
        logger.info("%s lines %s to user %s: %s", model.__name__, ids, recipient_id, reason)
        model.objects.filter(pk__in=ids).update(dropped_at=timezone.now(), last_error=reason)
    if not kept:
        return 0
    ids = [line.pk for line in kept]
    if not recipient.email:
        model.objects.filter(pk__in=ids).update(
            attempts=F("attempts") + 1, last_error="The recipient has no e-mail address."
        )
        return 0
    with translation.override(language_for(recipient, trials[kept[0].trial_id])):
        subject, body = render(recipient, day, kept)
        subject, body = str(subject), str(body)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient.email])
    model.objects.filter(pk__in=ids).update(sent_at=timezone.now())
    return 1
