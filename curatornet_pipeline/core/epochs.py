"""The epoch loop CuratorNet and VBPR training share: Adam steps over shuffled batches, validation accuracy
after every epoch, the authors' plateau learning-rate schedule, the best epoch's checkpoint, a history row
per epoch, progress lines, and stopping on a plateau.

Each model brings its own batch loss and validation accuracy (closures over its data and network); the
loop owns everything between them, so both models follow exactly the same schedule and best-epoch rule.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from curatornet_pipeline.core.batching import shuffled_batches


class EpochSettings(Protocol):
    """The loop's and the schedule's settings, as both training configs (CuratorNet's, VBPR's) name them."""

    learning_rate: float
    lr_decay: float
    lr_patience: int
    min_learning_rate: float
    early_stopping_patience: int
    early_stopping_min_improvement: float
    max_epochs: int
    batch_size: int
    seed: int


@dataclass
class PlateauSchedule:
    """The authors' learning-rate schedule and best-epoch rule; CuratorNet and VBPR training share it.

    Call ``update(validation_accuracy)`` after every epoch. A strictly higher accuracy is a new best (so the
    earliest epoch wins ties). ``lr_patience`` epochs in a row without a new best multiply the learning
    rate by ``lr_decay`` (never below ``min_learning_rate``) and restart that count.
    ``early_stopping_patience`` epochs in a row without progress end training (``should_stop``); 0 never
    stops early. Progress is an accuracy more than ``min_improvement`` above the last accuracy that made
    progress: with 0 every new best counts; with 0.001 a model creeping up by a few hundredths of a percent
    per epoch has reached its plateau (the best checkpoint is still the strictly best epoch).
    """

    learning_rate: float
    lr_decay: float
    lr_patience: int
    min_learning_rate: float
    early_stopping_patience: int = 0
    min_improvement: float = 0.0
    best_accuracy: float = -math.inf
    best_epoch: int = 0
    epoch: int = 0
    epochs_since_decay_or_best: int = 0
    epochs_since_best: int = 0
    progress_accuracy: float = -math.inf  # the last accuracy that counted as progress
    epochs_without_progress: int = 0

    @classmethod
    def from_config(cls, config: EpochSettings) -> "PlateauSchedule":
        return cls(
            config.learning_rate,
            config.lr_decay,
            config.lr_patience,
            config.min_learning_rate,
            config.early_stopping_patience,
            config.early_stopping_min_improvement,
        )

    def update(self, accuracy: float) -> bool:
        """Record one epoch's validation accuracy; True when it is a new best (keep that checkpoint)."""
        self.epoch += 1
        improved = accuracy > self.best_accuracy  # NaN never improves
        if improved:
            self.best_accuracy, self.best_epoch = accuracy, self.epoch
            self.epochs_since_decay_or_best = self.epochs_since_best = 0
        else:
            self.epochs_since_decay_or_best += 1
            self.epochs_since_best += 1
        if accuracy > self.progress_accuracy + self.min_improvement:  # NaN never makes progress
            self.progress_accuracy, self.epochs_without_progress = accuracy, 0
        else:
            self.epochs_without_progress += 1
        if self.epochs_since_decay_or_best >= self.lr_patience:
            self.learning_rate = max(self.learning_rate * self.lr_decay, self.min_learning_rate)
            self.epochs_since_decay_or_best = 0
        return improved

    @property
    def should_stop(self) -> bool:
        return 0 < self.early_stopping_patience <= self.epochs_without_progress


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Turn on torch's deterministic algorithms for the block (CPU runs), restoring the previous setting."""
    previous = torch.are_deterministic_algorithms_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


@dataclass
class EpochsResult:
    """The best epoch's weights (on the CPU), one history row per epoch, and the best epoch (1-based)."""

    best_state: dict[str, Tensor]
    history: pd.DataFrame
    best_epoch: int


