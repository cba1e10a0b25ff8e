"""What ``--pool`` names: an export file, a Labelbox project, a Labelbox dataset or a list of
global keys. Parsed once (``PoolSpec.parse``) by the CLI, the service routes and the automatic
pre-labelling alike.

    path/to/export.ndjson       an export file (as written by Labelbox or ``vmt``)
    labelbox-project:ID         the project's data rows without a label in it
    labelbox-dataset:ID         the dataset's data rows; with a project, those not yet in it
    global-keys:FILE            the data rows of the global keys in FILE, one a line

A text that starts like ``word:`` with another word is refused as an unknown scheme rather than
read as a file name (write ``./name:with-colon.ndjson`` for such a file).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from vmt.errors import InputError


class PoolKind(StrEnum):
    FILE = "file"
    LABELBOX_PROJECT = "labelbox-project"
    LABELBOX_DATASET = "labelbox-dataset"
    GLOBAL_KEYS = "global-keys"


SCHEMES = (PoolKind.LABELBOX_PROJECT, PoolKind.LABELBOX_DATASET, PoolKind.GLOBAL_KEYS)
POOL_HELP = (
    "The pool: an export file, labelbox-project:ID (its rows without a label), "
    "labelbox-dataset:ID (with --project, its rows not yet in the project), or "
    "global-keys:FILE (one global key a line)."
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
"""``scheme:`` at the start (two letters or more, so ``C:\\x`` stays a path)."""


@dataclass(frozen=True)
class PoolSpec:
    """One parsed ``--pool`` value. ``value`` is the file path, the project or dataset id, or
    the keys file, by ``kind``."""

    kind: PoolKind
    value: str

    @classmethod
    def parse(cls, text: str) -> PoolSpec:
        """The pool ``text`` names. ``InputError`` for an empty text, an unknown scheme or a
        scheme without its id or file."""
        text = text.strip()
        if not text:
            raise InputError("--pool is empty: give an export file or one of " + _schemes())
        match = _SCHEME.match(text)
        if match is None:
            return cls(PoolKind.FILE, text)
        scheme = match.group(1).lower()
        if scheme not in {k.value for k in SCHEMES}:
            raise InputError(
                f"unknown pool scheme {match.group(1)!r} in {text!r}: use an export file or "
                f"one of {_schemes()} (write ./{text} for a file whose name has a colon)"
            )
        kind = PoolKind(scheme)
        value = text[match.end() :].strip()
        if not value:
            what = "keys file" if kind is PoolKind.GLOBAL_KEYS else "id"
            raise InputError(
                f"pool {text!r} has no {what} after the colon: write {kind.value}:{_hint(kind)}"
            )
        return cls(kind, value)

    @property
    def is_labelbox(self) -> bool:
        """True when the rows must be exported from Labelbox first."""
        return self.kind is not PoolKind.FILE

    @property
    def path(self) -> Path:
        """The export file (``FILE``) or the keys file (``GLOBAL_KEYS``)."""
        if self.kind not in (PoolKind.FILE, PoolKind.GLOBAL_KEYS):
            raise ValueError(f"a {self.kind.value} pool names no file")
        return Path(self.value)

    def __str__(self) -> str:
        return self.value if self.kind is PoolKind.FILE else f"{self.kind.value}:{self.value}"

    def check_prelabel_target(self, project_id: str | None) -> None:
        """Refuse pre-labelling ``project_id`` from a pool that holds only rows outside it.

        Labelbox takes pre-labels only on rows already in the project; a dataset pool read with
        that project holds exactly the rows that are not."""
        if self.kind is PoolKind.LABELBOX_DATASET and project_id is not None:
            raise InputError(
                f"pool {self} with project {project_id} holds only rows not in the project, and "
                "Labelbox takes pre-labels only on rows in it: send rows there first with "
                f"`vmt select --pool {self} --project {project_id} --prelabel`, pre-label the "
                f"project's unlabelled rows with --pool labelbox-project:{project_id}, or write "
                "the dataset's pre-labels to a file (-o, no --project)"
            )

    def check_batch_target(self, project_id: str | None) -> None:
        """Refuse sending rows of the pool ``labelbox-project:P`` to P as a batch: they are in
        P already, and a data row can be in only one batch of a project."""
        if self.kind is PoolKind.LABELBOX_PROJECT and project_id == self.value:
            raise InputError(
                f"the rows of pool {self} are in project {project_id} already, and Labelbox "
                "puts a data row in one batch of a project at most: choose from a dataset "
                f"(--pool labelbox-dataset:ID --project {project_id}) or from another project "
                "(a staging project of unlabelled rows)"
            )


def global_keys_of(lines: Iterable[str]) -> Iterator[str]:
    """The keys of a keys file's lines: stripped, blank lines and repeats left out, in order.

    Yields each key once; the set of keys seen is kept (one entry per distinct key)."""
    seen: set[str] = set()
    for line in lines:
        key = line.strip().lstrip("\ufeff").strip()
        if key and key not in seen:
            seen.add(key)
            yield key


def read_global_keys(path: Path) -> list[str]:
    """The distinct global keys of ``path`` (UTF-8, one a line). ``InputError`` when the file
    is missing, unreadable or holds no key."""
    try:
        with path.open(encoding="utf-8-sig") as f:
            keys = list(global_keys_of(f))
    except FileNotFoundError:
        raise InputError(f"global keys file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the global keys file {path}: {exc}") from exc
    if not keys:
        raise InputError(f"the global keys file {path} holds no key (one global key a line)")
    return keys


def _schemes() -> str:
    return ", ".join(f"{k.value}:{_hint(k)}" for k in SCHEMES)


def _hint(kind: PoolKind) -> str:
    return "FILE" if kind is PoolKind.GLOBAL_KEYS else "ID"
