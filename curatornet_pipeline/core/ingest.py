"""Read the accepted input formats into the two normalized frames every other module uses.

Two source layouts are accepted, the paper's UGallery files and a generic pair of files:

* UGallery: ``inventory.csv`` (``artwork_id_hash, artist_id_hash, upload_timestamp``) and
  ``purchases.csv`` (``user_id_hash, purchase_timestamp, purchased_artwork_ids_hash``), where the
  last column is the text of a Python list of artwork ids; rows of one user with the same timestamp
  are one basket (purchase session), as the authors grouped them.
* Generic: ``items.csv`` (``item_id, artist_id[, upload_timestamp]``) and ``interactions.csv``
  (``user_id, item_id, timestamp[, artist_id]``), one row per purchased item; rows with the same
  user and timestamp form one basket.

Both produce:

* ``artworks``: ``artwork_idx, artwork_id, artist_id, upload_timestamp, source_row``, sorted by
  ``artwork_id`` so that ``artwork_idx`` is the canonical item index.
* ``transactions``: ``user_id, basket_id, purchase_timestamp, artwork_id, artwork_idx, source_row``,
  one row per purchased item, ordered by basket then source row.

Row numbers in messages are 1-based *data* rows (the header is not counted); the physical line in
the file is given alongside because it is what an editor shows. Every input row either becomes
output or raises :class:`InputDataError`; nothing is dropped.
"""

from __future__ import annotations

import ast
import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curatornet_pipeline.core.errors import InputDataError

UGALLERY_FILES = ("purchases.csv", "inventory.csv")
GENERIC_FILES = ("interactions.csv", "items.csv")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")

ARTWORK_COLUMNS = ["artwork_idx", "artwork_id", "artist_id", "upload_timestamp", "source_row"]
TRANSACTION_COLUMNS = ["user_id", "basket_id", "purchase_timestamp", "artwork_id", "artwork_idx", "source_row"]

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# datetime64[ns] covers roughly 1677..2262; epoch seconds outside this cannot be represented.
_MAX_EPOCH_SECONDS = 9.2e9
_MAX_LISTED = 5


# Data rows checked at a time in the purchase/interaction files: a file of any size is validated in bounded
# memory, and a bad row stops the read at the chunk that holds it instead of after the whole file.
CHUNK_ROWS = 100_000


@dataclass
class _CsvTable:
    """A CSV file, or ``offset`` rows into it a chunk of it, read as strings, with the physical line on which
    each data row ends."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray  # int64: line number (1-based, header is line 1) of each data row
    offset: int = 0  # data rows of the file before this chunk
    whole: bool = True  # False for a chunk: counts over "the file" are not known

    def row(self, row_index: int) -> int:
        """The 1-based data row in the file of the chunk's 0-based row ``row_index``."""
        return self.offset + row_index + 1

    def where(self, row_index: int) -> str:
        """Human-readable position of the 0-based data row ``row_index``."""
        return f"row {self.row(row_index)} (line {self.lines[row_index]})"


