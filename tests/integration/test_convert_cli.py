"""``vmt convert`` as users run it: a subprocess, exit codes, files and messages."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.builders.labelbox_rows import box_object, lines, model_run_row, project_row
from tests.conftest import VMT, cli_env
from vmt.formats.export_options import auto_split


def write_export(path: Path, *rows: Any) -> Path:
    path.write_bytes(b"".join(lines(*rows)))
    return path


def vmt_convert(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VMT, "convert", *map(str, args)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )


def training_rows(count: int, *, row_data: str = "gs://b/{i}.jpg") -> list[dict[str, Any]]:
    return [
        model_run_row(f"dr-{i}", row_data=row_data.format(i=i), objects=[box_object("car")])
        for i in range(count)
    ]


def test_converts_writes_the_report_and_prints_a_summary(tmp_path: Path) -> None:
    export = write_export(
        tmp_path / "export.ndjson",
        *training_rows(12),
        b"{broken\n",
        b"\n",
        model_run_row("dr-0"),  # duplicate
        model_run_row("dr-x", split=None),
        model_run_row("dr-y", objects=[box_object("bus", left=-5), box_object("tiny", width=1)]),
    )
    out, report = tmp_path / "import.jsonl", tmp_path / "report.json"
    result = vmt_convert(export, "-o", out, "--report", report)
    assert result.returncode == 0, result.stderr
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["imageGcsUri"] for w in written[:2]] == ["gs://b/0.jpg", "gs://b/1.jpg"]
    assert len(written) == 13
    data = json.loads(report.read_text())
    assert set(data) == {
        "rows_read",
        "rows_written",
        "rows_with_boxes",
        "boxes_written",
        "rejected",
        "warnings",
        "examples",
        "classes",
    }
    assert (data["rows_read"], data["rows_written"], data["boxes_written"]) == (16, 13, 13)
    assert data["rejected"] == {"malformed_json": 1, "duplicate_row": 1, "unassigned_split": 1}
    assert data["warnings"] == {"box_clipped": 1, "box_too_small": 1}
    assert data["examples"]["duplicate_row"] == [
        {"line": 15, "data_row_id": "dr-0", "detail": "data row id seen before"}
    ]
    assert data["classes"] == {"bus": {"training": 1}, "car": {"training": 12}}
    assert "rows written" in result.stdout and "unassigned_split" in result.stdout
    assert "Vertex limit" in result.stdout and "bus" in result.stdout  # < 10 training images
    assert "wrote 13 rows" in result.stderr
    assert not list(tmp_path.glob("*.partial"))


def test_image_uri_prefix(tmp_path: Path) -> None:
    export = write_export(tmp_path / "e.ndjson", *training_rows(10, row_data="https://cdn/{i}.png"))
    out = tmp_path / "o.jsonl"
    assert vmt_convert(export, "-o", out, "--image-uri-prefix", "gs://stage/img/").returncode == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert first["imageGcsUri"] == "gs://stage/img/dr-0.jpg"  # .jpg from the mime type


def test_nothing_written_exits_1_with_one_line(tmp_path: Path) -> None:
    export = write_export(tmp_path / "e.ndjson", *training_rows(3, row_data="https://cdn/{i}.png"))
    out, report = tmp_path / "o.jsonl", tmp_path / "r.json"
    result = vmt_convert(export, "-o", out, "--report", report)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message == (
        "error: no rows written: all 3 rows rejected, most as not_in_gcs (3) "
        "(pass --image-uri-prefix gs://...)"
    )
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert json.loads(report.read_text())["rejected"] == {"not_in_gcs": 3}


def test_empty_export_exits_1(tmp_path: Path) -> None:
    export = tmp_path / "empty.ndjson"
    export.write_bytes(b"\n\n")
    result = vmt_convert(export, "-o", tmp_path / "o.jsonl")
    assert result.returncode == 1
    assert "the export has no rows" in result.stderr


def test_strict_fails_on_vertex_limits(tmp_path: Path) -> None:
    odd = model_run_row("odd", objects=[box_object("[/x] odd")])  # rich markup must not apply
    export = write_export(tmp_path / "e.ndjson", *training_rows(9), odd)
    out = tmp_path / "o.jsonl"
    result = vmt_convert(export, "-o", out, "--strict")
    assert result.returncode == 1
    assert "--strict: 2 label(s) with fewer than 10 training images: [/x] odd, car" in result.stderr
    assert not out.exists()
    assert vmt_convert(export, "-o", out).returncode == 0 and out.exists()


AUTO_NOTE = (
    "no row has a split (a project export): splits assigned by --unassigned auto "
    "(80/10/10 by data row id)"
)
PROJECT = [project_row(f"dr-{i}", row_data=f"gs://b/{i}.jpg") for i in range(20)]
SOME_UNASSIGNED = [*training_rows(3), model_run_row("dr-x", split=None, row_data="gs://b/x.jpg")]
"""A model-run export with one row its run left unassigned."""


@pytest.mark.parametrize(
    ("rows", "flags", "splits", "rejected", "note"),
    [
        (PROJECT, [], {f"dr-{i}": auto_split(f"dr-{i}").value for i in range(20)}, {}, True),
        (PROJECT, ["--unassigned", "test"], {f"dr-{i}": "test" for i in range(20)}, {}, False),
        (PROJECT, ["--unassigned", "skip"], None, {"unassigned_split": 20}, False),
        (SOME_UNASSIGNED, [], {f"dr-{i}": "training" for i in range(3)},
         {"unassigned_split": 1}, False),
        (SOME_UNASSIGNED, ["--unassigned", "validation"],
         {"dr-0": "training", "dr-1": "training", "dr-2": "training", "dr-x": "validation"},
         {}, False),
    ],
    ids=["project-auto", "project-named", "project-skip-named", "run-skip", "run-named"],
)  # fmt: skip
def test_the_default_split_policy_follows_the_export(
    tmp_path: Path,
    rows: list[Any],
    flags: list[str],
    splits: dict[str, str] | None,
    rejected: dict[str, int],
    note: bool,
) -> None:
    """No --unassigned: auto (said in one line) when no row has a split, skip (rows without
    one rejected and reported) when some row has one; a named policy always wins."""
    export = write_export(tmp_path / "e.ndjson", *rows)
    out, report = tmp_path / "o.jsonl", tmp_path / "r.json"
    result = subprocess.run(
        [*VMT, "convert", str(export), "-o", str(out), "--report", str(report), *flags],
        capture_output=True,
        text=True,
        env=cli_env(COLUMNS="400"),
        timeout=60,
    )
    assert (AUTO_NOTE in result.stdout) is note
    assert json.loads(report.read_text())["rejected"] == rejected
    if splits is None:
        assert result.returncode == 1
        assert "most as unassigned_split (20) (pass --unassigned auto" in result.stderr
        assert not out.exists()
        return
    assert result.returncode == 0, result.stderr
    written = [json.loads(line) for line in out.read_text().splitlines()]
    ml_use = "aiplatform.googleapis.com/ml_use"
    got = {w["imageGcsUri"]: w["dataItemResourceLabels"][ml_use] for w in written}
    assert got == {f"gs://b/{row[3:]}.jpg": split for row, split in splits.items()}
    assert len(set(got.values())) > 1 or not note  # auto spreads the project's rows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing.ndjson", "-o", "{tmp}/o.jsonl"], "does not exist"),
        (["{export}", "-o", "{tmp}/o.jsonl", "--unassigned", "train"], "--unassigned"),
        (["{export}", "-o", "{tmp}/o.jsonl", "--image-uri-prefix", "s3://b/"], "gs://"),
        (["{export}", "-o", "{tmp}/no/such/dir/o.jsonl"], "does not exist"),
        (["{export}", "-o", "{export}"], "would overwrite the export"),
        (["{export}"], "--output"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    export = write_export(tmp_path / "e.ndjson", *training_rows(1))
    result = vmt_convert(*(a.format(tmp=tmp_path, export=export) for a in args))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
