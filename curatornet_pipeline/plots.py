"""Small matplotlib figures rendered to PNG bytes, for asset metadata and reports."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures are rendered to bytes, never shown
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def bar_chart(
    labels: Sequence[str], values: Sequence[float], title: str, ylabel: str, highlight: int | None = None
) -> bytes:
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(labels) + 2), 3.2))
    colors = ["#c44e52" if i == highlight else "#4c72b0" for i in range(len(labels))]
    ax.bar(range(len(labels)), values, color=colors)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return _png(fig)


def histogram(values: Sequence[float], title: str, xlabel: str, bins: int = 30) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(values, bins=bins, color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return _png(fig)


def line_chart(
    x: Sequence[float], series: Mapping[str, Sequence[float]], title: str, xlabel: str, ylabel: str
) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, ys in series.items():
        ax.plot(x, ys, marker="o", label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _png(fig)
