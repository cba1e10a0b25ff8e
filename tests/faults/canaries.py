"""Canary secrets and the search for them in everything a run leaves behind.

A canary is a unique, greppable value given where a real secret would go (the Labelbox key, the
webhook secret, the API token, the signature of a signed image URL). ``leaks`` looks for each in
every text it is handed, and also for its URL-encoded, JSON-escaped and base64 forms.
"""

from __future__ import annotations

import base64
import secrets as random_secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class Canaries:
    labelbox_key: str = field(default_factory=lambda: "cnry-lbkey-" + random_secrets.token_hex(8))
    webhook_secret: str = field(default_factory=lambda: "cnry-whsec-" + random_secrets.token_hex(8))
    api_token: str = field(default_factory=lambda: "cnry-apitok-" + random_secrets.token_hex(8))
    url_signature: str = field(default_factory=lambda: "cnrysig" + random_secrets.token_hex(12))

    def signed(self, url: str) -> str:
        """``url`` as a GCS V4 signed URL whose signature (and credential) are canaries."""
        return (
            f"{url}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=svc%2F{self.url_signature}"
            f"&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature={self.url_signature}"
        )

    def named(self) -> dict[str, str]:
        return {
            "labelbox key": self.labelbox_key,
            "webhook secret": self.webhook_secret,
            "api token": self.api_token,
            "signed URL signature": self.url_signature,
        }


def _forms(value: str) -> set[bytes]:
    raw = value.encode()
    return {raw, quote(value, safe="").encode(), base64.b64encode(raw)[:16]}


def leaks(canaries: Canaries, texts: Iterable[tuple[str, bytes]]) -> list[str]:
    """ "<where>: <which canary> in ...<context>..." for every text that holds a canary in any
    form."""
    found = []
    forms = {name: _forms(value) for name, value in canaries.named().items()}
    for where, data in texts:
        for name, variants in forms.items():
            for variant in variants:
                at = data.find(variant)
                if at >= 0:
                    context = data[max(0, at - 160) : at + 40].decode(errors="replace")
                    found.append(f"{where}: {name} in ...{context}...")
                    break
    return found


def files_under(root: Path, *, skip: Iterable[str] = ()) -> Iterator[tuple[str, bytes]]:
    """Every regular file under ``root`` (raw bytes: SQLite databases and their WAL too)."""
    skipped = set(skip)
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name not in skipped:
            yield str(path.relative_to(root)), path.read_bytes()
