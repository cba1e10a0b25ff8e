"""``POST /runs/{id}/select`` and ``/runs/{id}/prelabel`` behind the API token, with a finished
local run and the fake Labelbox; and the automatic pre-labelling of a completed run."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.fakes.labelbox_server import FakeLabelbox
from tests.integration.pool.conftest import FinishedRun
from tests.integration.service.live_server import serve_in_thread
from vmt.config import Settings, load_settings
from vmt.service.app import create_app
from vmt.service.labelling import PipelineLabelling

TOKEN = "test-token-0123"
PROJECT = "proj-service"


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def served_pool(finished_run: FinishedRun) -> Iterator[Path]:
    """The pool with its images served over http on 127.0.0.1: the service reads no local
    file for a pool (the outbound policy), so its pools name URLs, as Labelbox's do."""
    root = finished_run.pool.parent
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    rows = [orjson.loads(x) for x in finished_run.pool.read_bytes().splitlines()]
    for row in rows:
        image = Path(row["data_row"]["row_data"])
        row["data_row"]["row_data"] = base + image.relative_to(root).as_posix()
    served = root / "served-pool.ndjson"
    served.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def settings(
    finished_run: FinishedRun, served_pool: Path, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> Settings:
    pools = tmp_path / "pools"
    pools.mkdir()
    shutil.copy(served_pool, pools / "pool.ndjson")
    shutil.copy(finished_run.pool, pools / "local-paths.ndjson")
    ids = [orjson.loads(x)["data_row"]["id"] for x in served_pool.read_bytes().splitlines()]
    fake_labelbox.projects.add_project(
        PROJECT, classes=["circle", "square", "triangle", "star"], data_rows=ids
    )
    return load_settings(
        state_dir=finished_run.state_dir,
        pool_dir=pools,
        api_token=TOKEN,
        labelbox_api_key=fake_labelbox.api_key,
        labelbox_endpoint=fake_labelbox.endpoint,
        labelbox_poll_seconds=0.01,
        local_device="cpu",
    )


class Client:
    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=300, **kwargs)


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    app = create_app(
        settings, insecure=True, run_worker=False, model_types=["local_object_detection"]
    )
    with serve_in_thread(app) as url:
        yield Client(url)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_routes_need_the_token(client: Client, finished_run: FinishedRun) -> None:
    for route in ("select", "prelabel"):
        answer = client.post(f"/runs/{finished_run.run_id}/{route}", json={"pool": "pool.ndjson"})
        assert answer.status_code == 401


