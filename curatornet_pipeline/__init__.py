"""CuratorNet, the visually-aware art recommender, as a Dagster asset graph stored in DuckDB."""

__version__ = "0.1.0"
