"""The rows pages show a Vertex run's images staged in Cloud Storage (the GCS emulator, read
through the real google-cloud-storage SDK), and only the run's own objects."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.builders.run_store import finished_run
from tests.fakes.gcp import BUCKET, emulator_storage_client, storage_emulator
from tests.integration.service.live_server import serve_in_thread
from vmt.backends.factory import build_backends
from vmt.config import load_settings
from vmt.pipeline import artifacts
from vmt.pipeline.runner import Runner

TOKEN = "gcs-images-token-0123456789"


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with storage_emulator() as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        yield emulator_storage_client(url)


def test_a_run_s_staged_images_are_shown_and_no_other_object(tmp_path: Path, storage: Any) -> None:
    from vmt.service.dashboard.local_app import create_ui_app

    settings = load_settings(
        api_token=TOKEN,
        state_dir=tmp_path / "state",
        gcs_bucket=BUCKET,
        gcp_project="p",
        gcp_anonymous_credentials=True,
    )
    runner = Runner(settings, backends_factory=build_backends)
    run_id = finished_run(runner.store, seed=4, images=4, run_id="run-vertex")
    samples_path = runner.store.run_dir(run_id) / artifacts.SAMPLES_FILE
    samples = list(artifacts.SampleFile(samples_path))
    bucket = storage.bucket(BUCKET)
    located = []
    for i, sample in enumerate(samples):
        name = f"vmt/{run_id}/images/{sample.data_row_id}.png" if i else "other/secret.png"
        bucket.blob(name).upload_from_filename(sample.image_uri)
        located.append(dataclasses.replace(sample, image_uri=f"gs://{BUCKET}/{name}"))
    with artifacts.sample_writer(samples_path) as out:
        for sample in located:
            out.write(sample)
    app = create_ui_app(settings, runner=runner)
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as client:
        login = client.post(
            "/ui/login", data={"token": TOKEN, "next": "/ui/"}, follow_redirects=False
        )
        assert login.status_code == 303
        page = client.get(f"/ui/runs/{run_id}/rows?kind=all").text
        staged = client.get(f"/ui/runs/{run_id}/image", params={"data_row": located[1].data_row_id})
        other = client.get(f"/ui/runs/{run_id}/image", params={"data_row": located[0].data_row_id})
    runner.store.close()
    assert staged.status_code == 200 and staged.headers["content-type"] == "image/jpeg"
    size = Image.open(io.BytesIO(staged.content)).size
    assert max(size) <= 320 and size[0] / size[1] == pytest.approx(
        (located[1].width or 1) / (located[1].height or 1), rel=0.05
    )
    assert other.status_code == 404
    assert page.count("<image href=") == len(located) - 1
    assert BUCKET not in page
