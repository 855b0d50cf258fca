"""What the per-artist cap costs in accuracy and gains in diversity, measured on a finished run's rankings.

The served lists keep at most ``cap`` works per artist (``CURATORNET_ARTIST_CAP``, default 2). This script
applies the same cap (``core.diversity.cap_per_artist``) to every evaluation user's stored ranking of every
method (``evaluation.recommendations``, the top 100) and recomputes, for the top 20: recall, precision, the
standard nDCG, artist diversity and catalogue coverage, and the AUC. The cap only reorders the head of the
ranking (capped top 20 first, then the skipped works in their order), so the AUC changes only through pairs
inside that head, which the stored top 100 holds whole whenever the 20 kept works lie in it; users for whom
they do not are counted and left uncapped.

    python benchmarks/bench_artist_cap.py --database data/curatornet.duckdb [--caps 0,1,2,3]

Prints JSON, then a markdown table of each method's metrics per cap.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curatornet_pipeline.core.diversity import cap_per_artist  # noqa: E402

K = 20


def ordered_pairs(hits: np.ndarray) -> int:
    """(relevant, irrelevant) pairs in which the relevant work comes first."""
    negatives_from_here = np.cumsum((~hits)[::-1])[::-1]  # [n]: irrelevant works at this position or later
    return int(negatives_from_here[hits].sum())


def standard_ndcg(hits: np.ndarray, n_relevant: int) -> float:
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    ideal = discounts[: min(n_relevant, K)].sum()
    return float((hits[:K] * discounts[: len(hits[:K])]).sum() / ideal) if ideal else 0.0


def capped_lists(database: Path, caps: list[int]) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as con:
        recs = con.execute(
            "SELECT r.method, r.user_id, r.rank, r.artwork_idx, r.is_hit, a.artist_id "
            "FROM evaluation.recommendations r JOIN ingest.raw_artworks a USING (artwork_idx) "
            "ORDER BY r.method, r.user_id, r.rank"
        ).df()
        users = con.execute(
            "SELECT method, user_id, auc, n_relevant, n_candidates FROM evaluation.per_user_metrics"
        ).df()
        n_catalogue = con.execute("SELECT count(*) FROM ingest.raw_artworks").fetchone()[0]
    users = users.set_index(["method", "user_id"])
    rows = []
    for (method, user), ranking in recs.groupby(["method", "user_id"], sort=False):
        if (method, user) not in users.index:
            continue
        info = users.loc[(method, user)]
        n_relevant, n_negative = int(info["n_relevant"]), int(info["n_candidates"] - info["n_relevant"])
        hits = ranking["is_hit"].to_numpy(bool)
        artists = ranking["artist_id"].tolist()
        items = ranking["artwork_idx"].to_numpy()
        for cap in caps:
            kept = cap_per_artist(artists, cap, K)
            complete = cap == 0 or len(kept) == K  # the 20 kept works lie in the stored ranking
            head = (kept[-1] + 1) if kept else 0
            kept_set = set(kept)
            order = kept + [p for p in range(head) if p not in kept_set]
            auc = float(info["auc"])
            if complete and n_relevant and n_negative:
                auc += (ordered_pairs(hits[order]) - ordered_pairs(hits[:head])) / (n_relevant * n_negative)
            top = order[:K] if complete else list(range(min(K, len(hits))))
            rows.append(
                {
                    "method": method, "cap": cap, "user_id": user, "capped": complete, "auc": auc,
                    "recall_at_20": hits[top].sum() / max(n_relevant, 1),
                    "precision_at_20": hits[top].sum() / K,
                    "ndcg_at_20": standard_ndcg(hits[top], n_relevant),
                    "artist_share": len(set(np.asarray(artists, dtype=object)[top])) / max(len(top), 1),
                    "items": items[top],
                }
            )
    frame = pd.DataFrame(rows)
    summary = frame.groupby(["method", "cap"], sort=False).agg(
        auc=("auc", "mean"), recall_at_20=("recall_at_20", "mean"), precision_at_20=("precision_at_20", "mean"),
        ndcg_at_20=("ndcg_at_20", "mean"), artist_diversity_at_20=("artist_share", "mean"),
        users=("user_id", "size"), users_left_uncapped=("capped", lambda c: int((~c).sum())),
    )
    summary["catalogue_coverage_at_20"] = frame.groupby(["method", "cap"], sort=False)["items"].agg(
        lambda lists: len(set(np.concatenate(list(lists)))) / n_catalogue
    )
    return summary.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="data/curatornet.duckdb")
    parser.add_argument("--caps", default="0,1,2,3")
    args = parser.parse_args()
    caps = [int(c) for c in args.caps.split(",")]
    summary = capped_lists(Path(args.database), caps)
    print(json.dumps(summary.round(4).to_dict(orient="records"), indent=1))
    columns = ["auc", "recall_at_20", "ndcg_at_20", "artist_diversity_at_20", "catalogue_coverage_at_20"]
    print("\n| method | cap | " + " | ".join(columns) + " | users left uncapped |")
    print("|---|---:|" + "---:|" * len(columns) + "---:|")
    for _, r in summary.iterrows():
        cells = " | ".join(f"{r[c]:.4f}" for c in columns)
        print(f"| {r['method']} | {r['cap'] or 'off'} | {cells} | {r['users_left_uncapped']} |")


if __name__ == "__main__":
    main()
