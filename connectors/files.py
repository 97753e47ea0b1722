"""CSV, Parquet and JSON-lines files under a configured root, read with pyarrow.dataset.

Projection and row predicates are pushed into the scan (Parquet skips row groups by their
statistics); the limit stops the scan early. Reading runs in a thread of the stream's own one
unit ahead of the consumer (CSV a piece of about 4 MiB cut at line ends, its batches at once;
JSON lines block by block; Parquet batch by batch, row group by row group), so memory stays
bounded whatever the file size and however slowly the client reads.

The files are opened and their dataset (schema, fragments) built once, then shared by every
request while a ``stat`` of each shows it unchanged (device, inode, size, mtime, ctime);
a changed file is opened again, and the replaced dataset closed when its last stream ends.
The files are confined to the root without following links the
kernel's way (``connectors.paths``), and pyarrow reads the descriptors those walks yield
(``connectors._fdfs``): a link swapped after the check cannot lead the read out of the root.
Every read goes through the dataset's confined filesystem, the block readers too.

A CSV or JSON lines file of at most ``CACHED_TEXT`` bytes is parsed whole (every column,
the dataset's types) and its table kept while an ``fstat`` of the descriptor each read
opens shows it unchanged (device, inode, size, mtime, ctime) and that stamp was settled
when the table was parsed (mtime and ctime ``SETTLED_NS`` or more before the ``fstat``:
git's racy-clean rule, a write within the same timestamp tick keeps the stamp); the kept
tables are bounded by ``CACHE_BYTES`` in the process (every dataset together), least
recently used dropped first, and each dataset's own dropped when it is closed.
Filters and columns are applied per request, to the kept table as to a parsed one.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from connectors import csv_pieces
from connectors._arrow import ds, pa, pacsv, pajson
from connectors._fdfs import ConfinedFiles, native_file
from connectors.base import Batches, Connector
from connectors.errors import SourceRejected
from connectors.paths import ConfinedRoot
from connectors.plan import Pushdown
from connectors.query import Op, Predicate, Query


class FileFormat(StrEnum):
    """The file formats the connector reads."""

    CSV = "csv"
    PARQUET = "parquet"
    JSONL = "jsonl"


@dataclass(frozen=True)
class FilesConfig:
    """A dataset: ``path`` (a file or a directory of files) relative to ``root``.

    ``schema`` fixes column types (recommended for CSV and JSON lines, where they are
    otherwise inferred from the first block).
    """

    root: Path
    path: str
    format: FileFormat
    schema: pa.Schema | None = None
    batch_size: int = 64 * 1024


class FilesConnector(Connector):
    """A dataset stored as files under a root the provider configured."""

    kind = "files"

    def __init__(self, name: str, config: FilesConfig, *, description: str = "") -> None:
        super().__init__(name, description=description)
        self._config = config
        self._opened: _Opened | None = None  # the files and their dataset, while unchanged
        self._retired: list[_Opened] = []  # replaced, still read by a stream in flight
        self._tables = _Tables(config.format)  # small files' parsed tables, while unchanged
        self._stamped: tuple[object, _Stamp | None] | None = None  # (task, its step's stamp)

    @property
    def pushdown(self) -> frozenset[Pushdown]:
        """Filters and the limit; aggregates and ordering happen in the gateway."""
        return frozenset({Pushdown.FILTER, Pushdown.LIMIT})

    async def schema(self) -> pa.Schema:
        """The dataset's schema, asked of the files again when they changed."""
        if self._opened is None or self._opened.stamp != self._stamp_now():
            self._schema_cache = None
        return await super().schema()

    async def aclose(self) -> None:
        """Close the files held open, those of streams still in flight included."""
        opened, self._opened = self._opened, None
        for each in [*self._retired, *([opened] if opened else [])]:
            each.files.close()
        self._retired.clear()
        self._tables.clear()
        await super().aclose()

    def _stamp_now(self) -> _Stamp | None:
        """The files' stamp, taken once per step of a task.

        A request's checks that run back to back, with no wait between them (the schema's,
        the stream's, the read's), share one stamp. Another task never reuses it, and it is
        forgotten before this one runs again (the loop's next pass; the task resumes only
        after that callback): every check still compares a stamp taken in its own step.
        """
        task = asyncio.current_task()
        if self._stamped is not None and self._stamped[0] is task:
            return self._stamped[1]
        stamp = _stamp(self._config)
        if self._stamped is None:
            asyncio.get_running_loop().call_soon(self._forget_stamp)
        self._stamped = (task, stamp)
        return stamp

    def _forget_stamp(self) -> None:
        self._stamped = None

    async def _schema(self) -> pa.Schema:
        opened = await self._acquire()
        try:
            return self._config.schema or opened.dataset.schema
        finally:
            self._release(opened)

    async def _acquire(self) -> _Opened:
        """The files and their dataset, opened again only when the files changed.

        The stamp is taken before the files are opened: metadata never outlives a change
        it might not show. Every read still opens its files through the confined walk.
        """
        stamp = self._stamp_now()
        opened = self._opened
        if opened is None or opened.stamp != stamp:
            fresh = await asyncio.to_thread(self._open_dataset, stamp)
            opened = self._opened  # another request may have opened them meanwhile
            if opened is not None and opened.stamp == stamp:
                fresh.files.close()
            else:
                self._install(fresh)
                opened = fresh
        opened.users += 1
        return opened

    def _install(self, fresh: _Opened) -> None:
        old, self._opened = self._opened, fresh
        self._schema_cache = None
        if old is not None:
            self._retired.append(old)
            self._release(old, used=False)

    def _release(self, opened: _Opened, *, used: bool = True) -> None:
        """One use ended; a replaced dataset is closed when its last stream ends."""
        opened.users -= int(used)
        if opened is not self._opened and opened.users == 0 and opened in self._retired:
            self._retired.remove(opened)
            opened.files.close()

    def _open_dataset(self, stamp: _Stamp | None) -> _Opened:
        files = self._open()
        try:
            return _Opened(stamp, files, self._dataset(files))
        except BaseException:
            files.close()
            raise

    async def _batches(self, query: Query) -> Batches:
        opened = await self._acquire()
        units = None
        try:
            units = ahead(self._read(opened.dataset, query))
            left = query.limit
            async for unit in units:
                for batch in unit:
                    if left is not None and left <= 0:
                        return
                    if batch.num_rows:
                        yield batch
                        left = None if left is None else left - batch.num_rows
        finally:
            if units is not None:
                await units.aclose()  # waits for the read in flight (threads cannot be cancelled)
            self._release(opened)

    def _read(
        self, dataset: Any, query: Query
    ) -> Iterator[list[pa.RecordBatch] | Last[list[pa.RecordBatch]]]:
        """The files' batches in units (a CSV piece's, a JSON lines block's, one Parquet
        batch), read only as fast as they are asked for.

        Not ``dataset.scanner().to_batches()`` over all files: the scanner reads ahead of a
        slow consumer (a client on a slow link) until about a gigabyte is queued (Acero's
        default back-pressure threshold). CSV is read in pieces (``connectors.csv_pieces``:
        pyarrow's streaming CSV reader reads 32 blocks ahead), JSON lines block by block;
        Parquet is scanned one row group at a time (statistics still skip row groups).
        """
        fmt = self._config.format
        if fmt is FileFormat.CSV:
            return _csv_batches(dataset, query, self._tables)
        if fmt is FileFormat.JSONL:
            where = expression(self._as_read(query.where))
            return _json_batches(dataset, query, where, self._tables)
        if fmt is FileFormat.PARQUET:
            return _single(_row_groups(dataset, query, self._config.batch_size))
        return _single(iter(self._scanner(dataset, query).to_batches()))

    def _scanner(self, dataset: Any, query: Query) -> Any:
        return dataset.scanner(
            columns=list(query.columns),
            filter=expression(self._as_read(query.where)),
            batch_size=self._config.batch_size,
            batch_readahead=2,
            fragment_readahead=1,
        )

    def _open(self) -> ConfinedFiles:
        return ConfinedFiles(ConfinedRoot(self._config.root, self._config.path))

    def _dataset(self, files: ConfinedFiles) -> Any:
        try:
            return ds.dataset(
                files.paths,
                filesystem=files.filesystem(),
                schema=self._read_schema(),
                format=self._format(),
            )
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceRejected(
                f"{self.name}: the files do not read as {self._config.format}"
            ) from exc

    def _read_schema(self) -> pa.Schema | None:
        """The declared schema; JSON has no dates, so JSON lines read them as timestamps."""
        schema = self._config.schema
        if schema is None or self._config.format is not FileFormat.JSONL:
            return schema
        return pa.schema([_json_field(f) for f in schema])

    def _as_read(self, where: tuple[Predicate, ...]) -> tuple[Predicate, ...]:
        """Date values as midnight timestamps, for the JSON lines date columns."""
        read = self._read_schema()
        if read is None or read == self._config.schema:
            return where
        return tuple(
            _midnight(p)
            if pa.types.is_timestamp(read.field(p.column).type)
            and isinstance(p.value, date | tuple)
            else p
            for p in where
        )

    def _format(self) -> Any:
        fmt, schema = self._config.format, self._config.schema
        if fmt is FileFormat.PARQUET:
            return ds.ParquetFileFormat()
        if fmt is FileFormat.JSONL:
            return ds.JsonFileFormat()
        types = {f.name: f.type for f in schema} if schema is not None else {}
        convert = pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
        )  # an unquoted empty field is null, a quoted one ("") an empty string
        return ds.CsvFileFormat(convert_options=convert)


