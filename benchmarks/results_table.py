"""Print the README's results tables from a materialized DuckDB file: Table 2 beside the paper's, and Figure 3.

The paper's nDCG is the authors' form (divided by the ideal DCG of the hits found), so it is shown beside our
`ndcg_authors_at_k`; the standard nDCG (ideal over min(|ground truth|, k)) gets its own, labelled column.

    .venv/bin/python benchmarks/results_table.py [--database data/curatornet.duckdb]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import duckdb

from curatornet_pipeline import tables
from curatornet_pipeline.core.evaluation import PAPER_TABLE_2


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4f}".replace("0.", ".", 1) if value < 1 else f"{value:.4f}"


def table_2(con: duckdb.DuckDBPyConnection) -> str:
    ours = con.execute(f"SELECT * FROM {tables.METRIC_TABLE} ORDER BY auc DESC").df()
    paper = PAPER_TABLE_2.set_index("method")
    header = (
        "| method | n_users | AUC | R@20 | P@20 | nDCG@20 (authors' form) | nDCG@20 (standard, ours only) "
        "| R@100 | P@100 | nDCG@100 (authors' form) | nDCG@100 (standard, ours only) |"
    )
    rows = [header, "|" + "---|" * 11]
    pairs = [
        ("auc", "auc"), ("recall_at_20", "recall_at_20"), ("precision_at_20", "precision_at_20"),
        ("ndcg_authors_at_20", "ndcg_at_20"), (None, "ndcg_at_20"),
        ("recall_at_100", "recall_at_100"), ("precision_at_100", "precision_at_100"),
        ("ndcg_authors_at_100", "ndcg_at_100"), (None, "ndcg_at_100"),
    ]
    for _, row in ours.iterrows():
        known = row["method"] in paper.index
        cells = []
        for our_column, paper_column in pairs:
            if our_column is None:  # the standard nDCG: the paper has no such column
                cells.append(_cell(row[paper_column]))
                continue
            theirs = paper.loc[row["method"], paper_column] if known else None
            cells.append(f"{_cell(row[our_column])} / {_cell(theirs)}")
        rows.append(f"| {row['method']} | {int(row['n_users'])} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def figure_3(con: duckdb.DuckDBPyConnection) -> str:
    frame = con.execute(f"SELECT * FROM {tables.FIGURE_3} ORDER BY model").df()
    rows = [
        "| model | guided | random sampling | difference | p | paper: guided / random, p |",
        "|---|---|---|---|---|---|",
    ]
    for _, row in frame.iterrows():
        rows.append(
            f"| {row['model']} | {_cell(row['guided_auc'])} | {_cell(row['random_auc'])} | "
            f"{row['auc_difference']:+.4f} | {row['p_value']:.2g} | "
            f"{_cell(row['paper_guided_auc'])} / {_cell(row['paper_random_auc'])}, {row['paper_p_value']:.2g} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, default=Path("data/curatornet.duckdb"))
    args = parser.parse_args()
    with duckdb.connect(str(args.database), read_only=True) as con:
        print("Each cell: ours / the paper's Table 2 (– where the paper publishes none).\n")
        print(table_2(con))
        print("\nFigure 3 (paired t-tests on per-user AUC):\n")
        print(figure_3(con))


if __name__ == "__main__":
    main()
