"""Pool prediction with the Vertex trainer, through the real aiplatform and storage SDKs against
the fake Vertex REST server and the GCS emulator: each pool is its own batch prediction job on
its own staged images (never the run's job), kept in the run folder and re-attached after a
crash; training limits do not apply to rows that are only predicted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fakes.gcp import BUCKET
from tests.integration.pool.conftest import (
    JOBS,
    VertexWorld,
    local_cloud,
    pool_samples,
    run_on_vertex,
)
from vmt.backends.factory import build_backends
from vmt.config import load_settings
from vmt.detection_table import DetectionTable
from vmt.domain import Box, Detection, Prediction, Split
from vmt.pipeline import artifacts
from vmt.pipeline.protocols import MODEL_HANDLE
from vmt.pipeline.runner import Runner
from vmt.pipeline.store import RunState
from vmt.pool.export_predictions import predict_export
from vmt.pool.pool_predictions import PoolPredictions
from vmt.pool.prelabel import prelabel_pool
from vmt.pool.select import select_from_run
from vmt.selection.ranking import SelectionOptions, rank_pool
from vmt.synthetic import generate_dataset


def _pool_jobs(vertex_run: VertexWorld) -> list[dict[str, Any]]:
    run_job = vertex_run.store.handles(vertex_run.run_id)["vertex.batch_prediction_job"]
    return [job for name, job in vertex_run.gcp.vertex.jobs.items() if name != run_job]


def _fake_output(
    vertex_run: VertexWorld, job: dict[str, Any], sizes: dict[str, tuple[int, int]]
) -> dict[str, Prediction]:
    """What the fake answered for ``job``, in pixels: image URI -> Prediction."""
    directory = job["outputInfo"]["gcsOutputDirectory"].removeprefix(f"gs://{BUCKET}/")
    answered: dict[str, Prediction] = {}
    for line in vertex_run.gcp.read_text(f"{directory}/predictions_00001.jsonl").splitlines():
        row = json.loads(line)
        uri = row["instance"]["content"]
        width, height = sizes[uri]
        p = row["prediction"]
        answered[uri] = Prediction(
            uri,
            tuple(
                Detection(Box(name, x0 * width, y0 * height, x1 * width, y1 * height), score)
                for name, score, (x0, x1, y0, y1) in zip(
                    p["displayNames"], p["confidences"], p["bboxes"], strict=True
                )
            ),
        )
    return answered


def _assert_same(got: Prediction, want: Prediction) -> None:
    assert len(got.detections) == len(want.detections)
    for a, b in zip(got.detections, want.detections, strict=True):
        assert a.box.label == b.box.label
        assert a.score == pytest.approx(b.score)
        for ours, theirs in zip(
            (a.box.x0, a.box.y0, a.box.x1, a.box.y1),
            (b.box.x0, b.box.y0, b.box.x1, b.box.y1),
            strict=True,
        ):
            assert ours == pytest.approx(theirs, abs=1e-6)


def _pool_predictions(vertex_run: VertexWorld, predicted: PoolPredictions) -> dict[str, Prediction]:
    """The kept predictions, keyed by staged image URI (as the fake answers)."""
    uri_of = {s.data_row_id: s.image_uri for s in artifacts.SampleFile(predicted.samples)}
    return {uri_of[p.data_row_id]: p for p in artifacts.read_predictions(predicted.predictions)}


def test_a_pool_is_its_own_batch_job_on_its_staged_images_and_is_kept(
    vertex_run: VertexWorld,
) -> None:
    run_job = vertex_run.store.handles(vertex_run.run_id)["vertex.batch_prediction_job"]
    pool = vertex_run.pool("pool", images=12, seed=77)

    predicted = vertex_run.predict(pool)

    assert not predicted.reused
    assert predicted.rows == predicted.predicted_rows == 12
    assert vertex_run.gcp.vertex.creates(JOBS) == 2
    [job] = _pool_jobs(vertex_run)
    assert job["name"] != run_job
    assert (
        job["labels"]["vmt-run-id"] != vertex_run.gcp.vertex.jobs[run_job]["labels"]["vmt-run-id"]
    )
    assert job["model"] == vertex_run.store.handles(vertex_run.run_id)[MODEL_HANDLE]
    pool_id = f"{vertex_run.run_id}-pool-{predicted.folder.name}"
    assert job["labels"] == {"vmt-run-id": pool_id}
    assert job["displayName"] == f"vmt-{pool_id}"
    # Its instances are exactly the pool's staged images, none of the run's.
    staged = list(artifacts.SampleFile(predicted.samples))
    assert {s.data_row_id for s in staged} == {s.data_row_id for s in pool_samples(pool)}
    [source] = job["inputConfig"]["gcsSource"]["uris"]
    assert source == f"gs://{BUCKET}/vmt/{pool_id}/batch/instances.jsonl"
    assert all(s.image_uri.startswith(f"gs://{BUCKET}/vmt/{pool_id}/images/") for s in staged)
    instances = vertex_run.gcp.read_text(source.removeprefix(f"gs://{BUCKET}/")).splitlines()
    assert sorted(json.loads(x)["content"] for x in instances) == sorted(
        s.image_uri for s in staged
    )
    run_images = {n for n in vertex_run.gcp.names(f"vmt/{vertex_run.run_id}/images/")}
    assert len(run_images) == 60
    assert not any(s.image_uri.removeprefix(f"gs://{BUCKET}/") in run_images for s in staged)
    run_source = vertex_run.gcp.vertex.jobs[run_job]["inputConfig"]["gcsSource"]["uris"]
    assert source not in run_source
    # The kept predictions are what the fake answered for the pool's images, in pixels.
    sizes = {s.image_uri: (s.width or 0, s.height or 0) for s in staged}
    answered = _fake_output(vertex_run, job, sizes)
    kept = _pool_predictions(vertex_run, predicted)
    assert set(kept) == set(answered) == set(sizes)
    for uri, prediction in answered.items():
        _assert_same(kept[uri], prediction)
    assert predicted.detections == sum(len(p.detections) for p in answered.values()) > 12

    # Asked again: the kept files, no Vertex request at all.
    before = len(vertex_run.gcp.vertex.requests)
    again = vertex_run.predict(pool)
    assert again.reused and again.folder == predicted.folder
    assert len(vertex_run.gcp.vertex.requests) == before

    # A second pool is a second job.
    other = vertex_run.pool("other", images=5, seed=78)
    second = vertex_run.predict(other)
    assert not second.reused and second.folder != predicted.folder
    assert vertex_run.gcp.vertex.creates(JOBS) == 3
    assert len({j["labels"]["vmt-run-id"] for j in vertex_run.gcp.vertex.jobs.values()}) == 3


def test_selection_and_prelabels_come_from_the_pool_job_and_share_it(
    vertex_run: VertexWorld,
) -> None:
    pool = vertex_run.pool("pool", images=12, seed=77)
    options = SelectionOptions()
    chosen = select_from_run(
        vertex_run.store,
        vertex_run.run_id,
        pool=pool,
        trainer=vertex_run.trainer(),
        strategy="least_confidence",
        budget=5,
        options=options,
    )
    assert chosen.pool is not None
    [job] = _pool_jobs(vertex_run)
    staged = list(artifacts.SampleFile(chosen.pool.samples))
    answered = _fake_output(
        vertex_run, job, {s.image_uri: (s.width or 0, s.height or 0) for s in staged}
    )
    row_of = {s.image_uri: s.data_row_id for s in staged}
    from_fake = [Prediction(row_of[uri], p.detections) for uri, p in sorted(answered.items())]
    expected = rank_pool(
        DetectionTable.from_predictions(from_fake),
        strategy="least_confidence",
        budget=5,
        options=SelectionOptions(threshold=chosen.threshold),
        global_keys={s.data_row_id: s.global_key for s in staged if s.global_key},
    )
    assert [r.data_row_id for r in chosen.ranking.rows] == [r.data_row_id for r in expected.rows]
    assert [r.score for r in chosen.ranking.rows] == pytest.approx([r.score for r in expected.rows])

    before = len(vertex_run.gcp.vertex.requests)
    prelabels = prelabel_pool(
        vertex_run.store, vertex_run.run_id, pool=pool, trainer=vertex_run.trainer(), confidence=0.5
    )
    assert prelabels.pool.reused
    assert len(vertex_run.gcp.vertex.requests) == before  # no second prediction
    rows = [orjson.loads(x) for x in prelabels.path.read_bytes().splitlines()]
    above = [(p.data_row_id, d) for p in from_fake for d in p.detections if d.score >= 0.5]
    assert len(rows) == prelabels.rows == len(above) > 0
    for row, (row_id, det) in zip(
        sorted(rows, key=lambda r: (r["dataRow"]["id"], r["bbox"]["left"])),
        sorted(above, key=lambda a: (a[0], a[1].box.x0)),
        strict=True,
    ):
        assert row["dataRow"]["id"] == row_id and row["name"] == det.box.label
        assert row["bbox"]["left"] == pytest.approx(det.box.x0, abs=0.01)
        assert "confidence" not in row


class _Killed(BaseException):
    """Stands for the process dying (SIGKILL) while it waits between polls."""


def _dies_at_first_pause(seconds: float) -> None:
    raise _Killed


def test_a_crash_after_submission_re_attaches_to_the_pools_job(vertex_run: VertexWorld) -> None:
    pool = vertex_run.pool("pool", images=12, seed=77)
    with pytest.raises(_Killed):
        vertex_run.predict(pool, sleep=_dies_at_first_pause)
    [job] = _pool_jobs(vertex_run)
    assert job["state"] != "JOB_STATE_SUCCEEDED"

    # A new process: no handle in memory; the pool's job is found by its label.
    predicted = vertex_run.predict(pool)
    assert not predicted.reused and predicted.predicted_rows == 12
    assert vertex_run.gcp.vertex.creates(JOBS) == 2  # the run's and this pool's, nothing more
    assert [j["name"] for j in _pool_jobs(vertex_run)] == [job["name"]]
    label = job["labels"]["vmt-run-id"]
    assert any(
        r.method == "GET" and r.path.endswith(f"/{JOBS}") and label in r.query["filter"][0]
        for r in vertex_run.gcp.vertex.requests
    )
    assert vertex_run.gcp.vertex.jobs[job["name"]]["state"] == "JOB_STATE_SUCCEEDED"


def test_pool_rows_are_not_held_to_training_limits(vertex_run: VertexWorld) -> None:
    # 4 rows with splits and boxes: far below Vertex's training limits (10 images per class,
    # every split) ...
    with_splits = vertex_run.pool("few", images=4, seed=79)
    assert {s.split for s in pool_samples(with_splits)} != {Split.UNASSIGNED}
    predicted = vertex_run.predict(with_splits)
    assert predicted.predicted_rows == 4
    # ... and rows without a split or a box (a project's unlabelled rows).
    bare = vertex_run.root / "bare.ndjson"
    lines = []
    for line in with_splits.read_bytes().splitlines():
        row = orjson.loads(line)
        row["data_row"]["id"] += "-bare"
        del row["experiments"]
        row["projects"] = {"project-1": {"name": "next round", "labels": []}}
        lines.append(orjson.dumps(row))
    bare.write_bytes(b"\n".join(lines) + b"\n")
    samples = pool_samples(bare)
    assert {s.split for s in samples} == {Split.UNASSIGNED} and not any(s.boxes for s in samples)
    predicted = vertex_run.predict(bare)
    assert predicted.predicted_rows == 4


def test_vmt_predict_shares_the_pool_path(vertex_run: VertexWorld) -> None:
    pool = vertex_run.pool("pool", images=6, seed=80)
    out = vertex_run.root / "p.ndjson"
    result = predict_export(
        vertex_run.store, vertex_run.run_id, export=pool, output=out, trainer=vertex_run.trainer()
    )
    assert result.pool.predicted_rows == 6 and not result.pool.reused
    [job] = _pool_jobs(vertex_run)
    uploads = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(uploads) == result.upload_rows == result.pool.detections > 0
    assert all(0 < row["confidence"] < 1 for row in uploads)
    # selecting on the same file reads what `vmt predict` kept
    before = len(vertex_run.gcp.vertex.requests)
    again = vertex_run.predict(pool)
    assert again.reused and len(vertex_run.gcp.vertex.requests) == before
    assert vertex_run.gcp.vertex.creates(JOBS) == 2
    assert job["name"] in vertex_run.gcp.vertex.jobs


def test_a_run_breaking_vertex_limits_fails_before_any_vertex_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with local_cloud(tmp_path, monkeypatch) as gcp:
        export = generate_dataset(tmp_path / "small", images=12, seed=3)
        runner = Runner(load_settings(), backends_factory=build_backends, heartbeat_seconds=0.2)
        try:
            record = run_on_vertex(runner, export, tmp_path / "out")
        finally:
            runner.store.close()
        assert record.state is RunState.FAILED
        assert record.error is not None
        assert "Vertex AutoML would reject this dataset: " in record.error
        assert "fewer than 10 training images" in record.error
        assert [r for r in gcp.vertex.requests if r.method == "POST"] == []
        status = json.loads((tmp_path / "out" / "status.json").read_text())
        assert "Vertex AutoML would reject this dataset" in status["error"]
