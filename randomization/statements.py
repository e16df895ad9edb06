"""The SQL of randomize()'s transaction, built once per process from the models.

Why raw SQL here, and only here: under the stratum lock every round trip and every millisecond of
Python is time the next caller of the stratum waits, and the ORM's save() with simple-history
took seven round trips and most of the call's CPU (issue 17's profile). The same rows are written
as before, in the same transaction, under the same locks; only the way they are sent differs.

- `lock_participant`: the participant row FOR NO KEY UPDATE (as withdraw() and record_baseline()
  take it), with its screening's eligibility and consent date read in the same round trip.
- `lock_stratum`: the stratum row FOR UPDATE, the lock that serializes a stratum's allocations.
- `write`: the allocation and its history row ("+"), its notice waiting to be sent
  (AllocationNotice), the stratum's next slot, the participant's status and date of
  randomization and its history row ("~"). On PostgreSQL one statement (data-modifying WITH
  clauses: all or nothing, one round trip); elsewhere (the SQLite demo) the same six statements
  one after the other.

The history rows are what simple-history writes on save(): every column of the row as stored
after the write, plus history_date, history_type, history_user_id and history_change_reason
(tests/randomization/test_statements.py compares them with rows simple-history wrote itself).
The history model must hold nothing else: `Statements()` refuses to build if it does, so a new
history field cannot be silently left empty.
"""

import functools
import hashlib
import weakref

from django.db import connection

from imrtrial.models import Participant
from randomization.models import Allocation, AllocationNotice, Screening, Stratum

_HISTORY_FIELDS = ("history_date", "history_change_reason", "history_type", "history_user_id")
# What the INSERT of an allocation writes (services._write gives each a value).
ALLOCATION_COLUMNS = {
    "trial_id", "participant_id", "stratum_id", "slot", "arm_id", "randomization_number",
    "confirmation_code", "allocated_at", "allocated_by_id", "in_error", "in_error_reason",
}  # fmt: skip
# A new notice: its allocation, no attempt yet, no error; not sent (sent_at NULL).
NOTICE_FIELDS = {"allocation", "sent_at", "attempts", "last_error"}


def _q(name):
    return connection.ops.quote_name(name)


def _columns(model):
    return [f.column for f in model._meta.concrete_fields]


def _history_copy(model):
    """(columns copied from the row, in the history table's order) of `model`'s history; raises
    if the history table has a column that is neither a copy nor one of the four history
    fields."""
    history = model.history.model
    base = set(_columns(model))
    copied = []
    for field in history._meta.concrete_fields:
        if field.primary_key or field.column in _HISTORY_FIELDS:
            continue
        if field.column not in base:
            raise RuntimeError(
                f"{history._meta.label}.{field.column} is not a copy of {model._meta.label}: "
                "randomization.statements must learn to write it"
            )
        copied.append(field.column)
    present = {f.column for f in history._meta.concrete_fields}
    if missing := set(_HISTORY_FIELDS) - present:
        raise RuntimeError(f"{history._meta.label} lacks {sorted(missing)}")
    return copied


def _history_insert(model, source):
    """INSERT of one history row copied from `source` (a WITH name or the table itself),
    taking four parameters: history_date, history_change_reason, history_type, user id."""
    table = _q(model.history.model._meta.db_table)
    copied = _history_copy(model)
    names = ", ".join(_q(c) for c in [*copied, *_HISTORY_FIELDS])
    values = ", ".join([*(f"src.{_q(c)}" for c in copied), "%s", "%s", "%s", "%s"])
    return f"INSERT INTO {table} ({names}) SELECT {values} FROM {source} src"


