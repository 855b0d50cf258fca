"""The table registry (curatornet_pipeline/tables.py) is the one owner of the DuckDB layout.

What a run writes matches the declarations, the UI's column schema comes from them, and no other module
spells a table name or imports an asset module: the rules that keep a rename or a new column one edit.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import duckdb

from curatornet_pipeline import tables
from curatornet_pipeline.lineage import TABLE_INPUTS

PACKAGE = Path(tables.__file__).parent


def _stored_columns(database: Path) -> dict[str, list[tuple[str, str]]]:
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            "SELECT table_schema || '.' || table_name, column_name, data_type FROM information_schema.columns "
            "ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall()
    stored: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        stored.setdefault(table, []).append((column, data_type))
    return stored


def _type_matches(declared: str, stored: str) -> bool:
    if declared == tables.VECTOR:
        return re.fullmatch(r"FLOAT\[\d+\]", stored) is not None
    return declared == stored


def test_every_table_a_run_writes_is_registered_with_the_columns_it_has(materialized):
    stored = _stored_columns(materialized.database)
    assert set(stored) == set(tables.BY_NAME), "tables written but not registered, or registered but never written"
    for name, columns in stored.items():
        declared = [(c.name, c.type) for c in tables.BY_NAME[name].columns]
        assert [c for c, _ in columns] == [c for c, _ in declared], name
        wrong = [(c, d, s) for (c, s), (_, d) in zip(columns, declared) if not _type_matches(d, s)]
        assert not wrong, f"{name}: (column, declared, stored) {wrong}"


def test_the_ui_column_schema_is_the_declaration(materialized):
    events = materialized.result.get_asset_materialization_events()
    by_key = {e.asset_key.to_user_string(): e.materialization.metadata for e in events}
    stored = dict(_stored_columns(materialized.database)[tables.ITEM_EMBEDDINGS.name])
    for table in (tables.RAW_ARTWORKS, tables.ITEM_EMBEDDINGS, tables.CURATORNET_MODELS, tables.USER_RECOMMENDATIONS):
        schema = by_key[table.asset]["dagster/column_schema"].value
        assert [c.name for c in schema.columns] == table.column_names, table
        assert by_key[table.asset]["dagster/table_name"].value == table.name
    vector = next(c for c in by_key["item_embeddings"]["dagster/column_schema"].value.columns if c.name == "vector")
    assert vector.type == stored["vector"]  # the width the run wrote, not the declaration's placeholder


def test_each_table_is_owned_by_an_asset_of_the_graph_and_its_inputs_are_registered(materialized):
    asset_keys = {key.to_user_string() for key in materialized.defs.resolve_asset_graph().get_all_asset_keys()}
    for table in tables.ALL_TABLES:
        if table is tables.TABLE_LINEAGE:
            continue
        assert table.asset in asset_keys, table
        assert set(table.partition_assets.values()) <= asset_keys, table
        for partition, inputs in table.partition_inputs.items():
            assert set(inputs) <= set(table.inputs), (table, partition)
    assert {key.split("/")[0] for key in TABLE_INPUTS} == {t.name for t in tables.ALL_TABLES} - {
        tables.TABLE_LINEAGE.name
    }


def _string_literals(tree: ast.AST) -> list[ast.Constant]:
    """Every string constant except docstrings (prose about a table may name it; code may not)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_module_but_the_registry_spells_a_table_name():
    names = sorted((t.name for t in tables.ALL_TABLES), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, names)) + r")(?!\w)")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(tables.__file__):
            continue
        for node in _string_literals(ast.parse(path.read_text(encoding="utf-8"))):
            for match in pattern.finditer(node.value):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {match.group(1)}")
    assert not found, "use curatornet_pipeline.tables instead of spelling these names:\n" + "\n".join(found)


def test_asset_modules_do_not_import_each_other():
    """Shared code lives in readers, tables, configs or core; only the code location assembles the assets."""
    asset_modules = {p.stem for p in (PACKAGE / "assets").glob("*.py")} - {"__init__", "metadata"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("definitions.py", "jobs.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            imported = []
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            for module in imported:
                parts = module.split(".")
                if parts[:2] == ["curatornet_pipeline", "assets"] and len(parts) > 2 and parts[2] in asset_modules:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_a_registered_table_is_addressed_by_its_qualified_name():
    assert f"SELECT * FROM {tables.LAST_BASKET_SPLIT}" == "SELECT * FROM split.last_basket_split"
    assert tables.CURATORNET_MODELS.asset_of(tables.RANDOM_SAMPLING) == "curatornet_random_sampling_model"
    assert tables.CURATORNET_MODELS.asset_of(tables.SIX_STRATEGIES) == "curatornet_model"
    assert tables.CURATORNET_MODELS.casts() == {"config": "JSON", "lineage": "JSON", "weights": "BLOB"}
