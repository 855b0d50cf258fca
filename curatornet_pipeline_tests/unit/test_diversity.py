"""The per-artist cap and the reasons of served lists (core/diversity.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curatornet_pipeline.core.diversity import beyond_accuracy, cap_per_artist, closest_in_profile


def test_the_cap_keeps_rank_order_and_at_most_n_works_per_artist():
    artists = ["a", "a", "a", "b", "a", "c", "b", "b"]
    assert cap_per_artist(artists, 2, 5) == [0, 1, 3, 5, 6]
    assert cap_per_artist(artists, 1, 5) == [0, 3, 5]  # the ranking ran out: a shorter list, nothing invented
    assert cap_per_artist(artists, 0, 4) == [0, 1, 2, 3]  # 0: off
    with pytest.raises(ValueError, match="0 \\(off\\) or more"):
        cap_per_artist(artists, -1, 3)


def test_the_reason_is_the_most_similar_profile_work_by_cosine():
    vectors = np.array([[1, 0], [0, 1], [10, 1], [1, 10], [1, 1]], dtype=np.float32)  # [N, D]
    profile = np.array([0, 1])
    # Row 2 points along artwork 0, row 3 along artwork 1, whatever their lengths.
    assert closest_in_profile(vectors, np.array([2, 3]), profile).tolist() == [0, 1]
    assert closest_in_profile(vectors, np.array([], dtype=np.int64), profile).tolist() == []


def test_beyond_accuracy_counts_distinct_artists_per_list_and_the_catalogue_share_of_all_lists():
    # Artworks 0-1 by artist x, 2-3 by y, 4 by z; lists of two users per method, ranks beyond k ignored.
    artists = ["x", "x", "y", "y", "z"]
    rows = [("A", "u1", 1, 0), ("A", "u1", 2, 1), ("A", "u2", 1, 2), ("A", "u2", 2, 4), ("A", "u2", 3, 3),
            ("B", "u1", 1, 0), ("B", "u1", 2, 2), ("B", "u2", 1, 0), ("B", "u2", 2, 4)]
    recommendations = pd.DataFrame(rows, columns=["method", "user_id", "rank", "artwork_idx"])
    table = beyond_accuracy(recommendations, artists, k=2).set_index("method")
    assert table.loc["A", "artist_diversity_at_2"] == pytest.approx((1 / 2 + 2 / 2) / 2)
    assert table.loc["B", "artist_diversity_at_2"] == 1.0
    assert table.loc["A", "catalogue_coverage_at_2"] == pytest.approx(4 / 5)  # rank 3 (artwork 3) is beyond k
    assert table.loc["B", "catalogue_coverage_at_2"] == pytest.approx(3 / 5)