def train_epochs(
    module: nn.Module,
    config: EpochSettings,
    batch_loss: Callable[[Any], Tensor],
    validation_accuracy: Callable[[], float],
    *,
    n_train: int,
    device: torch.device,
    rows_on_device: bool,
    say: Callable[[str], None],
    label: str = "",
    log_every_batches: int = 0,
    report_throughput: bool = False,
    epoch_batches: Callable[[np.random.Generator], list[np.ndarray]] | None = None,
    max_grad_norm: float = 0.0,
) -> EpochsResult:
    """Train ``module`` with Adam until ``config.max_epochs`` or the ``PlateauSchedule`` of ``config`` stops it;
    keep the best epoch's weights.

    ``batch_loss(rows)`` returns the mean loss of training rows ``rows`` (a numpy array, or an int64 tensor on
    ``device`` when ``rows_on_device``). Each epoch's batches come from ``epoch_batches(rng)`` (core.batching),
    by default ``shuffled_batches``: ``config.batch_size`` rows of a permutation of ``range(n_train)``; ``rng``
    is seeded by ``config.seed``, so the order is deterministic. ``max_grad_norm`` > 0 rescales a batch's
    gradient whose global L2 norm exceeds it to that norm before the Adam step (0: never).
    ``validation_accuracy()`` scores the current weights. Progress lines start with ``label``; with
    ``report_throughput`` the history and the epoch line also carry training triplets per second.
    History columns: epoch, learning_rate (used during the epoch), train_loss (mean batch loss weighted by
    batch size), validation_accuracy, seconds (whole epoch incl. validation)[, triplets_per_second].
    """
    schedule = PlateauSchedule.from_config(config)
    batch_size, max_epochs = config.batch_size, config.max_epochs
    optimizer = torch.optim.Adam(module.parameters(), lr=schedule.learning_rate)
    rng = np.random.default_rng(config.seed)
    if epoch_batches is None:
        epoch_batches = lambda generator: shuffled_batches(n_train, batch_size, generator)  # noqa: E731
    best_state: dict[str, Tensor] = {}
    history: list[dict[str, Any]] = []
    for epoch in range(1, max_epochs + 1):
        learning_rate = schedule.learning_rate
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        epoch_start = time.perf_counter()
        batches: list = epoch_batches(rng)
        n_batches = len(batches)
        if rows_on_device:  # one copy per epoch, then slices on the device
            order = torch.from_numpy(np.concatenate(batches)).to(device)
            bounds = np.cumsum([0] + [len(rows) for rows in batches])
            batches = [order[bounds[b] : bounds[b + 1]] for b in range(n_batches)]
        loss_sum = torch.zeros((), device=device)  # summed on the device: no GPU sync per batch
        for b, rows in enumerate(batches):
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(rows)
            loss.backward()
            if max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(module.parameters(), max_grad_norm)
            optimizer.step()
            loss_sum += loss.detach() * len(rows)
            if log_every_batches and (b + 1) % log_every_batches == 0:
                say(f"{label}epoch {epoch} batch {b + 1}/{n_batches} loss {loss.item():.4f}")
        train_seconds = time.perf_counter() - epoch_start
        accuracy = validation_accuracy()
        if schedule.update(accuracy):
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
        row = {
            "epoch": epoch,
            "learning_rate": learning_rate,
            "train_loss": loss_sum.item() / n_train,
            "validation_accuracy": accuracy,
            "seconds": time.perf_counter() - epoch_start,
        }
        line = (
            f"{label}epoch {epoch}/{max_epochs} lr {learning_rate:.2e} loss {row['train_loss']:.4f} "
            f"val_acc {accuracy:.4f}"
        )
        if report_throughput:
            row["triplets_per_second"] = n_train / max(train_seconds, 1e-12)
            line += f" ({row['triplets_per_second']:.0f} triplets/s)"
        history.append(row)
        say(line)
        if schedule.should_stop:
            better = (
                f"a validation accuracy more than {schedule.min_improvement:g} above {schedule.progress_accuracy:.4f}"
                if schedule.min_improvement
                else "a better validation accuracy"
            )
            say(f"stopping: {schedule.epochs_without_progress} epochs without {better}")
            break
    say(f"{label}best epoch {schedule.best_epoch} with validation accuracy {schedule.best_accuracy:.4f}")
    return EpochsResult(best_state, pd.DataFrame(history), schedule.best_epoch)
