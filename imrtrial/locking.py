"""Locks on clinical data, and the one registry of the services that write it.

Three levels: a form (FormEntry status "locked"), a participant's casebook
(Participant.casebook_locked_at), the whole trial (Trial status "locked": the database lock).
A locked database that still changes invalidates every analysis done on it, so the lock holds
in the services, not the pages: every service that writes clinical data is declared with
`writes_clinical_data(name, scope)`, which asks `check_unlocked` in the service's own
transaction before anything is written, and refuses (imrtrial.errors.Refused) with what is
locked and who may unlock it.

Race: the check reads the trial, participant and form rows FOR KEY SHARE (PostgreSQL), and the
lock actions take those rows FOR UPDATE, the one row lock that conflicts with KEY SHARE: a
lock being taken waits for the writers already past the check, and a writer that comes after
the lock sees it. Writers that lock the same rows for their own work take FOR NO KEY UPDATE
(`select_for_update(no_key=True)`), which does not conflict with another writer's KEY SHARE:
with FOR SHARE here and FOR UPDATE there, two concurrent screenings deadlocked (found by the
load benchmark's test). On SQLite (the demo) writes are serialized anyway.

The registry (`writers()`) is what tests/imrtrial/test_locks.py asks: every registered service,
under each level of lock, must refuse with nothing written; a service not in the test's table
fails that test, so a new writer cannot be forgotten.

What a write invalidates (an investigator's signature of the data it changed) is told to the
hooks registered with `after_write`, in the writer's own transaction once it has succeeded:
every registered writer, so none can change signed data unseen.
"""

import functools
import inspect
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils.translation import gettext as _

from .errors import Locked

_writers = {}
_after_write = []


@dataclass(frozen=True)
class Scope:
    """What a write touches: its trial, the participants whose casebooks it changes, and the
    form entry it changes (if any)."""

    trial_id: int
    participant_ids: tuple = field(default=())
    form: tuple | None = None  # (model, pk) of a lockable form (a model with LOCKABLE_FORM)

    @classmethod
    def of(cls, obj, participants=()):
        """The scope of a write to `obj` (a trial, participant, visit, form entry, screening,
        IMR group, session, fidelity assessment...), plus `participants` it also changes."""
        form = (type(obj), obj.pk) if getattr(obj, "LOCKABLE_FORM", False) and obj.pk else None
        participant = _participant_of(obj)
        ids = {p.pk for p in participants}
        if participant is not None:
            ids.add(participant.pk)
        return cls(_trial_id_of(obj), tuple(sorted(ids)), form)


def _participant_of(obj):
    from .models import Participant

    if isinstance(obj, Participant):
        return obj
    return getattr(obj, "participant", None)


def _trial_id_of(obj):
    from .models import Trial

    if isinstance(obj, Trial):
        return obj.pk
    for path in ("trial_id", "participant", "group", "session", "assessment", "visit"):
        value = getattr(obj, path, None)
        if value is None:
            continue
        return value if path == "trial_id" else _trial_id_of(value)
    raise TypeError(f"No trial for {obj!r}")


def writes_clinical_data(name, scope):
    """Declare (and guard) a service that writes clinical data. `scope(arguments)` gives the
    Scope of one call from its arguments by name; the service runs in a transaction that first
    asks check_unlocked."""

    def decorate(service):
        signature = inspect.signature(service)

        @functools.wraps(service)
        def guarded(*args, **kwargs):
            arguments = signature.bind(*args, **kwargs).arguments
            with transaction.atomic():
                where = scope(arguments)
                check_unlocked(where)
                result = service(*args, **kwargs)
                for hook in _after_write:
                    hook(name, where, by=arguments.get("by"))
                return result

        if name in _writers:
            raise ValueError(f"Writer {name!r} is registered twice.")
        guarded.writes_clinical_data = name
        _writers[name] = guarded
        return guarded

    return decorate


def after_write(hook):
    """Register `hook(writer name, scope, *, by)`, called after every successful write of
    clinical data, in its transaction (a later app's reaction to a change: signoff records the
    signatures it invalidates). It must be cheap when there is nothing to do."""
    _after_write.append(hook)
    return hook


def writers():
    """{name: service} of every registered service that writes clinical data."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("services")
    return dict(_writers)


def _read_key_share(table, columns, pk):
    share = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE id = %s{share}", [pk])
        return cursor.fetchone()


def _read_trial_and_casebooks(scope):
    """(trial status, [(casebook_locked_at, participant_id)]) of the scope, read FOR KEY SHARE
    in one statement: the trial row joined to each of the scope's participant rows."""
    from .models import Participant, Trial

    ids = list(scope.participant_ids)
    if not ids:
        (status,) = _read_key_share(Trial._meta.db_table, "status", scope.trial_id)
        return status, []
    share = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.status, p.casebook_locked_at, p.participant_id "
            f"FROM {Trial._meta.db_table} t, {Participant._meta.db_table} p "
            f"WHERE t.id = %s AND p.id IN ({marks}) ORDER BY p.id{share}",
            [scope.trial_id, *ids],
        )
        rows = cursor.fetchall()
    if len(rows) != len(ids):  # participants are never deleted: a caller's error
        raise LookupError(f"Not every participant of {scope} exists.")
    return rows[0][0], [row[1:] for row in rows]


def check_unlocked(scope):
    """Refuse, naming the lock, if the trial, a casebook or the form of `scope` is locked."""
    from .models import Trial

    status, casebooks = _read_trial_and_casebooks(scope)
    if status == Trial.Status.LOCKED:
        raise Locked(
            _(
                "The database is locked: nothing in it can change. Only the data manager can"
                " unlock it, with a reason."
            )
        )
    for locked_at, participant_id in casebooks:
        if locked_at is not None:
            raise Locked(
                _(
                    "The casebook of %(pid)s is locked: nothing in it can change. The data"
                    " manager can unlock it, with a reason."
                )
                % {"pid": participant_id}
            )
    if scope.form is not None:
        model, pk = scope.form
        (form_status,) = _read_key_share(model._meta.db_table, "status", pk)
        if form_status == model.Status.LOCKED:
            raise Locked(
                _(
                    "This form is locked and can no longer change. The data manager can unlock"
                    " it, with a reason."
                )
            )
