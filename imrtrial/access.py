"""The one gate for who may see and do what.

Every view, queryset, template context, export, e-mail, audit page and admin screen asks this
module; none re-implements a rule. Storage is Django's own: a role is a Group whose permissions
(`Perm`) say what the role may do (created by migration imrtrial 0002), and a Membership row
scopes a user's role to a trial and to one site or to all of them.

Blinding rule: "allocation-revealing" data is anything from which a participant's arm can be
learned (the allocation, IMR group membership, attendance, fidelity of a participant's group, the
randomization confirmation, stopping the intervention). Only holders of `view_unblinded`, or of
`view_unblinded_after_unblinding` once the trial is unblinded, may see it. Superusers get no
exemption: a system administrator is not unblinded by being one.

Free text and authors are a channel too: whoever is (or was) unblinded at a site may write what
they know into a reason or a description, and their very name beside a record can tell the arm
(a facilitator reporting an incident). So a reader blinded at a site sees such an author only by
a role-neutral label, and their text only as "text exists" (`may_read_text`, `author_label`).

Questions are answered per user and trial, with the user's grants cached on the user object
(Django builds it anew for every request; `forget` drops it after a membership change).
"""

import functools

from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils.translation import gettext as _

from .models import Membership, Participant, Perm, Site, Trial, UnblindingIncident
from .rowloader import RowLoader

_CACHE_ATTR = "_imrtrial_access_cache"
_DISCLOSED_ATTR = "_imrtrial_disclosed_to"

# How a blinded reader sees an unblinded author, and their words.
NEUTRAL_AUTHOR = "Trial staff"
TEXT_WITHHELD = "(text written by unblinded staff: not shown)"

# Permissions that make a user's name and words allocation-revealing where they hold them.
_UNBLINDING = (Perm.VIEW_UNBLINDED,)


def _grants(user, trial):
    """{site_id or None: set of permission codenames} for the user's active roles in the trial.

    Read in one query per user object and trial (the memberships joined to their roles'
    permissions), never cached beyond the user object: a role withdrawn, or a permission taken
    from a role, takes effect on the next request of every process."""
    if not user.is_authenticated or not user.is_active:
        return {}
    cache = user.__dict__.setdefault(_CACHE_ATTR, {})
    if trial.pk not in cache:
        grants = {}
        with connection.cursor() as cursor:
            cursor.execute(_grants_sql(), [user.pk, trial.pk, True])
            for site_id, codename in cursor.fetchall():
                held = grants.setdefault(site_id, set())
                if codename:
                    held.add(codename)
        cache[trial.pk] = grants
    return cache[trial.pk]


@functools.cache
def _grants_sql():
    """(site id, codename) of every active membership of a user in a trial, with each
    permission of the membership's role (the Group of the same name); a role without any
    permission gives one row with no codename."""
    q = connection.ops.quote_name
    M, G, P = Membership._meta, Group._meta, Permission._meta
    through = G.get_field("permissions").remote_field.through._meta

    def c(meta, name):
        return q(meta.get_field(name).column)

    return (
        f"SELECT m.{c(M, 'site')}, p.{c(P, 'codename')} FROM {q(M.db_table)} m "
        f"LEFT JOIN {q(G.db_table)} g ON g.{c(G, 'name')} = m.{c(M, 'role')} "
        f"LEFT JOIN {q(through.db_table)} gp ON gp.{c(through, 'group')} = g.{q(G.pk.column)} "
        f"LEFT JOIN {q(P.db_table)} p ON p.{q(P.pk.column)} = gp.{c(through, 'permission')} "
        f"WHERE m.{c(M, 'user')} = %s AND m.{c(M, 'trial')} = %s AND m.{c(M, 'active')} = %s"
    )


def _permissions_of_roles(roles=None):
    """{role: set of codenames}, for `roles` (None: every role)."""
    groups = Group.objects.all() if roles is None else Group.objects.filter(name__in=roles)
    perms_of_role = {}
    for name, codename in groups.values_list("name", "permissions__codename"):
        perms_of_role.setdefault(name, set())
        if codename:
            perms_of_role[name].add(codename)
    return perms_of_role


