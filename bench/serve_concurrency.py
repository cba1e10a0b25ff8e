"""Six "Train model" clicks at once on ``vmt serve`` with ONE worker thread, against one click.

The real service (webhook, run store, worker, runner, Vertex and local trainers) on loopback,
the fake Labelbox, the fake Vertex AI (each training pipeline held ``--hold`` seconds of wall
clock, as a real training holds hours) and the GCS emulator (``tests/e2e/concurrent_runs.py``).

Baseline, same command: ONE Vertex run alone, end to end. Then ``--runs`` Vertex runs plus one
local run (``--local-seconds`` of training on this machine) delivered together. Printed: when
each Vertex run reached training (its pipeline created), when the first training finished, when
all runs completed, the local training's span, and the ratio of the many-run wall time to the
one-run wall time (a seam that waits on each job would make it about ``--runs``; ~1 is ideal).

    .venv/bin/python bench/serve_concurrency.py                 # 6 runs, trainings held 60 s
    .venv/bin/python bench/serve_concurrency.py --runs 3 --hold 15
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.concurrent_runs import Outcome, run_concurrently


def _wall(outcome: Outcome) -> float:
    return max(outcome.ended.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--hold", type=float, default=60.0, help="seconds each training runs")
    parser.add_argument("--local-seconds", type=float, default=30.0)
    parser.add_argument("--images", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        one = run_concurrently(
            Path(scratch) / "one", vertex_runs=1, hold_seconds=args.hold, images=args.images
        )
        many = run_concurrently(
            Path(scratch) / "many",
            vertex_runs=args.runs,
            local_runs=1,
            hold_seconds=args.hold,
            images=args.images,
            local_train_seconds=args.local_seconds,
        )
    print(f"baseline: 1 Vertex run, training held {args.hold:.0f} s: {_wall(one):.1f} s")
    print(f"{args.runs} Vertex runs + 1 local run, one worker thread:")
    created = ", ".join(f"{t:.1f}" for t in many.pipelines_created)
    print(f"  training pipelines created at (s): {created}")
    print(f"  first training finished at: {many.first_pipeline_finished:.1f} s")
    if many.local_training is not None:
        began, ended = many.local_training
        print(f"  local training ran from {began:.1f} s to {ended:.1f} s")
    states = set(many.states.values())
    print(f"  all {len(many.states)} runs ended at: {_wall(many):.1f} s, states {states}")
    print(
        f"  all reached training before the first finished: "
        f"{many.all_reached_training_before_the_first_finished()}"
    )
    print(
        f"ratio, {args.runs}+1 runs / 1 run wall time: {_wall(many) / _wall(one):.2f}x "
        f"(waiting on each job in turn: about {args.runs}x)"
    )
    ok = set(many.states.values()) == {"complete"} and set(one.states.values()) == {"complete"}
    return 0 if ok and many.all_reached_training_before_the_first_finished() else 1


if __name__ == "__main__":
    raise SystemExit(main())
