"""Figures of the fault campaign: each part's test records what it tried and what it found.

When ``FAULT_FIGURES_FILE`` names a file, ``record`` appends one JSON line to it;
``bench/faults.py`` runs the campaign with it set and prints the table for docs/reliability.md.
Without it, nothing is written (the default test run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def record(part: str, **figures: Any) -> None:
    path = os.environ.get("FAULT_FIGURES_FILE")
    if path:
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(json.dumps({"part": part, **figures}) + "\n")
