"""Small matplotlib figures rendered to PNG bytes, for asset metadata and reports."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures are rendered to bytes, never shown
import matplotlib.pyplot as plt  # noqa: E402


def to_png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
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
    return to_png(fig)


def horizontal_bar_figure(
    labels: Sequence[str], values: Sequence[float], title: str, xlabel: str, highlight: int | None = None
):
    """One bar per label, drawn sideways so that any number of long labels stays readable; values at bar ends."""
    fig, ax = plt.subplots(figsize=(7.0, 0.38 * len(labels) + 1.3))
    colors = ["#c44e52" if i == highlight else "#4c72b0" for i in range(len(labels))]
    drawn = ax.barh(range(len(labels)), values, color=colors)
    ax.bar_label(drawn, labels=[f"{v:.4g}" for v in values], padding=3, fontsize=8)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()  # the first label at the top, as in the table
    upper = max(values, default=1.0)
    ax.set_xlim(0, upper * 1.15 if upper > 0 else 1.0)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def paired_horizontal_bars(
    bars: Sequence[tuple[str, float, float]],
    series: tuple[str, str],
    title: str,
    xlabel: str,
    footnote: str = "",
) -> bytes:
    """Horizontal bars, two per label (e.g. ours and the paper's), values written at the bar ends.

    Horizontal so that long labels never overlap; the first label is drawn at the top.
    """
    fig, ax = plt.subplots(figsize=(7.5, 0.75 * len(bars) + 1.6))
    height = 0.38
    positions = range(len(bars))
    for offset, index, color in ((-height / 2, 1, "#4c72b0"), (height / 2, 2, "#b0b0b0")):
        values = [bar[index] for bar in bars]
        drawn = ax.barh([p + offset for p in positions], values, height=height, color=color, label=series[index - 1])
        ax.bar_label(drawn, labels=[f"{v:.4f}" for v in values], padding=3, fontsize=8)
    ax.set_yticks(list(positions))
    ax.set_yticklabels([bar[0] for bar in bars])
    ax.invert_yaxis()
    upper = max(max(bar[1], bar[2]) for bar in bars) if bars else 1.0
    ax.set_xlim(0, min(1.0, upper * 1.15) if upper <= 1 else upper * 1.15)
    ax.set_xlabel(xlabel)
    ax.set_title(f"{title}\n{footnote}" if footnote else title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)  # outside the bars and their values
    return to_png(fig)


def histogram(values: Sequence[float], title: str, xlabel: str, bins: int = 30) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(values, bins=bins, color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return to_png(fig)


def line_figure(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
):
    """One line per series; ``log_y`` for losses, which fall fast in the first epoch and slowly after."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, ys in series.items():
        ax.plot(x, ys, marker="o", label=name)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return fig
