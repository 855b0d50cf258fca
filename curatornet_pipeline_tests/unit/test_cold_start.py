"""Cold-start protocols (issue 20): held-out customers and post-cut-off purchases never reach training, and
VBPR fold-in lowers the BPR loss on the new customers' profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curatornet_pipeline.core.cold_start import (
    NEW_ARTWORKS,
    NEW_CUSTOMERS,
    new_artwork_setup,
    new_customer_setup,
    repeat_buyers,
    setup_summary,
)
from curatornet_pipeline.core.cold_start_evaluation import (
    CURATORNET,
    VBPR,
    VBPR_FOLD_IN,
    VBPR_NO_FOLD_IN,
    evaluate_protocol,
)
from curatornet_pipeline.core.cold_start_models import ColdStartTraining, sampling_inputs, train_protocol_models
from curatornet_pipeline.core.evaluation import evaluation_users
from curatornet_pipeline.core.features import zscore_catalogue
from curatornet_pipeline.core.model import CuratorNetConfig
from curatornet_pipeline.core.sampling import SamplingBudget
from curatornet_pipeline.core.split import last_basket_split
from curatornet_pipeline.core.training import TrainingConfig
from curatornet_pipeline.core.vbpr import VBPRConfig
from curatornet_pipeline.core.vbpr_fold_in import FoldInConfig, fold_in
from curatornet_pipeline_tests.support.toy_data import one_torch_thread  # noqa: F401 (autouse fixture)

N_ITEMS, N_ARTISTS, N_CLUSTERS, N_USERS, DIM = 80, 8, 4, 40, 16
DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2024-01-01")


@pytest.fixture(scope="module")
def gallery():
    """Artists with a visual style, users who keep buying from one or two artists, uploads spread over time."""
    rng = np.random.default_rng(3)
    artist = np.arange(N_ITEMS) % N_ARTISTS
    styles = rng.normal(scale=3.0, size=(N_ARTISTS, DIM))
    raw = styles[artist] + rng.normal(size=(N_ITEMS, DIM))
    artworks = pd.DataFrame(
        {
            "artwork_idx": np.arange(N_ITEMS),
            "artwork_id": [f"a{i:03d}" for i in range(N_ITEMS)],
            "artist_id": [f"artist{a}" for a in artist],
            "upload_timestamp": START + pd.to_timedelta(np.sort(rng.integers(0, 300, N_ITEMS)), unit="D"),
        }
    )
    rows, basket = [], 0
    for user in range(N_USERS):
        favourites = rng.choice(N_ARTISTS, size=2, replace=False)
        day = int(rng.integers(0, 200))
        for _ in range(int(rng.integers(1, 5))):
            day += int(rng.integers(5, 60))
            available = np.flatnonzero(np.isin(artist, favourites) & (artworks["upload_timestamp"] <= START + day * DAY))
            if len(available) == 0:
                continue
            for item in rng.choice(available, size=min(len(available), int(rng.integers(1, 3))), replace=False):
                rows.append((f"u{user:02d}", basket, START + day * DAY, f"a{item:03d}", int(item)))
            basket += 1
    tx = pd.DataFrame(rows, columns=["user_id", "basket_id", "purchase_timestamp", "artwork_id", "artwork_idx"])
    tx["source_row"] = np.arange(len(tx))
    split = last_basket_split(tx)
    labels = artist % N_CLUSTERS
    pca = raw - raw.mean(0)
    return artworks, split, labels, pca, raw, zscore_catalogue(raw)


TRAINING = ColdStartTraining(
    budget=SamplingBudget(total_train=1200),
    sampling_seed=0,
    curatornet=TrainingConfig(max_epochs=2, batch_size=128, learning_rate=1e-3, device="cpu", precision="fp32"),
    curatornet_model=CuratorNetConfig(input_dim=DIM, item_dims=(16, 16), user_dims=(16, 16)),
    vbpr=VBPRConfig(latent_dim=8, visual_dim=8, max_epochs=4, batch_size=128, device="cpu", precision="fp32"),
)


def test_new_customers_are_a_seeded_fifth_of_the_repeat_buyers_and_absent_from_every_triplet(gallery):
    artworks, split, labels, pca, raw, features = gallery
    buyers = repeat_buyers(split)
    setup = new_customer_setup(split, N_ITEMS, fraction=0.2, seed=0)
    assert len(setup.held_out_users) == round(0.2 * len(buyers))
    assert set(setup.held_out_users) <= set(buyers)
    assert setup.held_out_users == new_customer_setup(split, N_ITEMS, 0.2, seed=0).held_out_users
    assert setup.held_out_users != new_customer_setup(split, N_ITEMS, 0.2, seed=1).held_out_users
    assert not set(setup.training["user_id"]) & set(setup.held_out_users)
    evaluated = setup.evaluation.loc[setup.evaluation["split"] == "test", "user_id"]
    assert set(evaluated) == set(setup.held_out_users)
    # Training is the other customers' training view: their held-out (and excluded) rows stay out too.
    assert (setup.training["split"] == "train").all()
    others_training = (~split["user_id"].isin(setup.held_out_users)) & (split["split"] == "train")
    assert len(setup.training) == others_training.sum()

    models = train_protocol_models(setup, artworks, labels, pca, features, TRAINING)
    assert len(models.triplet_users) > 0
    assert not set(models.triplet_users["user_id"]) & set(setup.held_out_users)
    assert not set(models.vbpr_users) & set(setup.held_out_users)

    users = evaluation_users(artworks, setup.evaluation)
    assert {u.user_id for u in users} == set(setup.held_out_users)
    # Candidates as in the main protocol: the same inventory at the basket's time, which others' purchases shape.
    main = {u.user_id: u for u in evaluation_users(artworks, split)}
    for user in users:
        np.testing.assert_array_equal(user.candidates, main[user.user_id].candidates)
        np.testing.assert_array_equal(user.profile, main[user.user_id].profile)
    result = evaluate_protocol(setup, users, models, raw, features, FoldInConfig(steps=30), random_seed=0)
    table = result.table.set_index("method")
    assert {CURATORNET, VBPR_FOLD_IN, VBPR_NO_FOLD_IN, "VisRank", "Most-Popular", "Random"} == set(table.index)
    assert (table["n_users"] == len(users)).all()
    assert np.isnan(table.at[CURATORNET, "auc_p_value_vs_curatornet"])
    assert table.drop(index=CURATORNET)["auc_p_value_vs_curatornet"].notna().any()
    assert table.at[CURATORNET, "serving_seconds"] > 0 and table.at[VBPR_FOLD_IN, "serving_seconds"] > 0
    assert result.fold_in.loss_after < result.fold_in.loss_before


def test_new_artworks_train_only_on_purchases_up_to_the_cutoff_and_on_known_artworks(gallery):
    artworks, split, labels, pca, raw, features = gallery
    setup = new_artwork_setup(artworks, split, quantile=0.8)
    assert setup.protocol == NEW_ARTWORKS
    times = pd.to_datetime(split["purchase_timestamp"])
    assert setup.cutoff in set(times)  # an actual purchase time
    assert (pd.to_datetime(setup.training["purchase_timestamp"]) <= setup.cutoff).all()
    assert len(setup.training) == int((times <= setup.cutoff).sum())
    uploaded_late = (artworks["upload_timestamp"] > setup.cutoff).to_numpy()
    bought_before = np.isin(np.arange(N_ITEMS), setup.training["artwork_idx"])
    assert np.array_equal(setup.known_items, ~uploaded_late | bought_before)

    users = evaluation_users(artworks, setup.evaluation)
    targets = {u.user_id: u.relevant for u in users}
    test_rows = setup.evaluation[setup.evaluation["split"] == "test"]
    assert (pd.to_datetime(test_rows["purchase_timestamp"]) > setup.cutoff).all()
    assert test_rows.groupby("user_id")["basket_id"].nunique().eq(1).all()
    summary = setup_summary(setup, targets)
    assert summary["n_target_artworks_new"] > 0  # the point of the protocol: later purchases are of new works

    inputs = sampling_inputs(setup, artworks, labels, pca)
    assert inputs.n_items == setup.known_items.sum()
    models = train_protocol_models(setup, artworks, labels, pca, features, TRAINING)
    unknown = np.flatnonzero(~setup.known_items)
    assert (models.vbpr.item_latent[unknown] == 0).all()  # a new artwork keeps only its visual terms
    result = evaluate_protocol(setup, users, models, raw, features, FoldInConfig(), random_seed=0)
    assert VBPR in set(result.table["method"]) and result.fold_in is None


def test_the_sampler_sees_only_purchases_up_to_the_cutoff_and_never_a_held_out_customer(gallery):
    artworks, split, labels, pca, _, _ = gallery
    setup = new_artwork_setup(artworks, split, quantile=0.8)
    inputs = sampling_inputs(setup, artworks, labels, pca)
    known = setup.known_index
    before = split[pd.to_datetime(split["purchase_timestamp"]) <= setup.cutoff]
    later_only = split[~split.set_index(["user_id", "artwork_idx"]).index.isin(
        before.set_index(["user_id", "artwork_idx"]).index
    )]
    assert len(later_only) > 0
    for user, baskets in zip(inputs.user_ids, inputs.train_baskets):
        history = known[np.concatenate(baskets)] if baskets else np.zeros(0, dtype=np.int64)
        assert set(history) <= set(before.loc[before["user_id"] == user, "artwork_idx"]), user
    customers = new_customer_setup(split, N_ITEMS, fraction=0.2, seed=0)
    assert not set(sampling_inputs(customers, artworks, labels, pca).user_ids) & set(customers.held_out_users)


def test_fold_in_lowers_the_bpr_loss_on_the_new_customers_profiles(gallery):
    artworks, split, labels, pca, _, features = gallery
    setup = new_customer_setup(split, N_ITEMS, fraction=0.3, seed=2)
    models = train_protocol_models(setup, artworks, labels, pca, features, TRAINING)
    profiles = [u.profile for u in evaluation_users(artworks, setup.evaluation)]
    result = fold_in(models.vbpr, profiles, FoldInConfig(steps=50, seed=0))
    assert result.loss_after < result.loss_before - 0.01
    assert result.user_latent.shape == (len(profiles), TRAINING.vbpr.latent_dim)
    again = fold_in(models.vbpr, profiles, FoldInConfig(steps=50, seed=0))
    np.testing.assert_array_equal(again.user_latent, result.user_latent)  # seeded
    none = fold_in(models.vbpr, profiles, FoldInConfig(steps=0))
    assert none.loss_after == none.loss_before  # zero vectors: VBPR without fold-in
