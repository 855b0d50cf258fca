"""VBPR baseline: the score and loss by hand from the weights, learning, stopping on validation, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curatornet_pipeline.core.triplet_set import TripletSet
from curatornet_pipeline.core.vbpr import VBPRConfig, VBPRModel, _scoring_model, _VBPRNet, train_vbpr, vbpr_loss

N_USERS, N_GROUPS, PER_GROUP = 30, 3, 12


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These tensors are tiny: on a shared 2-core machine thread hand-offs cost more than they save (5x)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def preference_problem(seed: int, n_triplets: int = 3000):
    """Each user likes one visual group of items; one third of the triplets are user-less one-item ones."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(N_GROUPS, 8))
    group = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    features = (centers[group] + rng.normal(size=(len(group), 8))).astype(np.float32)
    liked = rng.integers(0, N_GROUPS, N_USERS)
    users = rng.integers(0, N_USERS, n_triplets)
    other = (liked[users] + rng.integers(1, N_GROUPS, n_triplets)) % N_GROUPS
    positive = liked[users] * PER_GROUP + rng.integers(0, PER_GROUP, n_triplets)
    negative = other * PER_GROUP + rng.integers(0, PER_GROUP, n_triplets)
    user_idx = np.where(np.arange(n_triplets) % 3 == 0, -1, users)
    ts = TripletSet(
        profile_offsets=np.arange(n_triplets + 1, dtype=np.int64),
        profile_items=positive.astype(np.int32),
        profile_id=np.arange(n_triplets, dtype=np.int32),
        positive=positive.astype(np.int32),
        negative=negative.astype(np.int32),
        user_idx=user_idx.astype(np.int32),
    )
    return features, ts, liked, group


CONFIG = VBPRConfig(latent_dim=8, visual_dim=8, learning_rate=0.02, max_epochs=8, batch_size=256, device="cpu")


def split(ts: TripletSet, seed: int = 0, validation: int = 300) -> tuple[TripletSet, TripletSet]:
    order = np.random.default_rng(seed).permutation(len(ts))
    return ts.subset(order[validation:]), ts.subset(order[:validation])


def pairwise_accuracy(model: VBPRModel, liked: np.ndarray, group: np.ndarray) -> float:
    """Mean over users of the fraction of (liked item, other item) pairs ranked correctly."""
    items = np.arange(len(group))
    accs = []
    for u in range(N_USERS):
        scores = model.score(u, items)
        good, bad = scores[group == liked[u]], scores[group != liked[u]]
        accs.append((good[:, None] > bad[None, :]).mean())
    return float(np.mean(accs))


def random_net(n_users: int, n_items: int, n_features: int, seed: int) -> _VBPRNet:
    """A VBPR network with every parameter, the biases included, set to seeded non-zero values."""
    config = VBPRConfig(latent_dim=3, visual_dim=2)
    net = _VBPRNet(n_users, n_items, n_features, config, torch.Generator().manual_seed(seed)).double()
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn(param.shape, generator=torch.Generator().manual_seed(seed + param.numel())))
    return net


def hand_score(net: _VBPRNet, features: np.ndarray, u: int, i: int) -> float:
    """beta_i + gamma_u . gamma_i + theta_u . (E^T f_i) + beta' . f_i, from the raw weights."""
    w = {name: p.detach().numpy() for name, p in net.named_parameters()}
    f = features[i]
    return float(
        w["item_bias"][i]
        + w["user_latent"][u] @ w["item_latent"][i]
        + w["user_visual"][u] @ (w["projection"].T @ f)
        + w["visual_bias"] @ f
    )


