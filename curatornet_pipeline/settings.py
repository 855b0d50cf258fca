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


DATA_ROOT_ENV = "CURATORNET_DATA_ROOT"


def data_root() -> Path:
    """Folder of the Parquet data layer (store/): every table's files and their manifest.

    Default: ``tables/`` next to the DuckDB catalog file. On a cluster, a shared path every worker mounts.
    """
    explicit = os.environ.get(DATA_ROOT_ENV)
    return Path(explicit).resolve() if explicit else duckdb_path().with_name("tables")


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


# --- the visitor app (make serve); what each protects: docs/security.md ---------------------------------

SERVE_HOST_ENV = "CURATORNET_SERVE_HOST"
SERVE_PORT_ENV = "CURATORNET_SERVE_PORT"
# Signs visitor cookies. Unset: a random secret is generated once and kept (0600) next to the serving snapshot.
VISITOR_SECRET_ENV = "CURATORNET_VISITOR_SECRET"
# Turns on the operator pages (/users/<id>), served to requests carrying "Authorization: Bearer <token>".
OPERATOR_TOKEN_ENV = "CURATORNET_OPERATOR_TOKEN"
# Likes (and any other state-changing request) one client address may make per minute.
LIKES_PER_MINUTE_ENV = "CURATORNET_LIKES_PER_MINUTE"
# 1 when the app is reached over HTTPS (through a TLS proxy): the visitor cookie is then sent over HTTPS only.
SECURE_COOKIE_ENV = "CURATORNET_SECURE_COOKIE"


def serve_host() -> str:
    return os.environ.get(SERVE_HOST_ENV, "127.0.0.1")


def serve_port() -> int:
    return int(os.environ.get(SERVE_PORT_ENV, "8000"))


def visitor_secret() -> str | None:
    return os.environ.get(VISITOR_SECRET_ENV) or None


def operator_token() -> str | None:
    return os.environ.get(OPERATOR_TOKEN_ENV) or None


def likes_per_minute() -> int:
    text = os.environ.get(LIKES_PER_MINUTE_ENV, "60")
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{LIKES_PER_MINUTE_ENV}={text!r} is not a whole number of likes a minute") from None


def secure_cookie() -> bool:
    return os.environ.get(SECURE_COOKIE_ENV, "0").strip().lower() in ("1", "true", "yes")