T = TypeVar("T")


class Last(Generic[T]):
    """A unit its source knows to be its last: ``ahead`` asks for no other."""

    __slots__ = ("unit",)

    def __init__(self, unit: T) -> None:
        self.unit = unit


_Stamp = tuple[tuple[str | int, ...], ...]
_STAMP_ENTRIES = 10_000  # more files than this (or a link loop): stamped as None, never reused


@dataclass(eq=False)
class _Opened:
    """The confined files and their pyarrow dataset (schema, fragments), shared by requests
    while the files' stamp is unchanged."""

    stamp: _Stamp | None  # None: could not be stamped, so never reused
    files: ConfinedFiles
    dataset: Any
    users: int = 0


def _stamp(config: FilesConfig) -> _Stamp | None:
    """(name, device, inode, size, mtime, ctime) of the root, the path and every file under it,
    through links and of the links themselves; None when any cannot be read.

    A few ``stat`` calls: the change check each request pays instead of opening the dataset.
    ctime is in it because a rewrite can keep size and mtime but never ctime.
    """
    target = config.root / config.path
    try:
        stamp = [_entry(".", config.root), _entry("", target)]
        if stamp[1][-1] == "dir":
            for top, dirs, files in os.walk(target, followlinks=True):  # as the walker does
                names = sorted([*dirs, *files])
                if len(stamp) + len(names) > _STAMP_ENTRIES:  # counted before any is read
                    return None
                stamp += [_entry(str(Path(top, n)), Path(top, n)) for n in names]
        return tuple(entry[:-1] for entry in stamp)
    except (OSError, ValueError):
        return None


