"""``--pool`` parsing, global-keys files, and what a pool row keeps of an exported row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from vmt.domain import Rejection, Sample
from vmt.errors import InputError
from vmt.formats.export_options import ExportOptions
from vmt.formats.labelbox_export import parse_lines
from vmt.pool.pool_inputs import has_label_in, pool_row
from vmt.pool.pool_spec import PoolKind, PoolSpec, global_keys_of, read_global_keys
from vmt.reasons import Reason


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("pool.ndjson", PoolKind.FILE, "pool.ndjson"),  # a plain file
        ("/data/pools/a.ndjson", PoolKind.FILE, "/data/pools/a.ndjson"),
        ("C:\\pools\\a.ndjson", PoolKind.FILE, "C:\\pools\\a.ndjson"),  # a drive letter
        ("./odd:name.ndjson", PoolKind.FILE, "./odd:name.ndjson"),  # a colon after a path
        ("labelbox-project:cl123", PoolKind.LABELBOX_PROJECT, "cl123"),
        ("  labelbox-dataset: ds9 ", PoolKind.LABELBOX_DATASET, "ds9"),  # spaces trimmed
        ("LABELBOX-PROJECT:Ab", PoolKind.LABELBOX_PROJECT, "Ab"),  # the scheme in any case
        ("global-keys:keys.txt", PoolKind.GLOBAL_KEYS, "keys.txt"),
        ("global-keys:/abs/k:1.txt", PoolKind.GLOBAL_KEYS, "/abs/k:1.txt"),
    ],
)
def test_pools_are_parsed(text: str, kind: PoolKind, value: str) -> None:
    spec = PoolSpec.parse(text)
    assert (spec.kind, spec.value) == (kind, value)
    assert spec.is_labelbox == (kind is not PoolKind.FILE)
    assert PoolSpec.parse(str(spec)) == spec  # printed as it is parsed


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "--pool is empty"),
        ("labelbox-projet:abc", "unknown pool scheme 'labelbox-projet'"),  # a typo
        ("gs://bucket/pool.ndjson", "unknown pool scheme 'gs'"),  # not a local file
        ("labelbox-project:", "has no id after the colon"),
        ("labelbox-dataset:   ", "has no id after the colon"),
        ("global-keys:", "has no keys file after the colon"),
    ],
)
def test_bad_pools_are_refused(text: str, says: str) -> None:
    with pytest.raises(InputError, match=says):
        PoolSpec.parse(text)


def test_targets_that_cannot_work_are_refused() -> None:
    dataset = PoolSpec.parse("labelbox-dataset:d")
    dataset.check_prelabel_target(None)  # to a file: every row of the dataset
    with pytest.raises(InputError, match="pre-labels only on rows in it"):
        dataset.check_prelabel_target("p")
    project = PoolSpec.parse("labelbox-project:p")
    project.check_batch_target("q")  # a staging project's rows into another project
    project.check_prelabel_target("p")
    with pytest.raises(InputError, match="one batch of a project at most"):
        project.check_batch_target("p")


def test_global_keys_files_skip_blanks_and_repeats(tmp_path: Path) -> None:
    assert list(global_keys_of(["\ufeffa\n", "\n", " b \r\n", "a\n", "c"])) == ["a", "b", "c"]
    path = tmp_path / "keys.txt"
    path.write_bytes(b"\xef\xbb\xbfk1\r\n\r\nk2\nk1\n")
    assert read_global_keys(path) == ["k1", "k2"]
    path.write_text("\n \n")
    with pytest.raises(InputError, match="holds no key"):
        read_global_keys(path)
    with pytest.raises(InputError, match="not found"):
        read_global_keys(tmp_path / "missing.txt")
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="cannot read"):
        read_global_keys(path)


ROW: dict[str, Any] = {
    "data_row": {"id": "dr1", "global_key": "k1", "row_data": "https://x/1.png",
                 "details": {"updated_at": "2026-01-01"}},
    "media_attributes": {"width": 10, "height": 8, "mime_type": "image/png"},
    "metadata_fields": [],
    "projects": {
        "p": {"name": "P", "project_details": {"workflow_status": "DONE"},
              "labels": [{"id": "l1", "label_details": {"created_at": "x"},
                          "annotations": {"objects": []}}]},
        "q": {"name": "Q", "labels": []},
    },
}  # fmt: skip


def test_a_pool_row_keeps_what_a_pool_reads_and_nothing_volatile() -> None:
    assert pool_row(ROW, "p") == {
        "data_row": {"id": "dr1", "global_key": "k1", "row_data": "https://x/1.png"},
        "media_attributes": {"width": 10, "height": 8, "mime_type": "image/png"},
        "projects": {"p": {"labels": [{"id": "l1", "annotations": {"objects": []}}]}},
    }
    assert "projects" not in pool_row(ROW, None) and "projects" not in pool_row(ROW, "zz")
    assert has_label_in(ROW, "p") and not has_label_in(ROW, "q") and not has_label_in(ROW, "zz")


def test_the_pool_reader_takes_catalog_rows_without_a_project_section() -> None:
    bare = orjson.dumps(pool_row(ROW, None))
    (pooled,) = parse_lines([bare], ExportOptions.pool())
    assert isinstance(pooled, Sample) and pooled.data_row_id == "dr1" and not pooled.boxes
    (converted,) = parse_lines([bare], ExportOptions.ground_truth())  # other readers: unchanged
    assert isinstance(converted, Rejection) and converted.reason == Reason.UNRECOGNIZED_ROW