def forget(user):
    """Drop the cached grants (and disclosures), after a membership of this user changed or an
    unblinding incident named them."""
    user.__dict__.pop(_CACHE_ATTR, None)
    user.__dict__.pop(_DISCLOSED_ATTR, None)
    # And the disclosures the session loaded with the user's row (with_disclosures); through a
    # lazy request.user, they are on the wrapped user.
    for holder in (user, getattr(user, "_wrapped", None)):
        getattr(holder, "__dict__", {}).pop("disclosed_ids", None)


def narrow(user, trial, perms):
    """Restrict this user object to `perms` in `trial`, and to nothing in any other trial, for
    the rest of the request: an API token's scope. Every question asked of the gate afterwards
    (has, sites_where, may_see_allocation, may_enter...) sees what the user holds now
    intersected with `perms`, so a token never grants more than its user's current role."""
    allowed = {Perm(perm) for perm in perms}
    grants = {site: held & allowed for site, held in _grants(user, trial).items()}
    user.__dict__[_CACHE_ATTR] = _OneTrial(trial.pk, grants)


class _OneTrial(dict):
    """A grants cache that knows one trial and answers "nothing" for every other."""

    def __init__(self, trial_pk, grants):
        super().__init__({trial_pk: grants})

    def __missing__(self, key):
        return {}

    def __contains__(self, key):
        return True


def _site_id(site):
    return site.pk if isinstance(site, Site) else site


# --- Permissions and sites --------------------------------------------------------------------


def has(user, perm, trial, site=None):
    """May the user do `perm` in the trial, at `site` (None: at some site of the trial)?"""
    perm = Perm(perm)  # an unknown name is an error, never a silent "no"
    grants = _grants(user, trial)
    if site is None:
        return any(perm in perms for perms in grants.values())
    return perm in grants.get(None, ()) or perm in grants.get(_site_id(site), ())


def has_any(user, perms, trial, site=None):
    return any(has(user, perm, trial, site) for perm in perms)


def sites_where(user, perm, trial):
    """The sites of the trial at which the user may do `perm`, as a queryset."""
    perm = Perm(perm)
    grants = _grants(user, trial)
    if perm in grants.get(None, ()):
        return Site.objects.filter(trial=trial)
    ids = [site_id for site_id, perms in grants.items() if site_id and perm in perms]
    return Site.objects.filter(trial=trial, pk__in=ids)


def sites_where_any(user, perms, trial):
    """The sites at which the user may do any of `perms`, as a queryset."""
    perms = {Perm(perm) for perm in perms}
    grants = _grants(user, trial)
    if perms & grants.get(None, set()):
        return Site.objects.filter(trial=trial)
    ids = [site_id for site_id, held in grants.items() if site_id and perms & held]
    return Site.objects.filter(trial=trial, pk__in=ids)


def trials_of(user):
    """Trials in which the user holds any active role."""
    if not user.is_authenticated:
        return Trial.objects.none()
    return Trial.objects.filter(memberships__user=user, memberships__active=True).distinct()


def roles_of(user, trial):
    """The user's active roles in the trial, as Role values."""
    if not user.is_authenticated:
        return set()
    return set(
        Membership.objects.filter(user=user, trial=trial, active=True).values_list(
            "role", flat=True
        )
    )


# --- Allocation (the blinding rule) -----------------------------------------------------------


def may_see_allocation(user, trial, site=None):
    """May the user see allocation-revealing data (for participants of `site`)?"""
    if has(user, Perm.VIEW_UNBLINDED, trial, site):
        return True
    return trial.is_unblinded and has(user, Perm.VIEW_UNBLINDED_AFTER_UNBLINDING, trial, site)


def unblinded_sites(user, trial):
    """The sites where the user may see allocation-revealing data, as a queryset."""
    perms = [Perm.VIEW_UNBLINDED]
    if trial.is_unblinded:
        perms.append(Perm.VIEW_UNBLINDED_AFTER_UNBLINDING)
    return sites_where_any(user, perms, trial)


