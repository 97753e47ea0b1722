"""CSV read in pieces cut at line ends: the same rows as one read, and nothing read ahead."""

from __future__ import annotations

import io
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import csv_pieces
from connectors._arrow import pa, pacsv
from connectors.errors import SourceRejected

TYPES = {"id": pa.int64(), "name": pa.string(), "amount": pa.float64()}
CONVERT = pacsv.ConvertOptions(
    column_types=TYPES, strings_can_be_null=True, quoted_strings_can_be_null=False
)


class Counting(io.BytesIO):
    """A stream that counts what was read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        out = super().read(size)
        self.taken += len(out)
        return out

    def readinto(self, buffer: Any) -> int:
        got = super().readinto(buffer)
        self.taken += got
        return got


def whole(data: bytes) -> pa.Table:
    return pacsv.read_csv(pa.py_buffer(data), convert_options=CONVERT)


def in_pieces(data: bytes, size: int) -> pa.Table:
    tables = list(csv_pieces.read(io.BytesIO(data), CONVERT, size))
    return pa.concat_tables(tables) if tables else whole(data)


SAMPLES = {
    "lf": b"id,name,amount\n1,a,1.5\n2,b,2.5\n3,,\n",
    "crlf": b"id,name,amount\r\n1,a,1.5\r\n2,b,2.5\r\n",
    "cr": b"id,name,amount\r1,a,1.5\r2,b,2.5\r",
    "no final newline": b"id,name,amount\n1,a,1.5\n2,b,2.5",
    "empty lines": b"\n\nid,name,amount\n\n1,a,1.5\n\n\n2,b,2.5\n\n",
    "bom": b"\xef\xbb\xbfid,name,amount\n1,a,1.5\n",
    "quoted commas": b'id,name,amount\n1,"a, b",1.5\n2,"",2.5\n',
    "other column order": b"amount,id,name\n1.5,1,a\n2.5,2,b\n",
    "header only": b"id,name,amount\n",
}


@pytest.mark.parametrize("size", [1, 2, 7, 16, 1 << 20])
@pytest.mark.parametrize("sample", SAMPLES)
def test_pieces_read_the_same_rows_as_one_read(sample: str, size: int) -> None:
    data = SAMPLES[sample]
    assert in_pieces(data, size).equals(whole(data))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-(2**40), 2**40),
            st.text(st.characters(codec="utf-8", exclude_characters='\r\n",'), max_size=8),
            st.sampled_from([b"\n", b"\r\n", b"\r"]),
        ),
        max_size=40,
    ),
    st.integers(1, 64),
)
def test_any_cut_reads_the_same_rows(rows: list[tuple[int, str, bytes]], size: int) -> None:
    data = b"id,name,amount\n" + b"".join(
        f"{i},{name},{i / 4}".encode() + end for i, name, end in rows
    )
    assert in_pieces(data, size).equals(whole(data))


def test_each_piece_ends_at_a_line_end() -> None:
    data = b"".join(b"%d,xyz\r\n" % i for i in range(1000))
    parts = [bytes(p) for p in csv_pieces.pieces(io.BytesIO(data), 100)]
    assert b"".join(parts) == data
    assert all(p.endswith((b"\n", b"\r")) for p in parts)
    assert max(len(p) for p in parts) <= 100 + 12  # a piece plus at most one carried line


def test_the_file_is_read_only_as_rows_are_asked_for() -> None:
    """No read-ahead: after the first table, at most two pieces have been read (pyarrow's
    streaming reader reads up to 32 blocks ahead in a background thread)."""
    data = b"id,name,amount\n" + b"".join(b"%d,name-%d,%d.5\n" % (i, i, i) for i in range(20_000))
    stream = Counting(data)
    tables = csv_pieces.read(stream, CONVERT, 4096)
    first = next(tables)
    assert first.num_rows > 0
    assert stream.taken <= 2 * 4096
    rest = sum(t.num_rows for t in tables)
    assert first.num_rows + rest == 20_000
    assert stream.taken == len(data)


def test_a_line_longer_than_the_limit_is_refused() -> None:
    data = b"id,name,amount\n1," + b"x" * 5000 + b",1.5\n"
    with pytest.raises(SourceRejected, match="longer than"):
        [bytes(p) for p in csv_pieces.pieces(io.BytesIO(data), 100, max_line=4096)]
    parts = [bytes(p) for p in csv_pieces.pieces(io.BytesIO(data), 100, max_line=8192)]
    assert parts[-1].endswith(b"1.5\n")


def test_an_empty_file_has_no_rows() -> None:
    """pyarrow's ``open_csv`` refused a 0-byte file ("Empty CSV file"); with a declared schema
    it is a dataset with no rows."""
    assert list(csv_pieces.read(io.BytesIO(b""), CONVERT)) == []
    assert list(csv_pieces.read(io.BytesIO(b"\n\r\n"), CONVERT)) == []


def test_the_tables_outlive_the_reused_buffer() -> None:
    """Every piece is read into one reused buffer: the tables made from earlier pieces keep
    their values (read_csv copies them out) when later pieces overwrite it."""
    data = b"id,name,amount\n" + b"".join(b"%d,name-%d,%d.5\n" % (i, i, i) for i in range(5000))
    tables = list(csv_pieces.read(io.BytesIO(data), CONVERT, 1000))
    assert len(tables) > 10
    assert pa.concat_tables(tables).equals(whole(data))


def test_pieces_are_views_of_one_buffer_read_in_place() -> None:
    """No piece is copied out of the stream's reads (issue 12, throughput)."""
    data = b"id,name\n" + b"".join(b"%d,x\n" % i for i in range(2000))
    seen = []
    for piece in csv_pieces.pieces(io.BytesIO(data), 256):
        assert isinstance(piece, memoryview)
        seen.append((piece.obj, bytes(piece)))
    assert len({id(buffer) for buffer, _ in seen}) == 1
    assert b"".join(part for _, part in seen) == data


