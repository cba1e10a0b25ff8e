"""The selection strategies vmt knows, each declared once as a ``StrategySpec``, and their
options (``SelectionOptions``), stated once for ``vmt select`` and ``POST /runs/{id}/select``.

A strategy is a name, a one-line summary, its score function ``(table, options) -> RowScores``
(``None`` for ``diverse``, which thins its ``base`` strategy's ranking, see
``vmt.selection.ranking``), the inputs it needs beyond the predictions (``INPUTS``) and the
options it reads. This module imports no numpy: the score functions import it when they run,
so the CLI's help lists the strategies cheaply. ``register_strategy`` adds one.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmt.errors import InputError

if TYPE_CHECKING:
    from vmt.detection_table import DetectionTable
    from vmt.selection.scores import RowScores

INPUTS = {
    "training_boxes": "the training boxes per class (a run's training rows or --training)",
    "embeddings": "image embeddings of the pool (a run whose model gives them)",
    "budget": "how many rows to choose (--budget)",
}
"""What a strategy may need besides the pool's predictions."""

OPTION_HELP = {
    "threshold": "Decision threshold for margin (default: the run's F1-optimal confidence; "
    "0.5 with predictions made elsewhere).",
    "window": "margin: boxes within this distance of the threshold are counted in the reason.",
    "score_floor": "Boxes scoring less are ignored by every strategy.",
    "seed": "Seed of the random strategy.",
    "base": "The uncertainty strategy that diverse thins.",
    "candidate_factor": "diverse considers the top candidate_factor x budget rows of base.",
}
"""The options a user sets, with their help: ``vmt select`` has an option for each
(``--score-floor`` for ``score_floor``), and the service's select request a field."""

UNCERTAINTY_STRATEGIES = ("least_confidence", "margin", "entropy")
"""The strategies ``diverse`` may thin (its ``base``)."""


@dataclass(frozen=True, kw_only=True)
class SelectionOptions:
    threshold: float = 0.5
    """Decision threshold (the run's F1-optimal confidence): ``margin`` measures to it."""
    window: float = 0.1
    """``margin`` reasons count the boxes within this distance of the threshold."""
    score_floor: float = 0.05
    """Boxes scoring less are ignored by every strategy."""
    seed: int = 0
    """``random``'s seed."""
    training_boxes: Mapping[str, int] | None = None
    """Class -> training boxes; required by ``rare_class``."""
    base: str = "least_confidence"
    """The uncertainty strategy ``diverse`` thins."""
    candidate_factor: int = 5
    """``diverse`` considers the top ``candidate_factor * budget`` rows of ``base``."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise InputError(f"the threshold must be in [0, 1], got {self.threshold}")
        if self.base not in UNCERTAINTY_STRATEGIES:
            raise InputError(
                f"diverse thins an uncertainty strategy ({', '.join(UNCERTAINTY_STRATEGIES)}), "
                f"not {self.base!r}"
            )
        if self.candidate_factor < 1:
            raise InputError(f"candidate_factor must be >= 1, got {self.candidate_factor}")


ScoreFunction = Callable[["DetectionTable", SelectionOptions], "RowScores"]


@dataclass(frozen=True, slots=True)
class StrategySpec:
    name: str
    summary: str
    score: ScoreFunction | None
    """None: the strategy ranks another's candidates (``diverse``)."""
    needs: tuple[str, ...] = ()
    """Keys of ``INPUTS`` it cannot rank without (``embeddings``: it falls back and says so)."""
    options: tuple[str, ...] = ()
    """Keys of ``OPTION_HELP`` it reads (``score_floor`` is read by all that score boxes)."""


def _least_confidence(table: DetectionTable, options: SelectionOptions) -> RowScores:
    from vmt.selection import scores

    return scores.least_confidence(table, floor=options.score_floor)


def _margin(table: DetectionTable, options: SelectionOptions) -> RowScores:
    from vmt.selection import scores

    return scores.margin(
        table, threshold=options.threshold, window=options.window, floor=options.score_floor
    )


def _entropy(table: DetectionTable, options: SelectionOptions) -> RowScores:
    from vmt.selection import scores

    return scores.entropy(table, floor=options.score_floor)