def may_do_unblinded(user, perm, trial, site=None):
    """`perm` on allocation-revealing data (IMR sessions, fidelity): the permission and
    allocation access, at the same site."""
    if site is None:
        return sites_where_unblinded(user, perm, trial).exists()
    return may_see_allocation(user, trial, site) and has(user, perm, trial, site)


def sites_where_unblinded(user, perm, trial):
    """The sites where the user may do `perm` on allocation-revealing data."""
    return sites_where(user, perm, trial) & unblinded_sites(user, trial)


def unblinded_everywhere(user, trial, sites=None):
    """Is the user unblinded at every one of `sites` (default: every site of the trial)?

    Anything that pools several sites (a report, the access log) may show arm-level facts only
    to such a user: otherwise the counts of a site where they are blinded would be in it."""
    sites = list(trial.sites.all()) if sites is None else list(sites)
    wanted = {_site_id(s) for s in sites}
    return wanted <= set(unblinded_sites(user, trial).values_list("pk", flat=True))


def may_see_allocation_key(user, trial):
    """May the user see which neutral export code (A/B) is which arm?

    Only the unblinded data administrator, and only after the database is locked."""
    return trial.status == Trial.Status.LOCKED and has(user, Perm.RELEASE_ALLOCATION_KEY, trial)


def require_allocation_access(user, trial, site=None):
    if not may_see_allocation(user, trial, site):
        raise Http404(_("Not found."))


# --- Participants ----------------------------------------------------------------------------


def participants_visible_to(user, trial):
    """Participants the user may see at all: those of the sites where they may view them."""
    return Participant.objects.filter(
        trial=trial, site__in=sites_where(user, Perm.VIEW_PARTICIPANTS, trial)
    )


def participant_or_404(user, trial, participant_id):
    """The participant, if the user may see them; otherwise 404, so existence is not revealed."""
    try:
        return (
            participants_visible_to(user, trial)
            .select_related("site")
            .get(participant_id=participant_id)
        )
    except Participant.DoesNotExist:
        raise Http404(_("No such participant.")) from None


# The participant with their trial and site in one statement written once per process
# (imrtrial.rowloader): the phone desk's randomize page, where compiling the querysets cost
# more CPU than the rest of the load (issue 17).
_DESK_PARTICIPANT = RowLoader(
    Participant, related=("trial", "site"), where=("trial__key", "participant_id")
)


def desk_participant_or_404(user, trial_key, participant_id, perm):
    """The participant, with `.trial` and `.site`, if the user may see them and do `perm` at
    their site; otherwise 404 (the same 404 whether the trial, the participant or the right is
    missing). What trial_or_404, participant_or_404 and require(perm, trial, site) give, in one
    query and the gate's grants."""
    participant = (
        _DESK_PARTICIPANT.get(trial__key=trial_key, participant_id=participant_id)
        if user.is_authenticated
        else None
    )
    if participant is None or not all(
        has(user, p, participant.trial, participant.site) for p in (Perm.VIEW_PARTICIPANTS, perm)
    ):
        raise Http404(_("Not found."))
    return participant


# A trial by its key, by SQL written once per process (imrtrial.rowloader): nearly every page
# reads it, and compiling trials_of(user).get(key=...) cost more CPU than running it.
_TRIAL = RowLoader(Trial, where=("key",))


def trial_or_404(user, trial_key):
    """The trial, if the user holds an active role in it (what trials_of says); else 404, the
    same for a trial that does not exist. Whether they hold one is read from their grants,
    which the page asks next anyway (require, sites_where), so this costs no query of its own."""
    trial = _TRIAL.get(key=trial_key) if user.is_authenticated else None
    if trial is None or not _grants(user, trial):
        raise Http404(_("No such trial."))
    return trial


def require(user, perm, trial, site=None):
    """404 unless the user may do `perm`. A 404 (not 403) tells a blinded user nothing about
    whether the page or object exists."""
    if not has(user, perm, trial, site):
        raise Http404(_("Not found."))


