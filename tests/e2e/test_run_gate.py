"""`vmt run --json --fail-under` on a synthetic export: JSON lines on stderr, the summary on
stdout, exit status 3 when the model falls short."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson

from tests.conftest import VMT, cli_env
from vmt.quality_gate import GATE_FAILED_EXIT_CODE
from vmt.synthetic import generate_dataset


def test_run_json_summary_and_failed_gate(tmp_path: Path) -> None:
    export = generate_dataset(tmp_path / "dataset", images=20, seed=3)
    env = cli_env(VMT_STATE_DIR=str(tmp_path / "state"), VMT_LOCAL_DEVICE="cpu")
    result = subprocess.run(
        [
            *VMT, "run", "--export", str(export), "--out", str(tmp_path / "out"),
            "--train-seconds", "2", "--seed", "0", "--json",
            "--fail-under", "map_50=1.01", "--fail-under", "map=0",
        ],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == GATE_FAILED_EXIT_CODE, result.stderr[-3000:]
    summary = orjson.loads(result.stdout)
    assert summary["state"] == "complete"
    assert summary["headline"]["rows"] in ("test", "all")
    assert summary["gate"]["passed"] is False
    assert [c["metric"] for c in summary["gate"]["checks"]] == ["map_50", "map"]
    assert [c["passed"] for c in summary["gate"]["checks"]] == [False, True]
    metrics = orjson.loads(Path(summary["metrics_file"]).read_bytes())
    assert summary["gate"]["checks"][0]["value"] == metrics["map_50"]
    lines = result.stderr.splitlines()
    reason = lines[-1]
    assert reason.startswith("quality gate failed: map_50 ") and "< 1.01" in reason
    logs = [orjson.loads(line) for line in lines[:-1]]
    assert {entry["severity"] for entry in logs} <= {"INFO", "WARNING", "ERROR"}
    assert any(entry["message"] == "run complete" for entry in logs)
    assert any(entry["message"] == "progress" and entry["stage"] == "train" for entry in logs)
