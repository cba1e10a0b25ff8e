"""The Labelbox webhook signature: ``X-Hub-Signature: sha1=<hex HMAC-SHA1(secret, raw body)>``.

Checked on the raw bytes before anything else looks at them, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature"
_PREFIX = "sha1="
_HEX_DIGITS = frozenset("0123456789abcdef")


def sign(secret: bytes, body: bytes) -> str:
    """The header value Labelbox sends for ``body``."""
    return _PREFIX + hmac.new(secret, body, hashlib.sha1).hexdigest()


def looks_like_signature(header: str | None) -> bool:
    """Whether the header is shaped like ``sha1=`` + 40 hex digits (checked before reading)."""
    if header is None or not header.startswith(_PREFIX):
        return False
    digest = header[len(_PREFIX) :].lower()
    return len(digest) == 40 and set(digest) <= _HEX_DIGITS


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret``."""
    if not looks_like_signature(header):
        return False
    assert header is not None
    expected = sign(secret, body).encode("ascii")
    return hmac.compare_digest(expected, header.lower().encode("ascii"))
