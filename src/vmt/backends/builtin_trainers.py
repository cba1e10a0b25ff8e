"""The trainers that ship with vmt: one line each (``vmt.backends.registry`` loads them)."""

from __future__ import annotations

from vmt.backends.local.spec import SPEC as LOCAL
from vmt.backends.registry import TrainerSpec
from vmt.backends.vertex.spec import SPEC as VERTEX

BUILTIN_TRAINERS: tuple[TrainerSpec, ...] = (LOCAL, VERTEX)
"""In the order they are listed (``vmt models``, ``GET /models``, ``--trainer`` help)."""
