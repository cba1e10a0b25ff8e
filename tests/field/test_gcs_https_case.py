"""Field case 29-gcs-https-row-data (its input copied to tests/field/gcs_https_case, outside
tests/field/cases, whose table test_field_cases.py keeps): ``row_data`` given as the https URLs
Cloud Storage serves objects at is a Cloud Storage object, written as ``gs://``. The command is
run exactly as the case's README line writes it, in a copy of the case folder."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import VMT, cli_env

CASE = Path(__file__).parent / "gcs_https_case"


def test_case_29_https_cloud_storage_row_data_is_written_as_gs(tmp_path: Path) -> None:
    folder = tmp_path / "case"
    shutil.copytree(CASE, folder)
    result = subprocess.run(
        [*VMT, "convert", "export.ndjson", "-o", "out.jsonl"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=cli_env(COLUMNS="400"),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (folder / "out.jsonl").read_text().splitlines()]
    assert [line["imageGcsUri"] for line in lines] == [
        "gs://labelbox-sample-datasets/Docs/basic.jpg",
        "gs://lb-yard/site A/frame_0002.jpg",
        "gs://lb-yard/site A/frame_0003.jpg",
    ]
    assert "not_in_gcs" not in result.stdout + result.stderr
