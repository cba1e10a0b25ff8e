"""Each strategy on small constructed pools whose right order is stated in the case."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vmt.detection_table import DetectionTable
from vmt.domain import Box, Detection, Prediction
from vmt.errors import InputError
from vmt.selection.ranking import PoolEmbeddings, SelectionOptions, rank_pool

Pool = dict[str, list[tuple[str, float]]]


def make_table(pool: Pool, *, shuffle_seed: int | None = None) -> DetectionTable:
    items = list(pool.items())
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(items)
    return DetectionTable.from_predictions(
        Prediction(
            row_id,
            tuple(Detection(Box(label, 0, 0, 10, 10), score) for label, score in boxes),
        )
        for row_id, boxes in items
    )


CASES = [
    # (strategy, options, pool, expected order, why)
    (
        "least_confidence",
        SelectionOptions(),
        {"a": [("car", 0.9)], "b": [("car", 0.3)], "c": [], "d": [("car", 0.6), ("car", 0.95)]},
        ["c", "b", "a", "d"],
        "1 - best score: c has nothing (1.0), b 0.7, a 0.1, d 0.05",
    ),
    (
        "least_confidence",
        SelectionOptions(),
        {"b": [("car", 0.01)], "a": [], "c": [("car", 0.5)]},
        ["a", "b", "c"],
        "a box under the 0.05 floor counts as none: a and b tie at 1.0, broken by id",
    ),
    (
        "margin",
        SelectionOptions(threshold=0.5),
        {"a": [("car", 0.9)], "b": [("car", 0.45)], "c": [], "d": [("car", 0.2), ("car", 0.52)]},
        ["d", "b", "a", "c"],
        "closest box to 0.5: d 0.02, b 0.05, a 0.4; c has no box (0)",
    ),
    (
        "margin",
        SelectionOptions(threshold=0.3),
        {"a": [("car", 0.9)], "b": [("car", 0.45)], "c": [], "d": [("car", 0.2), ("car", 0.52)]},
        ["d", "b", "a", "c"],
        "closest box to 0.3: d 0.1, b 0.15, a 0.6",
    ),
    (
        "margin",
        SelectionOptions(threshold=0.8),
        {"a": [("car", 0.9)], "b": [("car", 0.45)], "d": [("car", 0.2), ("car", 0.52)]},
        ["a", "d", "b"],
        "closest box to 0.8: a 0.1, d 0.28, b 0.35",
    ),
    (
        "entropy",
        SelectionOptions(),
        {
            "a": [("car", 0.5)],
            "b": [("car", 0.5), ("bird", 0.5)],
            "c": [("car", 0.99), ("car", 0.99)],
            "d": [],
        },
        ["b", "a", "c", "d"],
        "sum of box entropies: b 2 bits, a 1 bit, c ~0.16, d 0",
    ),
    (
        "rare_class",
        SelectionOptions(training_boxes={"car": 100, "bird": 9}),
        {
            "a": [("car", 0.9)],
            "b": [("bird", 0.5)],
            "c": [("bird", 0.9), ("car", 0.99)],
            "d": [("cat", 0.3)],
        },
        ["d", "c", "b", "a"],
        "cat has no training box (weight 1): d 0.3; bird weight 1/10: c 0.09, b 0.05; "
        "car 1/101: a 0.009",
    ),
    (
        "rare_class",
        SelectionOptions(training_boxes={"car": 100, "bird": 9}),
        {"a": [("car", 0.9)], "b": [("bird", 0.5)], "c": [("bird", 0.9)], "e": []},
        ["c", "b", "a", "e"],
        "bird is the rarest (weight 1): c 0.9, b 0.5; car 10/101: a 0.089; e no box",
    ),
    (
        "least_confidence",
        SelectionOptions(),
        {"c": [("car", 0.5)], "a": [("car", 0.5)], "b": [("car", 0.5)]},
        ["a", "b", "c"],
        "equal scores: data row id order",
    ),
]


@pytest.mark.parametrize(
    ("strategy", "options", "pool", "expected", "why"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_strategy_orders_the_pool(
    strategy: str, options: SelectionOptions, pool: Pool, expected: list[str], why: str
) -> None:
    for shuffle in (None, 1, 2):
        ranking = rank_pool(
            make_table(pool, shuffle_seed=shuffle), strategy=strategy, options=options
        )
        assert [r.data_row_id for r in ranking.rows] == expected, why
        assert [r.rank for r in ranking.rows] == list(range(1, len(expected) + 1))
        scores = [r.score for r in ranking.rows]
        assert scores == sorted(scores, reverse=True)


def test_scores_and_reasons_say_why() -> None:
    pool: Pool = {"a": [("car", 0.45), ("car", 0.58), ("bird", 0.2)], "b": []}
    table = make_table(pool)
    lc = rank_pool(table, strategy="least_confidence").rows
    assert (lc[0].data_row_id, lc[0].score, lc[0].reason) == (
        "b",
        1.0,
        "no box scored 0.05 or more",
    )
    assert lc[1].score == pytest.approx(0.42)
    assert lc[1].reason == "best box 0.58 (car)"
    mg = rank_pool(table, strategy="margin", options=SelectionOptions(threshold=0.5)).rows
    assert mg[0].reason == "2 boxes within 0.1 of the threshold 0.50; closest 0.45 (car)"
    assert mg[0].score == pytest.approx(0.95)
    en = rank_pool(table, strategy="entropy").rows
    assert en[0].reason.startswith("entropy 2.70 bits over 3 boxes; most uncertain 0.45 (car)")
    rc = rank_pool(
        table, strategy="rare_class", options=SelectionOptions(training_boxes={"car": 3, "bird": 0})
    ).rows
    assert rc[0].reason == "predicts 0.20 (bird), a class with 0 training boxes"


def test_budget_keeps_the_top_rows_and_global_keys_follow() -> None:
    pool: Pool = {f"r{i}": [("car", i / 10)] for i in range(1, 10)}
    ranking = rank_pool(
        make_table(pool),
        strategy="least_confidence",
        budget=3,
        global_keys={"r1": "img-1.png", "r2": "img-2.png"},
    )
    assert [r.data_row_id for r in ranking.rows] == ["r1", "r2", "r3"]
    assert [r.global_key for r in ranking.rows] == ["img-1.png", "img-2.png", None]
    assert ranking.pool_rows == 9


def test_random_is_seeded_and_independent_of_pool_order() -> None:
    pool: Pool = {f"r{i:03d}": [] for i in range(200)}

    def order(seed: int, shuffle: int | None) -> list[str]:
        table = make_table(pool, shuffle_seed=shuffle)
        ranking = rank_pool(table, strategy="random", options=SelectionOptions(seed=seed))
        return [r.data_row_id for r in ranking.rows]

    assert order(0, None) == order(0, 5)
    assert order(0, None) != order(1, None)
    assert order(0, None) != sorted(pool)
    # one row's place does not depend on the other rows: a sub-pool keeps the relative order
    sub = {k: pool[k] for k in list(pool)[:50]}
    full = [r for r in order(0, None) if r in sub]
    only = [r.data_row_id for r in rank_pool(make_table(sub), strategy="random").rows]
    assert only == full


DIVERSE_POOL: Pool = {
    "a": [("car", 0.1)],  # least confidence 0.9: most uncertain
    "b": [("car", 0.11)],  # 0.89, a near-duplicate of a
    "c": [("car", 0.2)],  # 0.8
    "d": [("car", 0.3)],  # 0.7
    "e": [("car", 0.95)],  # 0.05: confident, never a candidate at factor 2
}
DIVERSE_EMBEDDINGS = {
    "a": [1.0, 0.0],
    "b": [1.0, 0.01],
    "c": [0.0, 1.0],
    "d": [-1.0, 0.0],
    "e": [0.0, -1.0],
}


def _embeddings(table: DetectionTable, labelled: list[list[float]] | None = None) -> PoolEmbeddings:
    pool = np.asarray([DIVERSE_EMBEDDINGS[i] for i in table.data_row_ids])
    return PoolEmbeddings(pool=pool, labelled=np.asarray(labelled) if labelled else None)


DIVERSE_CASES = [
    # (budget, candidate_factor, labelled, expected, why)
    (2, 2, None, ["a", "d"], "a is most uncertain; d is farthest from a (b is a's duplicate)"),
    (2, 1, None, ["a", "b"], "only a and b are candidates"),
    (3, 2, None, ["a", "d", "c"], "then c, 1.41 from both a and d (e is no candidate)"),
    (2, 2, [[-1.0, 0.0]], ["a", "c"], "d is labelled already: a is farthest, then c"),
]


@pytest.mark.parametrize(("budget", "factor", "labelled", "expected", "why"), DIVERSE_CASES)
def test_diverse_thins_uncertain_candidates(
    budget: int, factor: int, labelled: list[list[float]] | None, expected: list[str], why: str
) -> None:
    for shuffle in (None, 3):
        table = make_table(DIVERSE_POOL, shuffle_seed=shuffle)
        ranking = rank_pool(
            table,
            strategy="diverse",
            budget=budget,
            options=SelectionOptions(candidate_factor=factor),
            embeddings=_embeddings(table, labelled),
        )
        assert [r.data_row_id for r in ranking.rows] == expected, why
        assert ranking.notes == ()


def test_diverse_reason_names_the_distance() -> None:
    table = make_table(DIVERSE_POOL)
    rows = rank_pool(
        table,
        strategy="diverse",
        budget=2,
        options=SelectionOptions(candidate_factor=2),
        embeddings=_embeddings(table),
    ).rows
    assert (
        rows[0].reason
        == "first pick (most uncertain candidate); least_confidence best box 0.10 (car)"
    )
    assert rows[1].reason.startswith("2.000 from the nearest chosen or labelled image")
    assert rows[1].score == pytest.approx(0.7)


def test_diverse_without_embeddings_falls_back_and_says_so() -> None:
    ranking = rank_pool(make_table(DIVERSE_POOL), strategy="diverse", budget=2)
    assert [r.data_row_id for r in ranking.rows] == ["a", "b"]
    assert ranking.notes == (
        "diverse: this model gives no image embeddings; ranked by least_confidence alone",
    )


@pytest.mark.parametrize(
    ("strategy", "budget", "options", "message"),
    [
        ("nearest", None, SelectionOptions(), "unknown strategy 'nearest'"),
        ("rare_class", None, SelectionOptions(), "rare_class needs the training boxes"),
        ("diverse", None, SelectionOptions(), "diverse needs --budget N"),
        ("margin", -1, SelectionOptions(), "--budget must be >= 0"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    strategy: str, budget: int | None, options: SelectionOptions, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        rank_pool(make_table(DIVERSE_POOL), strategy=strategy, budget=budget, options=options)


def test_options_are_checked() -> None:
    with pytest.raises(InputError, match="threshold must be in"):
        SelectionOptions(threshold=1.5)
    with pytest.raises(InputError, match="diverse thins an uncertainty strategy"):
        SelectionOptions(base="random")


def test_empty_pool_ranks_nothing() -> None:
    ranking = rank_pool(make_table({}), strategy="least_confidence", budget=5)
    assert ranking.rows == ()


@pytest.mark.parametrize(
    "strategy", ["least_confidence", "margin", "entropy", "rare_class", "random"]
)
def test_a_pool_without_any_detection_is_ranked_by_id(strategy: str) -> None:
    options = SelectionOptions(training_boxes={"car": 1})
    ranking = rank_pool(make_table({"b": [], "a": [], "c": []}), strategy=strategy, options=options)
    assert len(ranking.rows) == 3
    if strategy != "random":
        assert [r.data_row_id for r in ranking.rows] == ["a", "b", "c"]
