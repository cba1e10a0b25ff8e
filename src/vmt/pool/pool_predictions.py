"""A run's model on a pool (an export file of rows it never saw), predicted once and kept.

``predict_pool`` prepares the pool's rows with the run's own trainer (images cached, sizes read),
predicts on every usable row and, when the trainer can (the local detector), keeps each image's
embedding for ``diverse`` selection. Everything goes to ``<run folder>/pools/<key>/``, where the
key is a digest of the pool file and the model: asking again for the same pool with the same
model reads the files back (``PoolPredictions.reused``). ``pool.json`` is written last, so a crash
half-way leaves a folder that is predicted again.

A pool is predicted under its own identity (``pool_context``): the id ``<run>-pool-<key>`` and
none of the run's handles. So the Vertex trainer stages the pool's images under their own GCS
prefix and submits one batch prediction job per pool, labelled with that id: never the run's own
job, and after a crash the same job is found again by its label instead of a second one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import orjson

from vmt.domain import Prediction, Rejection, Sample, Split
from vmt.durable_files import atomic_writer, write_atomic
from vmt.errors import InputError
from vmt.formats.image_uri import resolve_relative
from vmt.pipeline import artifacts
from vmt.pipeline.artifacts import SampleFile
from vmt.pipeline.context import DetachedRunContext, RunObserver
from vmt.pipeline.protocols import MODEL_HANDLE, RunContext, Trainer
from vmt.pipeline.stages import prepare_rows, record_predictions
from vmt.pipeline.store import RunStore
from vmt.pipeline.waiting import wait_for

POOLS_DIR = "pools"
POOL_FILE = "pool.json"
EMBEDDINGS_FILE = "embeddings.npy"
TRAINING_EMBEDDINGS_LIMIT = 5000
"""At most this many training images are embedded for ``diverse`` (the first ones, in file
order): they only mark regions already covered."""


@runtime_checkable
class EmbeddingTrainer(Protocol):
    """A trainer that can also embed images (the local detector)."""

    def predict_and_embed(
        self, ctx: RunContext, model: str, samples: Iterable[Sample]
    ) -> Iterator[tuple[Prediction, Any]]: ...


@dataclass(frozen=True)
class PoolPredictions:
    """The files of one predicted pool."""

    folder: Path
    rows: int
    """Rows in the pool file."""
    predicted_rows: int
    detections: int
    rejected: int
    rejections_by_reason: dict[str, int]
    has_embeddings: bool
    reused: bool
    """True when the files were already there and nothing was predicted."""

    @property
    def samples(self) -> Path:
        return self.folder / artifacts.SAMPLES_FILE

    @property
    def predictions(self) -> Path:
        return self.folder / artifacts.PREDICTIONS_FILE

    @property
    def rejections(self) -> Path:
        return self.folder / artifacts.REJECTIONS_FILE

    @property
    def embeddings(self) -> Path:
        return self.folder / EMBEDDINGS_FILE

    def read_embeddings(self) -> npt.NDArray[np.float32] | None:
        """``(predicted_rows, D)`` in predictions order, or None without embeddings."""
        if not self.has_embeddings:
            return None
        loaded: npt.NDArray[np.float32] = np.load(self.embeddings)
        return loaded


def pool_key(pool: Path, model: str) -> str:
    """A digest of the pool file's bytes and the model reference (16 hex digits)."""
    digest = hashlib.sha256(model.encode() + b"\0")
    with pool.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:16]


def run_model(store: RunStore, run_id: str) -> str:
    """The trained model of run ``run_id``; ``InputError`` when it has none yet."""
    run = store.get_run(run_id)
    model = store.handles(run_id).get(MODEL_HANDLE)
    if model is None:
        raise InputError(
            f"run {run_id} has no trained model yet (it is {run.state.value}); "
            f"finish it with `vmt resume {run_id}` first"
        )
    return model


def pool_context(
    run_id: str, folder: Path, *, observer: RunObserver | None = None
) -> DetachedRunContext:
    """The context a pool of run ``run_id`` is predicted in: id ``<run_id>-pool-<folder name>``
    (what a trainer names, labels and stages the pool's work by, distinct from the run's and
    from every other pool's), working folder ``folder``, and no handles: nothing of the run's
    own jobs is re-attached. Handles a trainer records stay in memory; after a crash it finds
    its job again by the id's label."""
    return DetachedRunContext(f"{run_id}-pool-{folder.name}", folder, {}, observer=observer)