# --- Entering forms, withdrawals -------------------------------------------------------------


def may_enter(user, participant, rater):
    """May the user enter an instrument of this rater kind for this participant?

    Interview ratings need a blinded assessor the participant has not unblinded; staff ratings
    (e.g. the IMRS clinician version) need an unblinded staff role."""
    trial, site = participant.trial, participant.site
    if rater == "staff":
        return has(user, Perm.ENTER_STAFF_RATING, trial, site)
    if not has(user, Perm.ENTER_INTERVIEW, trial, site):
        return False
    if rater == "assessor_interview":
        return participant.pk not in _disclosed_to(user)
    return True


class EntryRights:
    """may_enter for the many participants of one page (a worklist lists a hundred, with four
    kinds of rater each: 400 questions). may_enter's answer depends on nothing but the
    participant's trial and site, the kind of rater and whether the participant disclosed their
    allocation to the user, so it is asked once for each such combination and the answer kept
    for the page: `rights = EntryRights(user)`, then `rights(participant, rater)`."""

    def __init__(self, user):
        self.user = user
        self._answers = {}

    def __call__(self, participant, rater):
        key = (
            participant.trial_id,
            participant.site_id,
            rater,
            participant.pk in _disclosed_to(self.user),
        )
        if key not in self._answers:
            self._answers[key] = may_enter(self.user, participant, rater)
        return self._answers[key]


def _disclosed_to(user):
    """The ids of the participants who disclosed their allocation to `user` (unblinding
    incidents), cached on the user object like the grants: read with the user's own row when
    the session loaded it (with_disclosures, imrtrial.twofactor.SessionUserBackend), else in
    one query, where the CRF page and the save it posts asked once each."""
    found = user.__dict__.get(_DISCLOSED_ATTR)
    if found is None:
        loaded = getattr(user, "disclosed_ids", False)  # through a lazy request.user too
        if loaded is not False:  # "" or None: none; else "12,40"
            found = frozenset(int(pk) for pk in (loaded or "").split(",") if pk)
        else:
            found = frozenset(
                UnblindingIncident.objects.filter(assessor=user).values_list(
                    "participant_id", flat=True
                )
            )
        user.__dict__[_DISCLOSED_ATTR] = found
    return found


def with_disclosures(users):
    """`users` annotated `disclosed_ids`: the participants who disclosed their allocation to
    each, as comma-separated ids ("" or None: none), for _disclosed_to."""
    table = UnblindingIncident._meta.db_table
    user_table = users.model._meta.db_table
    if connection.vendor == "postgresql":
        aggregate = "string_agg(i.participant_id::text, ',')"
    else:
        aggregate = "group_concat(i.participant_id, ',')"
    return users.annotate(
        disclosed_ids=RawSQL(
            f'SELECT {aggregate} FROM "{table}" i WHERE i.assessor_id = "{user_table}"."id"', ()
        )
    )


_MAY_WITHDRAW = (Perm.RANDOMIZE, Perm.MANAGE_TRIAL)


def may_withdraw(user, participant, level=None):
    """May the user record a withdrawal for the participant (at `level`, a Withdrawal.Level;
    None: at some level)? Stopping the intervention (level 1) exists in the IMR arm only, so it
    is offered to, and accepted from, unblinded staff only: alike for every participant."""
    trial, site = participant.trial, participant.site
    if not has_any(user, _MAY_WITHDRAW, trial, site):
        return False
    if level is not None and int(level) == 1:
        return may_see_allocation(user, trial, site)
    return True


# --- Investigator sign-off ----------------------------------------------------------------------


def may_sign(user, participant):
    """May the user sign the participant's casebook (or one of its visits)? A site investigator
    of the participant's site: the signature attests to that site's data. The same for every
    participant of the site, whatever their arm."""
    return has(user, Perm.SIGN_CASEBOOK, participant.trial, participant.site)


def sites_where_may_sign(user, trial):
    return sites_where(user, Perm.SIGN_CASEBOOK, trial)


