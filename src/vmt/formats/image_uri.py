"""Image locations as data rows name them: http(s) URLs, ``gs://`` objects, local paths and
``file://`` URIs. Pure string work, no I/O.

``redact`` is the one way a location is shown in a log, event, error, rejection or report:
user-info (``https://user:token@host/``) and the query string (signed URLs carry their
signature there: ``X-Goog-Signature``, ``sig``, ``token``...) never leave it. ``redact_urls``
applies it to free text (log records, events, errors, status metadata) as a last line of
defence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_QUERY = re.compile(r"(/[^\s'\"<>?]*)\?[^\s'\"<>]*=[^\s'\"<>]*")


@dataclass(frozen=True, slots=True)
class GcsPath:
    """A ``gs://BUCKET/NAME`` object location."""

    bucket: str
    name: str

    @classmethod
    def parse(cls, uri: str) -> GcsPath:
        """Raises ``ValueError`` for anything but ``gs://...``."""
        if not uri.startswith("gs://"):
            raise ValueError(f"not a gs:// URI: {redact(uri)!r}")
        bucket, _, name = uri[5:].partition("/")
        return cls(bucket, name)

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def scheme(uri: str) -> str:
    """The lower-case scheme; ``""`` for a plain path (a one-letter scheme is a drive letter)."""
    found = urlsplit(uri).scheme.lower()
    return "" if len(found) <= 1 else found


def local_path(uri: str) -> Path | None:
    """The local file a path or ``file://`` URI names; None for remote or unknown schemes."""
    kind = scheme(uri)
    if kind == "file":
        return Path(unquote(urlsplit(uri).path))
    if kind == "":
        return Path(uri)
    return None


def resolve_relative(uri: str, base: Path | None) -> str:
    """A relative local path is taken relative to ``base``; URLs and absolute paths stay."""
    if base is None or "://" in uri or Path(uri).is_absolute():
        return uri
    return str(base / uri)


def redact(uri: str) -> str:
    """``uri`` without user-info, query string or fragment: fit for any message.

    ``https://u:p@host:8443/a.jpg?X-Goog-Signature=..`` -> ``https://host:8443/a.jpg?...``
    (``?...`` says a query string was there); local paths are returned unchanged."""
    if "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:  # not parseable (e.g. a stray "["): cut what could hold a secret
        scheme_part, _, rest = uri.partition("://")
        rest = rest.split("?", 1)[0].split("#", 1)[0]
        query = "?..." if "?" in uri else ""
        return f"{scheme_part}://{rest.rsplit('@', 1)[-1]}{query}"
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", "")) + ("?..." if parts.query else "")


def redact_text(text: str, uri: str) -> str:
    """``text`` with every occurrence of ``uri`` (and its query string / user-info on their
    own, as SDK messages may quote either) replaced by ``redact(uri)``."""
    if "://" not in uri:
        return text
    shown = redact(uri)
    text = text.replace(uri, shown)
    parts = urlsplit(uri)
    for secret in (parts.query, parts.username, parts.password):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def redact_urls(text: str) -> str:
    """Every URL in free ``text`` shown as ``redact`` shows it, and any other ``/path?k=v``
    (an HTTP request line quoting a signed URL's path) without its query string. The last line
    of defence for logs, events, errors and status metadata; code redacts at the source too."""
    if "://" not in text and "?" not in text:
        return text
    return _QUERY.sub(r"\1?...", _URL.sub(lambda m: redact(m.group(0)), text))


def redact_values(data: Mapping[str, object]) -> dict[str, object]:
    """``data`` with ``redact_urls`` applied to its string values (one level deep)."""
    return {k: redact_urls(v) if isinstance(v, str) else v for k, v in data.items()}