def predict_pool(
    store: RunStore,
    run_id: str,
    *,
    pool: Path,
    trainer: Trainer,
    image_base: Path | None = None,
    observer: RunObserver | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PoolPredictions:
    """Predict run ``run_id``'s model on every row of the export file ``pool`` (or reuse what
    was predicted before), waiting (``sleep``) on the trainer's job where it has one. Raises
    ``InputError`` when the run has no model, the file is missing or none of its rows is
    usable."""
    from vmt.formats.export_options import ExportOptions

    model = run_model(store, run_id)
    if not pool.is_file():
        raise InputError(f"pool file not found: {pool}")
    folder = store.run_dir(run_id) / POOLS_DIR / pool_key(pool, model)
    done = folder / POOL_FILE
    if done.is_file():
        return _from_json(folder, orjson.loads(done.read_bytes()), reused=True)
    ctx = pool_context(run_id, folder, observer=observer)
    ctx.event("predicting on a pool", pool=str(pool))
    counts = prepare_rows(
        trainer,
        ctx,
        export=pool,
        options=ExportOptions.pool(),
        locate_image=partial(
            resolve_relative, base=image_base if image_base is not None else pool.resolve().parent
        ),
        samples_out=folder / artifacts.SAMPLES_FILE,
        rejections_out=folder / artifacts.REJECTIONS_FILE,
    )
    if counts.samples == 0:
        reasons = counts.reasons_text()
        raise InputError(
            f"no usable rows in pool {pool}: {counts.rows} rows"
            + (f" ({reasons})" if reasons else "")
        )
    predicted, detections, has_embeddings = _predict(
        trainer, ctx, model, SampleFile(folder / artifacts.SAMPLES_FILE), folder, sleep=sleep
    )
    facts = {
        "pool": str(pool),
        "model": model,
        "rows": counts.rows,
        "predicted_rows": predicted,
        "detections": detections,
        "rejected": counts.rejected,
        "rejections_by_reason": counts.rejections_by_reason,
        "embeddings": has_embeddings,
    }
    write_atomic(done, orjson.dumps(facts, option=orjson.OPT_INDENT_2))
    return _from_json(folder, facts, reused=False)


def _predict(
    trainer: Trainer,
    ctx: RunContext,
    model: str,
    samples: SampleFile,
    folder: Path,
    *,
    sleep: Callable[[float], None],
) -> tuple[int, int, bool]:
    """The pool's predictions through the stage's loop (``record_predictions``), waiting on
    the trainer's job where it has one; embeddings beside them when the trainer gives them."""
    vectors: list[Any] = []
    rows: Iterable[Prediction | Rejection]
    if isinstance(trainer, EmbeddingTrainer):
        rows = _keeping_vectors(trainer.predict_and_embed(ctx, model, samples), vectors)
    else:
        rows = wait_for(lambda: trainer.predict(ctx, model, samples), ctx, sleep=sleep).rows
    written = record_predictions(
        rows,
        ctx,
        folder / artifacts.PREDICTIONS_FILE,
        total=sum(1 for _ in samples),
        what="pool rows",
    )
    if written.failures:
        ctx.event(
            "pool rows the trainer could not predict",
            rows=len(written.failures),
            examples=[f.detail[:200] for f in written.failures[:5]],
        )
    has_embeddings = bool(vectors) and len(vectors) == written.predicted
    if has_embeddings:
        _save_npy(folder / EMBEDDINGS_FILE, np.stack(vectors).astype(np.float32))
    return written.predicted, written.detections, has_embeddings


def _keeping_vectors(
    items: Iterator[tuple[Prediction, Any]], vectors: list[Any]
) -> Iterator[Prediction]:
    for prediction, vector in items:
        if vector is not None:
            vectors.append(vector)
        yield prediction


def training_embeddings(
    store: RunStore, run_id: str, *, trainer: Trainer, observer: RunObserver | None = None
) -> npt.NDArray[np.float32] | None:
    """Embeddings of the run's training images (at most ``TRAINING_EMBEDDINGS_LIMIT``), kept in
    ``pools/training/``; None when the trainer gives no embeddings or the run has no samples."""
    if not isinstance(trainer, EmbeddingTrainer):
        return None
    run_dir = store.run_dir(run_id)
    cached = run_dir / POOLS_DIR / "training" / EMBEDDINGS_FILE
    if cached.is_file():
        loaded: npt.NDArray[np.float32] = np.load(cached)
        return loaded
    samples_path = run_dir / artifacts.SAMPLES_FILE
    if not samples_path.is_file():
        return None
    training = [
        s
        for _, s in zip(
            range(TRAINING_EMBEDDINGS_LIMIT),
            SampleFile(samples_path, splits=[Split.TRAINING]),
            strict=False,
        )
    ]
    if not training:
        return None
    ctx = pool_context(run_id, cached.parent, observer=observer)
    model = run_model(store, run_id)
    vectors = [v for _, v in trainer.predict_and_embed(ctx, model, training)]
    array = np.stack(vectors).astype(np.float32)
    _save_npy(cached, array)
    return array


def _save_npy(path: Path, array: npt.NDArray[np.float32]) -> None:
    with atomic_writer(path) as out:
        np.save(out, array)


def _from_json(folder: Path, facts: dict[str, Any], *, reused: bool) -> PoolPredictions:
    return PoolPredictions(
        folder=folder,
        rows=int(facts["rows"]),
        predicted_rows=int(facts["predicted_rows"]),
        detections=int(facts["detections"]),
        rejected=int(facts["rejected"]),
        rejections_by_reason=dict(facts["rejections_by_reason"]),
        has_embeddings=bool(facts["embeddings"]),
        reused=reused,
    )
