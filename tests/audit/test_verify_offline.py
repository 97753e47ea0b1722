"""The offline verifier (``gateway.audit.verify``) on logs built in memory: pure, no database.

Every refusal by its stable code and its exact words (an officer reads them), and the proof
bundle of ``sluis audit prove``: a bundle that is not one is refused by naming the field,
never with the text of a Python exception (which showed the verifier's internals).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.audit.checkpoint import Checkpoint, sign_checkpoint
from gateway.audit.encoding import encode_base64
from gateway.audit.errors import VerificationError
from gateway.audit.jcs import canonical
from gateway.audit.keys import Signer
from gateway.audit.merkle import consistency_proof, inclusion_proof, leaf_hash, root_hash
from gateway.audit.note import sign_note
from gateway.audit.verify import (
    ExportedCheckpoint,
    ExportedEntry,
    checkpoint_line,
    entry_line,
    read_checkpoints,
    read_entries,
    rebuild,
    verify_checkpoints,
    verify_export,
    verify_proof_bundle,
)

ORIGIN = "example.com/sluis-audit"
LOG = Signer(ORIGIN, bytes(range(7, 39)))
OTHER = Signer("example.com/other", bytes(range(40, 72)))
ENTRIES = [{"event": "query", "n": i} for i in range(7)]
DATA = [canonical(e) for e in ENTRIES]
LEAVES = [leaf_hash(d) for d in DATA]


def _note(size: int, signer: Signer = LOG) -> bytes:
    return sign_checkpoint(Checkpoint(ORIGIN, size, root_hash(LEAVES[:size])), signer)


def _checkpoints(*sizes: int) -> list[ExportedCheckpoint]:
    out, before = [], None
    for size in sizes:
        proof = () if before in (None, 0) else tuple(consistency_proof(LEAVES, before, size))
        out.append(ExportedCheckpoint(size, _note(size), proof))
        before = size
    return out


def _entries(count: int = len(DATA)) -> list[ExportedEntry]:
    return [ExportedEntry(i, d) for i, d in enumerate(DATA[:count])]


def _refusal(call: Any, *args: Any) -> tuple[str, str]:
    with pytest.raises(VerificationError) as exc:
        call(*args)
    return exc.value.code, exc.value.detail


def test_a_whole_log_verifies_through_the_export_lines() -> None:
    entries = read_entries(entry_line(e.index, e.data) for e in _entries())
    cps = _checkpoints(0, 3, 7)
    lines = [checkpoint_line(c.size, c.note, c.consistency) for c in cps]
    read = read_checkpoints(["", *lines, "  "])
    assert read == cps
    report = verify_export(entries, read, [LOG.verifier()], ORIGIN)
    assert (report.entries, report.checkpoints, report.latest.size) == (7, 3, 7)
    assert report.hand_overs == 0
    assert report.void_rotations == ()


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ('{"index": 0}', "entry line 1: needs index and entry"),
        ('{"index": true, "entry": {}}', "entry line 1: needs index and entry"),
        ('{"index": "0", "entry": {}}', "entry line 1: needs index and entry"),
        ('{"index": 0, "entry": []}', "entry line 1: needs index and entry"),
        ("[1]", "entry line 1: not a JSON object"),
        (
            '{"index": 0, "entry": {"x": 1.5}}',
            "entry line 1: not strict JSON: number 1.5 is not an integer",
        ),
        (
            '{"index": 0, "entry": {"x": 9007199254740992}}',
            "entry line 1: integer 9007199254740992 beyond 2**53",
        ),
    ],
)
def test_each_unreadable_entry_line(line: str, detail: str) -> None:
    assert _refusal(read_entries, [line]) == ("bad-export", detail)


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ('{"note": "x"}', "checkpoint line 2: needs size, note"),
        ('{"size": 1}', "checkpoint line 2: needs size, note"),
        ('{"size": 1, "note": "x", "consistency": "AA=="}', "checkpoint line 2: needs size, note"),
        ('{"size": 1, "note": "x", "consistency": ["AA"]}', "checkpoint line 2: bad hash"),
        ('{"size": 1, "note": "x", "consistency": [7]}', "checkpoint line 2: bad hash"),
        ('"x"', "checkpoint line 2: not a JSON object"),
    ],
)
def test_each_unreadable_checkpoint_line(line: str, detail: str) -> None:
    assert _refusal(read_checkpoints, ["", line]) == ("bad-export", detail)


def test_a_checkpoint_line_without_a_proof_reads_as_none() -> None:
    note = _note(1).decode()
    line = json.dumps({"size": 1, "note": note})
    assert read_checkpoints([line]) == [ExportedCheckpoint(1, note.encode(), ())]


def test_each_checkpoint_refusal() -> None:
    verifiers = [LOG.verifier()]
    assert _refusal(verify_checkpoints, [], verifiers, ORIGIN) == (
        "no-checkpoint",
        "the export holds no signed checkpoint",
    )
    foreign = [ExportedCheckpoint(3, _note(3, OTHER))]
    assert _refusal(verify_checkpoints, foreign, verifiers, ORIGIN) == (
        "checkpoint-signature",
        "checkpoint 1 does not verify: no signature by a known key",
    )
    lying = [ExportedCheckpoint(4, _note(3))]
    assert _refusal(verify_checkpoints, lying, verifiers, ORIGIN) == (
        "bad-export",
        "checkpoint 1: says size 4, signed 3",
    )
    shrinking = [*_checkpoints(5), ExportedCheckpoint(3, _note(3))]
    assert _refusal(verify_checkpoints, shrinking, verifiers, ORIGIN) == (
        "checkpoint-order",
        "checkpoint 2 is smaller (3) than the one before",
    )
    unproved = [*_checkpoints(3), ExportedCheckpoint(5, _note(5))]
    code, detail = _refusal(verify_checkpoints, unproved, verifiers, ORIGIN)
    assert code == "inconsistent"
    assert detail.startswith("checkpoint 2 (size 5) is not consistent with size 3: ")


def test_equal_sizes_and_a_first_empty_tree_need_no_proof() -> None:
    cps = [*_checkpoints(0, 4), ExportedCheckpoint(4, _note(4))]
    assert [c.size for c in verify_checkpoints(cps, [LOG.verifier()], ORIGIN)] == [0, 4, 4]


def test_each_rebuild_refusal() -> None:
    signed = verify_checkpoints(_checkpoints(3, 7), [LOG.verifier()], ORIGIN)
    gap = [*_entries(2), ExportedEntry(3, DATA[2])]
    assert _refusal(rebuild, gap, signed) == ("index-gap", "entry 2 of the export has index 3")
    changed = [*_entries(1), ExportedEntry(1, canonical({"event": "forged"})), *_entries(7)[2:]]
    assert _refusal(rebuild, changed, signed) == (
        "root-mismatch",
        "the first 3 entries do not rebuild the signed root of that size",
    )
    assert _refusal(rebuild, _entries(6), signed) == (
        "missing-entries",
        "the latest checkpoint covers 7 entries, the export holds 6",
    )
    rebuild(_entries(7), signed)  # and more entries than signed are fine: a later batch
    rebuild([*_entries(7), ExportedEntry(7, canonical({"event": "later"}))], signed)


def test_the_empty_tree_root_is_compared_too() -> None:
    forged = sign_checkpoint(Checkpoint(ORIGIN, 0, bytes(32)), LOG)
    signed = verify_checkpoints([ExportedCheckpoint(0, forged)], [LOG.verifier()], ORIGIN)
    assert _refusal(rebuild, [], signed) == (
        "root-mismatch",
        "the first 0 entries do not rebuild the signed root of that size",
    )


def _bundle(index: int = 4, size: int = 7) -> dict[str, Any]:
    return {
        "index": index,
        "tree_size": size,
        "leaf_hash": encode_base64(LEAVES[index]),
        "hashes": [encode_base64(h) for h in inclusion_proof(LEAVES, index, size)],
        "entry": ENTRIES[index],
        "checkpoint": _note(size).decode(),
    }


def test_a_proof_bundle_verifies() -> None:
    checkpoint = verify_proof_bundle(_bundle(), [LOG.verifier()], ORIGIN)
    assert (checkpoint.size, checkpoint.root_hash) == (7, root_hash(LEAVES))
    assert verify_proof_bundle(_bundle(6), [LOG.verifier()], ORIGIN).size == 7


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"checkpoint": None}, "not a proof bundle: checkpoint must be a string"),
        ({"index": "4"}, "not a proof bundle: index must be an integer >= 0"),
        ({"index": 4.0}, "not a proof bundle: index must be an integer >= 0"),
        ({"index": True}, "not a proof bundle: index must be an integer >= 0"),
        ({"index": -1}, "not a proof bundle: index must be an integer >= 0"),
        ({"tree_size": "7"}, "not a proof bundle: tree_size must be an integer >= 0"),
        ({"tree_size": False}, "not a proof bundle: tree_size must be an integer >= 0"),
        ({"leaf_hash": 1}, "not a proof bundle: leaf_hash must be canonical base64"),
        ({"leaf_hash": "AA"}, "not a proof bundle: leaf_hash must be canonical base64"),
        ({"hashes": "AA=="}, "not a proof bundle: hashes must be a list of canonical base64"),
        ({"hashes": [None]}, "not a proof bundle: hashes must be a list of canonical base64"),
        ({"hashes": ["AA"]}, "not a proof bundle: hashes must be a list of canonical base64"),
        ({"entry": [1]}, "not a proof bundle: entry must be a JSON object"),
        ({"entry": None}, "not a proof bundle: entry must be a JSON object"),
    ],
)
def test_a_bundle_with_a_bad_field_names_the_field(change: dict[str, Any], detail: str) -> None:
    assert _refusal(verify_proof_bundle, _bundle() | change, [LOG.verifier()], ORIGIN) == (
        "bad-proof",
        detail,
    )


@pytest.mark.parametrize(
    "field", ["index", "tree_size", "leaf_hash", "hashes", "entry", "checkpoint"]
)
def test_a_bundle_without_a_field_names_it(field: str) -> None:
    bundle = _bundle()
    del bundle[field]
    assert _refusal(verify_proof_bundle, bundle, [LOG.verifier()], ORIGIN) == (
        "bad-proof",
        f"not a proof bundle: no {field}",
    )


@pytest.mark.parametrize("bundle", [None, [], "{}", 7])
def test_what_is_not_an_object_is_not_a_bundle(bundle: object) -> None:
    code, detail = _refusal(verify_proof_bundle, bundle, [LOG.verifier()], ORIGIN)
    assert (code, detail) == ("bad-proof", "not a proof bundle: not a JSON object")


def test_no_refusal_shows_python_internals() -> None:
    """The old refusal printed ``KeyError('checkpoint')`` or ``AttributeError(...)``."""
    bundles = [{}, {"checkpoint": 1}, _bundle() | {"index": None}, _bundle() | {"hashes": [[]]}]
    for bundle in bundles:
        _, detail = _refusal(verify_proof_bundle, bundle, [LOG.verifier()], ORIGIN)
        assert "Error" not in detail
        assert "(" not in detail
        assert "'" not in detail


def test_each_proof_refusal() -> None:
    verifiers = [LOG.verifier()]
    other = _bundle() | {"checkpoint": _note(6).decode()}
    assert _refusal(verify_proof_bundle, other, verifiers, ORIGIN) == (
        "bad-proof",
        "the proof is not for the checkpoint's tree",
    )
    forged = _bundle() | {"entry": {"event": "forged"}}
    assert _refusal(verify_proof_bundle, forged, verifiers, ORIGIN) == (
        "bad-proof",
        "the entry does not hash to the leaf hash",
    )
    moved = _bundle() | {"index": 5}
    code, detail = _refusal(verify_proof_bundle, moved, verifiers, ORIGIN)
    assert code == "bad-proof"
    assert detail == "calculated root does not match the expected root"
    foreign = _bundle() | {"checkpoint": _note(7, OTHER).decode()}
    assert _refusal(verify_proof_bundle, foreign, verifiers, ORIGIN) == (
        "bad-proof",
        "no signature by a known key",
    )
    unlike = _bundle() | {"entry": {"x": 1.5}}
    assert _refusal(verify_proof_bundle, unlike, verifiers, ORIGIN)[0] == "bad-proof"


NEXT = Signer(ORIGIN, bytes(range(80, 112)))


def _rotated_log(cosigned: bool) -> tuple[list[ExportedEntry], list[ExportedCheckpoint]]:
    """Seven entries, the fourth hands the log over to NEXT; checkpoints at 3, 5 and 7."""
    rotation = {"event": "key-rotation", "target": NEXT.verifier().key_string()}
    data = [*DATA[:3], canonical(rotation), *DATA[4:]]
    leaves = [leaf_hash(d) for d in data]

    def note(size: int, *signers: Signer) -> bytes:
        return sign_note(Checkpoint(ORIGIN, size, root_hash(leaves[:size])).to_text(), *signers)

    handing = (LOG, NEXT) if cosigned else (LOG,)
    after = (NEXT,) if cosigned else (LOG,)
    checkpoints = [
        ExportedCheckpoint(3, note(3, LOG)),
        ExportedCheckpoint(5, note(5, *handing), tuple(consistency_proof(leaves, 3, 5))),
        ExportedCheckpoint(7, note(7, *after), tuple(consistency_proof(leaves, 5, 7))),
    ]
    return [ExportedEntry(i, d) for i, d in enumerate(data)], checkpoints


def test_a_key_hand_over_in_the_log_is_followed() -> None:
    entries, checkpoints = _rotated_log(cosigned=True)
    report = verify_export(entries, checkpoints, [LOG.verifier()], ORIGIN)
    assert report.hand_overs == 1
    assert [(e.keys, e.first, e.last) for e in report.epochs] == [
        ((LOG.verifier(),), 0, 5),
        ((NEXT.verifier(),), 5, None),
    ]
    assert report.void_rotations == ()
    # after the hand-over the old key's signature is worth nothing
    old_signed = _rotated_log(cosigned=False)[1][2]
    mixed = [*checkpoints[:2], old_signed]
    code, _ = _refusal(verify_export, entries, mixed, [LOG.verifier()], ORIGIN)
    assert code == "checkpoint-signature"


def test_a_hand_over_never_cosigned_is_void() -> None:
    entries, checkpoints = _rotated_log(cosigned=False)
    report = verify_export(entries, checkpoints, [LOG.verifier()], ORIGIN)
    assert report.hand_overs == 0
    assert report.void_rotations == (3,)
    assert [(e.first, e.last) for e in report.epochs] == [(0, None)]


def test_a_bundle_for_the_first_entry_verifies() -> None:
    assert verify_proof_bundle(_bundle(0), [LOG.verifier()], ORIGIN).size == 7


def test_missing_entries_are_counted_against_the_latest_of_several_checkpoints() -> None:
    signed = verify_checkpoints(_checkpoints(3, 5, 7), [LOG.verifier()], ORIGIN)
    assert _refusal(rebuild, _entries(6), signed) == (
        "missing-entries",
        "the latest checkpoint covers 7 entries, the export holds 6",
    )
