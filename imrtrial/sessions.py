"""Django's database sessions, read by SQL written once per process.

Every request of a signed-in user reads their session row first. Django's store compiles
`Session.objects.get(session_key=..., expire_date__gt=now)` each time, which cost more CPU than
running it (issue 17); this store reads the same row, under the same conditions, by a statement
written once (imrtrial.rowloader). Everything else (saving, expiry, cycling the key on sign-in,
clearsessions) is Django's own.
"""

from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.utils import timezone

from .rowloader import RowLoader

_SESSION = RowLoader(Session, where=("session_key", "expire_date__gt"))


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        found = _SESSION.get(session_key=self.session_key, expire_date__gt=timezone.now())
        if found is None:  # unknown or expired: a new, empty session, as Django's store
            self._session_key = None
        return found
