"""bench/million_rows.py end to end at a tiny size: every stage runs in its own process through
the fake Labelbox and the real SDK, the table prints, and no row is lost or imported twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_million_row_bench_runs_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    bench = str(ROOT / "bench" / "million_rows.py")
    work = str(tmp_path / "work")
    command = [sys.executable, bench, "--rows", "400", "--staging-images", "0", "--work", work]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    counts = {}
    for stage in ("export", "prepare", "predict", "evaluate", "publish", "dashboard"):
        (line,) = [ln for ln in table.splitlines() if _is_row_of(ln, stage)]
        assert line.split()[4] == "ok", line
        counts[stage] = [int(n) for n in line.split()[1:4]]
    assert "anchor: parse" in table and "anchor: faster-coco-eval" in table
    # 400 rows: 20 not an image, 20 without a size; 80 validation + test rows, one fails
    assert counts["export"] == [400, 400, 0]
    assert counts["prepare"] == [400, 360, 40]
    assert counts["predict"] == [80, 79, 1]
    assert counts["evaluate"] == [80, 79, 1]
    assert counts["dashboard"] == [40, 40, 0]
    assert "(0 duplicate names)" in table
    assert "LOST" not in table


def _is_row_of(line: str, stage: str) -> bool:
    fields = line.split()
    return len(fields) > 2 and fields[0] == stage and fields[1].isdigit()
