"""Image locations as data rows name them: http(s) URLs, ``gs://`` objects, local paths and
``file://`` URIs. Pure string work, no I/O.

``gcs_object`` is the one rule for which locations are Cloud Storage objects: ``gs://B/O`` and
the https URLs Cloud Storage serves the same object at (path-style
``https://storage.googleapis.com/B/O``, virtual-hosted ``https://B.storage.googleapis.com/O``,
the console's ``https://storage.cloud.google.com/B/O``), names percent-decoded.

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

_GCS_HOSTS = frozenset({"storage.googleapis.com", "storage.cloud.google.com"})
_VIRTUAL_HOST_SUFFIX = ".storage.googleapis.com"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
"""Cloud Storage bucket names: 3-222 characters of lower-case letters, digits, ``.``, ``-``,
``_``, starting and ending with a letter or digit."""
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


def gcs_object(location: str) -> GcsPath | None:
    """The Cloud Storage object ``location`` names, or None when it names none.

    ``gs://BUCKET/NAME`` as written (a gs:// name is taken literally), and these https (or
    http) URLs with the object name percent-decoded (``site%20A/f.jpg`` -> ``site A/f.jpg``):

    - ``https://storage.googleapis.com/BUCKET/NAME`` (path style)
    - ``https://BUCKET.storage.googleapis.com/NAME`` (virtual-hosted style)
    - ``https://storage.cloud.google.com/BUCKET/NAME`` (the console's authenticated link)

    Host names are case-insensitive; port 443 (80 for http) may be written. Not objects (None):
    other hosts, a URL with user-info, a query string (a signed URL or a chosen generation is
    read as the URL it is) or a fragment, a bucket name Cloud Storage would not accept, an
    empty object name, or a decoded name holding a carriage return or line feed (which Cloud
    Storage forbids).
    """
    if location.startswith("gs://"):
        given = GcsPath.parse(location)
        return given if given.bucket and given.name else None
    try:
        parts = urlsplit(location)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return None
    if parts.query or parts.fragment or "?" in location or "#" in location:
        return None
    if port is not None and port != (443 if parts.scheme.lower() == "https" else 80):
        return None
    host = (parts.hostname or "").lower()
    path = parts.path
    if host in _GCS_HOSTS:
        bucket, _, encoded = path.removeprefix("/").partition("/")
    elif host.endswith(_VIRTUAL_HOST_SUFFIX):
        bucket, encoded = host.removesuffix(_VIRTUAL_HOST_SUFFIX), path.removeprefix("/")
    else:
        return None
    name = _decoded(encoded)
    if not _BUCKET.fullmatch(bucket) or not name or "\r" in name or "\n" in name:
        return None
    return GcsPath(bucket, name)


def gcs_uri(location: str) -> str | None:
    """``gcs_object(location)`` as a ``gs://`` URI; None when it names no object."""
    found = gcs_object(location)
    return None if found is None else found.uri


def _decoded(encoded: str) -> str:
    """Percent-decoded as UTF-8; ``""`` when the escapes are not UTF-8."""
    try:
        return unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        return ""


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