def test_score_is_the_vbpr_formula_computed_from_the_weights():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(7, 5))
    net = random_net(4, 7, 5, seed=1)
    model = _scoring_model(net, torch.from_numpy(features), trained_users=np.array([0, 1, 2]), skipped=0)
    items = np.array([6, 0, 3])
    for u in (0, 2):
        assert model.score(u, items) == pytest.approx([hand_score(net, features, u, i) for i in items], rel=1e-12)
    # User 3 never trained: only the non-personalised part beta_i + beta' . f_i remains.
    w = {name: p.detach().numpy() for name, p in net.named_parameters()}
    assert model.score(3, items) == pytest.approx(w["item_bias"][items] + features[items] @ w["visual_bias"])
    # The training path scores the same way.
    users, pos, neg = torch.tensor([0, 2, 1]), torch.tensor([6, 0, 3]), torch.tensor([1, 5, 2])
    diff, _ = net.score_difference(torch.from_numpy(features), users, pos, neg)
    expected = [hand_score(net, features, u, i) - hand_score(net, features, u, j) for u, i, j in zip([0, 2, 1], [6, 0, 3], [1, 5, 2])]
    assert diff.detach().numpy() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="outside"):
        model.score(4, items)


def test_loss_is_bpr_plus_the_l2_regulariser_by_hand():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(7, 5))
    net = random_net(4, 7, 5, seed=2)
    w = {name: p.detach().numpy() for name, p in net.named_parameters()}
    users, pos, neg = [0, 3, 3, 1], [2, 4, 6, 0], [5, 1, 2, 3]
    l2_lambda = 0.3
    differences = np.array(
        [hand_score(net, features, u, i) - hand_score(net, features, u, j) for u, i, j in zip(users, pos, neg)]
    )
    bpr = np.mean(np.log1p(np.exp(-differences)))  # -log sigmoid(x_ui - x_uj)
    touched = np.mean(
        [
            w["user_latent"][u] @ w["user_latent"][u]
            + w["user_visual"][u] @ w["user_visual"][u]
            + w["item_latent"][i] @ w["item_latent"][i]
            + w["item_latent"][j] @ w["item_latent"][j]
            + w["item_bias"][i] ** 2
            + w["item_bias"][j] ** 2
            for u, i, j in zip(users, pos, neg)
        ]
    )
    shared = (w["projection"] ** 2).sum() + (w["visual_bias"] ** 2).sum()
    loss = vbpr_loss(net, torch.from_numpy(features), *(torch.tensor(x) for x in (users, pos, neg)), l2_lambda)
    assert loss.item() == pytest.approx(bpr + l2_lambda / 2 * (touched + shared), rel=1e-12)
    no_l2 = vbpr_loss(net, torch.from_numpy(features), *(torch.tensor(x) for x in (users, pos, neg)), 0.0)
    assert no_l2.item() == pytest.approx(bpr, rel=1e-12)


def test_vbpr_learns_user_preferences_well_above_chance():
    features, ts, liked, group = preference_problem(0)
    train, validation = split(ts)
    messages: list[str] = []
    result = train_vbpr(features, train, validation, N_USERS, CONFIG, messages.append)
    assert pairwise_accuracy(result.model, liked, group) > 0.9
    assert result.model.skipped_triplets == int((train.user_idx == -1).sum())
    assert f"{result.model.skipped_triplets} one-item triplets skipped" in messages[0]
    assert result.validation_accuracy > 0.9
    assert result.history["epoch"].tolist() == list(range(1, CONFIG.max_epochs + 1))


def test_best_validation_epoch_is_kept_and_training_stops_on_a_plateau():
    features, ts, liked, group = preference_problem(5, 1500)
    train, validation = split(ts, validation=200)
    # A learning rate this high overshoots: validation accuracy peaks early and then stalls.
    config = VBPRConfig(**{**CONFIG.__dict__, "learning_rate": 0.5, "max_epochs": 30, "early_stopping_patience": 3})
    result = train_vbpr(features, train, validation, N_USERS, config)
    history = result.history
    assert len(history) < 30, "stopped early"
    assert result.best_epoch == int(history.loc[history["validation_accuracy"].idxmax(), "epoch"])
    assert len(history) - result.best_epoch == 3
    assert history["learning_rate"].iloc[-1] < config.learning_rate  # decayed on the plateau
    # The returned model is the best epoch's, not the last: rerun with max_epochs = best epoch, same result.
    best_only = train_vbpr(
        features, train, validation, N_USERS,
        VBPRConfig(**{**config.__dict__, "max_epochs": result.best_epoch, "early_stopping_patience": 0}),
    )
    assert np.array_equal(best_only.model.score(3, np.arange(20)), result.model.score(3, np.arange(20)))


