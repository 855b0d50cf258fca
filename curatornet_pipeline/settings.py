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


# --- executors: where a run's steps execute; docs/deployment.md -----------------------------------------

EXECUTOR_ENV = "CURATORNET_EXECUTOR"
EXECUTORS = ("in_process", "multiprocess", "celery")
# Celery (the cluster profile): the Redis broker every worker and the launching process reach.
CELERY_BROKER_ENV = "CURATORNET_CELERY_BROKER"
# Set (e.g. to "gpu"): the queue the ResNet50 embedding and model training steps go to. Every other step,
# and these too when it is unset, goes to the "cpu" queue.
GPU_QUEUE_ENV = "CURATORNET_GPU_QUEUE"
CPU_QUEUE = "cpu"


def executor_setting() -> str:
    value = os.environ.get(EXECUTOR_ENV, "in_process").strip().lower()
    if value not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={value!r}: expected one of {', '.join(EXECUTORS)}")
    return value


def celery_broker() -> str:
    return os.environ.get(CELERY_BROKER_ENV, "redis://127.0.0.1:6379/0")


def gpu_queue() -> str | None:
    return os.environ.get(GPU_QUEUE_ENV) or None


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
# The artwork page's Buy/Enquire link for works without their own shop_url: {artwork_id} is replaced, e.g.
# https://shop.example/artworks/{artwork_id} or mailto:sales@gallery.example?subject=Artwork%20{artwork_id}.
SHOP_URL_TEMPLATE_ENV = "CURATORNET_SHOP_URL_TEMPLATE"
# At most this many works of one artist in any list the app or the API shows (0: no cap).
ARTIST_CAP_ENV = "CURATORNET_ARTIST_CAP"
# The JSON API's key for server-to-server calls (customer recommendations, events); unset: those calls are off.
API_KEY_ENV = "CURATORNET_API_KEY"


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


def shop_url_template() -> str | None:
    """The Buy/Enquire link template, or None (no link for works without a shop_url)."""
    text = os.environ.get(SHOP_URL_TEMPLATE_ENV, "").strip()
    if not text:
        return None
    if not text.startswith(("https://", "http://", "mailto:")):
        raise ValueError(f"{SHOP_URL_TEMPLATE_ENV}={text[:60]!r} must start with https://, http:// or mailto:")
    return text


def api_key() -> str | None:
    """The JSON API key, or None; a short key is refused (it must not be guessable)."""
    text = os.environ.get(API_KEY_ENV, "").strip()
    if not text:
        return None
    if len(text) < 24:
        raise ValueError(f"{API_KEY_ENV} must be at least 24 characters (e.g. python -c 'import secrets; "
                         "print(secrets.token_urlsafe(32))')")
    return text


def artist_cap() -> int:
    text = os.environ.get(ARTIST_CAP_ENV, "2")
    try:
        cap = int(text)
    except ValueError:
        cap = -1
    if cap < 0:
        raise ValueError(f"{ARTIST_CAP_ENV}={text!r} must be a whole number of works per artist, 0 or more (0: no cap)")
    return cap
