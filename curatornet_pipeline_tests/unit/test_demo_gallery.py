"""The seeded synthetic gallery: determinism, UGallery format, market rules and visible styles."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curatornet_pipeline.core.demo_gallery import (
    PAPER_STATS,
    DemoGalleryConfig,
    generate_demo_gallery,
    simulate_demo_gallery,
)
from curatornet_pipeline.core.ingest import find_image_files, read_ugallery


@pytest.fixture(scope="module")
def tiny_gallery(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("gallery") / "demo"
    return folder, generate_demo_gallery(folder, DemoGalleryConfig.tiny())


def all_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_config_gives_byte_identical_files(tmp_path, tiny_gallery):
    folder, _ = tiny_gallery
    again = tmp_path / "again"
    generate_demo_gallery(again, DemoGalleryConfig.tiny())
    assert all_files(again) == all_files(folder)
    other = tmp_path / "other"
    generate_demo_gallery(other, DemoGalleryConfig.tiny(seed=8))
    assert (other / "purchases.csv").read_bytes() != (folder / "purchases.csv").read_bytes()


def test_files_are_ugallery_format_and_match_stats(tiny_gallery):
    folder, stats = tiny_gallery
    config = DemoGalleryConfig.tiny()
    assert (folder / "inventory.csv").read_text().splitlines()[0] == "artwork_id_hash,artist_id_hash,upload_timestamp"
    header, first = (folder / "purchases.csv").read_text().splitlines()[:2]
    assert header == "user_id_hash,purchase_timestamp,purchased_artwork_ids_hash"
    assert first.split(",", 2)[2].startswith("\"['")
    artworks, tx = read_ugallery(folder)
    assert len(artworks) == config.n_artworks and artworks["artist_id"].nunique() == config.n_artists
    assert all(len(a) == 32 and int(a, 16) >= 0 for a in artworks["artwork_id"])
    assert tx["user_id"].nunique() == stats["generated"]["n_users"] == config.n_users
    assert len(tx) == stats["generated"]["n_purchases"]
    assert tx["basket_id"].nunique() == stats["generated"]["n_baskets"]
    images = find_image_files(folder, artworks["artwork_id"].tolist())
    with Image.open(next(iter(images.values()))) as image:
        assert image.size == (config.image_size, config.image_size) and image.mode == "RGB"
    assert json.loads((folder / "gallery_stats.json").read_text()) == stats


def test_stats_are_plausible_and_beside_the_papers(tiny_gallery):
    _, stats = tiny_gallery
    generated = stats["generated"]
    assert stats["paper"] == PAPER_STATS
    assert {row["statistic"] for row in stats["comparison"]} == set(PAPER_STATS)
    assert generated["n_unfilled_sessions"] == 0
    assert generated["single_session_user_fraction"] == pytest.approx(0.64, abs=1 / 30)
    assert 0.6 <= generated["one_of_a_kind_artwork_fraction"] <= 0.95
    assert 1.0 <= generated["mean_basket_size"] <= 1.8
    assert generated["mean_works_per_artist"] == pytest.approx(60 / 8)
    assert stats["config"] == dataclasses.asdict(DemoGalleryConfig.tiny())


def test_market_rules_hold():
    gallery = simulate_demo_gallery(dataclasses.replace(DemoGalleryConfig.tiny(), n_users=80))
    sales = Counter(i for _, _, items in gallery.baskets for i in items)
    assert any(count > 1 for count in sales.values())  # photographs do sell repeatedly
    assert all(gallery.is_photo[i] for i, count in sales.items() if count > 1)  # paintings never twice
    for user, t, items in gallery.baskets:
        assert (gallery.upload_epoch[items] < t).all()
        assert len(set(items)) == len(items)
    times = {}
    for user, t, _ in gallery.baskets:
        assert times.get(user, -1) < t  # a user's sessions have distinct, increasing times
        times[user] = t


def test_purchases_follow_uploads_in_files(tiny_gallery):
    folder, _ = tiny_gallery
    artworks, tx = read_ugallery(folder)
    uploads = artworks["upload_timestamp"].to_numpy()[tx["artwork_idx"].to_numpy()]
    assert (tx["purchase_timestamp"].to_numpy() > uploads).all()


def test_artist_styles_show_in_pixels(tiny_gallery):
    folder, _ = tiny_gallery
    artworks, _ = read_ugallery(folder)
    images = find_image_files(folder, artworks["artwork_id"].tolist())
    colours = np.stack(
        [np.asarray(Image.open(images[a]), dtype=float).mean(axis=(0, 1)) for a in artworks["artwork_id"]]
    )
    artists = artworks["artist_id"].to_numpy()
    distance = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
    same = artists[:, None] == artists[None]
    off_diagonal = ~np.eye(len(artists), dtype=bool)
    assert distance[same & off_diagonal].mean() < 0.5 * distance[~same].mean()


def test_users_return_to_artists():
    gallery = simulate_demo_gallery(DemoGalleryConfig.small())

    def revisit_rate(artist_of: np.ndarray) -> float:
        """Share of a user's later sessions that buy from an artist they bought from before."""
        seen: dict[int, set[int]] = {}
        revisits, later = 0, 0
        for user, _, items in gallery.baskets:
            artists = {int(artist_of[i]) for i in items}
            if user in seen:
                later += 1
                revisits += bool(artists & seen[user])
            seen.setdefault(user, set()).update(artists)
        return revisits / later

    # Shuffling artists over artworks keeps work counts but breaks any user-artist bond.
    shuffled = revisit_rate(np.random.default_rng(0).permutation(gallery.artist_of))
    assert revisit_rate(gallery.artist_of) > 1.7 * shuffled


def test_interrupted_run_leaves_no_partial_gallery(tmp_path):
    def fail_while_drawing(message: str) -> None:
        if message.startswith("drew"):
            raise KeyboardInterrupt

    target = tmp_path / "demo"
    with pytest.raises(KeyboardInterrupt):
        generate_demo_gallery(target, DemoGalleryConfig.tiny(), progress=fail_while_drawing)
    assert list(tmp_path.iterdir()) == []


def test_regenerates_over_previous_gallery_but_not_over_other_folders(tmp_path):
    target = tmp_path / "demo"
    generate_demo_gallery(target, DemoGalleryConfig.tiny(seed=1))
    generate_demo_gallery(target, DemoGalleryConfig.tiny(seed=2))
    assert json.loads((target / "gallery_stats.json").read_text())["config"]["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_demo_gallery(precious, DemoGalleryConfig.tiny())
    assert (precious / "thesis.txt").read_text() == "keep me"


def test_invalid_config_is_refused(tmp_path):
    with pytest.raises(ValueError):
        generate_demo_gallery(tmp_path / "x", dataclasses.replace(DemoGalleryConfig.tiny(), n_artists=100))


def test_demo_scale_factor_multiplies_the_paper_sizes():
    from curatornet_pipeline.resources import demo_config

    quarter = demo_config("0.25x", seed=7)
    assert (quarter.n_artworks, quarter.n_artists, quarter.n_users) == (1510, 143, 594)
    assert demo_config("1x", seed=7) == demo_config("paper", seed=7)
    for bad in ("0x", "-2x", "fourx", "huge"):
        with pytest.raises(ValueError, match="unknown demo scale"):
            demo_config(bad, seed=7)
