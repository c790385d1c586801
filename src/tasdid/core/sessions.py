"""The parties' session engine (settings.SESSION_ENGINE): Django's database sessions, with fewer statements.

A new session key is not looked up first: the row is inserted as new (``save(must_create=True)``), and a key
already taken fails that insert, after which ``create`` draws another, as Django's engine does on a race. A
session is deleted (a new key after an identification, ``cycle_key``) by one DELETE instead of a read and a
delete by key (SQLite adds its transaction's BEGIN).
"""

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.utils.crypto import get_random_string


class SessionStore(db.SessionStore):
    def _get_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.model.objects.filter(session_key=session_key).delete()
