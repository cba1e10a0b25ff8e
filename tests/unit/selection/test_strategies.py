"""The strategy registry: each strategy declared once with its inputs and options."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.unit.selection.test_ranking import make_table
from vmt.detection_table import DetectionTable
from vmt.errors import InputError
from vmt.selection.ranking import rank_pool
from vmt.selection.scores import RowScores
from vmt.selection.strategies import (
    INPUTS,
    OPTION_HELP,
    SelectionOptions,
    StrategySpec,
    batch_name,
    register_strategy,
    selection_options,
    strategy_names,
    strategy_spec,
    unregister_strategy,
)


def test_the_builtin_strategies_declare_known_inputs_and_options() -> None:
    assert strategy_names() == (
        "least_confidence", "margin", "entropy", "rare_class", "random", "diverse",
    )  # fmt: skip
    for name in strategy_names():
        spec = strategy_spec(name)
        assert set(spec.needs) <= set(INPUTS), name
        assert set(spec.options) <= set(OPTION_HELP), name
        assert (spec.score is None) == (name == "diverse")
    assert strategy_spec("rare_class").needs == ("training_boxes",)
    assert set(strategy_spec("diverse").needs) == {"budget", "embeddings"}


def _by_length(table: DetectionTable, options: SelectionOptions) -> RowScores:
    score = np.asarray([float(len(i)) for i in table.data_row_ids], dtype=np.float64)
    return RowScores(score, lambda r: f"id of {int(score[r])} characters")


@pytest.fixture
def longest_id() -> Iterator[StrategySpec]:
    spec = register_strategy(StrategySpec("longest_id", "long ids first", _by_length))
    yield spec
    unregister_strategy(spec.name)
    assert "longest_id" not in strategy_names()


def test_a_registered_strategy_ranks(longest_id: StrategySpec) -> None:
    ranking = rank_pool(make_table({"a": [], "ccc": [], "bb": []}), strategy="longest_id")
    assert [(r.data_row_id, r.reason) for r in ranking.rows] == [
        ("ccc", "id of 3 characters"),
        ("bb", "id of 2 characters"),
        ("a", "id of 1 characters"),
    ]
    with pytest.raises(InputError, match="already registered"):
        register_strategy(StrategySpec("longest_id", "again", _by_length))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (StrategySpec("x", "x", _by_length, needs=("labels",)), r"unknown input.*'labels'"),
        (StrategySpec("x", "x", _by_length, options=("alpha",)), r"unknown input.*'alpha'"),
        (StrategySpec("margin", "again", _by_length), "already registered"),
    ],
)
def test_bad_registrations_are_refused(spec: StrategySpec, message: str) -> None:
    with pytest.raises(InputError, match=message):
        register_strategy(spec)
    assert strategy_spec("margin").summary != "again"


def test_an_unknown_strategy_names_the_known_ones() -> None:
    with pytest.raises(InputError, match="unknown strategy 'nearest'; choose one of least_conf"):
        strategy_spec("nearest")


def test_selection_options_from_what_the_user_set() -> None:
    options = selection_options(threshold=None, window=0.2, seed=4, base="margin")
    assert options == SelectionOptions(window=0.2, seed=4, base="margin")
    with pytest.raises(InputError, match="unknown selection option"):
        selection_options(training_boxes={"car": 1})
    with pytest.raises(InputError, match="diverse thins an uncertainty strategy"):
        selection_options(base="random")


def test_the_batch_name_is_the_selection_s_digest() -> None:
    assert batch_name("margin", ["row-2", "row-1"]) == "vmt-margin-dcd94a5f66"
    assert batch_name("margin", ["row-1", "row-2"]) != batch_name("margin", ["row-2", "row-1"])
