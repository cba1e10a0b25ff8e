"""Active learning on the synthetic shapes (issue 13): does choosing what to label beat random?

    .venv/bin/python bench/active_learning.py                 # the recorded configuration
    .venv/bin/python bench/active_learning.py --steps 60      # a quicker, noisier run

One synthetic dataset (fixed seed): a fixed test set, and a candidate set from which each seed
draws 100 labelled training images; the rest (>= 1,000 rows) is the unlabelled pool. Each seed
trains a first model on its 100 rows, then for each strategy runs three rounds: rank the pool
with the current model (``vmt.selection``: the same code ``vmt select`` runs), add the top 100
rows with their ground truth, retrain from scratch with the same fixed budget (a fixed number of
optimisation steps, whatever the training set's size), and measure AP50 on the test set
(``vmt.evaluation``, pycocotools semantics). ``random`` is the baseline measured in the same
process: the ratio column is a strategy's AP50 over random's at the same round and seed.

Writes ``active_learning.svg`` (mean AP50 per round, one line per strategy) and prints the
Markdown table recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vmt.backends.local.checkpoint import load_model  # noqa: E402
from vmt.backends.local.embed import predict_and_embed  # noqa: E402
from vmt.backends.local.train_loop import fit  # noqa: E402
from vmt.backends.local.training_config import TrainConfig  # noqa: E402
from vmt.detection_table import DetectionTable  # noqa: E402
from vmt.domain import Prediction, Sample  # noqa: E402
from vmt.evaluation import evaluate  # noqa: E402
from vmt.evaluation.svg_charts import Series, color, line_chart  # noqa: E402
from vmt.formats.export_options import ExportOptions  # noqa: E402
from vmt.formats.labelbox_export import read_samples  # noqa: E402
from vmt.selection.ranking import PoolEmbeddings, SelectionOptions, rank_pool  # noqa: E402
from vmt.synthetic import generate_dataset  # noqa: E402

STRATEGIES = ("least_confidence", "diverse", "random")


def load_samples(export: Path) -> list[Sample]:
    options = ExportOptions(require_dimensions=False, require_boxes=False, keep_unassigned=True)
    return [s for s in read_samples(export, options) if isinstance(s, Sample)]


def train(rows: Sequence[Sample], *, steps: int, seed: int, input_size: int, workdir: Path) -> Path:
    """A model trained from scratch for ``steps`` optimisation steps (batch 16) on ``rows``."""
    batch = 16
    per_epoch = max(len(rows) // batch, 1)
    epochs = max(math.ceil(steps / per_epoch), 1)
    config = TrainConfig(
        seed=seed,
        train_seconds=1e9,
        epochs=epochs,
        max_epochs=max(epochs, 1),
        batch_size=batch,
        input_size=input_size,
        device="cpu",
    )
    return fit(list(rows), [], run_dir=workdir, config=config).model_path


def predict(model_path: Path, rows: Sequence[Sample]) -> tuple[list[Prediction], np.ndarray]:
    model, classes = load_model(model_path, torch.device("cpu"))
    predictions, vectors = [], []
    with torch.inference_mode():
        for prediction, vector in predict_and_embed(model, classes, rows, batch_size=32):
            predictions.append(prediction)
            vectors.append(vector)
    return predictions, np.stack(vectors).astype(np.float64)


def ap50(model_path: Path, test: Sequence[Sample]) -> float:
    predictions, _ = predict(model_path, test)
    return float(evaluate(test, predictions).summary["map_50"])


def choose(
    strategy: str,
    model_path: Path,
    pool: Sequence[Sample],
    labelled: Sequence[Sample],
    *,
    budget: int,
    seed: int,
) -> list[str]:
    """The data row ids ``strategy`` picks from ``pool`` with the current model."""
    if strategy == "random":
        table = DetectionTable.from_predictions(Prediction(s.data_row_id) for s in pool)
        ranking = rank_pool(
            table, strategy="random", budget=budget, options=SelectionOptions(seed=seed)
        )
        return [r.data_row_id for r in ranking.rows]
    predictions, vectors = predict(model_path, pool)
    table = DetectionTable.from_predictions(predictions)
    embeddings = None
    if strategy == "diverse":
        _, labelled_vectors = predict(model_path, labelled)
        embeddings = PoolEmbeddings(pool=vectors, labelled=labelled_vectors)
    ranking = rank_pool(table, strategy=strategy, budget=budget, embeddings=embeddings)
    return [r.data_row_id for r in ranking.rows]


def run(args: argparse.Namespace) -> dict[tuple[str, int], list[float]]:
    work = Path(tempfile.mkdtemp(prefix="vmt-al-"))
    t0 = time.monotonic()
    images = args.test + args.candidates
    export = generate_dataset(work / "data", images=images, seed=args.data_seed)
    samples = sorted(load_samples(export), key=lambda s: s.data_row_id)
    rng = np.random.default_rng(args.data_seed)
    order = rng.permutation(len(samples))
    test = [samples[i] for i in order[: args.test]]
    candidates = [samples[i] for i in order[args.test :]]
    print(
        f"dataset: {len(samples)} images ({time.monotonic() - t0:.0f}s); test {len(test)}, "
        f"candidates {len(candidates)}; initial {args.initial}, pool "
        f"{len(candidates) - args.initial}, {args.rounds} rounds of {args.per_round}; "
        f"{args.steps} steps of 16 at {args.input_size}px per training",
        flush=True,
    )
    results: dict[tuple[str, int], list[float]] = {}
    for seed in args.seeds:
        pick = np.random.default_rng(1000 + seed).permutation(len(candidates))
        initial = [candidates[i] for i in pick[: args.initial]]
        first = train(
            initial, steps=args.steps, seed=seed, input_size=args.input_size,
            workdir=work / f"s{seed}-r0",
        )  # fmt: skip
        first_ap = ap50(first, test)
        print(
            f"seed {seed} round 0: AP50 {first_ap:.3f} ({time.monotonic() - t0:.0f}s)", flush=True
        )
        for strategy in args.strategies:
            labelled = list(initial)
            taken = {s.data_row_id for s in labelled}
            model = first
            curve = [first_ap]
            for r in range(1, args.rounds + 1):
                pool = [s for s in candidates if s.data_row_id not in taken]
                chosen = set(
                    choose(strategy, model, pool, labelled, budget=args.per_round, seed=seed)
                )
                labelled += [s for s in pool if s.data_row_id in chosen]
                taken |= chosen
                model = train(
                    labelled, steps=args.steps, seed=seed, input_size=args.input_size,
                    workdir=work / f"s{seed}-{strategy}-r{r}",
                )  # fmt: skip
                curve.append(ap50(model, test))
                print(
                    f"seed {seed} {strategy:<16} round {r}: {len(labelled)} labelled, "
                    f"AP50 {curve[-1]:.3f} ({time.monotonic() - t0:.0f}s)",
                    flush=True,
                )
            results[(strategy, seed)] = curve
    print(f"total {time.monotonic() - t0:.0f}s")
    return results


def table(results: dict[tuple[str, int], list[float]], args: argparse.Namespace) -> str:
    lines = [
        "| strategy | labelled | AP50 per seed | mean AP50 | ratio to random (of the means) |",
        "|---|---|---|---|---|",
    ]
    for strategy in args.strategies:
        for r in range(args.rounds + 1):
            values = [results[(strategy, s)][r] for s in args.seeds]
            baseline = statistics.mean(results[("random", s)][r] for s in args.seeds)
            # a ratio of means: per-seed ratios explode when one seed's random AP50 is ~0
            ratio = f"{statistics.mean(values) / baseline:.2f}x" if baseline > 0 else "-"
            lines.append(
                f"| {strategy} | {args.initial + r * args.per_round} | "
                f"{', '.join(f'{v:.3f}' for v in values)} | {statistics.mean(values):.3f} | "
                f"{ratio} |"
            )
    return "\n".join(lines)


def plot(results: dict[tuple[str, int], list[float]], args: argparse.Namespace, path: Path) -> None:
    xs = [r / max(args.rounds, 1) for r in range(args.rounds + 1)]
    series = [
        Series(
            name,
            xs,
            [statistics.mean(results[(name, s)][r] for s in args.seeds) for r in range(len(xs))],
            color(i),
        )
        for i, name in enumerate(args.strategies)
    ]
    first, last = args.initial, args.initial + args.rounds * args.per_round
    path.write_text(
        line_chart(
            series,
            title=f"Test AP50 (mean of {len(args.seeds)} seeds) vs labelled images",
            x_label=f"labelled images: {first} (left) to {last} (right)",
            y_label="AP50",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=1100)
    parser.add_argument("--initial", type=int, default=100)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--plot", type=Path, default=Path("active_learning.svg"))
    args = parser.parse_args()
    if "random" not in args.strategies:
        args.strategies.append("random")
    torch.set_num_threads(max(os.cpu_count() or 1, 1))
    results = run(args)
    plot(results, args, args.plot)
    print(f"plot: {args.plot}")
    print(table(results, args))


if __name__ == "__main__":
    main()
