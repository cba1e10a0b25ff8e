"""Vertex answers lost on the way back (the request took effect, the client saw a timeout or a
reset) and answers slower than the client's timeout: found by the fault campaign (part 2).

Before the fix a create retried blindly made a second dataset or batch job, and a Vertex answer
that never came held the run forever (the SDK's REST transport has no timeout of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.flaky import FaultProxy
from tests.fakes.gcp import LocalGcp, local_gcp
from tests.fakes.simple_run_context import SimpleRunContext
from tests.fakes.trainer_calls import predict_to_end, predictions_of, train_to_end
from tests.fakes.vertex_samples import make_samples
from vmt.backends.vertex import VertexTrainer
from vmt.config import load_settings
from vmt.domain import Sample, Split
from vmt.formats.outbound_policy import OutboundRules


@pytest.fixture
def lossy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalGcp, FaultProxy]]:
    with local_gcp() as world:
        proxy = FaultProxy(world.vertex.url, slow_seconds=2.5).start()
        try:
            for key, value in world.settings_env().items():
                monkeypatch.setenv(key, value)
            monkeypatch.setenv("VMT_VERTEX_API_ENDPOINT", proxy.url)
            monkeypatch.setenv("VMT_VERTEX_CALL_TIMEOUT_S", "1")
            yield world, proxy
        finally:
            proxy.stop()


@pytest.mark.parametrize("kind", ["slow", "503"])
def test_a_lost_create_answer_creates_nothing_twice(
    lossy: tuple[LocalGcp, FaultProxy], tmp_path: Path, kind: str
) -> None:
    gcp, proxy = lossy
    for collection in ("/datasets", "/trainingPipelines", "/batchPredictionJobs"):
        proxy.inject("POST", collection, kind)
    proxy.inject("GET", "/trainingPipelines/", "slow")  # a poll slower than the timeout
    trainer = VertexTrainer(load_settings(), outbound=OutboundRules.export_file())
    ctx = SimpleRunContext("run-lost", tmp_path / "work")
    prepared = trainer.prepare(ctx, make_samples(tmp_path / "img"))
    staged = [s for s in prepared if isinstance(s, Sample)]
    model = train_to_end(trainer, ctx, staged).model
    rows = [s for s in staged if s.split in (Split.VALIDATION, Split.TEST)]
    assert len(predictions_of(predict_to_end(trainer, ctx, model, rows))) == len(rows)
    assert proxy.faults[kind] >= 3
    assert gcp.vertex.creates("datasets") == 1
    assert len(gcp.vertex.datasets) == 1
    assert len(gcp.vertex.pipelines) == 1
    assert len(gcp.vertex.jobs) == 1
