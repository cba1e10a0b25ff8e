"""Who may see the dashboard and act on runs: a login with the API token sets a session cookie;
every action carries a CSRF token bound to that session.

The cookie holds ``HMAC(token, "vmt-dashboard-session")``, never the token itself: it is
HttpOnly (no script reads it), SameSite=Strict (no other site sends it) and Secure over HTTPS.
Changing ``VMT_API_TOKEN`` ends every session. The CSRF token is ``HMAC(key, "csrf:" + session)``
and travels in a hidden form field; a POST without the right one, or sent from another origin,
is refused. With no API token configured (``vmt ui`` on 127.0.0.1) the pages are open, and
actions still need the CSRF token of this process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

SESSION_COOKIE = "vmt_session"
CSRF_FIELD = "csrf"
_OPEN_SESSION = "open"


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DashboardAccess:
    """Checks sessions and CSRF tokens for one app. ``token`` None: no login needed."""

    token: str | None
    csrf_key: bytes

    @classmethod
    def for_token(cls, token: str | None) -> DashboardAccess:
        key = token.encode("utf-8") if token else secrets.token_bytes(32)
        return cls(token=token or None, csrf_key=key)

    @property
    def needs_login(self) -> bool:
        return self.token is not None

    def check_token(self, given: str) -> bool:
        """True when ``given`` is the API token (constant time)."""
        if self.token is None:
            return True
        return hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))

    def new_session(self) -> str:
        """The cookie value for a logged-in browser."""
        if self.token is None:
            return _OPEN_SESSION
        return _mac(self.token.encode("utf-8"), "vmt-dashboard-session")

    def session_of(self, cookie: str | None) -> str | None:
        """The session of a request's cookie; None when it has no valid one."""
        if self.token is None:
            return _OPEN_SESSION
        if not cookie:
            return None
        return cookie if hmac.compare_digest(cookie, self.new_session()) else None

    def csrf_token(self, session: str) -> str:
        return _mac(self.csrf_key, f"csrf:{session}")

    def check_csrf(self, session: str, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8"), self.csrf_token(session).encode("utf-8"))


def same_origin(origin: str | None, host: str | None) -> bool:
    """False when the browser says the request comes from another site (``Origin`` header of
    a different host); True when it is ours or no ``Origin`` was sent (not a browser POST)."""
    if not origin:
        return True
    if origin == "null" or host is None:
        return False
    return urlsplit(origin).netloc == host
