"""Helpers for the tests that start real processes (Dagster CLI, webserver, daemon, PostgreSQL)."""
