"""How many triplets to sample: the total split evenly over the six strategies, plus a validation share."""

from __future__ import annotations

import math
from dataclasses import dataclass

from curatornet_pipeline.core.sampling.strategy import STRATEGIES


def _ceil_fraction(n: int, fraction: float) -> int:
    # round() first so that e.g. 1000 * 0.05 = 50.000000000000004 gives 50, not 51
    return int(math.ceil(round(n * fraction, 9)))


@dataclass(frozen=True)
class SamplingBudget:
    """How many triplets to sample: ``total_train`` over the six strategies, split evenly."""

    total_train: int
    validation_fraction: float = 0.05

    def __post_init__(self) -> None:
        if int(self.total_train) < 1:
            raise ValueError(f"SamplingBudget.total_train must be at least 1, got {self.total_train}")
        if not 0.0 <= self.validation_fraction <= 1.0:
            raise ValueError(f"SamplingBudget.validation_fraction must be in [0, 1], got {self.validation_fraction}")

    @classmethod
    def paper(cls) -> "SamplingBudget":
        """The paper's scale: 10,000,000 training triplets (and 5% validation)."""
        return cls(10_000_000)

    def per_strategy_train(self) -> int:
        return int(math.ceil(self.total_train / len(STRATEGIES)))

    def per_strategy_validation(self) -> int:
        return _ceil_fraction(self.per_strategy_train(), self.validation_fraction)

    def random_train(self) -> int:
        """Training budget of the random-sampling ablation: the whole total, not a sixth."""
        return int(self.total_train)

    def random_validation(self) -> int:
        return _ceil_fraction(self.total_train, self.validation_fraction)
