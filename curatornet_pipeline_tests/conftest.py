"""Session fixtures: one whole-graph materialization of the tiny demo gallery into a temporary DuckDB file.

The whole graph runs once per test session through the real Dagster job, and many tests then read the tables
it wrote, which keeps the suite fast on two cores. Helpers live in ``support/`` (imported by the tests).
"""

from __future__ import annotations

import pytest

from curatornet_pipeline_tests.support.tiny import Materialized, materialize_tiny


@pytest.fixture(scope="session")
def materialized(tmp_path_factory) -> Materialized:
    """The whole graph materialized once on the tiny demo gallery."""
    return materialize_tiny(tmp_path_factory.mktemp("pipeline"))
