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
# Dagster's own variable: the instance (run history, pool slots) that records runs. `make` sets it to the
# repository's .dagster_home; the CLI falls back to that same folder when it is unset (see dagster_home).
DAGSTER_HOME_ENV = "DAGSTER_HOME"
PROJECT_INSTANCE_DIR = ".dagster_home"


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


def log_dir() -> Path:
    """Folder for the CLI's per-command log files (Dagster's full output of each run)."""
    return data_dir() / "logs"


def dagster_home() -> tuple[Path | None, str]:
    """The instance folder the CLI records its runs in, and a few words on why that one.

    ``DAGSTER_HOME`` wins when set. Otherwise the project's instance, the ``.dagster_home`` that `make` uses:
    first the one next to the data folder (the layout of a checkout, where ``data/`` and ``.dagster_home/``
    are siblings; this also covers a copied project folder), then the one in the checkout that holds this
    package (an editable install run from another folder). A folder counts only when it holds the project's
    ``dagster.yaml`` (the one-slot DuckDB pool). ``None`` when neither exists: the run is not recorded.
    """
    explicit = os.environ.get(DAGSTER_HOME_ENV)
    if explicit:
        return Path(explicit).resolve(), f"{DAGSTER_HOME_ENV} is set"
    for root in (data_dir().parent, Path(__file__).resolve().parent.parent):
        home = root / PROJECT_INSTANCE_DIR
        if (home / "dagster.yaml").is_file():
            return home, f"the project's instance; set {DAGSTER_HOME_ENV} to use another"
    return None, f"no {PROJECT_INSTANCE_DIR}/dagster.yaml found and {DAGSTER_HOME_ENV} unset"
