"""A seeded synthetic art gallery in the UGallery format, with real images, for demos and tests.

The real UGallery data cannot be redistributed, so the default pipeline run uses this generator.
Its numbers are NOT the paper's numbers: it reproduces the dataset's shape (sizes, one-of-a-kind
share, sessions, baskets) and the structure CuratorNet relies on, and is calibrated so that the
visual content baseline (VisRank) is about as informative as on the real data.

Generative model
----------------
*Styles.* A handful of **style families** each fix a composition (stripes, blobs, rings, checks or
waves), a four-colour palette scheme (analogous, complementary, triadic or split hues around a base
hue, with family saturation and brightness), a texture frequency and orientation, edge sharpness,
film grain and a background gradient. Each **artist** belongs to one family and perturbs its
parameters (``artist_style_spread``), so artists of one family look related but distinct. Each
**artwork** perturbs its artist's parameters again (``artwork_style_noise``) and gets its own random
phase, centre and blob layout, so works of one artist are recognisable but never identical. The
style is drawn into the pixels: the pattern value mixes a background gradient between two palette
colours with a foreground gradient between the other two.

*Catalogue.* Artists' work counts are heavy-tailed (log-normal weights, every artist at least one
work). Whole artists are photographers until about ``1 - one_of_a_kind_fraction`` of the artworks
are photographs; the rest are one-of-a-kind paintings. Artists join the gallery at different times
and upload their works over the remaining time span; a launch inventory exists from day one.

*Users.* Each user likes one to three style families (Dirichlet weights) and has one or two
favourite artists in them. Exactly ``single_session_user_fraction`` of users buy in a single
session; the others have 2 + geometric many sessions (mean ``mean_sessions_returning_user``),
spread over a personal active period. Basket sizes are 1 + geometric (mean ``mean_basket_size``).

*Purchases.* Sessions are replayed in time order against the live inventory: an artwork can be
bought only after its upload, a one-of-a-kind artwork leaves the inventory when sold (so it is
never sold twice), photographs stay and can sell again, and nobody buys a work they already own.
Each item of a basket is drawn in one of three modes: with probability ``artist_loyalty`` from the
user's favourite artists and the artists they already bought from (this is how users return to
artists), with probability ``off_taste_fraction`` from the whole inventory (impulse buys and gifts
that no taste model predicts), otherwise from the user's liked families. Photographs are weighted by
``photo_popularity`` in every mode, which sets the share of one-of-a-kind purchases.

Calibration
-----------
The defaults were tuned so that the content baseline VisRank (max cosine between a candidate's
ResNet50 embedding and any profile item's, seeded random-init weights, 64 px input) scores a
last-basket AUC near the paper's .715: 0.73 (seed 7) and 0.69 (seed 8) at paper scale, against all
catalogue items outside the profile, with Random at about 0.50; the ``small`` preset gives
0.64-0.75 over seeds 7-9 (only 90 evaluation users, so noisier). 112 and 224 px inputs gave
similar values on ``small``. ``off_taste_fraction`` is the main difficulty knob (0.30 -> about
0.67, 0.20 -> about 0.73 on ``small``); ``photo_popularity`` sets the one-of-a-kind share of
purchases (0.81 here, paper 0.817).

Outputs: ``inventory.csv``, ``purchases.csv`` (UGallery columns, epoch-second timestamps),
``images/<artwork_id>.png`` and ``gallery_stats.json`` (generated statistics beside the paper's). For the
storefront only (the pipeline reads none of it): ``artwork_details.csv`` (titles, artists, prices; see
``demo_catalogue.py``) and ``display/<artwork_id>.jpg``, the same drawing at ``DISPLAY_PIXELS`` for the
artwork page. A display image is drawn from a copy of the render stream, so the images the embedding reads
stay byte-identical; it has no pixel noise (noise only inflates a JPEG), so it scales up cleanly on the page.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from curatornet_pipeline.core.catalogue import DISPLAY_FOLDER
from curatornet_pipeline.core.demo_catalogue import demo_details, write_details

PAPER_STATS = {
    "n_users": 2378,
    "n_artworks": 6040,
    "n_purchases": 5336,
    "n_artists": 573,
    "mean_works_per_artist": 10.5,
    "one_of_a_kind_artwork_fraction": 0.78,
    "one_of_a_kind_purchase_fraction": 0.817,
    "single_session_user_fraction": 0.64,
    "mean_held_out_basket_size": 1.3,
}

_COMPOSITIONS = ("stripes", "blobs", "rings", "checks", "waves")
_N_BLOBS = 5
_RENDER_CHUNK = 256
DISPLAY_PIXELS = 192  # the artwork page image: smooth drawings upscale well; 256 px added ~1 min to a paper-scale demo
_DISPLAY_CHUNK = 32
_DAY = 86400


@dataclass(frozen=True)
class DemoGalleryConfig:
    """Size, shape and noise knobs of the synthetic gallery. The defaults mirror the paper's dataset."""

    n_artworks: int = 6040
    n_artists: int = 573
    n_users: int = 2378
    one_of_a_kind_fraction: float = 0.78
    single_session_user_fraction: float = 0.64
    image_size: int = 64  # pixels, square PNG
    seed: int = 7
    n_style_families: int = 24
    artist_work_count_sigma: float = 1.0  # log-normal sigma of artists' work-count weights (heavy tail)
    mean_sessions_returning_user: float = 3.0  # with 64 % single-session users: ~5,300 purchases at paper scale
    mean_basket_size: float = 1.3
    artist_style_spread: float = 1.0  # how far artists stray from their family's style (1 = designed scale)
    artwork_style_noise: float = 1.0  # how far artworks stray from their artist's style
    pixel_noise: float = 0.04  # std of per-pixel noise on [0, 1] colours
    artist_loyalty: float = 0.3  # chance a basket item comes from a favourite / already-bought artist
    off_taste_fraction: float = 0.22  # chance a basket item ignores the user's taste entirely
    photo_popularity: float = 0.12  # weight of a photograph relative to a painting when choosing
    launch_inventory_fraction: float = 0.15  # artworks online from the gallery's first month
    start_epoch: int = 1388534400  # 2014-01-01T00:00:00Z
    span_days: int = 4 * 365

    @classmethod
    def tiny(cls, seed: int = 7) -> "DemoGalleryConfig":
        """About 60 artworks, 8 artists, 30 users: for unit tests."""
        return cls(n_artworks=60, n_artists=8, n_users=30, n_style_families=4, artist_work_count_sigma=0.5, seed=seed)

    @classmethod
    def small(cls, seed: int = 7) -> "DemoGalleryConfig":
        """About 600 artworks, 60 artists, 250 users: for quick end-to-end runs."""
        return cls(n_artworks=600, n_artists=60, n_users=250, n_style_families=10, seed=seed)

    @classmethod
    def scaled(cls, factor: float, seed: int = 7) -> "DemoGalleryConfig":
        """The paper-scale gallery with artworks, artists and users (hence purchases) multiplied by ``factor``."""
        if not factor > 0:
            raise ValueError(f"demo scale factor must be > 0, got {factor}")
        paper = cls(seed=seed)
        return cls(
            n_artworks=max(2, round(paper.n_artworks * factor)),
            n_artists=max(1, round(paper.n_artists * factor)),
            n_users=max(1, round(paper.n_users * factor)),
            seed=seed,
        )

    def validate(self) -> None:
        """Raise ValueError on impossible settings."""
        if not 1 <= self.n_artists <= self.n_artworks:
            raise ValueError("need 1 <= n_artists <= n_artworks")
        if self.n_users < 1 or self.image_size < 8 or self.n_style_families < 1:
            raise ValueError("need n_users >= 1, image_size >= 8 and n_style_families >= 1")
        for name in (
            "one_of_a_kind_fraction",
            "single_session_user_fraction",
            "artist_loyalty",
            "off_taste_fraction",
            "launch_inventory_fraction",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.artist_loyalty + self.off_taste_fraction > 1.0:
            raise ValueError("artist_loyalty + off_taste_fraction must not exceed 1")
        if self.mean_sessions_returning_user < 2 or self.mean_basket_size < 1:
            raise ValueError("need mean_sessions_returning_user >= 2 and mean_basket_size >= 1")
        if self.photo_popularity <= 0 or self.span_days < 60:
            raise ValueError("need photo_popularity > 0 and span_days >= 60")


# --------------------------------------------------------------------------------------------------
# Catalogue


def _hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct 32-hex-digit ids, like the hashed ids of the published dataset."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        candidate = rng.bytes(16).hex()
        if candidate not in seen:
            seen.add(candidate)
            ids.append(candidate)
    return ids


def _work_counts(rng: np.random.Generator, config: DemoGalleryConfig) -> np.ndarray:
    weights = rng.lognormal(0.0, config.artist_work_count_sigma, config.n_artists)
    extra = rng.multinomial(config.n_artworks - config.n_artists, weights / weights.sum())
    return 1 + extra


def _choose_photographers(rng: np.random.Generator, counts: np.ndarray, target_photos: int) -> np.ndarray:
    """Whole artists become photographers, greedily in random order, without overshooting the target."""
    photographer = np.zeros(len(counts), dtype=bool)
    total = 0
    for artist in rng.permutation(len(counts)):
        if total + counts[artist] <= target_photos:
            photographer[artist] = True
            total += counts[artist]
    return photographer


@dataclass
class _Styles:
    """Per-artwork drawing parameters (arrays over artworks in generation order)."""

    composition: np.ndarray  # int, index into _COMPOSITIONS
    hsv: np.ndarray  # (n, 4, 3) palette in HSV
    frequency: np.ndarray  # cycles per image
    angle: np.ndarray  # radians
    sharpness: np.ndarray
    grain: np.ndarray
    gradient_angle: np.ndarray


def _family_styles(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    schemes = np.array(
        [[0.0, 0.06, -0.06, 0.12], [0.0, 0.5, 0.04, 0.46], [0.0, 1 / 3, 2 / 3, 0.05], [0.0, 0.42, 0.58, -0.04]]
    )
    hue = rng.random(n)[:, None] + schemes[rng.integers(0, len(schemes), n)]
    saturation = np.clip(rng.uniform(0.25, 1.0, n)[:, None] + rng.normal(0, 0.1, (n, 4)), 0.05, 1)
    value = np.clip(rng.uniform(0.3, 1.0, n)[:, None] + rng.normal(0, 0.25, (n, 4)), 0.08, 1)
    return {
        "composition": np.arange(n) % len(_COMPOSITIONS),  # spread compositions evenly over families
        "hsv": np.stack([hue % 1.0, saturation, value], axis=-1),
        "frequency": np.exp(rng.uniform(np.log(1.5), np.log(10.0), n)),
        "angle": rng.uniform(0, np.pi, n),
        "sharpness": rng.uniform(1.0, 10.0, n),
        "grain": rng.uniform(0.0, 0.1, n),
        "gradient_angle": rng.uniform(0, 2 * np.pi, n),
    }


def _perturb(
    rng: np.random.Generator, parent: dict[str, np.ndarray], rows: np.ndarray, scale: float
) -> dict[str, np.ndarray]:
    """Copy ``parent`` rows and jitter every style parameter; ``scale`` multiplies the designed jitter."""
    n = len(rows)
    hsv = parent["hsv"][rows].copy()
    hsv[..., 0] = (hsv[..., 0] + rng.normal(0, 0.04 * scale, (n, 1)) + rng.normal(0, 0.02 * scale, (n, 4))) % 1.0
    hsv[..., 1] = np.clip(hsv[..., 1] + rng.normal(0, 0.08 * scale, (n, 4)), 0.0, 1.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + rng.normal(0, 0.08 * scale, (n, 4)), 0.05, 1.0)
    return {
        "composition": parent["composition"][rows],
        "hsv": hsv,
        "frequency": np.clip(parent["frequency"][rows] * np.exp(rng.normal(0, 0.15 * scale, n)), 0.8, 16.0),
        "angle": parent["angle"][rows] + rng.normal(0, 0.15 * scale, n),
        "sharpness": np.clip(parent["sharpness"][rows] * np.exp(rng.normal(0, 0.2 * scale, n)), 0.5, 20.0),
        "grain": np.clip(parent["grain"][rows] + rng.normal(0, 0.015 * scale, n), 0.0, 0.2),
        "gradient_angle": parent["gradient_angle"][rows] + rng.normal(0, 0.3 * scale, n),
    }


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0] * 6.0, hsv[..., 1], hsv[..., 2]
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack(
        [
            np.stack([v, t, p], -1),
            np.stack([q, v, p], -1),
            np.stack([p, v, t], -1),
            np.stack([p, q, v], -1),
            np.stack([t, p, v], -1),
            np.stack([v, p, q], -1),
        ],
        0,
    )
    return np.take_along_axis(table, i[None, ..., None], axis=0)[0]


def _placements(styles: _Styles, rows: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Where each artwork's pattern sits (phase, centre, blob spots and radii), in the stream's draw order."""
    n = len(rows)
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    centre = rng.uniform(0.25, 0.75, (n, 2)).astype(np.float32)
    spots = np.zeros((n, _N_BLOBS, 2), np.float32)
    radius = np.ones((n, _N_BLOBS), np.float32)
    blobs = styles.composition[rows] == _COMPOSITIONS.index("blobs")
    if blobs.any():
        k = int(blobs.sum())
        spots[blobs] = rng.uniform(0.0, 1.0, (k, _N_BLOBS, 2)).astype(np.float32)
        radius[blobs] = rng.uniform(0.6, 1.4, (k, 1, 1, _N_BLOBS)).astype(np.float32)[:, 0, 0]
    return {"phase": phase, "centre": centre, "spots": spots, "radius": radius}


def _render(
    styles: _Styles,
    rows: np.ndarray,
    rng: np.random.Generator,
    size: int,
    pixel_noise: float,
    placements: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Draw the artworks ``rows`` as uint8 (n, size, size, 3) images, vectorized over the chunk.

    ``placements`` given: draw those (a slice of :func:`_placements`) without pixel noise, touching no stream.
    """
    noise = placements is None
    if placements is None:
        placements = _placements(styles, rows, rng)
    n = len(rows)
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    y, x = np.meshgrid(axis, axis, indexing="ij")
    x, y = x[None], y[None]
    angle = styles.angle[rows].astype(np.float32)[:, None, None]
    freq = styles.frequency[rows].astype(np.float32)[:, None, None]
    phase = placements["phase"][:, None, None]
    centre = placements["centre"]
    u = (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)
    v = -(x - 0.5) * np.sin(angle) + (y - 0.5) * np.cos(angle)
    two_pi = np.float32(2 * np.pi)
    composition = styles.composition[rows]
    pattern = np.empty((n, size, size), dtype=np.float32)
    for kind, name in enumerate(_COMPOSITIONS):
        m = composition == kind
        if not m.any():
            continue
        if name == "stripes":
            pattern[m] = np.sin(two_pi * freq[m] * u[m] + phase[m])
        elif name == "rings":
            r = np.hypot(x - centre[m, 0, None, None], y - centre[m, 1, None, None])
            pattern[m] = np.sin(two_pi * freq[m] * r + phase[m])
        elif name == "checks":
            pattern[m] = np.sin(two_pi * freq[m] * u[m] + phase[m]) * np.sin(two_pi * freq[m] * v[m])
        elif name == "waves":
            pattern[m] = np.sin(two_pi * freq[m] * u[m] + 2.0 * np.sin(two_pi * 0.5 * freq[m] * v[m] + phase[m]))
        else:  # blobs: a few Gaussian spots whose size follows the style's frequency
            spots = placements["spots"][m]
            radius = (0.35 / freq[m])[:, :, :, None] * placements["radius"][m][:, None, None, :]
            d2 = (x[..., None] - spots[:, None, None, :, 0]) ** 2 + (y[..., None] - spots[:, None, None, :, 1]) ** 2
            pattern[m] = np.clip(np.exp(-d2 / (2 * radius**2)).sum(-1), 0, 1) * 2 - 1
    sharp = styles.sharpness[rows].astype(np.float32)[:, None, None]
    weight = 1.0 / (1.0 + np.exp(-sharp * pattern))  # 0..1, harder edges for larger sharpness
    g_angle = styles.gradient_angle[rows].astype(np.float32)[:, None, None]
    gradient = np.clip(0.5 + (x - 0.5) * np.cos(g_angle) + (y - 0.5) * np.sin(g_angle), 0, 1)[..., None]
    rgb = _hsv_to_rgb(styles.hsv[rows]).astype(np.float32)  # (n, 4, 3)
    background = rgb[:, None, None, 0] * (1 - gradient) + rgb[:, None, None, 1] * gradient
    foreground = rgb[:, None, None, 2] * (1 - gradient) + rgb[:, None, None, 3] * gradient
    image = background + (foreground - background) * weight[..., None]
    grain = styles.grain[rows].astype(np.float32)[:, None, None, None]
    if noise:
        image += (grain + pixel_noise) * rng.standard_normal(image.shape, dtype=np.float32)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Users and purchases


def _session_counts(rng: np.random.Generator, config: DemoGalleryConfig) -> np.ndarray:
    n_single = int(round(config.single_session_user_fraction * config.n_users))
    extra_mean = config.mean_sessions_returning_user - 2.0
    extra = (
        rng.geometric(1.0 / (1.0 + extra_mean), config.n_users) - 1 if extra_mean > 0 else np.zeros(config.n_users, int)
    )
    counts = 2 + np.minimum(extra, 40)
    counts[rng.permutation(config.n_users)[:n_single]] = 1
    return counts


def _session_times(rng: np.random.Generator, counts: np.ndarray, purchase_start: int, span: int) -> list[np.ndarray]:
    """Strictly increasing second offsets per user, inside a personal active period."""
    times = []
    for count in counts:
        start = rng.uniform(purchase_start, span - _DAY)
        length = min(rng.exponential(365 * _DAY) + 30 * _DAY * count, span - start)
        t = np.sort(np.floor(rng.uniform(start, start + length, count))).astype(np.int64)
        # Strictly increasing: equal seconds would merge two sessions into one basket in generic readers.
        steps = np.arange(count)
        t = np.maximum.accumulate(t - steps) + steps
        times.append(np.minimum(t, span - count + steps))
    return times


def _purchases(
    rng: np.random.Generator,
    config: DemoGalleryConfig,
    artist_of: np.ndarray,
    family_of_artist: np.ndarray,
    is_photo: np.ndarray,
    upload: np.ndarray,
    purchase_start: int,
    span: int,
) -> tuple[list[tuple[int, int, list[int]]], int]:
    """Replay every session in time order; returns (user, second, items) baskets and the unfilled count."""
    n_items, n_families = len(artist_of), config.n_style_families
    family_of = family_of_artist[artist_of]
    popularity = np.where(is_photo, config.photo_popularity, 1.0)
    family_size = np.bincount(family_of, minlength=n_families).astype(float)

    counts = _session_counts(rng, config)
    times = _session_times(rng, counts, purchase_start, span)
    taste = np.zeros((config.n_users, n_families))
    loved_artists: list[set[int]] = []
    for user in range(config.n_users):
        k = min(n_families, 1 + rng.choice(3, p=[0.5, 0.35, 0.15]))
        liked = rng.choice(n_families, k, replace=False)
        taste[user, liked] = rng.dirichlet(np.ones(k))
        candidates = np.flatnonzero(np.isin(family_of_artist, liked))
        n_fav = min(len(candidates), 1 + int(rng.random() < 0.4))
        loved_artists.append(set(rng.choice(candidates, n_fav, replace=False).tolist()) if n_fav else set())
    # Per-item weight of a family draw: preference spread over the family's works, so that big
    # families do not attract more purchases than the user's preference says.
    family_item_weight = np.divide(taste, family_size, out=np.zeros_like(taste), where=family_size > 0)

    sessions = sorted((t, user, s) for user in range(config.n_users) for s, t in enumerate(times[user]))
    sold = np.zeros(n_items, dtype=bool)
    owned: list[set[int]] = [set() for _ in range(config.n_users)]
    extra_mean = config.mean_basket_size - 1.0
    baskets, unfilled = [], 0
    for t, user, _ in sessions:
        size = 1 + (min(rng.geometric(1.0 / (1.0 + extra_mean)) - 1, 9) if extra_mean > 0 else 0)
        open_items = (upload < t) & ~sold
        if owned[user]:
            open_items[list(owned[user])] = False
        items: list[int] = []
        for _ in range(size):
            mode = rng.random()
            weights = np.zeros(0)
            if mode < config.artist_loyalty and loved_artists[user]:
                weights = np.where(open_items & np.isin(artist_of, list(loved_artists[user])), popularity, 0.0)
            if weights.sum() <= 0 and mode < 1.0 - config.off_taste_fraction:
                weights = np.where(open_items, popularity * family_item_weight[user, family_of], 0.0)
            if weights.sum() <= 0:
                weights = np.where(open_items, popularity, 0.0)
            total = weights.sum()
            if total <= 0:
                break
            item = int(rng.choice(n_items, p=weights / total))
            items.append(item)
            open_items[item] = False
            owned[user].add(item)
            loved_artists[user].add(int(artist_of[item]))
            if not is_photo[item]:
                sold[item] = True
        if items:
            baskets.append((user, int(t), items))
        else:
            unfilled += 1
    return baskets, unfilled


# --------------------------------------------------------------------------------------------------
# Writing


def _statistics(
    config: DemoGalleryConfig,
    artist_of: np.ndarray,
    is_photo: np.ndarray,
    baskets: list[tuple[int, int, list[int]]],
    unfilled: int,
) -> dict:
    """The gallery_stats.json content: generated statistics, the paper's, a side-by-side list, the config."""
    items = np.array([i for _, _, basket in baskets for i in basket], dtype=np.int64)
    users = np.array([u for u, _, _ in baskets], dtype=np.int64)
    sessions_per_user = np.bincount(users, minlength=config.n_users)
    active = sessions_per_user > 0
    last_basket: dict[int, int] = {}
    for user, t, basket in baskets:
        last_basket[user] = len(basket)  # baskets are in time order
    held_out = [last_basket[u] for u in np.flatnonzero(sessions_per_user >= 2)]
    repeat_artist = []
    seen_artists: dict[int, set[int]] = {}
    for user, _, basket in baskets:
        before = seen_artists.setdefault(user, set())
        if before:
            repeat_artist.extend(int(artist_of[i]) in before for i in basket)
        before.update(int(artist_of[i]) for i in basket)
    works = np.bincount(artist_of)
    generated = {
        "n_users": int(active.sum()),
        "n_artworks": int(len(artist_of)),
        "n_purchases": int(len(items)),
        "n_distinct_purchased_artworks": int(len(np.unique(items))),
        "n_artists": int(len(works)),
        "mean_works_per_artist": round(float(works.mean()), 3),
        "max_works_per_artist": int(works.max()),
        "one_of_a_kind_artwork_fraction": round(float(1 - is_photo.mean()), 4),
        "one_of_a_kind_purchase_fraction": round(float(1 - is_photo[items].mean()), 4) if len(items) else None,
        "one_of_a_kind_sold_fraction": round(float(np.isin(np.flatnonzero(~is_photo), items).mean()), 4)
        if (~is_photo).any()
        else None,
        "single_session_user_fraction": round(float((sessions_per_user[active] == 1).mean()), 4),
        "n_baskets": len(baskets),
        "mean_basket_size": round(float(len(items) / max(len(baskets), 1)), 4),
        "mean_held_out_basket_size": round(float(np.mean(held_out)), 4) if held_out else None,
        "n_users_with_held_out_basket": len(held_out),
        "repeat_artist_purchase_fraction": round(float(np.mean(repeat_artist)), 4) if repeat_artist else None,
        "n_unfilled_sessions": unfilled,
    }
    return {
        "description": "Synthetic demo gallery (seeded); these are not the paper's data or results.",
        "generated": generated,
        "paper": dict(PAPER_STATS),
        "comparison": [
            {"statistic": key, "generated": generated.get(key), "paper": value} for key, value in PAPER_STATS.items()
        ],
        "config": dataclasses.asdict(config),
    }


def _prepare_target(out_dir: Path) -> None:
    """Refuse to overwrite a folder that is not empty and not a previous demo gallery."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise FileExistsError(f"{out_dir} exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / "gallery_stats.json").is_file():
            raise FileExistsError(f"{out_dir} is not empty and does not hold a demo gallery; refusing to overwrite it")


@dataclass
class DemoGallery:
    """A simulated gallery in memory, before it is written. Arrays are over artworks in generation order.

    It also knows what the UGallery files do not say: which artworks are photographs.
    """

    config: DemoGalleryConfig
    artwork_ids: list[str]
    artist_ids: list[str]
    user_ids: list[str]
    artist_of: np.ndarray  # int: artist index of each artwork
    family_of_artist: np.ndarray  # int: style family of each artist
    is_photo: np.ndarray  # bool: photographs may sell many times, the rest are one-of-a-kind
    upload_epoch: np.ndarray  # int64 epoch seconds
    baskets: list[tuple[int, int, list[int]]]  # (user index, epoch seconds, artwork indices), in time order
    n_unfilled_sessions: int
    styles: _Styles
    render_seed: np.random.SeedSequence


def simulate_demo_gallery(config: DemoGalleryConfig) -> DemoGallery:
    """Draw the catalogue, the styles and every purchase session (no images yet); deterministic in ``config``."""
    config.validate()
    seeds = np.random.SeedSequence(config.seed).spawn(6)
    id_rng, catalogue_rng, style_rng, _, purchase_rng, time_rng = (np.random.default_rng(s) for s in seeds)
    span = config.span_days * _DAY

    # Catalogue: artists, their families and styles, their works.
    counts = _work_counts(catalogue_rng, config)
    artist_of = np.repeat(np.arange(config.n_artists), counts)
    target_photos = int(round((1 - config.one_of_a_kind_fraction) * config.n_artworks))
    is_photo = _choose_photographers(catalogue_rng, counts, target_photos)[artist_of]
    family_of_artist = catalogue_rng.integers(0, config.n_style_families, config.n_artists)
    n_seeded = min(config.n_artists, config.n_style_families)
    family_of_artist[:n_seeded] = np.arange(n_seeded)  # every family gets at least one artist when possible
    families = _family_styles(style_rng, config.n_style_families)
    artists = _perturb(style_rng, families, family_of_artist, config.artist_style_spread)
    styles = _Styles(**_perturb(style_rng, artists, artist_of, config.artwork_style_noise))

    # Uploads: a launch inventory in the first month, then each artist uploads after joining.
    launch_days = 30
    join = time_rng.uniform(0, 0.75 * span, config.n_artists)
    upload = join[artist_of] + time_rng.beta(0.8, 1.5, config.n_artworks) * (span - join[artist_of])
    launch = time_rng.random(config.n_artworks) < config.launch_inventory_fraction
    upload[launch] = time_rng.uniform(0, launch_days * _DAY, int(launch.sum()))
    upload = np.floor(upload).astype(np.int64)

    baskets, unfilled = _purchases(
        purchase_rng, config, artist_of, family_of_artist, is_photo, upload, launch_days * _DAY, span
    )
    return DemoGallery(
        config=config,
        artwork_ids=_hex_ids(id_rng, config.n_artworks),
        artist_ids=_hex_ids(id_rng, config.n_artists),
        user_ids=_hex_ids(id_rng, config.n_users),
        artist_of=artist_of,
        family_of_artist=family_of_artist,
        is_photo=is_photo,
        upload_epoch=config.start_epoch + upload,
        baskets=[(user, config.start_epoch + t, items) for user, t, items in baskets],
        n_unfilled_sessions=unfilled,
        styles=styles,
        render_seed=seeds[3],
    )


def _draw(gallery: DemoGallery, images: Path | None, display: Path, say: Callable[[str], None]) -> None:
    """Draw every artwork into ``images`` (64 px PNG; None: drawn, not written) and ``display`` (JPEG).

    With ``images`` None the small drawings are still made: the render stream must be replayed to reach the same
    placements, so storefront files added to an older gallery are identical to those of a fresh one.
    """
    config = gallery.config
    ids = gallery.artwork_ids
    render_rng = np.random.default_rng(gallery.render_seed)
    for start in range(0, config.n_artworks, _RENDER_CHUNK):
        rows = np.arange(start, min(start + _RENDER_CHUNK, config.n_artworks))
        # The same placements as the 64 px drawing, drawn from a copy: the render stream is untouched.
        placements = _placements(gallery.styles, rows, copy.deepcopy(render_rng))
        pixels = _render(gallery.styles, rows, render_rng, config.image_size, config.pixel_noise)
        for row, image in zip(rows, pixels if images is not None else ()):
            buffer = io.BytesIO()
            Image.fromarray(image, "RGB").save(buffer, format="PNG")
            (images / f"{ids[row]}.png").write_bytes(buffer.getvalue())
        for sub in range(0, len(rows), _DISPLAY_CHUNK):  # small slices: a 256 px chunk would need gigabytes
            part = slice(sub, sub + _DISPLAY_CHUNK)
            some = {key: value[part] for key, value in placements.items()}
            large = _render(gallery.styles, rows[part], render_rng, DISPLAY_PIXELS, config.pixel_noise, some)
            for row, image in zip(rows[part], large):
                Image.fromarray(image, "RGB").save(display / f"{ids[row]}.jpg", quality=85)
        say(f"drew {rows[-1] + 1}/{config.n_artworks} images")


def _write_details(gallery: DemoGallery, folder: Path) -> None:
    config = gallery.config
    rows = demo_details(config.seed, gallery.artwork_ids, gallery.artist_of, gallery.is_photo, gallery.upload_epoch)
    write_details(folder, rows)


def add_storefront_files(folder: Path, config: DemoGalleryConfig, progress: Callable[[str], None] | None = None):
    """Add ``display/`` and ``artwork_details.csv`` to a demo gallery generated before they existed.

    The pipeline's files are not touched. ``display/`` is drawn beside and renamed into place, the details file
    is written last: a gallery with the details file has all of its display images.
    """
    folder = Path(folder)
    staging = folder / f".{DISPLAY_FOLDER}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    gallery = simulate_demo_gallery(config)
    try:
        _draw(gallery, None, staging, progress or (lambda message: None))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(folder / DISPLAY_FOLDER, ignore_errors=True)
    staging.rename(folder / DISPLAY_FOLDER)
    _write_details(gallery, folder)


def _write_gallery(gallery: DemoGallery, folder: Path, say: Callable[[str], None]) -> dict:
    config = gallery.config
    ids = gallery.artwork_ids
    (folder / "images").mkdir(parents=True)
    (folder / DISPLAY_FOLDER).mkdir()
    order = np.lexsort((np.array(ids), gallery.upload_epoch))
    with (folder / "inventory.csv").open("w", newline="") as f:
        f.write("artwork_id_hash,artist_id_hash,upload_timestamp\n")
        for i in order:
            f.write(f"{ids[i]},{gallery.artist_ids[gallery.artist_of[i]]},{int(gallery.upload_epoch[i])}\n")
    with (folder / "purchases.csv").open("w", newline="") as f:
        f.write("user_id_hash,purchase_timestamp,purchased_artwork_ids_hash\n")
        for user, t, items in gallery.baskets:
            listed = repr([ids[i] for i in items])
            f.write(f'{gallery.user_ids[user]},{t},"{listed}"\n')
    _draw(gallery, folder / "images", folder / DISPLAY_FOLDER, say)
    _write_details(gallery, folder)
    stats = _statistics(config, gallery.artist_of, gallery.is_photo, gallery.baskets, gallery.n_unfilled_sessions)
    (folder / "gallery_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def generate_demo_gallery(
    out_dir: Path, config: DemoGalleryConfig, progress: Callable[[str], None] | None = None
) -> dict:
    """Write a synthetic gallery to ``out_dir`` and return its statistics (also in gallery_stats.json).

    Same config gives byte-identical files. Everything is written to a sibling temporary folder and
    renamed into place at the end, so an interrupted run never leaves a half-written gallery. An
    existing previous demo gallery at ``out_dir`` is replaced; any other non-empty folder is refused.
    """
    out_dir = Path(out_dir)
    _prepare_target(out_dir)
    say = progress or (lambda message: None)
    say(f"simulating {config.n_artworks} artworks and the purchases of {config.n_users} users")
    gallery = simulate_demo_gallery(config)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    retired = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        stats = _write_gallery(gallery, staging, say)
        if out_dir.exists():
            out_dir.rename(retired)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(retired, ignore_errors=True)
    say(f"wrote demo gallery to {out_dir}")
    return stats
