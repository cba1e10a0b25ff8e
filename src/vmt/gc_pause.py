"""Pause the cyclic garbage collector while building many small objects.

Reading hundreds of thousands of rows creates and drops as many dicts and tuples; each burst
triggers collections that walk every object alive (the samples already read), which costs more
than the work itself. Nothing built there forms reference cycles.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
