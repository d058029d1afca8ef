"""Fusion of known rankings: the orders and scores worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from search import fusion


def ranking(ids, scores=None):
    scores = scores if scores is not None else list(range(len(ids), 0, -1))
    return np.array(ids, dtype=np.int64), np.array(scores, dtype=np.float32)


def test_rrf_of_two_known_rankings():
    # dense: 1, 2, 3   lexical: 3, 1, 4   with k=1:
    # 1: 1/2 + 1/3 = 0.833   3: 1/4 + 1/2 = 0.75   2: 1/3 = 0.333   4: 1/4 = 0.25
    rowids, scores = fusion.rrf([ranking([1, 2, 3]), ranking([3, 1, 4])], k=1)
    assert rowids.tolist() == [1, 3, 2, 4]
    assert scores.tolist() == pytest.approx([1 / 2 + 1 / 3, 1 / 4 + 1 / 2, 1 / 3, 1 / 4], rel=1e-6)


def test_rrf_weights_shift_the_order():
    dense, lexical = ranking([1, 2]), ranking([2, 1])
    assert fusion.rrf([dense, lexical], k=60, weights=[0.9, 0.1])[0].tolist() == [1, 2]
    assert fusion.rrf([dense, lexical], k=60, weights=[0.1, 0.9])[0].tolist() == [2, 1]


def test_rrf_ties_keep_first_seen_order():
    # 1 and 2 each sit at rank 1 in one list: equal scores, 1 was seen first.
    assert fusion.rrf([ranking([1]), ranking([2])])[0].tolist() == [1, 2]


def test_min_max_and_its_floor():
    assert fusion.min_max(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert fusion.min_max(np.array([2.0, 4.0]), floor=0.0).tolist() == [0.5, 1.0]
    assert fusion.min_max(np.array([5.0, 5.0])).tolist() == [1.0, 1.0]  # no spread: all equally good
    assert fusion.min_max(np.array([])).tolist() == []


def test_convex_combination_by_hand():
    # dense cosines 0.9, 0.7, 0.5 -> min-max 1, 0.5, 0
    # BM25 10, 5 with floor 0 -> 1, 0.5; paper 1 has no BM25 score -> 0
    dense = ranking([1, 2, 3], [0.9, 0.7, 0.5])
    lexical = ranking([3, 2], [10.0, 5.0])
    rowids, scores = fusion.convex(dense, lexical, alpha=0.5)
    # 1: 0.5*1 + 0 = 0.5   2: 0.5*0.5 + 0.5*0.5 = 0.5   3: 0 + 0.5*1 = 0.5 -> all tie, first seen first
    assert rowids.tolist() == [1, 2, 3]
    assert scores.tolist() == pytest.approx([0.5, 0.5, 0.5])
    rowids, scores = fusion.convex(dense, lexical, alpha=0.8)
    # 1: 0.8   2: 0.4 + 0.1 = 0.5   3: 0.2
    assert rowids.tolist() == [1, 2, 3]
    assert scores.tolist() == pytest.approx([0.8, 0.5, 0.2])
    rowids, _ = fusion.convex(dense, lexical, alpha=0.2)
    # 1: 0.2   2: 0.1 + 0.4 = 0.5   3: 0.8
    assert rowids.tolist() == [3, 2, 1]


def test_convex_extremes_reproduce_each_side():
    dense = ranking([1, 2, 3], [0.9, 0.8, 0.1])
    lexical = ranking([3, 2, 1], [9.0, 8.0, 1.0])
    assert fusion.convex(dense, lexical, alpha=1.0)[0].tolist() == [1, 2, 3]
    assert fusion.convex(dense, lexical, alpha=0.0)[0].tolist() == [3, 2, 1]


def test_convex_with_an_empty_side():
    dense = ranking([4, 5], [0.3, 0.2])
    assert fusion.convex(dense, ranking([]), alpha=0.5)[0].tolist() == [4, 5]
    assert fusion.convex(ranking([]), ranking([]), alpha=0.5)[0].tolist() == []


def test_convex_rejects_alpha_outside_unit_interval():
    with pytest.raises(ValueError, match="alpha"):
        fusion.convex(ranking([1]), ranking([1]), alpha=1.5)
