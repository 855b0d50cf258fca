"""Dagster-free method code: data ingestion, sampling, the CuratorNet model, training and evaluation.

Everything in this package is plain Python/numpy/PyTorch so that it can be unit-tested and reused
outside Dagster. The Dagster assets in ``curatornet_pipeline.assets`` are thin wrappers around it.
"""