def _read_csv_table(path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> _CsvTable:
    """Read ``path`` whole and strictly (see :func:`_iter_csv_chunks`)."""
    chunks = list(_iter_csv_chunks(path, required, optional, chunk_rows=None))
    return chunks[0]


def _iter_csv_chunks(
    path: Path, required: Sequence[str], optional: Sequence[str], chunk_rows: int | None
) -> Iterator[_CsvTable]:
    """Read ``path`` strictly, ``chunk_rows`` data rows at a time (all at once for None).

    Every data row must have exactly as many fields as the header. The standard ``csv`` module is
    used instead of ``pandas.read_csv`` because pandas silently turns an extra field into an index
    column and pads short rows, both of which hide bad rows. Bytes that are not UTF-8 and CSV syntax
    errors (an overlong field, a NUL byte) are reported with the data row and line where they occur.
    A caller that checks each chunk before asking for the next stops at the first chunk with a bad row.
    """
    if not path.is_file():
        raise InputDataError(path, "file not found")
    rows: list[list[str]] = []
    lines: list[int] = []
    offset = 0
    record_start = 1
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise InputDataError(path, f"file is empty; expected a header with columns {list(required)}")
            header = [name.strip() for name in header]
            missing = [name for name in required if name not in header]
            if missing:
                raise InputDataError(
                    path,
                    f"missing required column(s) {missing}; columns found: {header}",
                    column=missing[0],
                )
            duplicated = sorted({name for name in header if header.count(name) > 1})
            if duplicated:
                raise InputDataError(path, f"header repeats column(s) {duplicated}", column=duplicated[0])
            while True:
                record_start = reader.line_num + 1  # a quoted field may span lines: errors point at its start
                fields = next(reader, None)
                if fields is None:
                    break
                if not fields:  # a blank line carries no data
                    continue
                if len(fields) != len(header):
                    raise InputDataError(
                        path,
                        f"row {offset + len(rows) + 1} (line {reader.line_num}): expected {len(header)} fields "
                        f"({', '.join(header)}), found {len(fields)}",
                        row=offset + len(rows) + 1,
                    )
                rows.append([value.strip() for value in fields])
                lines.append(reader.line_num)
                if chunk_rows is not None and len(rows) == chunk_rows:
                    yield _chunk(path, header, required, optional, rows, lines, offset, whole=False)
                    offset += len(rows)
                    rows, lines = [], []
    except UnicodeDecodeError:
        raise _not_utf8_error(path) from None
    except csv.Error as exc:
        hint = ""
        if "field larger than field limit" in str(exc):
            hint = (
                f"; no id, timestamp or basket needs {csv.field_size_limit():,} characters, so this is usually "
                "an unclosed quote (\") that swallowed the lines after it"
            )
        if record_start == 1:
            raise InputDataError(path, f"the header (line 1): malformed CSV ({exc}){hint}") from None
        row = offset + len(rows) + 1
        raise InputDataError(path, f"row {row} (line {record_start}): malformed CSV ({exc}){hint}", row=row) from None
    if not rows and not offset:
        raise InputDataError(path, "file has a header but no data rows")
    if rows:
        yield _chunk(path, header, required, optional, rows, lines, offset, whole=chunk_rows is None)


def _chunk(
    path: Path,
    header: list[str],
    required: Sequence[str],
    optional: Sequence[str],
    rows: list[list[str]],
    lines: list[int],
    offset: int,
    whole: bool,
) -> _CsvTable:
    keep = [name for name in header if name in required or name in optional]
    frame = pd.DataFrame(rows, columns=header, dtype=object)[keep]
    return _CsvTable(path, frame, np.asarray(lines, dtype=np.int64), offset, whole)


def _not_utf8_error(path: Path) -> InputDataError:
    """Locate the first byte that is not UTF-8 (line, data row, the bytes) for the error message."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        # Data rows before that line: parse the valid prefix (quoted fields may span lines).
        prefix = data[:line_start].decode("utf-8-sig")
        records = sum(1 for fields in csv.reader(io.StringIO(prefix, newline="")) if fields)
        bad = data[exc.start : exc.end]
        where = f"row {records} (line {line})" if records else f"the header (line {line})"
        return InputDataError(
            path,
            f"{where}: byte(s) {bad!r} at byte offset {exc.start} are not UTF-8 text; "
            "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
            row=records or None,
        )
    return InputDataError(path, "not UTF-8 text")


def _require_non_empty(table: _CsvTable, column: str) -> None:
    """Raise on the first empty value of ``column``."""
    empty = np.flatnonzero(table.frame[column].to_numpy() == "")
    if len(empty):
        i = int(empty[0])
        count = f" ({len(empty)} empty in total)" if table.whole else ""
        raise InputDataError(
            table.path,
            f"{table.where(i)}: empty value in column '{column}'{count}",
            row=table.row(i),
            column=column,
        )


def _parse_timestamps(
    table: _CsvTable, column: str, *, allow_missing: bool, first_seen: dict | None = None
) -> pd.Series:
    """Parse one timestamp column: all epoch seconds (int or float) or all ISO 8601 strings.

    ISO strings with a UTC offset are converted to UTC; all results are timezone-naive
    ``datetime64[ns]``. Empty cells become NaT only when ``allow_missing``. For a file read in
    chunks, pass the same ``first_seen`` dict for every chunk: the file's first value decides the form.
    """
    values = table.frame[column].to_numpy()
    present = values != ""
    if not allow_missing:
        _require_non_empty(table, column)
    is_number = np.array([bool(_NUMBER.match(v)) for v in values])
    present_idx = np.flatnonzero(present)
    result = pd.Series(pd.NaT, index=range(len(values)), dtype="datetime64[ns]")
    if len(present_idx) == 0:
        return result
    first_seen = {} if first_seen is None else first_seen
    if not first_seen:
        first = int(present_idx[0])
        first_seen.update(value=values[first], where=table.where(first), numeric=bool(is_number[first]))
    numeric_column = first_seen["numeric"]
    odd = present_idx[is_number[present_idx] != numeric_column]
    if len(odd):
        i = int(odd[0])
        kinds = ("epoch seconds", "date strings") if numeric_column else ("date strings", "epoch seconds")
        raise InputDataError(
            table.path,
            f"{table.where(i)}: value {values[i]!r} mixes {kinds[1]} into a column of {kinds[0]} "
            f"(first value {first_seen['value']!r} in {first_seen['where']}); use one form per column",
            row=table.row(i),
            column=column,
        )
    if numeric_column:
        seconds = np.array([float(v) for v in values[present_idx]])
        bad = np.flatnonzero(~np.isfinite(seconds) | (np.abs(seconds) > _MAX_EPOCH_SECONDS))
        if len(bad):
            i = int(present_idx[bad[0]])
            raise InputDataError(
                table.path,
                f"{table.where(i)}: {values[i]!r} is not a usable epoch time in seconds "
                f"(must be finite and within +/-{_MAX_EPOCH_SECONDS:.1e}; milliseconds are not accepted)",
                row=table.row(i),
                column=column,
            )
        # Whole seconds are converted as integers so that large epochs keep exact precision.
        if all(float(s).is_integer() for s in seconds):
            parsed = pd.to_datetime(seconds.astype(np.int64), unit="s")
        else:
            parsed = pd.to_datetime(seconds, unit="s")
    else:
        parsed = pd.to_datetime(pd.Series(values[present_idx]), format="ISO8601", utc=True, errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if len(bad):
            i = int(present_idx[bad[0]])
            raise InputDataError(
                table.path,
                f"{table.where(i)}: cannot parse {values[i]!r} as a timestamp "
                "(expected epoch seconds or ISO 8601 such as 2016-03-01 or 2016-03-01T12:30:00Z)",
                row=table.row(i),
                column=column,
            )
        parsed = parsed.dt.tz_convert(None)
    result.iloc[present_idx] = np.asarray(parsed, dtype="datetime64[ns]")
    return result.astype("datetime64[ns]")


# An artwork id names its image file (images/<id>.png) and appears in report file names, so it must be a
# plain file name: no path separators, no "." or "..", no control characters, short enough for any file system.
_MAX_ID_BYTES = 200


def _file_name_problem(artwork_id: str) -> str | None:
    if "/" in artwork_id or "\\" in artwork_id:
        return "contains a path separator"
    if artwork_id in (".", ".."):
        return "is a relative directory name"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in artwork_id):
        return "contains a control character"
    if len(artwork_id.encode("utf-8")) > _MAX_ID_BYTES:
        return f"is longer than {_MAX_ID_BYTES} bytes"
    return None


def _require_file_name_ids(table: _CsvTable, column: str) -> None:
    """Raise on the first artwork id that is not usable as a file name (see above)."""
    for i, artwork_id in enumerate(table.frame[column].to_numpy()):
        problem = _file_name_problem(artwork_id)
        if problem:
            raise InputDataError(
                table.path,
                f"{table.where(i)}: artwork id {artwork_id!r} {problem}; an artwork id names its image file "
                "(images/<id>.png), so it must be a plain file name",
                row=table.row(i),
                column=column,
            )


def _build_artworks(table: _CsvTable, id_column: str, artist_column: str, uploads: pd.Series) -> pd.DataFrame:
    """Validate ids and return the canonical artworks frame sorted by artwork id."""
    _require_non_empty(table, id_column)
    _require_non_empty(table, artist_column)
    ids = table.frame[id_column]
    dup_mask = ids.duplicated(keep=False).to_numpy()
    if dup_mask.any():
        first = int(np.flatnonzero(dup_mask)[0])
        same = np.flatnonzero(ids.to_numpy() == ids.iloc[first])
        places = " and ".join(table.where(int(i)) for i in same)
        raise InputDataError(
            table.path,
            f"artwork id {ids.iloc[first]!r} appears more than once: {places} "
            f"({int(ids.duplicated().sum())} duplicate rows in total)",
            row=table.row(int(same[1])),
            column=id_column,
        )
    _require_file_name_ids(table, id_column)
    artworks = pd.DataFrame(
        {
            "artwork_id": ids.astype(str).to_numpy(),
            "artist_id": table.frame[artist_column].astype(str).to_numpy(),
            "upload_timestamp": uploads.to_numpy(dtype="datetime64[ns]"),
            "source_row": np.arange(1, len(ids) + 1, dtype=np.int64),
        }
    )
    artworks = artworks.sort_values("artwork_id", kind="stable").reset_index(drop=True)
    artworks.insert(0, "artwork_idx", np.arange(len(artworks), dtype=np.int64))
    return artworks[ARTWORK_COLUMNS]


def _artwork_lookup(artworks: pd.DataFrame) -> dict[str, int]:
    return dict(zip(artworks["artwork_id"], artworks["artwork_idx"].astype(int)))


def _parse_basket(text: str, table: _CsvTable, i: int, column: str) -> list[str]:
    """Parse one basket cell such as ``"['a1', 'b2']"`` safely (``ast.literal_eval``, never ``eval``)."""
    try:
        basket = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise InputDataError(
            table.path,
            f"{table.where(i)}: cannot parse basket {text!r} as a Python list of artwork ids ({type(exc).__name__})",
            row=table.row(i),
            column=column,
        ) from None
    if not isinstance(basket, list) or not basket:
        raise InputDataError(
            table.path,
            f"{table.where(i)}: basket {text!r} must be a non-empty list of artwork ids such as \"['a1', 'b2']\"",
            row=table.row(i),
            column=column,
        )
    for item in basket:
        if not isinstance(item, str) or not item.strip():
            raise InputDataError(
                table.path,
                f"{table.where(i)}: basket {text!r} contains {item!r}; every element must be a non-empty string id",
                row=table.row(i),
                column=column,
            )
    return basket


def _unknown_artwork(table: _CsvTable, i: int, column: str, artwork_id: str, catalogue: Path) -> InputDataError:
    return InputDataError(
        table.path,
        f"{table.where(i)}: artwork id {artwork_id!r} is not in {catalogue.name}",
        row=table.row(i),
        column=column,
    )


def _assign_baskets(transactions: pd.DataFrame) -> pd.Series:
    """One basket per (user_id, purchase_timestamp), numbered densely in that order: both formats agree."""
    return transactions.groupby(["user_id", "purchase_timestamp"], sort=True).ngroup()


def _artwork_indices(table: _CsvTable, column: str, artworks: pd.DataFrame, catalogue: Path) -> np.ndarray:
    """The canonical index of the artwork named in each row's ``column``; an unknown id names its row."""
    lookup = _artwork_lookup(artworks)
    ids = table.frame[column].to_numpy()
    idx = np.empty(len(ids), dtype=np.int64)
    for i, artwork_id in enumerate(ids):
        found = lookup.get(artwork_id)
        if found is None:
            raise _unknown_artwork(table, i, column, artwork_id, catalogue)
        idx[i] = found
    return idx


def _finish_transactions(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.sort_values(["basket_id", "source_row"], kind="stable").reset_index(drop=True)
    frame = frame.astype({"basket_id": np.int64, "artwork_idx": np.int64, "source_row": np.int64})
    frame["purchase_timestamp"] = frame["purchase_timestamp"].astype("datetime64[ns]")
    return frame[TRANSACTION_COLUMNS]


def read_ugallery(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``inventory.csv`` and ``purchases.csv`` from ``folder`` into (artworks, transactions).

    Every item of a purchases row becomes one transactions row with ``source_row`` pointing back at
    that purchases row. Rows of one user with the same timestamp form one basket (so a session split
    over two rows is held out, or kept for training, as a whole); basket ids are dense in
    (user_id, timestamp) order.
    """
    folder = Path(folder)
    inventory = _read_csv_table(folder / "inventory.csv", ["artwork_id_hash", "artist_id_hash", "upload_timestamp"])
    uploads = _parse_timestamps(inventory, "upload_timestamp", allow_missing=False)
    artworks = _build_artworks(inventory, "artwork_id_hash", "artist_id_hash", uploads)

    lookup = _artwork_lookup(artworks)
    first_time: dict = {}
    parts = []
    columns = ["user_id_hash", "purchase_timestamp", "purchased_artwork_ids_hash"]
    for purchases in _iter_csv_chunks(folder / "purchases.csv", columns, (), CHUNK_ROWS):
        _require_non_empty(purchases, "user_id_hash")
        times = _parse_timestamps(
            purchases, "purchase_timestamp", allow_missing=False, first_seen=first_time
        ).to_numpy()
        users = purchases.frame["user_id_hash"].to_numpy()
        baskets = purchases.frame["purchased_artwork_ids_hash"].to_numpy()
        out_user, out_time, out_item, out_idx, out_row = [], [], [], [], []
        for i, text in enumerate(baskets):
            for artwork_id in _parse_basket(text, purchases, i, "purchased_artwork_ids_hash"):
                idx = lookup.get(artwork_id)
                if idx is None:
                    raise _unknown_artwork(purchases, i, "purchased_artwork_ids_hash", artwork_id, inventory.path)
                out_user.append(users[i])
                out_time.append(times[i])
                out_item.append(artwork_id)
                out_idx.append(idx)
                out_row.append(purchases.row(i))
        parts.append(
            pd.DataFrame(
                {
                    "user_id": pd.Series(out_user, dtype=object).astype(str),
                    "purchase_timestamp": np.asarray(out_time, dtype="datetime64[ns]"),
                    "artwork_id": pd.Series(out_item, dtype=object).astype(str),
                    "artwork_idx": np.asarray(out_idx, dtype=np.int64),
                    "source_row": np.asarray(out_row, dtype=np.int64),
                }
            )
        )
    transactions = pd.concat(parts, ignore_index=True)
    transactions["basket_id"] = _assign_baskets(transactions)
    return artworks, _finish_transactions(transactions)


def read_generic(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``items.csv`` and ``interactions.csv`` from ``folder`` into (artworks, transactions).

    ``items.csv`` may omit ``upload_timestamp`` (all NaT) or leave cells empty (NaT for that item).
    Interaction rows with equal (user_id, timestamp) form one basket; basket ids are assigned
    densely in (user_id, timestamp) order. An optional ``artist_id`` column in interactions must
    agree with ``items.csv`` when filled.
    """
    folder = Path(folder)
    items = _read_csv_table(folder / "items.csv", ["item_id", "artist_id"], ["upload_timestamp"])
    if "upload_timestamp" in items.frame.columns:
        uploads = _parse_timestamps(items, "upload_timestamp", allow_missing=True)
    else:
        uploads = pd.Series(pd.NaT, index=range(len(items.frame)), dtype="datetime64[ns]")
    artworks = _build_artworks(items, "item_id", "artist_id", uploads)

    first_time: dict = {}
    parts = []
    columns = ["user_id", "item_id", "timestamp"]
    for interactions in _iter_csv_chunks(folder / "interactions.csv", columns, ["artist_id"], CHUNK_ROWS):
        _require_non_empty(interactions, "user_id")
        _require_non_empty(interactions, "item_id")
        times = _parse_timestamps(interactions, "timestamp", allow_missing=False, first_seen=first_time)
        item_ids = interactions.frame["item_id"].to_numpy()
        idx = _artwork_indices(interactions, "item_id", artworks, items.path)
        if "artist_id" in interactions.frame.columns:
            given = interactions.frame["artist_id"].to_numpy()
            expected = artworks["artist_id"].to_numpy()[idx]
            conflict = np.flatnonzero((given != "") & (given != expected))
            if len(conflict):
                i = int(conflict[0])
                raise InputDataError(
                    interactions.path,
                    f"{interactions.where(i)}: artist_id {given[i]!r} contradicts items.csv, "
                    f"which gives artist {expected[i]!r} for item {item_ids[i]!r}",
                    row=interactions.row(i),
                    column="artist_id",
                )
        parts.append(
            pd.DataFrame(
                {
                    "user_id": interactions.frame["user_id"].astype(str).to_numpy(),
                    "purchase_timestamp": times.to_numpy(dtype="datetime64[ns]"),
                    "artwork_id": pd.Series(item_ids, dtype=object).astype(str).to_numpy(),
                    "artwork_idx": idx,
                    "source_row": interactions.offset + np.arange(1, len(item_ids) + 1, dtype=np.int64),
                }
            )
        )
    transactions = pd.concat(parts, ignore_index=True)
    transactions["basket_id"] = _assign_baskets(transactions)
    return artworks, _finish_transactions(transactions)


def detect_source_format(folder: Path) -> str:
    """Return ``"ugallery"`` or ``"generic"`` according to which pair of CSV files ``folder`` holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputDataError(folder, "input folder not found")
    has_ugallery = all((folder / name).is_file() for name in UGALLERY_FILES)
    has_generic = all((folder / name).is_file() for name in GENERIC_FILES)
    if has_ugallery and has_generic:
        raise InputDataError(
            folder,
            f"holds both UGallery files {list(UGALLERY_FILES)} and generic files {list(GENERIC_FILES)}; "
            "keep one format per folder",
        )
    if has_ugallery:
        return "ugallery"
    if has_generic:
        return "generic"
    present = sorted(p.name for p in folder.iterdir() if p.is_file())
    raise InputDataError(
        folder,
        f"no recognised input files: expected {' + '.join(UGALLERY_FILES)} (UGallery format) or "
        f"{' + '.join(GENERIC_FILES)} (generic format); files present: {present[:10]}",
    )


def read_source(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read (artworks, transactions) from ``folder`` in whichever format it holds."""
    fmt = detect_source_format(folder)
    return read_ugallery(folder) if fmt == "ugallery" else read_generic(folder)


def find_image_files(folder: Path, artwork_ids: Sequence[str]) -> dict[str, Path]:
    """Map every artwork id to its image ``folder/images/<id>.<jpg|jpeg|png|webp>`` (extension case-insensitive).

    Raises when the images folder is absent, when an id has no image (listing the first few and the
    count), when one id has several candidate files or when an image is a link that resolves outside the
    folder. Images of unknown ids are ignored.
    """
    images_dir = Path(folder) / "images"
    if not images_dir.is_dir():
        raise InputDataError(
            images_dir, "images folder not found; expected one image per artwork named <artwork_id>.jpg/.png/.webp"
        )
    wanted = set(artwork_ids)
    candidates: dict[str, list[Path]] = {}
    real_dir = images_dir.resolve()
    for path in images_dir.iterdir():
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.stem in wanted and path.is_file():
            # A link leading out of the folder would feed (and let the app serve) any file the process can read.
            target = path.resolve()
            if not target.is_relative_to(real_dir):
                raise InputDataError(
                    path,
                    f"is a link to {target}, outside the images folder {real_dir}; copy the image into the folder",
                )
            candidates.setdefault(path.stem, []).append(path)
    ambiguous = sorted(stem for stem, paths in candidates.items() if len(paths) > 1)
    if ambiguous:
        names = sorted(p.name for p in candidates[ambiguous[0]])
        raise InputDataError(
            images_dir,
            f"{len(ambiguous)} artwork(s) have more than one image file, e.g. {names}; keep one per artwork",
        )
    missing = [artwork_id for artwork_id in artwork_ids if artwork_id not in candidates]
    if missing:
        raise InputDataError(
            images_dir,
            f"{len(missing)} of {len(artwork_ids)} artworks have no image file "
            f"({', '.join(IMAGE_EXTENSIONS)}), e.g. {missing[:_MAX_LISTED]}",
        )
    return {artwork_id: candidates[artwork_id][0] for artwork_id in artwork_ids}


# --- serving input: explicit availability (the visitor likes are read by core/feedback.py) ------------------

AVAILABILITY_COLUMN = "available"
_TRUE_WORDS = {"1", "true", "yes", "y", "t"}
_FALSE_WORDS = {"0", "false", "no", "n", "f"}


def read_availability(folder: Path) -> pd.Series | None:
    """The optional ``available`` column of a generic ``items.csv`` (artwork id -> bool), or None without one.

    Values: 1/0, true/false, yes/no (any case). An empty cell means "not stated": the sold/print rule decides.
    """
    folder = Path(folder)
    if detect_source_format(folder) != "generic":
        return None
    table = _read_csv_table(folder / "items.csv", ["item_id"], [AVAILABILITY_COLUMN])
    if AVAILABILITY_COLUMN not in table.frame.columns:
        return None
    values = table.frame[AVAILABILITY_COLUMN].str.lower().to_numpy()
    bad = np.flatnonzero([v not in _TRUE_WORDS | _FALSE_WORDS | {""} for v in values])
    if len(bad):
        i = int(bad[0])
        raise InputDataError(
            table.path,
            f"{table.where(i)}: availability {values[i]!r} is not one of 1/0, true/false, yes/no (or empty)",
            row=table.row(i),
            column=AVAILABILITY_COLUMN,
        )
    stated = values != ""
    flags = pd.Series([v in _TRUE_WORDS for v in values[stated]], index=table.frame["item_id"].to_numpy()[stated])
    return flags.astype(bool)
