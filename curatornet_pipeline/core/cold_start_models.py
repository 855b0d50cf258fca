"""The models of a cold-start protocol: triplets of the six strategies and CuratorNet and VBPR trained on them.

Everything the main pipeline does, on the protocol's training view only (``core.cold_start``): the sampler
reads the protocol's training purchases on a catalogue of the known artworks, renumbered 0..M-1, so no
held-out customer, post-cut-off purchase or unknown artwork can enter a triplet; the triplets are mapped
back to the canonical artwork index and both models train on the catalogue's features with the same code
as the main models (``core.training``, ``core.vbpr``). VBPR gets strategies 3 and 4, as in the paper.

VBPR's artworks that no training triplet touched keep their random initial latent factors; they are zeroed
here, so such an artwork (every new artwork) is scored by its visual terms only: beta' . f_i, plus
theta_u . E^T f_i for a user with a vector.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from curatornet_pipeline.core.cold_start import ColdStartSetup
from curatornet_pipeline.core.model import CuratorNet, CuratorNetConfig
from curatornet_pipeline.core.sampling import STRATEGIES, SamplingBudget, SamplingInputs, Strategy
from curatornet_pipeline.core.sampling import sample_strategy, union_deduplicate
from curatornet_pipeline.core.training import TrainingConfig, train_curatornet
from curatornet_pipeline.core.triplet_set import TripletSet
from curatornet_pipeline.core.vbpr import VBPRConfig, VBPRModel, train_vbpr

VBPR_STRATEGY_CODES = (Strategy.FAVOURITE_ARTIST_SIMILAR.code, Strategy.PROFILE_ITEM.code)


@dataclass(frozen=True)
class ColdStartTraining:
    """How a protocol's models are trained: the sampling budget and seed, and both models' settings."""

    budget: SamplingBudget
    sampling_seed: int
    curatornet: TrainingConfig
    curatornet_model: CuratorNetConfig
    vbpr: VBPRConfig


@dataclass
class ProtocolModels:
    """The retrained models and what they saw.

    vbpr_users: VBPR's user_idx -> user_id. triplet_users: one row per user in a training or validation
    triplet (user_id, n_train_triplets, n_validation_triplets). summary: plain numbers for metadata.
    """

    curatornet: CuratorNet
    vbpr: VBPRModel
    vbpr_users: list[str]
    triplet_users: pd.DataFrame
    curatornet_seconds: float
    vbpr_seconds: float
    summary: dict


def sampling_inputs(
    setup: ColdStartSetup, artworks: pd.DataFrame, labels: np.ndarray, pca: np.ndarray
) -> SamplingInputs:
    """The sampler's view of the protocol: known artworks renumbered 0..M-1, the training purchases on them."""
    known = setup.known_index
    position = np.full(len(artworks), -1, dtype=np.int64)
    position[known] = np.arange(len(known))
    catalogue = artworks.sort_values("artwork_idx").iloc[known].assign(artwork_idx=np.arange(len(known)))
    purchases = setup.training.assign(artwork_idx=position[setup.training["artwork_idx"].to_numpy(np.int64)])
    if (purchases["artwork_idx"] < 0).any():
        raise ValueError(f"{setup.protocol}: a training purchase is of an artwork outside the known catalogue")
    _, dense_labels = np.unique(np.asarray(labels)[known], return_inverse=True)  # no empty cluster to draw from
    return SamplingInputs.from_frames(catalogue, purchases, dense_labels.astype(np.int32), np.asarray(pca)[known])


def _on_catalogue(ts: TripletSet, known: np.ndarray) -> TripletSet:
    """The triplets with the sampler's artwork positions mapped back to the canonical artwork index."""
    return TripletSet(
        ts.profile_offsets,
        known[ts.profile_items].astype(np.int32),
        ts.profile_id,
        known[ts.positive].astype(np.int32),
        known[ts.negative].astype(np.int32),
        ts.user_idx,
    )


def _triplet_users(user_ids: list[str], train: TripletSet, validation: TripletSet) -> pd.DataFrame:
    counts = {}
    for name, ts in (("n_train_triplets", train), ("n_validation_triplets", validation)):
        users = ts.user_idx[ts.user_idx >= 0]
        counts[name] = np.bincount(users, minlength=len(user_ids))
    frame = pd.DataFrame({"user_id": user_ids, **counts})
    return frame[(frame["n_train_triplets"] > 0) | (frame["n_validation_triplets"] > 0)].reset_index(drop=True)


def train_protocol_models(
    setup: ColdStartSetup,
    artworks: pd.DataFrame,
    labels: np.ndarray,
    pca: np.ndarray,
    features: np.ndarray,
    training: ColdStartTraining,
    say: Callable[[str], None] = lambda message: None,
) -> ProtocolModels:
    """Sample the six strategies on the protocol's training view, then train CuratorNet and VBPR."""
    started = time.perf_counter()
    inputs = sampling_inputs(setup, artworks, labels, pca)
    samples = [sample_strategy(s, inputs, training.budget, seed=training.sampling_seed) for s in STRATEGIES]
    union = union_deduplicate(samples)
    known = setup.known_index
    train, validation = _on_catalogue(union.train, known), _on_catalogue(union.validation, known)
    sampling_seconds = time.perf_counter() - started
    say(f"{setup.protocol}: {len(train)} training triplets, {len(validation)} validation, {sampling_seconds:.1f}s")

    started = time.perf_counter()
    curatornet = train_curatornet(features, train, validation, training.curatornet, say, training.curatornet_model)
    curatornet_seconds = time.perf_counter() - started

    vbpr_train = train.subset(np.flatnonzero(np.isin(union.train_strategy_code, VBPR_STRATEGY_CODES)))
    vbpr_validation = validation.subset(
        np.flatnonzero(np.isin(union.validation_strategy_code, VBPR_STRATEGY_CODES))
    )
    started = time.perf_counter()
    vbpr = train_vbpr(features, vbpr_train, vbpr_validation, len(inputs.user_ids), training.vbpr, say)
    vbpr_seconds = time.perf_counter() - started
    touched = np.zeros(len(features), dtype=bool)
    touched[vbpr_train.positive] = touched[vbpr_train.negative] = True
    vbpr.model.item_latent[~touched] = 0.0  # see the module docstring

    best = curatornet.history.loc[curatornet.history["epoch"] == curatornet.best_epoch].iloc[0]
    summary = {
        "n_train_triplets": int(len(train)),
        "n_validation_triplets": int(len(validation)),
        "sampling_seconds": float(sampling_seconds),
        "curatornet_best_epoch": int(curatornet.best_epoch),
        "curatornet_validation_accuracy": float(best["validation_accuracy"]),
        "curatornet_training_seconds": float(curatornet_seconds),
        "vbpr_best_epoch": int(vbpr.best_epoch),
        "vbpr_validation_accuracy": float(vbpr.validation_accuracy),
        "vbpr_training_seconds": float(vbpr_seconds),
        "vbpr_n_train_triplets": int(len(vbpr_train)),
    }
    return ProtocolModels(
        curatornet=curatornet.model,
        vbpr=vbpr.model,
        vbpr_users=list(inputs.user_ids),
        triplet_users=_triplet_users(list(inputs.user_ids), union.train, union.validation),
        curatornet_seconds=curatornet_seconds,
        vbpr_seconds=vbpr_seconds,
        summary=summary,
    )