# --- Monitoring: source data verification, queries ---------------------------------------------
# A monitor (clinical research associate) is blinded and read-only on clinical data: they hold
# view_participants and source_verify, nothing that enters, verifies, reconciles or locks.

_OPEN_QUERIES = (Perm.VERIFY_FORMS, Perm.SOURCE_VERIFY)


def may_source_verify(user, participant):
    """May the user mark the participant's forms as verified against the source (and read their
    forms' values to do so)?"""
    return has(user, Perm.SOURCE_VERIFY, participant.trial, participant.site)


def may_open_queries(user, participant):
    """Data managers and monitors at the participant's site ask the site about its data."""
    return has_any(user, _OPEN_QUERIES, participant.trial, participant.site)


def query_sites(user, trial):
    """The sites whose data queries the user lists: where they may open them."""
    return sites_where_any(user, _OPEN_QUERIES, trial)


def sdv_progress_sites(user, trial):
    """The sites whose source data verification progress the user sees: a monitor's and a data
    manager's."""
    return sites_where_any(user, (Perm.SOURCE_VERIFY, Perm.VERIFY_FORMS), trial)


# --- Reports, exports, the audit trail --------------------------------------------------------

_REPORTS = (Perm.EXPORT_BLINDED, Perm.VIEW_UNBLINDED, Perm.MANAGE_TRIAL)


def report_sites(user, trial):
    """The sites of the trial whose participants the user's reports cover."""
    return list(sites_where_any(user, _REPORTS, trial).order_by("name"))


def may_see_reports(user, trial):
    return has_any(user, _REPORTS, trial)


_COMPLETENESS = (*_REPORTS, Perm.VERIFY_FORMS, Perm.ENTER_INTERVIEW)


def completeness_sites(user, trial):
    """The sites whose pooled completeness counts (never by arm) the user sees: those their
    reports cover, and those whose record status dashboard they see (data managers,
    assessors)."""
    return list(sites_where_any(user, _COMPLETENESS, trial).order_by("name"))


def may_see_reports_by_arm(user, trial, sites):
    """Arm-level reports only to a user unblinded at every site they cover."""
    return unblinded_everywhere(user, trial, sites)


def may_see_reports_by_code(user, trial, sites):
    """Counts by neutral code (A/B): for blinded holders of export_blinded at every site in
    scope, who get the A/B dataset anyway. Not for anyone unblinded at any site (beside what
    they see by arm, the codes would give them the key), unless they may see the key; not for a
    trial administrator (no export_blinded), who could match a count's step to a
    randomization."""
    if may_see_allocation(user, trial) and not may_see_allocation_key(user, trial):
        return False
    return all(has(user, Perm.EXPORT_BLINDED, trial, site) for site in sites)


def may_see_blinding_index(user, trial, sites):
    """Bang's blinding index per arm (exports.blinding): arm-level, so only for a user who may
    see reports by arm at every site in scope, and only once the trial's results are out: after
    the database lock for the key holder (who releases the key then), after unblinding for
    everyone else unblinded there (the statistician; the unblinded site staff too). Before, an
    index that moves with each guess recorded is an interim look at the blind that nobody
    needs, and that an unblinded reader could pass on to the assessors. Everyone who sees
    reports sees the pooled guess rates, which say nothing of who guessed right."""
    if not may_see_reports_by_arm(user, trial, sites):
        return False
    return trial.is_unblinded or may_see_allocation_key(user, trial)


def may_open_exports(user, trial):
    """The exports page, and the link to it: the blinded dataset, or the key holder's release
    after lock."""
    return has(user, Perm.EXPORT_BLINDED, trial) or may_see_allocation_key(user, trial)


def has_everywhere(user, perm, trial):
    """`perm` at every site of the trial: what an act on the whole trial needs (a whole-trial
    export, locking the database). A role held at every site counts; otherwise each site's,
    and a trial with no site yet has no "every site" to hold it at."""
    if perm in _grants(user, trial).get(None, ()):
        return True
    sites = trial.sites.count()
    return sites > 0 and sites_where(user, perm, trial).count() == sites


