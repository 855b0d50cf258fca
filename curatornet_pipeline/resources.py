"""Dagster resources: the tables (Parquet files queried by DuckDB) and the gallery source (demo or a user's folder)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from curatornet_pipeline import settings
from curatornet_pipeline.core.catalogue import DETAILS_FILE
from curatornet_pipeline.core.demo_gallery import DemoGalleryConfig, add_storefront_files, generate_demo_gallery
from curatornet_pipeline.store import session

DEMO_SCALES = ("paper", "small", "tiny")


def demo_config(scale: str, seed: int) -> DemoGalleryConfig:
    """The demo gallery of a scale name, or of '<factor>x' (e.g. '0.25x', '4x': the paper's size times factor)."""
    if scale.endswith("x"):
        try:
            factor = float(scale[:-1])
        except ValueError:
            factor = float("nan")
        if factor > 0:
            return DemoGalleryConfig.scaled(factor, seed=seed)
    if scale == "paper":
        return DemoGalleryConfig(seed=seed)
    if scale == "small":
        return DemoGalleryConfig.small(seed=seed)
    if scale == "tiny":
        return DemoGalleryConfig.tiny(seed=seed)
    raise ValueError(
        f"unknown demo scale {scale!r}: expected one of {', '.join(DEMO_SCALES)} or a factor of the paper's "
        "size such as '0.25x' or '4x'"
    )


class GallerySource(dg.ConfigurableResource):
    """Where the artworks and purchases come from.

    ``source`` is ``demo`` (generate the seeded synthetic gallery under ``data_dir``) or a folder with
    UGallery files or generic files; see ``curatornet_pipeline.settings``.
    """

    source: str = "demo"
    data_dir: str = "data"
    demo_scale: str = "paper"
    demo_seed: int = 7

    @property
    def is_demo(self) -> bool:
        return self.source == "demo"

    def folder(self) -> Path:
        if self.is_demo:
            return Path(self.data_dir).resolve() / f"demo_gallery_{self.demo_scale}_seed{self.demo_seed}"
        folder = Path(self.source).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"CURATORNET_SOURCE points at {folder}, which is not a folder: set it to 'demo' or to a folder "
                "holding inventory.csv + purchases.csv (UGallery) or items.csv + interactions.csv (generic)"
            )
        return folder

    def ensure_demo_gallery(self, log=None) -> dict:
        """Generate the demo gallery unless an identical one (same config) is already on disk."""
        config = demo_config(self.demo_scale, self.demo_seed)
        folder = self.folder()
        stats_file = folder / "gallery_stats.json"
        if stats_file.exists():
            stats = json.loads(stats_file.read_text())
            if stats.get("config") == json.loads(json.dumps(config.__dict__)):
                if log:
                    log.info(f"demo gallery already generated at {folder}")
                if not (folder / DETAILS_FILE).is_file():  # generated before the storefront: add its files
                    add_storefront_files(folder, config, progress=(log.info if log else None))
                return stats
        return generate_demo_gallery(folder, config, progress=(log.info if log else None))


class CuratorDuckDB(DuckDBResource):
    """The pipeline's tables: Parquet files under a data root, queried through DuckDB.

    ``database`` is the catalog file users open (``curatornet.duckdb``: a view per table); ``data_root`` holds
    the tables' files (default: ``tables/`` next to it). ``get_connection`` gives an in-memory DuckDB whose
    ``schema.table`` names are views over the tables published when it opened; ``storage.replace_tables``
    publishes through it (see ``curatornet_pipeline.store``).
    """

    data_root: str = ""

    @property
    def location(self) -> session.Location:
        return session.Location.of(self.database, self.data_root or None)

    @contextmanager
    def get_connection(self) -> Iterator:
        con = session.connect(self.location)
        try:
            yield con
        finally:
            con.close()


def default_resources() -> dict:
    return {
        "duckdb": CuratorDuckDB(database=str(settings.duckdb_path()), data_root=str(settings.data_root())),
        "gallery": GallerySource(
            source=settings.source_setting(),
            data_dir=str(settings.data_dir()),
            demo_scale=settings.demo_scale_setting(),
        ),
    }