def _rare_class(table: DetectionTable, options: SelectionOptions) -> RowScores:
    from vmt.selection import scores

    if options.training_boxes is None:
        raise InputError(
            "rare_class needs the training boxes per class: give --run (its training "
            "rows) or --training EXPORT"
        )
    return scores.rare_class(
        table, training_boxes=options.training_boxes, floor=options.score_floor
    )


def _random(table: DetectionTable, options: SelectionOptions) -> RowScores:
    from vmt.selection import scores

    return scores.random_order(table, seed=options.seed)


_BUILTIN = (
    StrategySpec(
        "least_confidence",
        "rows whose least confident box is least confident first",
        _least_confidence,
        options=("score_floor",),
    ),
    StrategySpec(
        "margin",
        "rows with boxes closest to the decision threshold first",
        _margin,
        options=("threshold", "window", "score_floor"),
    ),
    StrategySpec(
        "entropy", "rows with the most box entropy first", _entropy, options=("score_floor",)
    ),
    StrategySpec(
        "rare_class",
        "rows predicted to hold the rarest training classes first",
        _rare_class,
        needs=("training_boxes",),
        options=("score_floor",),
    ),
    StrategySpec("random", "a seeded random order (a baseline)", _random, options=("seed",)),
    StrategySpec(
        "diverse",
        "the most uncertain rows that differ from each other and from the training images",
        None,
        needs=("budget", "embeddings"),
        options=("base", "candidate_factor", "threshold", "window", "score_floor"),
    ),
)

_lock = threading.Lock()
_strategies: dict[str, StrategySpec] = {spec.name: spec for spec in _BUILTIN}


def register_strategy(spec: StrategySpec) -> StrategySpec:
    """Add ``spec``. Raises ``InputError`` when another strategy has its name, it needs an
    input not in ``INPUTS`` or reads an option not in ``OPTION_HELP``."""
    unknown = [n for n in spec.needs if n not in INPUTS]
    unknown += [o for o in spec.options if o not in OPTION_HELP]
    if unknown:
        raise InputError(f"strategy {spec.name!r}: unknown input(s)/option(s) {unknown}")
    with _lock:
        current = _strategies.get(spec.name)
        if current is not None and current is not spec:
            raise InputError(f"strategy {spec.name!r} is already registered")
        _strategies[spec.name] = spec
    return spec


def unregister_strategy(name: str) -> None:
    """Remove strategy ``name`` (tests); unknown names are ignored."""
    with _lock:
        _strategies.pop(name, None)


def strategy_names() -> tuple[str, ...]:
    with _lock:
        return tuple(_strategies)


def strategy_spec(name: str) -> StrategySpec:
    """The strategy ``name``. Raises ``InputError`` naming the known ones otherwise."""
    with _lock:
        spec = _strategies.get(name)
    if spec is None:
        raise InputError(f"unknown strategy {name!r}; choose one of {', '.join(strategy_names())}")
    return spec


def strategies_help() -> str:
    """``--strategy``'s help: every strategy with its summary."""
    return "; ".join(f"{s.name}: {s.summary}" for s in (strategy_spec(n) for n in strategy_names()))


def selection_options(**values: object) -> SelectionOptions:
    """``SelectionOptions`` from the options a user set (keys of ``OPTION_HELP``; None keeps
    the default). Raises ``InputError`` for another key or a bad value."""
    unknown = sorted(set(values) - set(OPTION_HELP))
    if unknown:
        raise InputError(f"unknown selection option(s): {', '.join(unknown)}")
    given = {name: value for name, value in values.items() if value is not None}
    return SelectionOptions(**given)  # type: ignore[arg-type]


BATCH_NAME_HELP = "Batch name (default: vmt-<strategy>-<digest of the chosen rows>)."


def batch_name(strategy: str, data_row_ids: Sequence[str]) -> str:
    """The default name of the batch a selection sends to a project: the same selection gets
    the same name, so a retry makes no second batch. ``vmt-<strategy>-<first 10 hex digits of
    sha256 of the ids joined by newlines>``."""
    digest = hashlib.sha256("\n".join(data_row_ids).encode()).hexdigest()[:10]
    return f"vmt-{strategy}-{digest}"