def may_export_every_site(user, trial):
    return has_everywhere(user, Perm.EXPORT_BLINDED, trial)


def access_log_scope(user, trial):
    """Q of the trial's access-log rows the user may read. Which participant's allocation
    someone looked up (or which IMR group) is itself allocation-revealing; targets that do not
    name a participant cannot be placed at a site. So: an auditor of every site who is unblinded
    at every site sees every row; one unblinded nowhere sees exports only; one unblinded at some
    sites sees exports and the rows naming their unblinded sites' participants. The access-log
    page and the admin both use this."""
    from .models import AccessLog

    audited = set(sites_where(user, Perm.VIEW_AUDIT, trial).values_list("pk", flat=True))
    if not audited:
        return Q(pk__in=[])
    unblinded = audited & set(unblinded_sites(user, trial).values_list("pk", flat=True))
    in_trial = Q(trial=trial)
    every = set(trial.sites.values_list("pk", flat=True))
    if audited == every and unblinded == every:
        return in_trial
    exports = Q(action=AccessLog.Action.EXPORT)
    if not unblinded:
        return in_trial & exports
    theirs = Participant.objects.filter(trial=trial, site__in=unblinded)
    return in_trial & (exports | Q(target__in=theirs.values("participant_id")))


# --- Authors and free text ---------------------------------------------------------------------


def unblinded_staff(trial):
    """{site_id or None (every site): {user ids}} of everyone who holds or ever held a role that
    unblinds them there. Withdrawn roles count: a former facilitator knew the arms when they
    wrote. Cached on the trial object for the request."""
    cache = trial.__dict__.get("_unblinded_staff")
    if cache is None:
        unblinding = {*_UNBLINDING}
        if trial.is_unblinded:
            unblinding.add(Perm.VIEW_UNBLINDED_AFTER_UNBLINDING)
        roles = {name for name, perms in _permissions_of_roles().items() if perms & unblinding}
        cache = {}
        for user_id, site_id in Membership.objects.filter(trial=trial, role__in=roles).values_list(
            "user_id", "site_id"
        ):
            cache.setdefault(site_id, set()).add(user_id)
        trial.__dict__["_unblinded_staff"] = cache
    return cache


def author_unblinded(author, trial, site):
    """Is (or was) `author` unblinded at `site` of the trial? For a record of no site (the
    trial's: an account deactivated, a role at every site), unblinded at any site: its text
    may be about any site's participants."""
    author_id = getattr(author, "pk", author)
    if author_id is None:
        return False
    staff = unblinded_staff(trial)
    if site is None:
        return any(author_id in users for users in staff.values())
    return author_id in staff.get(None, ()) or author_id in staff.get(_site_id(site), ())


def unblinded_author_q(trial, author_path, site_path):
    """Q of rows whose author (at `author_path`) is or was unblinded at the row's site (at
    `site_path`), for pages that filter in SQL (the audit trail)."""
    staff = unblinded_staff(trial)
    q = Q(**{f"{author_path}__in": sorted(staff.get(None, ()))})
    for site_id, users in staff.items():
        if site_id is not None:
            q |= Q(**{site_path: site_id, f"{author_path}__in": sorted(users)})
    # Rows of no site (the trial's): an author unblinded at any site (author_unblinded).
    anywhere = set().union(*staff.values())
    q |= Q(**{f"{site_path}__isnull": True, f"{author_path}__in": sorted(anywhere)})
    return q


def may_read_text(reader, author, trial, site):
    """May `reader` read free text that `author` wrote about a participant of `site` (None: a
    record of the whole trial, which only a reader unblinded at every site reads unmasked)?"""
    if site is None:
        allowed = unblinded_everywhere(reader, trial)
    else:
        allowed = may_see_allocation(reader, trial, site)
    return allowed or not author_unblinded(author, trial, site)


def text_for(reader, text, author, trial, site):
    """The text, or a note that text exists, as the reader may see it."""
    if not text or may_read_text(reader, author, trial, site):
        return text
    return TEXT_WITHHELD


