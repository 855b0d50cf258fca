"""Where the project reads and writes, from environment variables with working defaults.

One setting picks the data: ``CURATORNET_SOURCE`` is ``demo`` (the default: a seeded synthetic gallery
that the pipeline generates) or the path of a folder holding either the UGallery files
(``inventory.csv``, ``purchases.csv``, optional ``resnet_embeddings.npy``, optional ``images/``) or the
generic files (``interactions.csv``, ``items.csv``, ``images/``).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "CURATORNET_DATA_DIR"
DUCKDB_PATH_ENV = "CURATORNET_DUCKDB_PATH"
SOURCE_ENV = "CURATORNET_SOURCE"
DEMO_SCALE_ENV = "CURATORNET_DEMO_SCALE"


def data_dir() -> Path:
    """Folder for the DuckDB file, the generated demo gallery and the PNG reports."""
    return Path(os.environ.get(DATA_DIR_ENV, "data")).resolve()


def duckdb_path() -> Path:
    explicit = os.environ.get(DUCKDB_PATH_ENV)
    return Path(explicit).resolve() if explicit else data_dir() / "curatornet.duckdb"


def source_setting() -> str:
    return os.environ.get(SOURCE_ENV, "demo")


def demo_scale_setting() -> str:
    return os.environ.get(DEMO_SCALE_ENV, "paper")
