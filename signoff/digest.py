"""What a signature signs: a digest of the data of record.

The digest of one visit is sha256 over its counting form entries (FormEntry.objects.counting(),
the one rule of what the data of record is), each as "id:instrument:values", in instrument
order; the digest of a casebook is sha256 over the digests of its timepoints. Status is left
out on purpose: verifying or locking a form does not change what the investigator signed, a
changed value, a form newly complete or reconciled, or an erasure does.

On PostgreSQL the database computes one digest per participant and timepoint (jsonb text is
canonical: keys sorted, one spacing), so a page or an export reads 64 characters per visit, not
every form's values. Elsewhere (the SQLite demo) Python computes them; a digest is only ever
compared with one made on the same database.
"""

import hashlib
import json

from django.db import connection

from assessments.models import FormEntry

EMPTY = ""  # nothing of record at the visit: nothing to sign


def visit_digests(participant_ids):
    """{(participant pk, timepoint code): digest} of the participants' visits with data of
    record, in one query."""
    entries = (
        FormEntry.objects.counting()
        .filter(participant_id__in=list(participant_ids))
        .values_list("participant_id", "timepoint", "id", "instrument", "values")
    )
    if connection.vendor == "postgresql":
        inner, params = entries.query.sql_with_params()
        sql = (
            "SELECT participant_id, timepoint, encode(sha256(convert_to(string_agg("
            "id::text || ':' || instrument || ':' || \"values\"::text, '|' "
            "ORDER BY instrument, id), 'UTF8')), 'hex')"
            f" FROM ({inner}) AS counting GROUP BY participant_id, timepoint"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {(pk, tp): digest for pk, tp, digest in cursor}
    parts = {}
    for pk, tp, entry_id, instrument, values in entries:
        text = json.dumps(values, sort_keys=True)
        parts.setdefault((pk, tp), []).append(
            (instrument, entry_id, f"{entry_id}:{instrument}:{text}")
        )
    return {
        key: hashlib.sha256("|".join(p for *_, p in sorted(rows)).encode()).hexdigest()
        for key, rows in parts.items()
    }


def casebook_digest(digests, participant_pk):
    """The digest of a participant's whole casebook, from their visits' digests."""
    mine = sorted((tp, d) for (pk, tp), d in digests.items() if pk == participant_pk)
    if not mine:
        return EMPTY
    return hashlib.sha256("|".join(f"{tp}={d}" for tp, d in mine).encode()).hexdigest()


def digest_of(digests, participant_pk, timepoint_code=None):
    """The current digest of a visit (by timepoint code) or of the casebook (None)."""
    if timepoint_code is None:
        return casebook_digest(digests, participant_pk)
    return digests.get((participant_pk, timepoint_code), EMPTY)
