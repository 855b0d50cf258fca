"""The Parquet data layer: atomic group publish, kills leave nothing visible, cleanup, catalog, vectors."""

import subprocess
import sys
import textwrap
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from curatornet_pipeline.store import catalog
from curatornet_pipeline.store.data_root import DataRoot, ManifestError
from curatornet_pipeline.store.parquet import read_vectors
from curatornet_pipeline.store.writes import FrameWrite, publish_frames

RECORDS = catalog.RecordTable("meta.records", (("t", "VARCHAR"), ("p", "VARCHAR"), ("run_id", "VARCHAR")))


@pytest.fixture
def root(tmp_path):
    return DataRoot(tmp_path / "tables")


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def _publish(root, con, **tables):
    return publish_frames(root, con, [FrameWrite(name.replace("__", "."), frame) for name, frame in tables.items()])


def _values(connection, table, column="x"):
    return connection.execute(f"SELECT list({column} ORDER BY {column}) FROM {table}").fetchone()[0]


def _data_files(root):
    return sorted((root.path / "files").glob("*/*.parquet"))


def test_a_group_becomes_visible_together_and_an_open_reader_keeps_its_state(root, con):
    _publish(root, con, s__a=pd.DataFrame({"x": [1, 2]}), s__b=pd.DataFrame({"x": [10]}))
    reader, _ = catalog.connect(root)
    _publish(root, con, s__a=pd.DataFrame({"x": [3]}), s__b=pd.DataFrame({"x": [30, 40]}))
    # The reader opened before the second write still sees the first write of both tables, never a mix.
    assert (_values(reader, "s.a"), _values(reader, "s.b")) == ([1, 2], [10])
    fresh, manifest = catalog.connect(root)
    assert (_values(fresh, "s.a"), _values(fresh, "s.b")) == ([3], [30, 40])
    assert manifest.version == 2


def test_a_failed_group_write_publishes_nothing_and_leaves_no_file(root, con):
    _publish(root, con, s__a=pd.DataFrame({"x": [1, 2]}), s__b=pd.DataFrame({"x": [10]}))
    files_before = _data_files(root)
    with pytest.raises(duckdb.Error):
        publish_frames(
            root,
            con,
            [
                FrameWrite("s.a", pd.DataFrame({"x": [9]})),
                FrameWrite("s.b", pd.DataFrame({"x": ["not a number"]}), casts={"x": "INTEGER"}),
            ],
        )
    reader, manifest = catalog.connect(root)
    assert manifest.version == 1
    assert (_values(reader, "s.a"), _values(reader, "s.b")) == ([1, 2], [10])
    assert _data_files(root) == files_before
    assert list((root.path / ".tmp").glob("*.parquet")) == []


