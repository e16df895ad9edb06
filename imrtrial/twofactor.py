"""Two-factor sign-in (TOTP through django-otp): who must use it, the middleware that enforces it,
and the services that enrol, verify and reset devices.

The rule, written once (`requires_two_factor`): a user must pass a second factor when they hold,
in any trial, an active role whose group may see allocation-revealing data (`view_unblinded`),
release the allocation key (`release_allocation_key`) or configure the trial and its staff
(`manage_trial`), or when they are a Django administrator (is_staff or is_superuser). Anyone else
may enrol; once they have, they are asked for a code at every sign-in too, or the device would
guard nothing. Turning the rule off (TWO_FACTOR_REQUIRED=false, for load benchmarks) drops the
obligation, not that promise: an enrolled user is asked for the code all the same.

Contract of the services: a token is checked against one device under a row lock (two requests
cannot both spend the same code), django-otp's back-off refuses codes for 1, 2, 4, 8... seconds
after wrong ones, and every change to a device (enrolment, confirmation, each verification, an
administrator's reset with its reason) is kept by simple-history (imrtrial.models registers it,
without the secret).
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import access, i18n
from .audit import attribute
from .models import Membership, Perm, Trial
from .rowloader import CompiledOnce

# Holding any of these, in any trial, makes a second factor compulsory; so does
# view_unblinded_after_unblinding in a trial that is unblinded: anyone who can see allocations
# at that moment.
GUARDED_PERMISSIONS = (Perm.VIEW_UNBLINDED, Perm.RELEASE_ALLOCATION_KEY, Perm.MANAGE_TRIAL)
GUARDED_ONCE_UNBLINDED = (Perm.VIEW_UNBLINDED_AFTER_UNBLINDING,)

# What a user who must verify but has not yet may still reach (static files are served by
# WhiteNoise before any view, so they need no entry here).
OPEN_VIEWS = {"two_factor:verify", "two_factor:enrol", "logout"}


def _required_sql():
    """The rule as SQL over a row of the user table (`auth_user`), with its parameters: written
    once, and asked both of one user (the middleware, with the user's own row) and of a whole
    list (users_with_two_factor_status). Plain joins rather than the ORM's nested subqueries:
    PostgreSQL planned those in several milliseconds on every request."""
    user = get_user_model()._meta.db_table
    guarded = ", ".join(["%s"] * len(GUARDED_PERMISSIONS))
    once = ", ".join(["%s"] * len(GUARDED_ONCE_UNBLINDED))
    sql = f"""(
        "{user}"."is_staff" OR "{user}"."is_superuser" OR EXISTS (
            SELECT 1 FROM "{Membership._meta.db_table}" m
            JOIN "{Group._meta.db_table}" g ON g.name = m.role
            JOIN "{Group.permissions.through._meta.db_table}" gp ON gp.group_id = g.id
            JOIN "{Permission._meta.db_table}" p ON p.id = gp.permission_id
            JOIN "{ContentType._meta.db_table}" ct ON ct.id = p.content_type_id
            JOIN "{Trial._meta.db_table}" t ON t.id = m.trial_id
            WHERE m.user_id = "{user}"."id" AND m.active AND ct.app_label = %s
              AND (p.codename IN ({guarded})
                   OR (p.codename IN ({once}) AND t.unblinded_at IS NOT NULL))
        )
    )"""
    return sql, ("imrtrial", *GUARDED_PERMISSIONS, *GUARDED_ONCE_UNBLINDED)


def _enrolled_sql():
    user = get_user_model()._meta.db_table
    return (
        f'EXISTS (SELECT 1 FROM "{TOTPDevice._meta.db_table}" d '
        f'WHERE d.user_id = "{user}"."id" AND d.confirmed = %s)',
        (True,),
    )


def _with_status(users):
    """`users` annotated `required` (the rule) and `enrolled` (a confirmed device)."""
    return users.annotate(
        required=RawSQL(*_required_sql(), output_field=BooleanField()),
        enrolled=RawSQL(*_enrolled_sql(), output_field=BooleanField()),
    )


def requires_two_factor(user):
    """Must this user pass a second factor before any page? (The one place of the rule.)"""
    if not user.is_authenticated:
        return False
    return bool(
        _with_status(get_user_model().objects.filter(pk=user.pk, is_active=True))
        .values_list("required", flat=True)
        .first()
    )


def users_with_two_factor_status():
    """All users, annotated `required` (the rule above) and `enrolled` (a confirmed device)."""
    return _with_status(get_user_model().objects.all())


def is_enrolled(user):
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


class SessionUserBackend(ModelBackend):
    """Django's model backend, whose user of a session comes with `required` and `enrolled`
    (users_with_two_factor_status), the participants who disclosed their arm to them
    (access.with_disclosures) and their language (i18n.with_languages) read in the same query:
    the middleware below, the gate's may_enter and the language middleware then ask nothing
    more, where each took a query of its own on every page."""

    # Written once per process (imrtrial.rowloader.CompiledOnce): compiling this queryset cost
    # most of the CPU of reading the user, on every page.
    _user = CompiledOnce(
        lambda pk: (
            i18n.with_languages(access.with_disclosures(users_with_two_factor_status()))
            .filter(pk=pk)
            .order_by("pk")[:1]
        )
    )

    def get_user(self, user_id):
        try:
            user_id = int(user_id)
        except (TypeError, ValueError):
            return None
        user = self._user.first(user_id)
        return user if self.user_can_authenticate(user) else None


# Its dotted path, for a view that signs a user in without authenticate() (the invitation link).
SESSION_BACKEND = f"{SessionUserBackend.__module__}.{SessionUserBackend.__qualname__}"


def _status(user):
    """(required, enrolled) of a signed-in user: from the user's own row when the session's
    backend read them with it, else asked now."""
    found = (getattr(user, "required", None), getattr(user, "enrolled", None))
    if None in found:
        found = (
            users_with_two_factor_status()
            .filter(pk=user.pk)
            .values_list("required", "enrolled")
            .get()
        )
    return found


class TwoFactorMiddleware:
    """Sends a signed-in user who must verify, and has not in this session, to the verify page
    (or to enrolment when they have no device yet). Covers every page, the admin included.

    Must come after django_otp's OTPMiddleware, which tells whether the session is verified.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        if request.resolver_match and request.resolver_match.view_name in OPEN_VIEWS:
            return None
        # Asked on every request of a signed-in user who has not verified (most often a blinded
        # one who needs no second factor): must they, and have they a device? Read with the
        # user's row (SessionUserBackend), so no query of its own.
        required, enrolled = _status(user)
        # TWO_FACTOR_REQUIRED=false lifts the obligation only: whoever enrolled a device is still
        # asked for its code, as enrolment promised. (Read per request, not at import, so a
        # deployment's setting and a test's override hold.)
        if not settings.TWO_FACTOR_REQUIRED:
            required = False
        if not required and not enrolled:
            return None
        target = reverse("two_factor:verify" if enrolled else "two_factor:enrol")
        # After a POST the form is gone anyway; come back to the page it was sent from.
        here = request.get_full_path() if request.method == "GET" else request.path
        return redirect(f"{target}?{urlencode({'next': here})}")


class Throttled(Exception):
    """django-otp's back-off refuses codes until `until` after wrong ones."""

    def __init__(self, until):
        super().__init__(until)
        self.until = until


def pending_device(user):
    """The unconfirmed device a user is enrolling (made on first call, so a reload of the page
    shows the same secret), or None when the user already has a confirmed one: a second device
    may not be added with a password alone."""
    with transaction.atomic():
        # Lock the user row so two tabs opening enrolment at once make one device, not two.
        get_user_model().objects.select_for_update().get(pk=user.pk)
        if is_enrolled(user):
            return None
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
        if device is None:
            device = TOTPDevice(user=user, name="Authenticator app", confirmed=False)
            attribute(device, by=user, reason="Enrolment started")
            device.save()
        return device


@transaction.atomic
def check_token(user, token, *, confirmed=True):
    """The user's device (confirmed, or the one being enrolled) that accepts `token`, or None.

    A wrong code counts towards django-otp's back-off; while it holds, raises Throttled and the
    code is not even tried."""
    # The row lock makes the check-and-spend of a code one step (TOTP refuses a code twice).
    device = (
        TOTPDevice.objects.select_for_update()
        .filter(user=user, confirmed=confirmed)
        .order_by("pk")
        .first()
    )
    if device is None:
        return None
    allowed, extra = device.verify_is_allowed()
    if not allowed:
        raise Throttled(extra.get("locked_until"))
    return device if device.verify_token(token) else None


@transaction.atomic
def confirm_enrolment(user, token):
    """Confirm the device being enrolled when `token` is right; returns it, or None."""
    if is_enrolled(user):
        return None
    device = check_token(user, token, confirmed=False)
    if device is not None:
        device.confirmed = True
        attribute(device, by=user, reason="Enrolment confirmed with a valid code")
        device.save(update_fields=["confirmed"])
    return device


def mark_verified(request, device):
    """This session has passed the second factor with `device`."""
    # A new session key for the raised privilege, as Django does at password login.
    request.session.cycle_key()
    otp_login(request, device)


def may_reset(by, target):
    """May `by` remove `target`'s devices? A superuser may for anyone; a trial administrator for
    the staff of the trials they manage, but not for Django administrators. Never one's own:
    a reset needs a second person."""
    if not by.is_authenticated or target.pk == by.pk:
        return False
    if by.is_superuser:
        return True
    if target.is_staff or target.is_superuser:
        return False
    return any(access.has(by, Perm.MANAGE_TRIAL, trial) for trial in access.trials_of(target))


def resettable_users(by):
    """The users whose devices `by` may reset, with their two-factor status."""
    users = users_with_two_factor_status().filter(is_active=True).exclude(pk=by.pk)
    if by.is_superuser:
        return users.order_by("username")
    managed = [t for t in access.trials_of(by) if access.has(by, Perm.MANAGE_TRIAL, t)]
    return (
        users.filter(
            is_staff=False,
            is_superuser=False,
            memberships__trial__in=managed,
            memberships__active=True,
        )
        .distinct()
        .order_by("username")
    )


def may_reset_anyone(user):
    if not user.is_authenticated:
        return False
    return user.is_superuser or any(
        access.has(user, Perm.MANAGE_TRIAL, trial) for trial in access.trials_of(user)
    )


@transaction.atomic
def reset_devices(target, *, by, reason):
    """Remove every device of `target`, so they must enrol again at their next page. The history
    keeps who removed which device, when and why. Returns how many devices were removed."""
    reason = reason.strip()
    if not reason:
        raise ValidationError(_("Give the reason for the reset."))
    if not may_reset(by, target):
        raise PermissionError(f"{by} may not reset the devices of {target}.")
    devices = list(TOTPDevice.objects.select_for_update().filter(user=target).order_by("pk"))
    for device in devices:
        attribute(device, by=by, reason=reason)
        device.delete()
    return len(devices)
