"""Following key hand-overs while verifying a log (pure).

A ``key-rotation`` entry at index ``r`` names the log's next checkpoint key (its
``target``, a verifier key string). The first checkpoint that covers it (size > r) is
the hand-over: it must verify with the key in force before, and counts as one only if
the new key cosigned it (proof that the new key is held, and that the hand-over was
completed: ``sluis audit rotate-key`` switches keys in the transaction that stores that
checkpoint). Every later checkpoint must verify with the new key; the old key's
signatures after the hand-over are worth nothing. A rotation whose covering checkpoint
lacks the cosignature did not happen (the old key stays in force)::

    keys K0 ... [r: key-rotation -> K1] ... checkpoint s > r, signed K0 + K1 | K1 ... K1
               '------------- epoch of K0: sizes 0..s ---------------------'
                                                              epoch of K1: sizes s..
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.audit.checkpoint import Checkpoint
from gateway.audit.errors import AuditError, VerificationError
from gateway.audit.jcs import loads
from gateway.audit.keys import Verifier
from gateway.audit.note import open_note

ROTATION_EVENT = "key-rotation"
_MARK = b'"event":"key-rotation"'


@dataclass(frozen=True)
class Rotation:
    """A ``key-rotation`` entry: where it is, and the key it hands over to."""

    index: int
    key: Verifier


@dataclass(frozen=True)
class KeyEpoch:
    """Keys that sign the checkpoints of sizes ``first`` to ``last`` (None: no end yet)."""

    keys: tuple[Verifier, ...]
    first: int
    last: int | None

    def covers(self, size: int) -> bool:
        """Whether these keys may sign a checkpoint of ``size`` entries."""
        return self.first <= size and (self.last is None or size <= self.last)


def find_rotations(entries: Iterable[tuple[int, bytes]]) -> list[Rotation]:
    """The ``key-rotation`` entries among ``(index, canonical bytes)``, by index."""
    found = []
    for index, data in entries:
        if _MARK not in data:
            continue
        entry = loads(data)
        if isinstance(entry, dict) and entry.get("event") == ROTATION_EVENT:
            found.append(Rotation(index, _key(index, entry.get("target"))))
    return sorted(found, key=lambda r: r.index)


class KeyChain:
    """The keys in force as checkpoints are read smallest first, from the first key(s)."""

    def __init__(self, first: Sequence[Verifier], rotations: Sequence[Rotation] = ()) -> None:
        self.keys = tuple(first)
        self.void: list[int] = []  # rotation entries whose hand-over was never completed
        self._pending = sorted(rotations, key=lambda r: r.index)
        self._epochs: list[KeyEpoch] = []
        self._since = 0

    def advance(self, checkpoint: Checkpoint, note: bytes) -> None:
        """After ``checkpoint`` verified with :attr:`keys`: take the hand-overs it covers."""
        while self._pending and checkpoint.size > self._pending[0].index:
            rotation = self._pending.pop(0)
            if not _signed_by(note, rotation.key):
                self.void.append(rotation.index)
                continue
            self._epochs.append(KeyEpoch(self.keys, self._since, checkpoint.size))
            self.keys, self._since = (rotation.key,), checkpoint.size

    def epochs(self) -> tuple[KeyEpoch, ...]:
        """Every epoch so far, the current one last (open-ended)."""
        return (*self._epochs, KeyEpoch(self.keys, self._since, None))

    @property
    def hand_overs(self) -> int:
        """How many hand-overs were followed."""
        return len(self._epochs)


def _signed_by(note: bytes, key: Verifier) -> bool:
    try:
        open_note(note, [key])
    except AuditError:
        return False
    return True


def _key(index: int, target: object) -> Verifier:
    if not isinstance(target, str):
        raise VerificationError("bad-rotation", f"key-rotation entry {index} names no key")
    try:
        return Verifier.from_key_string(target)
    except AuditError as exc:
        raise VerificationError(
            "bad-rotation", f"key-rotation entry {index}: {exc.detail}"
        ) from exc