_KILLED_WRITER = """
import os, signal, sys
import duckdb, pandas as pd
from curatornet_pipeline.store.data_root import DataRoot
from curatornet_pipeline.store.parquet import write_frame
root = DataRoot(sys.argv[1])
write_frame(duckdb.connect(), pd.DataFrame({"x": [666]}), {}, root.temporary_file())
if sys.argv[2] == "in-lock":
    with root.locked():
        os.kill(os.getpid(), signal.SIGKILL)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("where", ["staging", "in-lock"])
def test_a_killed_writer_leaves_nothing_visible_never_blocks_and_is_cleaned_up(root, con, tmp_path, where):
    _publish(root, con, s__a=pd.DataFrame({"x": [1]}))
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(_KILLED_WRITER))
    done = subprocess.run([sys.executable, str(script), str(root.path), where], timeout=120)
    assert done.returncode == -9
    leftovers = list((root.path / ".tmp").glob("*.parquet"))
    assert len(leftovers) == 1
    reader, _ = catalog.connect(root)
    assert _values(reader, "s.a") == [1]
    started = time.monotonic()
    _publish(root, con, s__a=pd.DataFrame({"x": [2]}))  # the dead process's lock does not hold this up
    assert time.monotonic() - started < 30
    assert not leftovers[0].exists()
    assert _values(catalog.connect(root)[0], "s.a") == [2]


def test_only_the_current_and_the_previous_file_of_a_table_are_kept(root, con):
    for value in range(4):
        _publish(root, con, s__a=pd.DataFrame({"x": [value]}))
        if value == 2:
            reader, _ = catalog.connect(root)
    assert len(_data_files(root)) == 2
    # The reader opened one write ago still reads its file (kept as the previous version).
    assert _values(reader, "s.a") == [2]
    assert _values(catalog.connect(root)[0], "s.a") == [3]


def test_a_partition_write_keeps_the_other_partitions_and_a_whole_write_replaces_them(root, con):
    def part(key, values):
        return FrameWrite("s.p", pd.DataFrame({"k": key, "x": values}), partition=key)

    publish_frames(root, con, [part("one", [1, 2]), part("two", [3])])
    publish_frames(root, con, [part("one", [5])])
    assert _values(catalog.connect(root)[0], "s.p") == [3, 5]
    reader, _ = catalog.connect(root)
    publish_frames(root, con, [FrameWrite("s.p", pd.DataFrame({"k": ["all"], "x": [7]}))])
    assert _values(catalog.connect(root)[0], "s.p") == [7]
    # The previous version's two partition files are kept for the reader opened before the whole write.
    assert _values(reader, "s.p") == [3, 5]
    assert len(_data_files(root)) == 1 + 2


def test_vectors_keep_their_fixed_width_and_come_back_as_one_float32_matrix(root, con):
    rows = 5000  # more than one Arrow batch
    matrix = np.random.default_rng(0).normal(size=(rows, 7)).astype(np.float32)
    frame = pd.DataFrame({"i": range(rows), "v": list(matrix)})
    publish_frames(root, con, [FrameWrite("f.v", frame, casts={"v": "FLOAT[7]"})])
    reader, _ = catalog.connect(root)
    assert dict(reader.execute("DESCRIBE f.v").fetchall()[i][:2] for i in range(2)) == {"i": "BIGINT", "v": "FLOAT[7]"}
    back = read_vectors(reader, "SELECT v FROM f.v ORDER BY i", "v")
    assert back.dtype == np.float32 and back.shape == (rows, 7)
    np.testing.assert_array_equal(back, matrix)
    tail = read_vectors(reader, "SELECT v FROM f.v WHERE i >= ? ORDER BY i", "v", [4998])
    np.testing.assert_array_equal(tail, matrix[4998:])
    assert read_vectors(reader, "SELECT v FROM f.v WHERE i < 0", "v").shape == (0, 0)


def test_the_catalog_file_holds_views_and_records_and_is_replaced_under_an_open_reader(root, con, tmp_path):
    target = tmp_path / "catalog.duckdb"
    first = publish_frames(
        root,
        con,
        [FrameWrite("s.a", pd.DataFrame({"x": [1]}), record={"run_id": "r1"})],
        after=lambda manifest: catalog.write_catalog(root, manifest, target, RECORDS),
    )
    assert first.version == 1
    user = duckdb.connect(str(target), read_only=True)
    publish_frames(
        root,
        con,
        [FrameWrite("s.a", pd.DataFrame({"x": [2]}), record={"run_id": "r2"})],
        after=lambda manifest: catalog.write_catalog(root, manifest, target, RECORDS),
    )
    assert _values(user, "s.a") == [1]  # a user's open catalog keeps working on the previous files
    user.close()
    with duckdb.connect(str(target), read_only=True) as again:
        assert _values(again, "s.a") == [2]
        (table, key, record), = again.execute(f"SELECT * FROM {RECORDS.name}").fetchall()
        assert (table, key, record) == ("s.a", "", "r2")
        kinds = dict(again.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
        assert kinds["a"] == "VIEW"


def test_publish_adds_what_depends_on_the_published_state(root, con):
    publish_frames(root, con, [FrameWrite("s.a", pd.DataFrame({"x": [1]}))])
    seen = []
    manifest = publish_frames(
        root,
        con,
        [FrameWrite("s.b", pd.DataFrame({"x": [1]}))],
        annotate=lambda current, write: seen.append(sorted(current.tables)) or {"inputs_seen": sorted(current.tables)},
    )
    assert seen == [["s.a"]]
    assert manifest.tables["s.b"].partitions[""].record == {"inputs_seen": ["s.a"]}


def test_a_damaged_manifest_is_one_sentence_naming_the_file(root, con):
    _publish(root, con, s__a=pd.DataFrame({"x": [1]}))
    root.manifest_path.write_text('{"version": 1, "tab')
    with pytest.raises(ManifestError, match="manifest.json is damaged.*rerun `curatornet materialize`"):
        catalog.connect(root)
