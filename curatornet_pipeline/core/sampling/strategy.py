"""The sampling strategies by name: the six of SPEC 5 and the two random-sampling forms."""

from __future__ import annotations

from enum import Enum


class Strategy(str, Enum):
    """A sampling strategy. The value is the name stored in the triplet tables and used as partition key.

    A member equals (and hashes like) its value, so ``Strategy("2_next_basket")`` and the stored string
    are interchangeable in comparisons and dict look-ups.
    """

    HIDDEN_BASKET_ITEM = "1_hidden_basket_item"
    NEXT_BASKET = "2_next_basket"
    FAVOURITE_ARTIST_SIMILAR = "3_favourite_artist_similar"
    PROFILE_ITEM = "4_profile_item"
    SINGLE_ITEM = "5_single_item"
    SINGLE_ITEM_SAME_ARTIST = "6_single_item_same_artist"
    # The paper's random-sampling ablation for CuratorNet: (P_u \ i, i, j), section 3.3.
    RANDOM = "random"
    # Classic BPR (u, i, j) for VBPR's random-sampling variant: VBPR ignores the profile, so a user with a
    # single training item still yields triplets; the stored profile is the user's full history.
    RANDOM_BPR = "random_bpr"

    # Print and format as the stored name (Python 3.10's str-mixin Enum would print "Strategy.NEXT_BASKET").
    __str__ = str.__str__
    __format__ = str.__format__

    @property
    def code(self) -> int:
        """The int8 code in the union's strategy column: the paper's number 1-6, 0 for the ablation, 7 for
        its VBPR form (never in the union)."""
        return _CODES[self]

    @property
    def is_random(self) -> bool:
        return self in (Strategy.RANDOM, Strategy.RANDOM_BPR)

    @property
    def has_real_users(self) -> bool:
        """Triplets carry the user they were drawn for; strategies 5 and 6 build one-item profiles (user -1)."""
        return self not in (Strategy.SINGLE_ITEM, Strategy.SINGLE_ITEM_SAME_ARTIST)

    @property
    def has_disjoint_negatives(self) -> bool:
        """Strategies 1-3: the negative's artist AND cluster are ones the user never bought."""
        return self in (Strategy.HIDDEN_BASKET_ITEM, Strategy.NEXT_BASKET, Strategy.FAVOURITE_ARTIST_SIMILAR)

    @classmethod
    def parse(
        cls, name: str, allowed: tuple["Strategy", ...] | None = None, what: str = "sampling strategy"
    ) -> "Strategy":
        """The member named ``name``, or a ValueError listing the ``allowed`` names (default: all)."""
        allowed = tuple(cls) if allowed is None else allowed
        if name not in allowed:
            raise ValueError(f"unknown {what} {name!r}; expected one of {[s.value for s in allowed]}")
        return cls(name)


_CODES = {
    **{strategy: number for number, strategy in enumerate(Strategy, start=1) if not strategy.is_random},
    Strategy.RANDOM: 0,
    Strategy.RANDOM_BPR: 7,
}

GUIDED_STRATEGIES: tuple[Strategy, ...] = tuple(s for s in Strategy if not s.is_random)  # the six, paper order
RANDOM_SAMPLINGS: tuple[Strategy, ...] = (Strategy.RANDOM, Strategy.RANDOM_BPR)

# Stored names as plain strings for the Dagster layer (partition keys, run tags, SQL parameters, metadata):
# Dagster's serialiser refuses enum members it does not know.
STRATEGIES: tuple[str, ...] = tuple(s.value for s in GUIDED_STRATEGIES)
RANDOM_STRATEGY: str = Strategy.RANDOM.value
RANDOM_BPR_STRATEGY: str = Strategy.RANDOM_BPR.value
RANDOM_STRATEGIES: tuple[str, ...] = tuple(s.value for s in RANDOM_SAMPLINGS)
STRATEGY_CODES: dict[str, int] = {s.value: s.code for s in Strategy}