def test_vbpr_reproduces_the_run_recorded_before_the_epoch_loop_was_shared():
    """Seed 0, fp32 on the CPU: loss curve, plateau stop, progress lines and scores as recorded at commit c2b3d6b,
    when VBPR still had its own epoch loop. (The tolerance only absorbs last-bit differences between CPUs.)"""
    features, ts, _, _ = preference_problem(5, 1500)
    train, validation = split(ts, validation=200)
    config = VBPRConfig(
        **{**CONFIG.__dict__, "learning_rate": 0.5, "max_epochs": 30, "early_stopping_patience": 3, "precision": "fp32"}
    )
    messages: list[str] = []
    result = train_vbpr(features, train, validation, N_USERS, config, messages.append)
    history = result.history
    assert list(history.columns) == ["epoch", "learning_rate", "train_loss", "validation_accuracy", "seconds"]
    np.testing.assert_allclose(
        history["train_loss"],
        [3.434072781375574, 0.051768034662362766, 0.040754657662147496, 0.0420190261507965, 0.07484913419773877],
        rtol=1e-4,
    )
    np.testing.assert_allclose(history["validation_accuracy"], np.array([128, 129, 128, 128, 128]) / 129)
    assert history["learning_rate"].tolist() == [0.5, 0.5, 0.5, 0.5, 0.3]
    assert result.best_epoch == 2
    np.testing.assert_allclose(
        result.model.score(3, np.arange(5)),
        [-16.566585540771484, -10.728816986083984, -17.45749282836914, -33.44062805175781, -38.383888244628906],
        rtol=1e-4,
    )
    assert [m.split(" lr ")[0] for m in messages[1:]] == [f"VBPR epoch {e}/30" for e in range(1, 6)] + [
        "stopping: 3 epochs without a better validation accuracy",
        "VBPR best epoch 2 with validation accuracy 1.0000",
    ]


def test_vbpr_is_deterministic_and_seed_dependent():
    features, ts, _, _ = preference_problem(1, 600)
    train, validation = split(ts, validation=100)
    config = VBPRConfig(**{**CONFIG.__dict__, "max_epochs": 2})
    a = train_vbpr(features, train, validation, N_USERS, config).model
    b = train_vbpr(features, train, validation, N_USERS, config).model
    c = train_vbpr(features, train, validation, N_USERS, VBPRConfig(**{**config.__dict__, "seed": 1})).model
    items = np.arange(len(features))
    for u in range(N_USERS):
        assert np.array_equal(a.score(u, items), b.score(u, items))
    assert not np.array_equal(a.score(0, items), c.score(0, items))


def test_vbpr_bytes_round_trip():
    features, ts, _, _ = preference_problem(3, 300)
    train, validation = split(ts, validation=60)
    model = train_vbpr(features, train, validation, N_USERS, VBPRConfig(**{**CONFIG.__dict__, "max_epochs": 1})).model
    loaded = VBPRModel.from_bytes(model.to_bytes())
    assert np.array_equal(loaded.score(4, np.arange(10)), model.score(4, np.arange(10)))
    assert loaded.skipped_triplets == model.skipped_triplets


def test_vbpr_rejects_triplets_without_users_and_out_of_range_users():
    features, ts, _, _ = preference_problem(4, 30)
    no_users = ts.subset(np.arange(30))
    no_users.user_idx = np.full(30, -1, dtype=np.int32)
    with pytest.raises(ValueError, match="no training triplet carries a user"):
        train_vbpr(features, no_users, ts, N_USERS, CONFIG)
    with pytest.raises(ValueError, match="no validation triplet carries a user"):
        train_vbpr(features, ts, no_users, N_USERS, CONFIG)
    with pytest.raises(ValueError, match="n_users"):
        train_vbpr(features, ts, ts, 2, CONFIG)
