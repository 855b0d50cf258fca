"""Dagster assets: thin wrappers that load inputs from DuckDB, call ``curatornet_pipeline.core`` and write back."""
