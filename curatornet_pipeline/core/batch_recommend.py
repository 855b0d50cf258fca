"""Recommendations for many profiles at once: chunked matrix products and a top-k per row.

Serving computes top-k lists for every customer and "more like this" for every artwork. Both are the same
operation: user vectors of many profiles (``CuratorNet.profile_vectors``: one user-tower pass per chunk of
profiles, exact segment pooling as in training), then scores against the available artworks' cached item
vectors, the profile's own artworks masked out, and a top-k per row. No Python loop per user.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

# Rows of the [users x available] score matrix scored at once: 1,024 x 6,040 float32 is ~25 MB.
CHUNK_ROWS = 1024


@torch.no_grad()
def top_k_per_profile(
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    candidates: np.ndarray,
    offsets: np.ndarray,
    items: np.ndarray,
    k: int,
    chunk: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Top-``k`` candidates per profile, the profile's own items excluded.

    ``candidates``: artwork rows allowed (ascending); ``offsets``/``items``: the profiles (CSR) whose items are
    masked out. Returns ``profile, rank, artwork_idx, score`` (rank from 1), ties ordered by artwork index.
    A profile gets min(k, candidates not in its profile) rows.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    candidates = np.asarray(candidates, dtype=np.int64)
    n_profiles = len(user_vecs)
    cand_vecs = torch.as_tensor(np.ascontiguousarray(item_vecs[candidates], dtype=np.float32))  # [C, D]
    # Position of each artwork among the candidates (-1 = not a candidate), to mask profile items.
    position = np.full(len(item_vecs), -1, dtype=np.int64)
    position[candidates] = np.arange(len(candidates))
    take = min(k, len(candidates))
    frames = []
    for start in range(0, n_profiles, chunk):
        stop = min(start + chunk, n_profiles)
        scores = torch.as_tensor(user_vecs[start:stop]) @ cand_vecs.T  # [B, C]
        lo, hi = int(offsets[start]), int(offsets[stop])
        rows = np.repeat(np.arange(stop - start), np.diff(offsets[start : stop + 1]))
        cols = position[items[lo:hi]]
        owned = cols >= 0
        scores[torch.as_tensor(rows[owned]), torch.as_tensor(cols[owned])] = -torch.inf
        if take == 0:
            continue
        # topk selects (a full sort per row was the refresh's slowest step); the selected rows are then ordered by
        # (score desc, candidate position asc), so equal scores rank by artwork index as in top_k_order.
        best, order = torch.topk(scores, take, dim=1)
        rank_order = np.lexsort((order.numpy(), -best.numpy()), axis=1)
        order = torch.gather(order, 1, torch.as_tensor(rank_order))
        best = torch.gather(scores, 1, order)
        keep = torch.isfinite(best).numpy()
        profile = np.repeat(np.arange(start, stop), take).reshape(-1, take)
        ranks = np.tile(np.arange(1, take + 1), (stop - start, 1))
        frames.append(
            pd.DataFrame(
                {
                    "profile": profile[keep],
                    "rank": ranks[keep],
                    "artwork_idx": candidates[order.numpy()[keep]],
                    "score": best.numpy()[keep].astype(np.float32),
                }
            )
        )
    if not frames:
        return pd.DataFrame({"profile": [], "rank": [], "artwork_idx": [], "score": []}).astype(
            {"profile": np.int64, "rank": np.int64, "artwork_idx": np.int64, "score": np.float32}
        )
    return pd.concat(frames, ignore_index=True)
