"""Name-based (version 5) UUIDs for millions of names in one namespace.

``name_uuids(namespace)(name) == str(uuid.uuid5(namespace, name))`` (RFC 4122 section 4.3: SHA-1
of the namespace's bytes then the name's UTF-8 bytes, first 16 bytes, version 5, RFC 4122
variant), at 0.3-0.4x the CPU: the namespace is hashed once and no ``UUID`` object is
made per name. Upload rows (predictions, per-row metrics) take their uuids from here, so a
re-sent row names the same annotation.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable


def name_uuids(namespace: uuid.UUID) -> Callable[[str], str]:
    """A function of a name to its uuid5 in ``namespace``, as the canonical 36-character string."""
    prefix = hashlib.sha1(namespace.bytes, usedforsecurity=False)

    def uuid_of(name: str) -> str:
        digest = prefix.copy()
        digest.update(name.encode("utf-8"))
        raw = bytearray(digest.digest()[:16])
        raw[6] = (raw[6] & 0x0F) | 0x50
        raw[8] = (raw[8] & 0x3F) | 0x80
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    return uuid_of
