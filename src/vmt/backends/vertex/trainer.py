"""``VertexTrainer``: the ``Trainer`` Protocol on Vertex AI AutoML image object detection.

prepare  stage images to GCS, write the import JSONL (rows known up front with training rows:
         check Vertex's limits before copying an image)
train    check Vertex's limits, upload the import file, create + import the dataset, create the
         training pipeline (never twice for a run); each call looks at it once (``Pending``
         until it ends), then the model, its cost and Vertex's own evaluation
predict  batch prediction over the given images (submitted once, looked at once per call),
         parsed back to pixels, with the rows it could not predict
cancel   cancel the run's training pipeline / batch prediction job
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from vmt.backends.gcs import ImageStager, build_storage_client, run_prefix, upload_file
from vmt.backends.vertex.batch import VertexBatchPrediction
from vmt.backends.vertex.clients import VertexClients, build_vertex_clients
from vmt.backends.vertex.limits import DatasetLimits
from vmt.backends.vertex.training import H_IMPORT_OPERATION, H_PIPELINE, VertexTraining
from vmt.config import Settings
from vmt.domain import Rejection, Sample, Split
from vmt.durable_files import atomic_writer
from vmt.formats.outbound_policy import OutboundRules
from vmt.formats.vertex import import_line
from vmt.pipeline.protocols import Pending, Predicted, RunContext, Trained

log = logging.getLogger("vmt")

IMPORT_FILE = "vertex_import.jsonl"
IMPORTED_SPLITS = frozenset({Split.TRAINING, Split.VALIDATION, Split.TEST})


class VertexTrainer:
    name = "vertex"

    def __init__(
        self,
        settings: Settings,
        *,
        clients: VertexClients | None = None,
        storage_client: Any | None = None,
        outbound: OutboundRules | None = None,
    ) -> None:
        """``outbound``: what image locations may reach when staging; default the service's
        (``vmt.backends.outbound.rules_for``)."""
        settings.require("gcp_project", "gcp_region", "gcs_bucket")
        self.settings = settings
        self._outbound = outbound
        self._clients = clients
        self._storage = storage_client

    # -- lazily built clients (building needs credentials; a trainer is built for any run) --

    @property
    def clients(self) -> VertexClients:
        if self._clients is None:
            self._clients = build_vertex_clients(self.settings)
        return self._clients

    @property
    def storage(self) -> Any:
        if self._storage is None:
            self._storage = build_storage_client(self.settings)
        return self._storage

    def _training(self) -> VertexTraining:
        return VertexTraining(self.settings, self.clients)

    def _batch(self) -> VertexBatchPrediction:
        return VertexBatchPrediction(self.settings, self.clients, self.storage)

    # -- Trainer --

    def prepare(self, ctx: RunContext, samples: Iterable[Sample]) -> Iterator[Sample | Rejection]:
        """Stage each image and write the import file. Vertex's training limits are checked
        here only when the rows are known up front and include training rows (then before a
        single image is copied); rows that are only predicted (a pool) are never held to
        them. ``train`` checks them in every case before creating anything."""
        if isinstance(samples, Collection) and any(s.split is Split.TRAINING for s in samples):
            DatasetLimits().update_all(samples).check()
        stager = ImageStager(self.settings, storage_client=self.storage, rules=self._outbound)
        try:
            with atomic_writer(ctx.workdir / IMPORT_FILE) as out:
                for item in stager.stage(ctx, samples):
                    if isinstance(item, Sample) and item.split in IMPORTED_SPLITS:
                        out.write(import_line(item, item.image_uri))
                    yield item
        finally:
            stager.close()

    def train(self, ctx: RunContext, samples: Iterable[Sample]) -> Trained | Pending:
        training = self._training()
        if ctx.get_handle(H_IMPORT_OPERATION) is None and ctx.get_handle(H_PIPELINE) is None:
            DatasetLimits().update_all(samples).check()  # once, before anything is created
        pipeline = training.find_pipeline(ctx)
        if pipeline is None:
            import_uri = self._upload_import_file(ctx, samples)
            dataset = training.ensure_dataset(ctx)
            importing = training.import_data(ctx, dataset, import_uri)
            if importing is not None:
                return importing
            pipeline = training.launch(ctx, dataset)
        return training.poll(ctx, pipeline)

    def predict(
        self, ctx: RunContext, model: str, samples: Iterable[Sample]
    ) -> Predicted | Pending:
        return self._batch().predict(ctx, model, list(samples))

    def cancel(self, ctx: RunContext) -> None:
        self._training().cancel(ctx)
        self._batch().cancel(ctx)

    def _upload_import_file(self, ctx: RunContext, samples: Iterable[Sample]) -> str:
        uri = (
            f"gs://{self.settings.gcs_bucket}/{run_prefix(self.settings, ctx.run_id)}/{IMPORT_FILE}"
        )
        if ctx.get_handle("vertex.import_file") == uri:
            return uri
        path = write_import_file(ctx.workdir / IMPORT_FILE, samples)
        upload_file(
            self.storage,
            path,
            uri,
            content_type="application/jsonl",
            deadline_s=self.settings.vertex_retry_deadline_s,
        )
        ctx.set_handle("vertex.import_file", uri)
        ctx.event("vertex import file uploaded", uri=uri)
        return uri


def write_import_file(path: Path, samples: Iterable[Sample]) -> Path:
    """The Vertex import JSONL of ``samples`` (their ``image_uri`` must be in GCS)."""
    with atomic_writer(path) as out:
        for sample in samples:
            if sample.split in IMPORTED_SPLITS:
                out.write(import_line(sample, sample.image_uri))
    return path