class Statements:
    """The SQL text of one randomization, for the default connection's backend."""

    def __init__(self, one_statement=None):
        """`one_statement`: the write as one statement (default: on PostgreSQL) or as five
        (elsewhere; tests/randomization/test_statements.py runs both on PostgreSQL)."""
        A, S, P = Allocation._meta, Stratum._meta, Participant._meta
        features = connection.features
        if one_statement is None:
            one_statement = connection.vendor == "postgresql"
        self.one_statement = one_statement
        # Prepared only on connections that outlive a request (CONN_MAX_AGE): on a connection
        # per request, PREPARE is one more round trip each time, never repaid. A pooler in
        # transaction mode (pgbouncer) does not keep a session's prepared statements: run it
        # with DATABASE_CONN_MAX_AGE=0, which turns them off here.
        self.prepare = connection.vendor == "postgresql" and connection.settings_dict.get(
            "CONN_MAX_AGE"
        ) not in (0, None)
        if self.prepare:
            from psycopg import ClientCursor

            self._client_cursor = ClientCursor
        no_key = " FOR NO KEY UPDATE OF p" if features.has_select_for_no_key_update else ""
        if not no_key and features.has_select_for_update:
            no_key = " FOR UPDATE OF p"
        for_update = " FOR UPDATE" if features.has_select_for_update else ""
        scr = Screening._meta

        def col(meta, name):
            return _q(meta.get_field(name).column)

        self.lock_participant = (
            f"SELECT p.{col(P, 'status')}, s.{col(scr, 'eligible')}, "
            f"s.{col(scr, 'consent_date')} "
            f"FROM {_q(P.db_table)} p LEFT JOIN {_q(scr.db_table)} s "
            f"ON s.{col(scr, 'participant')} = p.{_q(P.pk.column)} "
            f"WHERE p.{_q(P.pk.column)} = %s{no_key}"
        )
        self.lock_stratum = (
            f"SELECT {_q(S.pk.column)}, {col(S, 'next_slot')} FROM {_q(S.db_table)} "
            f"WHERE {col(S, 'trial')} = %s AND {col(S, 'key')} = %s{for_update}"
        )
        self.insert_stratum = (
            f"INSERT INTO {_q(S.db_table)} ({col(S, 'trial')}, {col(S, 'key')}, "
            f"{col(S, 'next_slot')}) VALUES (%s, %s, 1) ON CONFLICT DO NOTHING"
        )
        # The allocation: every column but the key, in this order (`allocation_columns`).
        fields = [f for f in A.concrete_fields if not f.primary_key]
        self.allocation_columns = tuple(f.attname for f in fields)
        if set(self.allocation_columns) != ALLOCATION_COLUMNS:
            raise RuntimeError(
                "Allocation's columns changed: randomization.statements must learn to write "
                f"{sorted(set(self.allocation_columns) ^ ALLOCATION_COLUMNS)}"
            )
        names = ", ".join(_q(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        insert_allocation = f"INSERT INTO {_q(A.db_table)} ({names}) VALUES ({marks})"
        advance = (
            f"UPDATE {_q(S.db_table)} SET {col(S, 'next_slot')} = %s WHERE {_q(S.pk.column)} = %s"
        )
        baseline = col(P, "baseline_completed_on")
        update_participant = (
            f"UPDATE {_q(P.db_table)} SET {col(P, 'status')} = %s, "
            f"{col(P, 'randomized_on')} = %s, {baseline} = COALESCE(%s, {baseline}) "
            f"WHERE {_q(P.pk.column)} = %s"
        )
        a_pk, p_pk = _q(A.pk.column), _q(P.pk.column)
        N = AllocationNotice._meta
        if {f.name for f in N.concrete_fields} != NOTICE_FIELDS:
            raise RuntimeError("AllocationNotice's columns changed: teach randomization.statements")
        notice = (
            f"INSERT INTO {_q(N.db_table)} ({col(N, 'allocation')}, {col(N, 'attempts')}, "
            f"{col(N, 'last_error')}) SELECT src.{a_pk}, 0, '' FROM {{}} src"
        )
        if self.one_statement:
            self.write = (
                f"WITH a AS ({insert_allocation} RETURNING *), "
                f"ha AS ({_history_insert(Allocation, 'a')}), "
                f"n AS ({notice.format('a')}), "
                f"s AS ({advance}), "
                f"p AS ({update_participant} RETURNING *), "
                f"hp AS ({_history_insert(Participant, 'p')}) "
                f"SELECT a.{a_pk} FROM a"
            )
        else:
            self.insert_allocation = f"{insert_allocation} RETURNING {a_pk}"
            self.allocation_history = (
                _history_insert(Allocation, _q(A.db_table)) + f" WHERE src.{a_pk} = %s"
            )
            self.notice = notice.format(_q(A.db_table)) + f" WHERE src.{a_pk} = %s"
            self.advance = advance
            self.update_participant = update_participant
            self.participant_history = (
                _history_insert(Participant, _q(P.db_table)) + f" WHERE src.{p_pk} = %s"
            )

    @staticmethod
    @functools.cache
    def _digest(sql):
        return hashlib.sha1(sql.encode()).hexdigest()[:10]

    def execute(self, cursor, name, params):
        """Run statement `name` (lock_participant, lock_stratum, write; the others are run as
        they are). On PostgreSQL the three run on every call are prepared statements of the
        connection: parsed and planned once per connection (and again only when the tables
        change), then EXECUTEd, which halves the server's CPU of the call. The name of each
        says what it locks or writes, as pg_stat_activity shows it."""
        sql = getattr(self, name)
        handle = _HANDLES.get(name) if self.prepare else None
        # A cursor that binds on the server (OPTIONS server_side_binding) leaves preparing to
        # psycopg's prepare_threshold: EXECUTE takes no bound parameters.
        if handle is None or not isinstance(getattr(cursor, "cursor", None), self._client_cursor):
            return cursor.execute(sql, params)
        handle = f"{handle}_{self._digest(sql)}"
        prepared = _prepared.setdefault(connection.connection, set())
        if handle not in prepared:
            pieces = sql.split("%s")
            numbered = "".join(f"{p}${i}" for i, p in enumerate(pieces[:-1], 1)) + pieces[-1]
            cursor.execute(f"PREPARE {handle} AS {numbered}")
            prepared.add(handle)
        marks = ", ".join(["%s"] * len(params))
        return cursor.execute(f"EXECUTE {handle}({marks})", params)


# Prepared statements by name, and the ones each open connection has (PREPARE lasts as long as
# the session, whatever its transactions do; a new connection is a new key).
_HANDLES = {
    "lock_participant": "randomization_participant_for_no_key_update",
    "lock_stratum": "randomization_stratum_for_update",
    "write": "randomization_allocation_write",
}
_prepared = weakref.WeakKeyDictionary()


@functools.cache
def _for(vendor, alias):
    return Statements()


def statements():
    """The Statements of the default connection (built on first use in the process)."""
    return _for(connection.vendor, connection.alias)
