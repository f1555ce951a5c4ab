"""Sessions in the database, whose keys are checked before any query."""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, session_key: str | None) -> bool:
        # The key comes from a cookie. Django makes it of letters and digits;
        # anything else is no session (a NUL byte would fail PostgreSQL's query).
        return bool(
            session_key is not None
            # Private in Django, so django-stubs leaves it out.
            and super()._validate_session_key(session_key)  # type: ignore[misc]
            and session_key.isascii()
            and session_key.isalnum()
        )