class Sized(io.BytesIO):
    """A stream that says its length, as pyarrow's files do; ``says`` may be stale."""

    def __init__(self, data: bytes, says: int | None = None) -> None:
        super().__init__(data)
        self.says = len(data) if says is None else says

    def size(self) -> int:
        return self.says


def test_a_small_file_gets_a_buffer_of_its_own_length(tmp_path: Any) -> None:
    """A 2 KB file is read into a buffer of about 2 KB, not a piece's 4 MiB (issue 10: the
    fresh pages of a 4 MiB buffer cost more CPU per small query than parsing it); a pyarrow
    file says its length."""
    data = b"id,name,amount\n" + b"".join(b"%d,n,%d.5\n" % (i, i) for i in range(200))
    path = tmp_path / "small.csv"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pa.OSFile(str(path)) as stream:
            parts = [bytes(p) for p in csv_pieces.pieces(stream)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert b"".join(parts) == data
    assert peak < 64 << 10
    buffers = [len(v.obj) for v in csv_pieces.pieces(Sized(data))]
    assert buffers == [len(data) + 1]


def test_a_stream_longer_than_it_said_is_read_whole_in_full_pieces() -> None:
    """A file that grew after its length was asked: every byte is still read, and the buffer
    grows to a full piece once the short one fills (no piece-sized steps of the old length)."""
    data = b"id,name,amount\n" + b"".join(b"%d,name-%d,%d.5\n" % (i, i, i) for i in range(3000))
    seen = [(bytes(v), len(v.obj)) for v in csv_pieces.pieces(Sized(data, says=50), 4096)]
    assert b"".join(part for part, _ in seen) == data
    assert seen[-1][1] == 4096
    assert len(seen) < len(data) // 2048
    assert pa.concat_tables(list(csv_pieces.read(Sized(data, says=50), CONVERT, 4096))).equals(
        whole(data)
    )
