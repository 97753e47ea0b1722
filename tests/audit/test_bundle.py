"""The export bundle's parts in memory (``gateway.audit.bundle``): ``start.json`` read
strictly, each refusal by its code and words, the index's range at its ends; the zip as
:class:`ZipStream` writes it; and a key-rotation entry that names no key. The bundle end to
end (over the API, verified by the CLI): test_export_api.py."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import pytest

from gateway.audit.bundle import (
    MAX_START,
    ExportStart,
    ZipStream,
    read_bundle,
    read_start,
    start_json,
)
from gateway.audit.checkpoint import Checkpoint
from gateway.audit.compact import Frontier
from gateway.audit.encoding import encode_base64
from gateway.audit.errors import VerificationError
from gateway.audit.handover import KeyChain, Rotation, find_rotations
from gateway.audit.jcs import canonical
from gateway.audit.keys import Signer
from gateway.audit.note import sign_note

HASH = encode_base64(bytes(32))
ORIGIN_NAME = "example.com/sluis-audit"


def _refusal(data: bytes) -> tuple[str, str]:
    with pytest.raises(VerificationError) as exc:
        read_start(data)
    return exc.value.code, exc.value.detail


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b" " * (MAX_START + 1), "too long for a frontier"),
        (
            b" " * MAX_START,  # the longest read: then refused as JSON
            "not-canonical: not strict JSON: Expecting value: line 1 column 65537 (char 65536)",
        ),
        (b'{"index":1}', "'frontier'"),
        (b'{"index":1,"frontier":["A-=="]}', "not standard base64"),
        (b'{"index":"1","frontier":[]}', "needs an index and its frontier"),
        (b'{"index":0,"frontier":{}}', "needs an index and its frontier"),
        (
            b'{"index":true,"frontier":["' + HASH.encode() + b'"]}',
            "needs an index and its frontier",
        ),
        (b'{"index":-1,"frontier":[]}', "not the frontier of -1"),
        (b'{"index":1,"frontier":["AAAA"]}', "a hash is not 32 bytes"),
    ],
)
def test_each_start_refusal_says_why(data: bytes, detail: str) -> None:
    assert _refusal(data) == ("bad-export", f"start.json: {detail}")


def _start(index: int, count: int) -> bytes:
    """``start.json`` by hand: canonical JSON (``start_json``) stops at 2**53."""
    return b'{"frontier":[%s],"index":%d}' % (b",".join([b'"%s"' % HASH.encode()] * count), index)


def test_the_index_runs_from_0_to_below_2_to_the_63() -> None:
    assert read_start(start_json(0, [])) == ExportStart(0, ())
    last = 2**63 - 1  # 63 set bits: 63 hashes
    assert read_start(_start(last, 63)) == ExportStart(last, (bytes(32),) * 63)
    beyond = _start(2**63, 1)  # one subtree: one hash
    assert _refusal(beyond) == ("bad-export", f"start.json: not the frontier of {2**63}")


def test_a_zip_stream_stamps_its_members_and_writes_them_zip64() -> None:
    """The members carry the export's time (DOS time: even seconds), and a zip64 extra
    field in their local header, so a member may pass 4 GiB."""
    stream = ZipStream(datetime(2026, 11, 27, 12, 0, 5, tzinfo=UTC))
    with stream.member("entries.jsonl") as member:
        member.write(b"line\n")
    data = stream.drain() + stream.close()
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("entries.jsonl")
    assert (info.date_time, info.compress_type) == ((2026, 11, 27, 12, 0, 4), zipfile.ZIP_DEFLATED)
    name_end = 30 + len("entries.jsonl")  # the fixed local header, then the name
    assert data[name_end : name_end + 4] == b"\x01\x00\x10\x00"  # zip64, 16 bytes


@pytest.mark.parametrize(
    ("entry", "detail"),
    [
        ({"event": "key-rotation"}, "key-rotation entry 3 names no key"),
        (
            {"event": "key-rotation", "target": "nope"},
            "key-rotation entry 3: a key string is <name>+<8 hex digits>+<base64 key>",
        ),
    ],
)
def test_a_rotation_naming_no_key_is_refused(entry: dict[str, str], detail: str) -> None:
    with pytest.raises(VerificationError) as exc:
        find_rotations([(3, canonical(entry))])
    assert (exc.value.code, exc.value.detail) == ("bad-rotation", detail)


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", method) as written:
        for name, data in members.items():
            written.writestr(name, data)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("bundle", "detail"),
    [
        (_zip({"entries.jsonl": b"a"}), "the bundle lacks entries.jsonl or checkpoints.jsonl"),
        (_zip({"checkpoints.jsonl": b"a"}), "the bundle lacks entries.jsonl or checkpoints.jsonl"),
        (b"not a zip", "not a readable bundle: File is not a zip file"),
        (
            _zip({"entries.jsonl": b"\xff", "checkpoints.jsonl": b""}),
            "not a readable bundle: 'utf-8' codec can't decode byte 0xff in position 0: "
            "invalid start byte",
        ),
        (
            _zip({"entries.jsonl": b"", "checkpoints.jsonl": b"\0" * ((1 << 20) + 1)}),
            "checkpoints.jsonl would inflate from 1033 to 1048577 bytes (more than 100 to 1): "
            "not an export of this gateway",
        ),
    ],
)
def test_each_bundle_refusal_says_why(bundle: bytes, detail: str) -> None:
    with pytest.raises(VerificationError) as exc:
        read_bundle(bundle)
    assert (exc.value.code, exc.value.detail) == ("bad-export", detail)


def test_a_bundle_reads_as_its_lines_and_its_start() -> None:
    start = start_json(1, [bytes(32)])
    bundle = _zip({"entries.jsonl": b"e1\ne2\n", "checkpoints.jsonl": b"c1\n", "start.json": start})
    assert read_bundle(bundle) == (["e1", "e2"], ["c1"], ExportStart(1, (bytes(32),)))
    assert read_bundle(_zip({"entries.jsonl": b"", "checkpoints.jsonl": b""})) == ([], [], None)


def test_a_member_up_to_1_mib_or_stored_is_never_refused_for_its_ratio() -> None:
    small = _zip({"entries.jsonl": b"\0" * (1 << 20), "checkpoints.jsonl": b""})
    assert read_bundle(small)[0] == ["\0" * (1 << 20)]
    big = b"\0" * (2 << 20)
    stored = _zip({"entries.jsonl": big, "checkpoints.jsonl": b""}, zipfile.ZIP_STORED)
    assert len(read_bundle(stored)[0][0]) == len(big)


K0, K1, K2 = (Signer(ORIGIN_NAME, bytes(range(n, n + 32))) for n in (1, 2, 3))


def _rotation(key: Signer) -> bytes:
    return canonical({"event": "key-rotation", "target": key.verifier().key_string()})


def test_rotations_are_found_by_event_and_ordered_by_index() -> None:
    """Only an entry whose own event is key-rotation is one (an export is untrusted text:
    the mark may sit in a nested object), and they come back by index."""
    nested = canonical({"event": "access-decision", "x": {"event": "key-rotation"}})
    assert find_rotations([(0, nested)]) == []
    found = find_rotations([(5, _rotation(K2)), (2, _rotation(K1))])
    assert [(r.index, r.key) for r in found] == [(2, K1.verifier()), (5, K2.verifier())]


def _note(size: int, *signers: Signer) -> bytes:
    return sign_note(Checkpoint(ORIGIN_NAME, size, bytes(32)).to_text(), *signers)


def test_a_key_chain_takes_its_hand_overs_in_index_order_past_a_void_one() -> None:
    rotations = [Rotation(5, K2.verifier()), Rotation(2, K1.verifier())]  # out of order
    chain = KeyChain([K0.verifier()], rotations)
    chain.advance(Checkpoint(ORIGIN_NAME, 3, bytes(32)), _note(3, K0, K1))
    assert (chain.keys, chain.hand_overs) == ((K1.verifier(),), 1)
    # A rotation never cosigned is void; the next one the same checkpoint covers still counts.
    void_first = KeyChain([K0.verifier()], [Rotation(1, K1.verifier()), Rotation(2, K2.verifier())])
    void_first.advance(Checkpoint(ORIGIN_NAME, 3, bytes(32)), _note(3, K0, K2))
    assert (void_first.keys, void_first.void) == ((K2.verifier(),), [1])


def test_a_start_gives_the_frontier_to_append_the_range_to() -> None:
    start = read_start(_start(3, 2))
    assert start.tree() == Frontier(3, (bytes(32), bytes(32)))
