"""A verified export held against a checkpoint from elsewhere (``gateway.audit.anchor``),
in memory: every refusal by its code and its exact words (an officer reads them), and the
boundaries next to them. The same through the CLI and a database: test_truncation.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.audit.anchor import check_against
from gateway.audit.checkpoint import Checkpoint, sign_checkpoint
from gateway.audit.errors import VerificationError
from gateway.audit.handover import KeyEpoch
from gateway.audit.jcs import canonical
from gateway.audit.keys import Signer
from gateway.audit.merkle import leaf_hash, root_hash
from gateway.audit.note import sign_note
from gateway.audit.verify import ExportedEntry

ORIGIN = "example.com/sluis-audit"
LOG = Signer(ORIGIN, bytes(range(7, 39)))
NEXT = Signer(ORIGIN, bytes(range(8, 40)))
WITNESS = Signer("example.com/witness", bytes(range(40, 72)))
DATA = [canonical({"event": "query", "n": i}) for i in range(9)]
LEAVES = [leaf_hash(d) for d in DATA]
EXPORT = [ExportedEntry(i, d) for i, d in enumerate(DATA[:7])]  # 7 of the log's 9
EPOCHS = [KeyEpoch((LOG.verifier(),), 0, None)]


def _anchor(size: int, *signers: Signer, leaves: list[bytes] = LEAVES) -> bytes:
    body = Checkpoint(ORIGIN, size, root_hash(leaves[:size])).to_text()
    return sign_note(body, *(signers or (LOG,)))


def _refusal(anchor: bytes, **options: Any) -> tuple[str, str]:
    with pytest.raises(VerificationError) as exc:
        check_against(EXPORT, options.pop("epochs", EPOCHS), anchor, ORIGIN, **options)
    return exc.value.code, exc.value.detail


@pytest.mark.parametrize("size", [0, 5, 7])
def test_a_checkpoint_the_export_reaches_holds(size: int) -> None:
    held = check_against(EXPORT, EPOCHS, _anchor(size), ORIGIN, label="saved.txt")
    assert held == Checkpoint(ORIGIN, size, root_hash(LEAVES[:size]))


def test_a_checkpoint_one_past_the_export_is_truncation() -> None:
    assert _refusal(_anchor(8), label="saved.txt") == (
        "truncated",
        "truncated: export ends at 7 but checkpoint saved.txt of size 8 > 7 was signed",
    )


def test_a_checkpoint_of_another_history_is_inconsistent() -> None:
    other = [leaf_hash(b"other %d" % i) for i in range(9)]
    assert _refusal(_anchor(5, leaves=other), label="live") == (
        "inconsistent",
        "inconsistent: checkpoint live of size 5 does not match the export's first 5 "
        "entries (the log was rewritten)",
    )


@pytest.mark.parametrize("anchor", [b"not a note", b"not\na checkpoint\n\n\xe2\x80\x94 x y\n"])
def test_what_is_not_a_signed_checkpoint_is_refused(anchor: bytes) -> None:
    assert _refusal(anchor, label="saved.txt") == (
        "bad-anchor",
        "saved.txt is not a signed checkpoint",
    )


def test_another_keys_checkpoint_does_not_verify() -> None:
    assert _refusal(_anchor(5, WITNESS), label="saved.txt") == (
        "anchor-signature",
        "checkpoint saved.txt does not verify with the log's key: no signature by a known key",
    )


def test_past_the_export_a_missing_hand_over_is_suggested() -> None:
    """Past the export's end the keys may have changed in entries it does not hold."""
    assert _refusal(_anchor(8, NEXT), label="saved.txt") == (
        "anchor-signature",
        "checkpoint saved.txt does not verify with the log's key (a key hand-over missing "
        "from the export?): no signature by a known key",
    )


def test_the_key_in_force_at_the_checkpoints_size_verifies_it() -> None:
    epochs = [KeyEpoch((LOG.verifier(),), 0, 4), KeyEpoch((NEXT.verifier(),), 4, None)]
    assert check_against(EXPORT, epochs, _anchor(4, LOG), ORIGIN, label="a").size == 4
    assert check_against(EXPORT, epochs, _anchor(5, NEXT), ORIGIN, label="b").size == 5
    assert _refusal(_anchor(5, LOG), epochs=epochs, label="c")[0] == "anchor-signature"


def test_a_named_witness_must_have_cosigned() -> None:
    witnesses = [WITNESS.verifier()]
    assert _refusal(_anchor(5), label="w.txt", witnesses=witnesses) == (
        "no-cosignature",
        "checkpoint w.txt is not cosigned by witness example.com/witness",
    )
    cosigned = _anchor(5, LOG, WITNESS)
    assert check_against(EXPORT, EPOCHS, cosigned, ORIGIN, label="w", witnesses=witnesses)
    assert _refusal(sign_checkpoint(Checkpoint(ORIGIN, 5, bytes(32)), LOG), label="z") == (
        "inconsistent",
        "inconsistent: checkpoint z of size 5 does not match the export's first 5 entries "
        "(the log was rewritten)",
    )


def test_at_the_exports_end_no_hand_over_is_suggested() -> None:
    assert _refusal(_anchor(7, NEXT), label="saved.txt") == (
        "anchor-signature",
        "checkpoint saved.txt does not verify with the log's key: no signature by a known key",
    )


def test_a_note_with_a_blank_line_after_its_signatures_is_no_signed_checkpoint() -> None:
    assert _refusal(_anchor(5) + b"\n", label="saved.txt") == (
        "bad-anchor",
        "saved.txt is not a signed checkpoint",
    )