def test_select_ranks_and_sends_a_batch(
    client: Client, finished_run: FinishedRun, fake_labelbox: FakeLabelbox
) -> None:
    fake_labelbox.projects.add_project("proj-next", classes=["circle", "square"])
    body = {"pool": "pool.ndjson", "strategy": "margin", "budget": 4, "project": "proj-next",
            "batch": "svc-1", "priority": 3}  # fmt: skip
    answer = client.post(f"/runs/{finished_run.run_id}/select", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    ids = [r["data_row_id"] for r in data["rows"]]
    assert [r["rank"] for r in data["rows"]] == [1, 2, 3, 4]
    assert data["labelbox"]["batches_created"] == ["svc-1"]
    assert data["labelbox"]["batch_rows_refused"] == 0
    (batch,) = fake_labelbox.projects.batches("proj-next")
    assert batch.name == "svc-1" and batch.data_row_ids == ids and batch.priority == 3

    # the same rows into a project that has them already: Labelbox refuses them, we say so
    body |= {"project": PROJECT, "batch": "svc-2"}
    again = client.post(f"/runs/{finished_run.run_id}/select", json=body, headers=AUTH).json()
    assert again["labelbox"]["batch_rows_refused"] == 4


def test_prelabel_imports_and_a_pool_outside_the_pool_dir_is_refused(
    client: Client, finished_run: FinishedRun, fake_labelbox: FakeLabelbox
) -> None:
    run = finished_run.run_id
    answer = client.post(f"/runs/{run}/prelabel", json={"pool": "pool.ndjson", "project": PROJECT,
                                                        "confidence": 0}, headers=AUTH)  # fmt: skip
    assert answer.status_code == 200, answer.text
    imports = answer.json()["imports"]
    assert imports["rows"] == len(fake_labelbox.projects.prelabels(PROJECT)) > 0
    outside = client.post(
        f"/runs/{run}/prelabel",
        json={"pool": str(finished_run.pool), "project": PROJECT},
        headers=AUTH,
    )
    assert outside.status_code == 400 and "VMT_POOL_DIR" in outside.json()["detail"]
    unknown = client.post("/runs/nope/prelabel", json={"pool": "pool.ndjson", "project": PROJECT},
                          headers=AUTH)  # fmt: skip
    assert unknown.status_code == 400


def test_automatic_prelabelling_records_what_it_did(
    settings: Settings, finished_run: FinishedRun, fake_labelbox: FakeLabelbox
) -> None:
    configured = settings.model_copy(
        update={"auto_prelabel_project": PROJECT, "auto_prelabel_pool": "pool.ndjson"}
    )
    PipelineLabelling(configured).auto_prelabel(finished_run.run_id)
    events = [e for e in finished_run.store().events(finished_run.run_id)
              if e.message.startswith("automatic pre-labelling")]  # fmt: skip
    assert events[-1].message == "automatic pre-labelling done"
    done = events[-1].data  # the state folder is shared by this module's tests: an import made
    # by an earlier test at the same confidence is found done, not made again
    assert done["uploaded_chunks"] + done["reused_chunks"] == done["chunks"]

    broken = settings.model_copy(
        update={"auto_prelabel_project": "no-such-project", "auto_prelabel_pool": "pool.ndjson"}
    )
    PipelineLabelling(broken).auto_prelabel(finished_run.run_id)  # never raises
    last = finished_run.store().events(finished_run.run_id)[-1]
    assert (
        last.message == "automatic pre-labelling failed" and "no-such-project" in last.data["error"]
    )


def test_select_and_prelabel_with_labelbox_pools(
    client: Client,
    finished_run: FinishedRun,
    served_pool: Path,
    fake_labelbox: FakeLabelbox,
    settings: Settings,
) -> None:
    rows = [orjson.loads(x) for x in served_pool.read_bytes().splitlines()]
    ids = sorted(r["data_row"]["id"] for r in rows)
    fake_labelbox.catalog.add_dataset(
        "ds-svc", [{**r["data_row"], **r["media_attributes"]} for r in rows]
    )
    fake_labelbox.projects.add_project("proj-svc-target", classes=["circle"], data_rows=ids[:5])
    run = finished_run.run_id
    body = {"pool": "labelbox-dataset:ds-svc", "strategy": "entropy", "budget": 3,
            "project": "proj-svc-target", "batch": "svc-dataset"}  # fmt: skip
    answer = client.post(f"/runs/{run}/select", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["pool_rows"] == 7
    assert (data["pool_export"]["rows"], data["pool_export"]["in_project_left_out"]) == (7, 5)
    chosen = [r["data_row_id"] for r in data["rows"]]
    assert set(chosen) <= set(ids[5:]) and data["labelbox"]["batches_created"] == ["svc-dataset"]
    exported = Path(data["pool_export"]["path"])
    assert exported.is_relative_to(finished_run.store().run_dir(run)) and exported.is_file()

    # pre-labels of the project's own unlabelled rows (a project pool); a keys file must sit in
    # VMT_POOL_DIR; a dataset pool cannot be pre-labelled into the project it is read against
    answer = client.post(f"/runs/{run}/prelabel", json={"pool": f"labelbox-project:{PROJECT}",
                         "project": PROJECT, "confidence": 0}, headers=AUTH)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["pool_export"]["rows"] == len(ids)
    outside = client.post(f"/runs/{run}/prelabel", json={"pool": "global-keys:/etc/hostname",
                          "project": PROJECT}, headers=AUTH)  # fmt: skip
    assert outside.status_code == 400 and "VMT_POOL_DIR" in outside.json()["detail"]
    refused = client.post(f"/runs/{run}/prelabel", json={"pool": "labelbox-dataset:ds-svc",
                          "project": "proj-svc-target"}, headers=AUTH)  # fmt: skip
    assert refused.status_code == 400 and "pre-labels only on rows in it" in refused.text
    unknown = client.post(f"/runs/{run}/select", json={"pool": "labelbox-dataset:nope",
                          "budget": 2}, headers=AUTH)  # fmt: skip
    assert unknown.status_code == 404 and "no dataset nope" in unknown.text

    configured = settings.model_copy(
        update={
            "auto_prelabel_project": PROJECT,
            "auto_prelabel_pool": f"labelbox-project:{PROJECT}",
        }
    )
    PipelineLabelling(configured).auto_prelabel(run)
    last = finished_run.store().events(run)[-1]
    assert last.message == "automatic pre-labelling done", last.data


def test_a_pool_of_local_paths_is_refused_by_the_outbound_policy(
    client: Client, finished_run: FinishedRun
) -> None:
    """Pools the service reads obey the service's rules: no local file is opened."""
    answer = client.post(
        f"/runs/{finished_run.run_id}/select",
        json={"pool": "local-paths.ndjson", "budget": 3},
        headers=AUTH,
    )
    assert answer.status_code == 400
    assert "image_location_refused" in answer.json()["detail"]