def _entry(name: str, path: Path) -> tuple[str | int, ...]:
    """(name, device, inode, size, mtime, ctime of what ``path`` leads to, inode of ``path``
    itself, whether it leads to a directory): two ``stat`` calls for a link, one for the rest."""
    itself = path.lstat()
    info = path.stat() if stat.S_ISLNK(itself.st_mode) else itself
    return (name, *_info(info), itself.st_ino, "dir" if stat.S_ISDIR(info.st_mode) else "")


def _info(info: os.stat_result) -> tuple[int, int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


CACHED_TEXT = 1 << 20  # a CSV file of at most this many bytes is parsed whole, its table kept
CACHE_BYTES = 32 << 20  # the kept tables' Arrow buffers, in this process
SETTLED_NS = 2_000_000_000  # a stamp this much older than its fstat is trusted (racy rule)
_now_ns = time.time_ns  # the clock the racy rule reads (the tests move it)
_fstat = os.fstat

_FileStamp = tuple[int, int, int, int, int]  # device, inode, size, mtime, ctime


@dataclass(frozen=True, eq=False)
class _Kept:
    stamp: _FileStamp
    schema: pa.Schema  # the types it was parsed with
    tables: tuple[pa.Table, ...]
    size: int  # bytes of Arrow buffers
    owner: _Tables  # the dataset that kept it (closing it drops it)


class _KeptTables:
    """Every dataset's kept tables, by device, inode and format, least recently used dropped
    first once ``CACHE_BYTES`` of Arrow buffers are kept in this process. Used from the
    reading threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[int, int, str], _Kept] = OrderedDict()
        self.size = 0

    def get(self, key: tuple[int, int, str], stamp: _FileStamp, schema: pa.Schema) -> _Kept | None:
        """What is kept for the file of exactly this stamp, parsed with these types."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept.stamp != stamp or not kept.schema.equals(schema):
                return None
            self._kept.move_to_end(key)
            return kept

    def put(self, key: tuple[int, int, str], kept: _Kept) -> None:
        """Keep ``kept`` for its file (replacing what the file had)."""
        limit = CACHE_BYTES
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self.size -= old.size
            if kept.size > limit:
                return
            while self.size + kept.size > limit:
                self.size -= self._kept.popitem(last=False)[1].size
            self._kept[key] = kept
            self.size += kept.size

    def drop(self, owner: _Tables) -> None:
        """Drop what ``owner`` kept."""
        with self._lock:
            for key in [k for k, kept in self._kept.items() if kept.owner is owner]:
                self.size -= self._kept.pop(key).size

    def size_of(self, owner: _Tables) -> int:
        """Bytes of what ``owner`` kept."""
        with self._lock:
            return sum(kept.size for kept in self._kept.values() if kept.owner is owner)

    def clear(self) -> None:
        """Drop every kept table."""
        with self._lock:
            self._kept.clear()
            self.size = 0


#: The process's kept tables (all datasets share the one bound).
KEPT = _KeptTables()


class _Tables:
    """One dataset's view of the kept tables (``KEPT``): its file format, what it kept."""

    def __init__(self, kind: str) -> None:
        self._kind = kind

    def get(self, stamp: _FileStamp, schema: pa.Schema) -> tuple[pa.Table, ...] | None:
        """The tables kept for a file of exactly this stamp, parsed with these types in
        this dataset's format (by any dataset of it)."""
        kept = KEPT.get((*stamp[:2], self._kind), stamp, schema)
        return None if kept is None else kept.tables

    def put(self, stamp: _FileStamp, schema: pa.Schema, tables: tuple[pa.Table, ...]) -> None:
        """Keep ``tables`` for the file of ``stamp`` (replacing what the file had)."""
        size = sum(t.get_total_buffer_size() for t in tables)
        KEPT.put((*stamp[:2], self._kind), _Kept(stamp, schema, tables, size, self))

    @property
    def size(self) -> int:
        """Bytes of the tables this dataset kept."""
        return KEPT.size_of(self)

    def clear(self) -> None:
        """Drop the tables this dataset kept."""
        KEPT.drop(self)


JSON_BLOCK = 1 << 20  # bytes of JSON lines text parsed per batch
SHARED_READS = 2  # reads of a stream on the shared pool before it gets a thread of its own


def _csv_batches(
    dataset: Any, query: Query, tables: _Tables | None = None
) -> Iterator[list[pa.RecordBatch] | Last[list[pa.RecordBatch]]]:
    """The CSV files one piece (about 4 MiB of text) per call (``connectors.csv_pieces``),
    as the piece's batches (one per parser block); a small file whole, in one call, the
    last file's as ``Last``."""
    schema = dataset.schema
    read = list(dict.fromkeys([*query.columns, *(p.column for p in query.where)]))
    convert = _csv_convert(schema, read)
    where = expression(query.where)
    files: ConfinedFiles = dataset.filesystem.handler
    paths = list(dataset.files)

    def parse(text: bytes) -> tuple[tuple[pa.Table, ...], bool]:
        try:
            return tuple(csv_pieces.read(pa.BufferReader(text), _csv_convert(schema, None))), True
        except pa.ArrowException:  # a value no column asked for may not fit: read as asked
            return tuple(csv_pieces.read(pa.BufferReader(text), convert)), False

    for n, path in enumerate(paths):
        got = _opened(files, path, schema, parse, tables)
        if not isinstance(got, int):
            unit = [b for table in got for b in _chosen(table, where, query.columns)]
            yield Last(unit) if n == len(paths) - 1 else unit
            continue
        with native_file(got) as stream:  # says its length
            for table in csv_pieces.read(stream, convert):
                chosen = table if where is None else table.filter(where)
                del table  # the unfiltered piece is not held while the next one is read
                yield chosen.select(list(query.columns)).to_batches()
                del chosen


def _csv_convert(schema: pa.Schema, columns: list[str] | None) -> Any:
    """The dataset's types and the null rules of ``_format``; ``columns`` only, if given."""
    return pacsv.ConvertOptions(
        column_types={f.name: f.type for f in schema},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        include_columns=columns,
    )


def _chosen(table: pa.Table, where: Any, columns: tuple[str, ...]) -> list[pa.RecordBatch]:
    chosen = table if where is None else table.filter(where)
    batches: list[pa.RecordBatch] = chosen.select(list(columns)).to_batches()
    return batches


_Parse = Callable[[bytes], tuple[tuple[pa.Table, ...], bool]]  # tables, whether to keep them


def _opened(
    files: ConfinedFiles, path: str, schema: pa.Schema, parse: _Parse, tables: _Tables | None
) -> int | tuple[pa.Table, ...]:
    """``path`` opened through the confined walk: a small file's tables (the descriptor
    closed), or the descriptor of a larger one, to read in steps (the caller closes it)."""
    fd = files.open_descriptor(path)  # through the confined walk, never by name
    try:
        whole = _whole(fd, schema, parse, tables)
    except BaseException:
        os.close(fd)
        raise
    if whole is None:
        return fd
    os.close(fd)
    return whole


def _whole(
    fd: int, schema: pa.Schema, parse: _Parse, tables: _Tables | None
) -> tuple[pa.Table, ...] | None:
    """A small file's tables (every column), kept ones when its stamp is unchanged; None
    for a file larger than ``CACHED_TEXT``.

    The clock is read before the ``fstat``: a stamp is trusted only when mtime and ctime are
    ``SETTLED_NS`` older than it, so any later write moves ctime past the kept stamp.
    """
    now = _now_ns()
    info = _fstat(fd)
    if info.st_size > CACHED_TEXT:
        return None
    stamp = _info(info)
    kept = None if tables is None else tables.get(stamp, schema)
    if kept is not None:
        return kept
    text = _read_all(fd, info.st_size)  # the stamped size: a file growing meanwhile is cut
    parsed, keep = parse(text)
    settled = now - max(info.st_mtime_ns, info.st_ctime_ns) >= SETTLED_NS
    if keep and tables is not None and settled:
        tables.put(stamp, schema, parsed)
    return parsed


def _read_all(fd: int, size: int) -> bytes:
    """The first ``size`` bytes of ``fd`` (fewer when it was cut meanwhile)."""
    chunks: list[bytes] = []
    done = 0
    while done < size:
        got = os.pread(fd, size - done, done)
        if not got:
            break
        chunks.append(got)
        done += len(got)
    return b"".join(chunks)


def _single(batches: Iterator[pa.RecordBatch]) -> Iterator[list[pa.RecordBatch]]:
    """One batch per unit."""
    for batch in batches:
        yield [batch]


async def ahead(units: Iterator[T | Last[T]]) -> AsyncGenerator[T, None]:
    """``units``, each read in a worker thread while the consumer handles the one before.

    Exactly one unit is read ahead: the next is asked for when the consumer takes one, never
    earlier, so memory holds the consumer's unit and the one being read, whatever the
    consumer's pace. One thread hop per unit (a CSV piece's batches come in one hop); a unit
    given as ``Last`` ends the stream without a hop to find the end (a small file: one hop).
    """
    loop = asyncio.get_running_loop()
    # The first reads on the loop's shared pool: a small file (one unit, then its end) starts
    # no thread, which cost it more CPU than the read itself. A longer stream then reads on a
    # thread of its own (the shared pool's workers each kept an allocator cache: memory).
    reader: ThreadPoolExecutor | None = None
    read = 0
    pending: asyncio.Future[T | Last[T] | None] | None
    pending = loop.run_in_executor(None, next, units, None)
    try:
        while pending is not None and (unit := await pending) is not None:
            if isinstance(unit, Last):
                pending = None
                close = getattr(units, "close", None)
                if close is not None:
                    close()  # suspended at its last unit: nothing runs it in a thread
                yield unit.unit
                return
            read += 1
            if reader is None and read >= SHARED_READS:
                reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sluis-read")
            pending = loop.run_in_executor(reader, next, units, None)
            yield unit
    finally:  # the thread cannot be cancelled: let it finish first
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        if reader is not None:
            reader.shutdown(wait=False)


def _filtered(batch: pa.RecordBatch, where: Any) -> pa.RecordBatch:
    """``batch`` filtered by an expression, as one batch.

    Through a Table (zero-copy for one chunk): pyarrow 15's ``RecordBatch.filter`` takes a
    mask, not an expression (make lowest).
    """
    table = pa.Table.from_batches([batch]).filter(where)
    return table.combine_chunks().to_batches()[0] if table.num_rows else batch.slice(0, 0)


def _json_batches(
    dataset: Any, query: Query, where: Any, tables: _Tables | None = None
) -> Iterator[list[pa.RecordBatch] | Last[list[pa.RecordBatch]]]:
    """The JSON lines files one block per call, in the dataset's (read) schema; a small
    file whole, in one call, the last file's as ``Last``."""
    options = pajson.ParseOptions(
        explicit_schema=dataset.schema, unexpected_field_behavior="ignore"
    )
    read = pajson.ReadOptions(block_size=JSON_BLOCK)
    files: ConfinedFiles = dataset.filesystem.handler
    paths = list(dataset.files)

    def parse(text: bytes) -> tuple[tuple[pa.Table, ...], bool]:
        table = pajson.read_json(pa.BufferReader(text), read_options=read, parse_options=options)
        return (table,), True

    for n, path in enumerate(paths):
        got = _opened(files, path, dataset.schema, parse, tables)
        if not isinstance(got, int):
            unit = [b for table in got for b in _chosen(table, where, query.columns)]
            yield Last(unit) if n == len(paths) - 1 else unit
            continue
        with (
            native_file(got) as stream,
            pajson.open_json(stream, read_options=read, parse_options=options) as reader,
        ):
            for batch in reader:
                chosen = batch if where is None else _filtered(batch, where)
                yield [chosen.select(list(query.columns))]


def _row_groups(dataset: Any, query: Query, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Parquet one row group at a time: what the scanner may queue is one row group."""
    where = expression(query.where)
    for fragment in dataset.get_fragments(filter=where):
        for group in fragment.split_by_row_group(where, schema=dataset.schema):
            yield from group.to_batches(
                schema=dataset.schema,
                columns=list(query.columns),
                filter=where,
                batch_size=batch_size,
                batch_readahead=2,
                fragment_readahead=1,
            )


def expression(where: tuple[Predicate, ...]) -> Any:
    """``where`` as a pyarrow.dataset expression (None when empty), with SQL null semantics."""
    result = None
    for pred in where:
        one = _expression(pred)
        result = one if result is None else result & one
    return result


def _expression(pred: Predicate) -> Any:
    field = ds.field(pred.column)
    if pred.op is Op.IS_NULL:
        return field.is_null()
    if pred.op is Op.NOT_NULL:
        return field.is_valid()
    if pred.op is Op.IN:
        return field.isin(list(pred.value))  # type: ignore[arg-type]
    if pred.op is Op.NOT_IN:
        return field.is_valid() & ~field.isin(list(pred.value))  # type: ignore[arg-type]
    value = _scalar(pred.value)
    return {
        Op.EQ: field == value,
        Op.NE: field != value,
        Op.LT: field < value,
        Op.LE: field <= value,
        Op.GT: field > value,
        Op.GE: field >= value,
    }[pred.op]


def _scalar(value: object) -> Any:
    if isinstance(value, datetime):
        return pa.scalar(value)
    if isinstance(value, date):
        return pa.scalar(value, pa.date32())
    return value


def _json_field(field: pa.Field) -> pa.Field:
    return field.with_type(pa.timestamp("s")) if pa.types.is_date(field.type) else field


def _midnight(pred: Predicate) -> Predicate:
    def convert(value: Any) -> Any:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day)  # naive, as JSON lines are read
        return value

    if isinstance(pred.value, tuple):
        return replace(pred, value=tuple(convert(v) for v in pred.value))
    return replace(pred, value=convert(pred.value))
