"""Labelbox pools (a project's unlabelled rows, a dataset's rows not yet in a project, a list of
global keys) exported through the real labelbox SDK against the fake Labelbox, and written as a
pool file the pool reader takes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.fakes.labelbox_server import RATE_LIMIT, FakeLabelbox
from tests.integration.labelbox.conftest import FAST_BACKOFF, FileRunContext, settings_for
from vmt.backends.labelbox.pool_export import KEYS_PER_EXPORT, PoolExport, export_pool
from vmt.backends.labelbox.project import LabelboxWorkspace
from vmt.errors import InputError, NotFoundError
from vmt.pool.pool_inputs import labelled_in_project, read_pool_rows
from vmt.pool.pool_spec import PoolSpec

PROJECT = "proj-pool"
DATASET = "ds-pool"
EXPORT_START = "exportDataRowsInCatalogPyApi"


def _row(i: int) -> dict[str, object]:
    return {"id": f"dr-{i:05d}", "global_key": f"key-{i:05d}", "row_data": f"/images/{i}.png",
            "width": 64, "height": 48, "mime_type": "image/png"}  # fmt: skip


@pytest.fixture
def world(fake_labelbox: FakeLabelbox) -> FakeLabelbox:
    """A dataset of 10 rows; rows 0-5 are in the project, of which 0-2 are labelled."""
    fake_labelbox.catalog.add_dataset(DATASET, [_row(i) for i in range(10)])
    fake_labelbox.projects.add_project(
        PROJECT,
        classes=["circle"],
        data_rows=[f"dr-{i:05d}" for i in range(6)],
        labelled={f"dr-{i:05d}" for i in range(3)},
    )
    return fake_labelbox


def _export(
    fake: FakeLabelbox, pool: str, folder: Path, project: str | None = None
) -> tuple[PoolExport, FileRunContext]:
    ctx = FileRunContext("run-1", folder / "run")
    workspace = LabelboxWorkspace(settings_for(fake), backoff=FAST_BACKOFF)
    done = export_pool(
        PoolSpec.parse(pool), workspace=workspace, folder=folder, project_id=project, watcher=ctx
    )
    return done, ctx


def _ids(path: Path) -> list[str]:
    return [orjson.loads(line)["data_row"]["id"] for line in path.read_bytes().splitlines()]


def test_a_project_pool_is_its_rows_without_a_label_polled_until_done(
    world: FakeLabelbox, tmp_path: Path
) -> None:
    world.export_polls = 3  # IN_PROGRESS three times before COMPLETE
    done, ctx = _export(world, f"labelbox-project:{PROJECT}", tmp_path)
    assert _ids(done.path) == ["dr-00003", "dr-00004", "dr-00005"]  # sorted by data row id
    assert (done.rows, done.exported, done.labelled, done.tasks) == (3, 6, 3, 1)
    assert world.operations().count("GetUserCreatedTasksPyApi") >= 4  # polled while running
    assert "exportDataRowsInProjectPyApi" in world.operations()
    rows = read_pool_rows(done.path)
    assert not rows.rejections
    sample = rows.samples[0]
    assert (sample.image_uri, sample.width, sample.global_key) == ("/images/3.png", 64, "key-00003")
    assert "pool rows exported" in {what for _d, _t, what in ctx.progress_calls}
    assert "labelbox pool exported" in ctx.messages()


def test_a_dataset_pool_leaves_out_the_rows_already_in_the_project(
    world: FakeLabelbox, tmp_path: Path
) -> None:
    done, _ = _export(world, f"labelbox-dataset:{DATASET}", tmp_path, project=PROJECT)
    assert _ids(done.path) == [f"dr-{i:05d}" for i in range(6, 10)]
    assert (done.exported, done.in_project) == (10, 6)
    sent = [r for r in world.requests if r.operation == EXPORT_START][-1].variables["input"]
    assert sent["params"]["projectIds"] == [PROJECT] and sent["params"]["includeProjectDetails"]
    assert {"ids": [DATASET], "operator": "is", "type": "dataset"} in sent["filters"][
        "searchQuery"
    ]["query"]
    # the rows are bare catalog rows (no project section): the pool reader takes them
    assert len(read_pool_rows(done.path).samples) == 4

    everything, _ = _export(world, f"labelbox-dataset:{DATASET}", tmp_path / "all")
    assert _ids(everything.path) == [f"dr-{i:05d}" for i in range(10)]


def test_a_global_keys_pool_reports_unknown_keys_and_keeps_the_projects_labels(
    world: FakeLabelbox, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("key-00001\n\nkey-00007\nno-such-key\nkey-00007\r\n  key-00008  \nghost\n")
    done, ctx = _export(world, f"global-keys:{keys}", tmp_path, project=PROJECT)
    assert _ids(done.path) == ["dr-00001", "dr-00007", "dr-00008"]
    assert (done.keys, done.unknown_keys, done.unknown_key_examples) == (
        5,
        2,
        ["no-such-key", "ghost"],
    )
    assert "2 of 5 global keys match no data row (no-such-key, ghost)" in done.summary()
    assert "global keys that match no Labelbox data row were left out" in ctx.messages()
    # row 1 is labelled in the project: the pool file says so, so pre-labels leave it alone
    assert labelled_in_project(done.path, PROJECT) == {"dr-00001"}


def test_2500_global_keys_go_in_two_export_tasks(
    fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    fake_labelbox.catalog.add_dataset(DATASET, [_row(i) for i in range(2400)])
    keys = tmp_path / "keys.txt"
    keys.write_text("\n".join(f"key-{i:05d}" for i in range(2500)) + "\n")
    done, _ = _export(fake_labelbox, f"global-keys:{keys}", tmp_path)
    starts = [r for r in fake_labelbox.requests if r.operation == EXPORT_START]
    sizes = [len(r.variables["input"]["filters"]["searchQuery"]["query"][0]["ids"]) for r in starts]
    assert sizes == [KEYS_PER_EXPORT, 500] and done.tasks == 2
    assert done.rows == 2400 and done.unknown_keys == 100
    assert done.unknown_key_examples == [f"key-{i:05d}" for i in range(2400, 2405)]
    assert _ids(done.path) == sorted(_ids(done.path))


def test_an_unchanged_pool_exports_to_the_same_bytes_and_a_changed_one_does_not(
    world: FakeLabelbox, tmp_path: Path
) -> None:
    first, _ = _export(world, f"labelbox-project:{PROJECT}", tmp_path)
    before = first.path.read_bytes()
    again, _ = _export(world, f"labelbox-project:{PROJECT}", tmp_path)
    assert again.path == first.path and again.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [first.path.name]
    world.projects.projects[PROJECT].labelled.add("dr-00004")
    changed, _ = _export(world, f"labelbox-project:{PROJECT}", tmp_path)
    assert _ids(changed.path) == ["dr-00003", "dr-00005"]


def test_a_rate_limited_export_is_retried(world: FakeLabelbox, tmp_path: Path) -> None:
    world.inject("exportDataRowsInProjectPyApi", RATE_LIMIT, times=2)
    world.inject("file:export", "http_500", times=1)
    done, _ = _export(world, f"labelbox-project:{PROJECT}", tmp_path)
    assert done.rows == 3 and done.tasks == 1


@pytest.mark.parametrize(
    ("pool", "error", "says"),
    [
        ("labelbox-dataset:no-such-dataset", NotFoundError, "no dataset no-such-dataset"),
        ("labelbox-project:no-such-project", NotFoundError, "no project no-such-project"),
        ("global-keys:/no/such/keys.txt", InputError, "global keys file not found"),
        ("labelbox-project:" + PROJECT + "-empty", InputError, "has no row to predict on"),
    ],
)
def test_what_cannot_be_exported_says_why(
    world: FakeLabelbox, tmp_path: Path, pool: str, error: type[Exception], says: str
) -> None:
    world.projects.add_project(PROJECT + "-empty", classes=["circle"], data_rows=["dr-00000"],
                               labelled={"dr-00000"})  # fmt: skip
    with pytest.raises(error, match=says):
        _export(world, pool, tmp_path, project=None)


def test_the_fake_refuses_an_unknown_dataset_in_a_catalog_export(world: FakeLabelbox) -> None:
    """The mutation ``dataset.export`` sends, for a dataset that does not exist, is answered
    RESOURCE_NOT_FOUND (the SDK itself turns that answer into None for this mutation, which is
    why vmt looks the dataset up first with ``client.get_dataset``)."""
    from labelbox import Client
    from lbox.exceptions import ResourceNotFoundError

    client = Client(api_key=world.api_key, endpoint=world.endpoint, enable_experimental=True)
    client.get_dataset(DATASET).export(params={"project_details": False})
    sent = [r for r in world.requests if r.operation == EXPORT_START][-1]
    variables = orjson.loads(orjson.dumps(sent.variables))
    variables["input"]["filters"]["searchQuery"]["query"][-1]["ids"] = ["no-such-dataset"]
    with pytest.raises(ResourceNotFoundError, match="no-such-dataset"):
        client.execute(sent.query, variables, raise_return_resource_not_found=True)


def test_the_keys_per_export_task_are_the_sdks_limit() -> None:
    from labelbox.schema.export_filters import SEARCH_LIMIT_PER_EXPORT_V2

    assert KEYS_PER_EXPORT == SEARCH_LIMIT_PER_EXPORT_V2


def test_the_fake_exports_data_rows_by_id_with_project_and_label_details(
    world: FakeLabelbox,
) -> None:
    """``DataRow.export(data_rows=...)`` (a ``data_row_id`` filter) through the SDK: rows of the
    project carry its section (labels, with details when asked), the others none."""
    from labelbox import Client, DataRow

    client = Client(api_key=world.api_key, endpoint=world.endpoint, enable_experimental=True)
    world.export_polls = 0  # the SDK's own wait sleeps between looks
    task = DataRow.export(
        client,
        data_rows=["dr-00000", "dr-00004", "dr-00009", "dr-99999"],
        params={"project_details": True, "label_details": True, "project_ids": [PROJECT]},
    )
    task.wait_till_done()
    rows = {r.json["data_row"]["id"]: r.json for r in task.get_buffered_stream()}
    assert sorted(rows) == ["dr-00000", "dr-00004", "dr-00009"]  # an unknown id matches nothing
    (label,) = rows["dr-00000"]["projects"][PROJECT]["labels"]
    assert label["label_details"] and label["annotations"]["objects"]
    section = rows["dr-00004"]["projects"][PROJECT]
    assert section["labels"] == [] and section["project_details"]["workflow_status"] == "TO_LABEL"
    assert rows["dr-00009"]["projects"] == {}