def author_label(reader, author, trial, site):
    """The name `reader` sees for the author of a record at `site`: unblinded staff appear to a
    blinded reader as a role-neutral label, on every such record alike."""
    if author is None:
        return "—"
    if may_read_text(reader, author, trial, site):
        return author.get_username()
    return NEUTRAL_AUTHOR


# --- Staff and trial administration (the staff app's pages) ------------------------------------
# A trial administrator (manage_trial) runs the staff of the sites they manage; what belongs to
# the whole trial (an all-sites role, the schedule, reminders, the sites, the trial's status)
# needs manage_trial at every site. Nobody changes their own roles or account: a second person
# grants and withdraws, as a second person resets a two-factor device.


def may_administer(user, trial):
    """The trial administration pages at all (the staff list of the sites they manage)."""
    return has(user, Perm.MANAGE_TRIAL, trial)


def staff_sites(user, trial):
    """The sites whose staff the user manages, as a queryset."""
    return sites_where(user, Perm.MANAGE_TRIAL, trial)


def may_manage_staff_at(user, trial, site):
    """May the user grant or withdraw a role at `site` (None: a role at every site)?"""
    if site is None:
        return has_everywhere(user, Perm.MANAGE_TRIAL, trial)
    return has(user, Perm.MANAGE_TRIAL, trial, site)


# Permissions that let a role's holder learn arms: the allocation now, once the trial is
# unblinded, or the key to the export codes.
_ALLOCATION_REVEALING = {
    Perm.VIEW_UNBLINDED,
    Perm.VIEW_UNBLINDED_AFTER_UNBLINDING,
    Perm.RELEASE_ALLOCATION_KEY,
}


def _role_permissions(role):
    """The role's permission codenames; None for a role with no group (unknown)."""
    return _permissions_of_roles({str(role)}).get(str(role))


def role_reveals_allocation(role):
    """Does `role` let its holder learn arms (now, after unblinding, or by the key)? A role of
    unknown permissions is taken to."""
    perms = _role_permissions(role)
    return perms is None or bool(perms & _ALLOCATION_REVEALING)


def may_grant_role(user, trial, role, site):
    """May the user give `role` at `site` (None: every site), by a grant or an invitation?

    A trial administrator is blinded. Were they free to grant a role that sees the allocation,
    they could invite an address they own (or grant an account of theirs) and read the arms
    with a second login. So such a role is granted only by a staff manager who is themselves
    unblinded wherever the role will hold (e.g. an administrator who is also the site's key
    holder); a blinded administrator grants only roles that see no arm."""
    if not may_manage_staff_at(user, trial, site):
        return False
    if not role_reveals_allocation(role):
        return True
    # A role at every site also holds at sites added later, and the key decodes every site's
    # codes: only someone unblinded by a role of their own at every site grants those.
    if site is None or Perm.RELEASE_ALLOCATION_KEY in (_role_permissions(role) or ()):
        return Perm.VIEW_UNBLINDED in _grants(user, trial).get(None, ())
    return may_see_allocation(user, trial, site)


def may_configure_trial(user, trial):
    """The whole trial's settings: sites, schedule windows, reminders, opening and closing."""
    return has_everywhere(user, Perm.MANAGE_TRIAL, trial)


def may_change_roles_of(user, target, trial):
    """May the user change `target`'s roles in the trial at all? Never their own, and never a
    Django administrator's (their power is not the trial's to give or take)."""
    if not user.is_authenticated or target.pk == user.pk:
        return False
    if target.is_staff or target.is_superuser:
        return False
    return may_administer(user, trial)


def may_deactivate(user, target):
    """May the user switch off `target`'s account? Not their own, not a Django administrator's,
    and only for someone all of whose trials the user manages entirely: an account is shared by
    every trial its holder works in."""
    if not user.is_authenticated or target.pk == user.pk or not target.is_active:
        return False
    if target.is_staff or target.is_superuser:
        return False
    trials = list(Trial.objects.filter(memberships__user=target).distinct())
    return bool(trials) and all(may_configure_trial(user, trial) for trial in trials)
