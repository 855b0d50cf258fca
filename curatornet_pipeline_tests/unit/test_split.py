"""Last-basket split: exact assignments on a hand-made example, ties, invariants and bad input."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from curatornet_pipeline.core.errors import InputDataError
from curatornet_pipeline.core.split import (
    last_basket_split,
    order_baskets,
    read_test_tuples,
    split_from_test_tuples,
    split_summary,
)

# (user, basket_id, timestamp, artwork, expected split). Rows deliberately not sorted by user or time.
ROWS = [
    ("u3", 32, "2020-03-01", "i", "test"),  # u3: baskets 31 and 32 tie on time -> larger id (32) is last
    ("u1", 10, "2020-01-01", "a", "train"),  # u1: a single basket -> train only
    ("u2", 21, "2020-02-01", "d", "test"),  # u2: two baskets, 21 is later
    ("u3", 30, "2020-01-01", "f", "train"),
    ("u2", 20, "2020-01-01", "c", "train"),
    ("u1", 10, "2020-01-01", "b", "train"),
    ("u3", 31, "2020-03-01", "h", "train"),
    ("u2", 21, "2020-02-01", "e", "test"),
    ("u3", 30, "2020-01-01", "g", "train"),
    ("u4", 41, "2020-01-01", "j", "train"),  # u4: the larger basket_id is the EARLIER basket; time wins
    ("u4", 40, "2020-05-01", "k", "test"),
]


def _transactions() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user_id": [r[0] for r in ROWS],
            "basket_id": pd.Series([r[1] for r in ROWS], dtype="int64"),
            "purchase_timestamp": pd.to_datetime([r[2] for r in ROWS]),
            "artwork_id": [r[3] for r in ROWS],
            "artwork_idx": pd.Series(range(len(ROWS)), dtype="int64"),
            "source_row": pd.Series(range(1, len(ROWS) + 1), dtype="int64"),
        }
    )
    frame.index = pd.RangeIndex(100, 100 + len(ROWS))  # a non-default index must survive
    return frame


def test_exact_split_on_hand_made_example():
    transactions = _transactions()
    result = last_basket_split(transactions)
    assert result["split"].tolist() == [r[4] for r in ROWS]
    # Same rows, same order, same index, other columns untouched.
    pd.testing.assert_frame_equal(result.drop(columns="split"), transactions)


def test_every_row_assigned_once_and_test_items_not_in_train_of_user():
    result = last_basket_split(_transactions())
    assert set(result["split"]) == {"train", "test"}
    assert len(result) == len(ROWS)
    for user, rows in result.groupby("user_id"):
        test_items = set(rows.loc[rows["split"] == "test", "artwork_id"])
        train_items = set(rows.loc[rows["split"] == "train", "artwork_id"])
        assert not test_items & train_items
        # A held-out basket is whole: all of one basket, and only users with 2+ baskets have one.
        assert rows.loc[rows["split"] == "test", "basket_id"].nunique() == (1 if rows["basket_id"].nunique() >= 2 else 0)


def test_order_baskets_ranks_by_time_then_basket_id():
    baskets = order_baskets(_transactions())
    ranks = {(r.user_id, r.basket_id): r.basket_rank for r in baskets.itertuples()}
    assert ranks == {
        ("u1", 10): 0,
        ("u2", 20): 0,
        ("u2", 21): 1,
        ("u3", 30): 0,
        ("u3", 31): 1,
        ("u3", 32): 2,
        ("u4", 41): 0,
        ("u4", 40): 1,
    }


def test_split_summary_counts():
    summary = split_summary(last_basket_split(_transactions()))
    assert summary["n_users"] == 4
    assert summary["n_test_users"] == 3
    assert summary["n_single_basket_users"] == 1
    assert summary["n_test_rows"] == 4
    assert summary["n_train_rows"] == 7
    assert summary["n_test_baskets"] == 3
    assert summary["mean_test_basket_size"] == pytest.approx(4 / 3)


def test_missing_timestamp_is_rejected():
    transactions = _transactions()
    transactions.loc[103, "purchase_timestamp"] = pd.NaT
    with pytest.raises(ValueError, match="no purchase_timestamp"):
        last_basket_split(transactions)


def test_basket_shared_by_two_users_is_rejected():
    transactions = _transactions()
    transactions.loc[101, "basket_id"] = 21  # u1's row now claims u2's basket
    with pytest.raises(ValueError, match="basket_id 21 belongs to 2 users"):
        last_basket_split(transactions)


def test_earlier_purchase_of_a_held_out_item_is_excluded_not_dropped():
    import pandas as pd

    from curatornet_pipeline.core.split import last_basket_split

    rows = pd.DataFrame(
        {
            "user_id": ["u", "u", "u"],
            "basket_id": [0, 0, 1],
            "purchase_timestamp": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-02-01"]),
            "artwork_id": ["print", "painting", "print"],
            "artwork_idx": [0, 1, 0],
        }
    )
    labelled = last_basket_split(rows)
    assert labelled["split"].tolist() == ["excluded", "train", "test"]


def test_user_who_only_rebought_one_print_is_train_only():
    import pandas as pd

    from curatornet_pipeline.core.split import last_basket_split

    rows = pd.DataFrame(
        {
            "user_id": ["u", "u", "v", "v"],
            "basket_id": [0, 1, 2, 3],
            "purchase_timestamp": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-01-01", "2020-02-01"]),
            "artwork_id": ["print", "print", "a", "b"],
            "artwork_idx": [0, 0, 1, 2],
        }
    )
    labelled = last_basket_split(rows)
    # Holding u's last basket out would leave u with no training item, so u is not evaluated.
    assert labelled["split"].tolist() == ["train", "train", "train", "test"]


def _tuples_file(tmp_path, text: str):
    path = tmp_path / "test_baskets.csv"
    path.write_text(text)
    return read_test_tuples(path)


def test_published_test_baskets_are_followed_exactly(tmp_path):
    # u2's FIRST basket (c) and u3's basket 30 (f, g) are held out; u4 is not listed, so train-only.
    tuples = _tuples_file(tmp_path, "user_id_hash,artwork_id_hash\nu2,c\nu3,g\nu3,f\n")
    result = split_from_test_tuples(_transactions(), tuples, "test_baskets.csv")
    test = result.loc[result["split"] == "test", ["user_id", "artwork_id"]]
    assert sorted(map(tuple, test.to_numpy())) == [("u2", "c"), ("u3", "f"), ("u3", "g")]
    assert set(result.loc[result["user_id"] == "u4", "split"]) == {"train"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("user_id,artwork_id\nu9,a\n", "data row 1: user 'u9' has no purchase"),
        ("user_id,artwork_id\nu2,c\nu2,zz\n", "user 'u2' never bought ['zz']"),
        ("user_id,artwork_id\nu2,c\nu2,d\n", "no single basket of user 'u2' holds all of ['c', 'd']"),
        ("user_id,artwork_id\nu3,f\n", "also holds ['g'], which the file does not list"),
        ("user,artwork_id\nu2,c\n", "needs a column user_id or user_id_hash"),
        ("user_id,artwork_id\nu2,\n", "data row 1: empty user or artwork id"),
    ],
)
def test_published_test_baskets_that_do_not_match_the_purchases_are_refused(tmp_path, text, message):
    with pytest.raises(InputDataError, match=re.escape(message)) as err:
        split_from_test_tuples(_transactions(), _tuples_file(tmp_path, text), "test_baskets.csv")
    assert "test_baskets.csv" in str(err.value)
