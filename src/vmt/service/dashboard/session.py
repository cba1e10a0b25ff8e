"""Who may see the dashboard and act on runs: a login with the API token starts a session;
every action carries a CSRF token bound to that session.

A session is a random id (``secrets.token_urlsafe``), new at every login, with its expiry
(``VMT_SESSION_HOURS``), signed: the cookie is ``ID.EXPIRES.HMAC(key, ID:EXPIRES)`` with a key
derived from the API token, never the token itself. It is HttpOnly (no script reads it),
SameSite=Strict (no other site sends it) and Secure over HTTPS (behind a proxy: when the proxy
is trusted, ``VMT_TRUSTED_PROXIES``). Logging out revokes the id in this process until its
expiry; changing ``VMT_API_TOKEN`` ends every session. The CSRF token is
``HMAC(key, "csrf:" + ID)`` and travels in a hidden form field; a POST without the right one,
or sent from another origin, is refused. With no API token configured (``vmt ui`` on 127.0.0.1)
the pages are open, and actions still need the CSRF token of this process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SESSION_COOKIE = "vmt_session"
CSRF_FIELD = "csrf"
_OPEN_SESSION = "open"


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass
class DashboardAccess:
    """Checks sessions and CSRF tokens for one app. ``token`` None: no login needed."""

    token: str | None
    csrf_key: bytes
    lifetime_s: float = 8 * 3600.0
    clock: Callable[[], float] = time.time
    _revoked: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_token(cls, token: str | None, *, session_hours: float = 8.0) -> DashboardAccess:
        key = (
            hmac.new(token.encode("utf-8"), b"vmt-dashboard-session-key", hashlib.sha256).digest()
            if token
            else secrets.token_bytes(32)
        )
        return cls(token=token or None, csrf_key=key, lifetime_s=session_hours * 3600)

    @property
    def needs_login(self) -> bool:
        return self.token is not None

    def check_token(self, given: str) -> bool:
        """True when ``given`` is the API token (constant time)."""
        if self.token is None:
            return True
        return hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))

    def new_session(self) -> str:
        """The cookie value for a browser that just logged in: a new random id each time."""
        if self.token is None:
            return _OPEN_SESSION
        session_id = secrets.token_urlsafe(24)
        expires = int(self.clock() + self.lifetime_s)
        return f"{session_id}.{expires}.{_mac(self.csrf_key, f'session:{session_id}:{expires}')}"

    def session_of(self, cookie: str | None) -> str | None:
        """The session id of a request's cookie; None when it has no valid one (unsigned,
        expired or logged out)."""
        if self.token is None:
            return _OPEN_SESSION
        parsed = self._parse(cookie)
        if parsed is None:
            return None
        session_id, _expires = parsed
        with self._lock:
            return None if session_id in self._revoked else session_id

    def revoke(self, cookie: str | None) -> None:
        """End the cookie's session (logout); a no-op for an invalid cookie."""
        parsed = self._parse(cookie)
        if parsed is None:
            return
        now = self.clock()
        with self._lock:
            self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
            self._revoked[parsed[0]] = parsed[1]

    def _parse(self, cookie: str | None) -> tuple[str, float] | None:
        if not cookie or cookie.count(".") != 2:
            return None
        session_id, expires, mac = cookie.split(".")
        if not expires.isdigit():
            return None
        expected = _mac(self.csrf_key, f"session:{session_id}:{expires}")
        if not hmac.compare_digest(mac.encode("utf-8"), expected.encode("utf-8")):
            return None
        if int(expires) <= self.clock():
            return None
        return session_id, float(expires)

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
