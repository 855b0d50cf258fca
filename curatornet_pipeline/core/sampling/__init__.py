"""Training-triplet sampling: the six strategies of SPEC 5, the random ablation, hashing and dedup.

A triplet is (profile, positive, negative): the model should score the positive above the negative for
the user described by the profile. Every strategy is array work over all eligible users or items at
once: a round draws one candidate per still-missing triplet, invalid draws are redrawn in vectorized
rounds (bounded, failures counted), and duplicates are rejected by a 64-bit hash. Rounds repeat until
every user's or item's quota is met or the round limit is reached.

One module per concern:

* ``strategy``  the ``Strategy`` enum (stored names, union codes) and the plain-string names for Dagster
* ``arrays``    vectorized set and gather helpers (``PairIndex``, ``used_ids``, ``row_cosines``)
* ``hashing``   the 64-bit rolling triplet hash
* ``index``     ``SamplingIndex``: per-user CSR histories, pair sets, candidate counts, profile instances
* ``inputs``    ``SamplingInputs`` (and ``from_frames``), which builds its index once
* ``budget``    ``SamplingBudget``
* ``draws``     each strategy's eligible units, profile table and vectorized draw
* ``sampler``   quotas, dedup against taken hashes, trimming: ``sample_strategy``, ``sample_random``
* ``union``     ``union_deduplicate`` over strategies and splits
* ``rules``     ``check_strategy_rules``, behind the asset checks

Conventions beyond SPEC 5, decided here:

* The samplers see the training view only (``SamplingInputs.from_frames`` refuses test rows): a held-out
  item is an item the user never bought, so it may be drawn as a negative, as in the paper's and the
  authors' samplers. An earlier purchase of a held-out item is labelled "excluded" by the split, so it is
  not in the training view either.
* A user's training history lists every artwork once, in time order: a repeat purchase of the same
  artwork (possible for photographs) keeps only the first (counted in ``preparation``).
* Quotas are per eligible unit: ``ceil(budget / eligible)`` (SPEC 5). When that overshoots the budget,
  a seeded uniform subset of exactly ``budget`` triplets is kept. A strategy whose space of distinct
  triplets is smaller than its quota returns fewer triplets; the shortfall shows in the stats.
* Strategy 1 and 2 pick one of the user's (basket, position) or (basket) instances uniformly per
  triplet. Strategy 3 proposes positives as "a random work by the artist of a random profile item"
  (so favourite artists, bought more often, are proposed more often), accepted when not yet bought and
  in a cluster the user bought from, with at most 20 proposals per triplet (SPEC 5).
* Negatives of strategies 1-3 are uniform over the allowed items (rejection from the whole catalogue).
* Strategy 6 keeps the drawn positive while it redraws the negative; a row whose negative never
  passes the visual-confidence test is a failed attempt, and the next round draws a new positive.
* The near-duplicate rule is applied to every triplet, the random ablation's included.
* The random ablation (``random``) follows the paper's section 3.3: profile = P_u \\ i, so the positive's
  own vector is never pooled into the user it is scored for. Strategy 4 keeps i inside the full-history
  profile and strategy 5 uses [x] to predict x: the paper lists both as "recommending profile items"
  (and the authors' code builds strategy 4 that way); only the ablation, which stands for the paper's
  traditional BPR setting, leaves the positive out.
* Different strategies can yield identical triplets; ``union_deduplicate`` keeps the first.

``user_idx`` in the triplets is a position in ``SamplingInputs.user_ids`` (sorted user ids when built
by ``from_frames``); one-item synthetic profiles (strategies 5 and 6) carry -1.
"""

from curatornet_pipeline.core.sampling.budget import SamplingBudget
from curatornet_pipeline.core.sampling.hashing import triplet_hashes
from curatornet_pipeline.core.sampling.index import SamplingIndex
from curatornet_pipeline.core.sampling.inputs import SamplingInputs
from curatornet_pipeline.core.sampling.rules import check_strategy_rules
from curatornet_pipeline.core.sampling.sampler import StrategySample, sample_random, sample_strategy
from curatornet_pipeline.core.sampling.strategy import (
    GUIDED_STRATEGIES,
    RANDOM_BPR_STRATEGY,
    RANDOM_SAMPLINGS,
    RANDOM_STRATEGIES,
    RANDOM_STRATEGY,
    STRATEGIES,
    STRATEGY_CODES,
    Strategy,
)
from curatornet_pipeline.core.sampling.union import TripletUnion, union_deduplicate

__all__ = [
    "GUIDED_STRATEGIES",
    "RANDOM_BPR_STRATEGY",
    "RANDOM_SAMPLINGS",
    "RANDOM_STRATEGIES",
    "RANDOM_STRATEGY",
    "STRATEGIES",
    "STRATEGY_CODES",
    "SamplingBudget",
    "SamplingIndex",
    "SamplingInputs",
    "Strategy",
    "StrategySample",
    "TripletUnion",
    "check_strategy_rules",
    "sample_random",
    "sample_strategy",
    "triplet_hashes",
    "union_deduplicate",
]
