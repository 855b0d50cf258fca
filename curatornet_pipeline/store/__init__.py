"""The data layer: every table as Parquet files under one data root, published atomically, queried by DuckDB.

* ``data_root``: the folder layout, the manifest (which file holds each table and partition now), the
  atomic publish of a group of files, and the cleanup of files nothing refers to any more.
* ``parquet``: writing a frame to a Parquet file with the declared column types, and reading vector columns
  into numpy through Arrow, without a Python object per row.
* ``catalog``: DuckDB views over the published files, in an in-memory connection (what a step queries) or
  in the catalog file a user opens.

Nothing here imports Dagster or reads the environment: callers pass the data root in.
"""
