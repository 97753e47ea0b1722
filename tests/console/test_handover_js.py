"""The console's key hand-over follower (``static/handover.js``), run in Chromium.

A simulated log, signed with real Ed25519 keys by the Python core, answers the follower's
API calls (a simulated upstream implementing the audit API's paths, not a patched module).
Each case is one way a hand-over is genuine, void, skipped or forged; a forgery must be
named, and counted as one (red banner) only when the trusted key had verified the log.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.audit import Checkpoint, Signer, sign_note
from gateway.audit.jcs import canonical
from gateway.audit.merkle import consistency_proof, inclusion_proof, leaf_hash, root_hash
from tests.console.browser import STATIC_ORIGIN, chromium, serve_static

ORIGIN = "log.example/audit"
K0, K1, K2, KA = (Signer(ORIGIN, bytes([n]) * 32) for n in (1, 2, 3, 4))
TIME = "2026-12-03T00:00:00.000000Z"

FOLLOW = """async ([args]) => {
  const { follow } = await import("/handover.js");
  const note = await import("/verify/note.js");
  const enc = await import("/verify/encoding.js");
  const api = async (path, as = "json") => {
    const answer = args.answers[path];
    if (answer === undefined) throw new Error(`404 ${path}`);
    if (as === "bytes") return enc.decodeBase64(answer);
    return as === "text" ? answer : JSON.parse(answer);
  };
  const key = await note.parseVerifierKey(args.key);
  const seen = args.seen === null ? null : await note.verifyCheckpoint(args.seen, key);
  try {
    const r = await follow(api, key, seen, args.proven);
    return { key: r.key.keyString, seen: r.seen === null ? null : String(r.seen.size),
             followed: r.followed.map((s) => String(s.index)), void: r.void.map(String) };
  } catch (e) {
    return { error: e.code ?? String(e), forged: e.forged ?? null, message: e.message };
  }
}"""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Log:
    """A log's entries and signed checkpoints, and the audit API's answers over them."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.notes: dict[int, str] = {}
        self.rotations: list[tuple[int, dict[str, Any]]] = []

    def add(self, count: int = 1) -> None:
        for _ in range(count):
            entry = {"version": 1, "time": TIME, "event": "admin-change", "target": "x"}
            self.data.append(canonical({**entry, "request_id": str(len(self.data))}))

    def rotate(self, to: Signer) -> int:
        entry = {"version": 1, "time": TIME, "event": "key-rotation"}
        entry["target"] = to.verifier().key_string()
        self.rotations.append((len(self.data), entry))
        self.data.append(canonical(entry))
        return len(self.data) - 1

    def root(self, size: int) -> bytes:
        return root_hash([leaf_hash(d) for d in self.data[:size]])

    def sign(self, *signers: Signer, root: bytes | None = None) -> str:
        size = len(self.data)
        text = Checkpoint(ORIGIN, size, root or self.root(size)).to_text()
        self.notes[size] = sign_note(text, *signers).decode()
        return self.notes[size]

    def answers(self) -> dict[str, str]:
        leaves = [leaf_hash(d) for d in self.data]
        found = {
            "/v1/audit/entries?event=key-rotation&limit=1000": json.dumps(
                {"entries": [{"index": i, "entry": e} for i, e in self.rotations]}
            )
        }
        for index, data in enumerate(self.data):
            found[f"/v1/audit/entries/{index}"] = _b64(data)
        for index, _ in self.rotations:
            size = min(s for s in self.notes if s > index)
            found[f"/v1/audit/checkpoint?at_least={index + 1}"] = self.notes[size]
            for tree in self.notes:
                if tree > index:
                    path = inclusion_proof(leaves, index, tree)
                    found[f"/v1/audit/proofs/inclusion?index={index}&tree_size={tree}"] = (
                        json.dumps({"hashes": [_b64(h) for h in path]})
                    )
        for small in self.notes:
            for large in self.notes:
                if 0 < small < large:
                    path = consistency_proof(leaves, small, large)
                    found[f"/v1/audit/proofs/consistency?size1={small}&size2={large}"] = json.dumps(
                        {"hashes": [_b64(h) for h in path]}
                    )
        return found


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with chromium() as browser:
        context = browser.new_context()
        serve_static(context)
        tab = context.new_page()
        tab.goto(f"{STATIC_ORIGIN}/blank.html")
        yield tab
        context.close()


def follow(
    page: Any,
    log: Log | dict[str, str],
    key: Signer,
    seen: str | None,
    *,
    proven: bool = True,
) -> dict[str, Any]:
    """``follow`` in the browser, from ``key`` and the witness ``seen``, over ``log``'s API."""
    answers = log.answers() if isinstance(log, Log) else log
    args = {"answers": answers, "key": key.verifier().key_string()}
    return dict(page.evaluate(FOLLOW, [{**args, "seen": seen, "proven": proven}]))


def _handed_over(*cosigners: Signer) -> tuple[Log, str, int]:
    """Three entries seen (signed by K0), a rotation to K1, its hand-over signed by K0 and
    ``cosigners``, then the new key signing on."""
    log = Log()
    log.add(3)
    seen = log.sign(K0)
    index = log.rotate(K1)
    log.sign(K0, *cosigners)
    log.add(2)
    log.sign(K1)
    return log, seen, index


def test_a_cosigned_hand_over_moves_the_key(page: Any) -> None:
    log, seen, index = _handed_over(K1)
    result = follow(page, log, K0, seen)
    assert result == {
        "key": K1.verifier().key_string(),
        "seen": str(index + 1),  # the hand-over checkpoint is the new witness
        "followed": [str(index)],
        "void": [],
    }
    fresh = follow(page, log, K0, None, proven=False)  # a first key pinned a moment ago
    assert fresh["key"] == K1.verifier().key_string()


def test_without_the_new_keys_cosignature_the_old_key_stays(page: Any) -> None:
    log, seen, index = _handed_over()
    result = follow(page, log, K0, seen)
    assert result == {"key": K0.verifier().key_string(), "seen": "3", "followed": []} | {
        "void": [str(index)]
    }


def test_two_hand_overs_in_a_row_and_the_ones_before_the_trusted_key(page: Any) -> None:
    log, seen, first = _handed_over(K1)
    second = log.rotate(K2)
    log.sign(K1, K2)
    log.add(1)
    witnessed = log.sign(K2)
    chained = follow(page, log, K0, seen)
    assert chained["key"] == K2.verifier().key_string()
    assert chained["followed"] == [str(first), str(second)]
    # a browser that trusts K2 already: both hand-overs came before it, nothing to follow
    settled = follow(page, log, K2, witnessed)
    assert settled["key"] == K2.verifier().key_string()
    assert settled["followed"] == settled["void"] == []


def test_a_hand_over_the_trusted_key_did_not_sign_is_forged(page: Any) -> None:
    log = Log()
    log.add(3)
    seen = log.sign(K0)
    impostor = log.rotate(KA)
    log.sign(KA)  # the server's own key, "cosigning" itself
    result = follow(page, log, K0, seen)
    assert (result["error"], result["forged"]) == ("forged-hand-over", True)
    assert f"key-rotation entry {impostor} is not signed by the trusted key" in result["message"]
    # with a key that never verified this log, it may be the wrong key: not called forged
    unproven = follow(page, log, K0, None, proven=False)
    assert (unproven["error"], unproven["forged"]) == ("forged-hand-over", False)


def test_a_rotation_entry_missing_from_the_hand_over_is_forged(page: Any) -> None:
    log, seen, index = _handed_over(K1)
    answers = log.answers()
    tampered = json.loads(base64.b64decode(answers[f"/v1/audit/entries/{index}"]))
    tampered["time"] = "2026-12-04T00:00:00.000000Z"  # not the bytes the tree holds
    answers[f"/v1/audit/entries/{index}"] = _b64(canonical(tampered))
    result = follow(page, answers, K0, seen)
    assert (result["error"], result["forged"]) == ("forged-hand-over", True)
    assert "not in the signed hand-over checkpoint (root-mismatch)" in result["message"]


def test_a_hand_over_that_forks_what_the_browser_saw_is_forged(page: Any) -> None:
    log, _, _ = _handed_over(K1)
    other = Log()
    other.add(3)
    fork = other.sign(K0, root=bytes(32))  # signed by K0, over another history of 3
    result = follow(page, log, K0, fork)
    assert (result["error"], result["forged"]) == ("root-mismatch", True)
    assert "not consistent with the one this browser saw" in result["message"]


def test_a_rotation_naming_no_key_is_refused(page: Any) -> None:
    log = Log()
    log.add(1)
    seen = log.sign(K0)
    log.rotations.append((1, {"version": 1, "time": TIME, "event": "key-rotation"}))
    log.data.append(canonical({**log.rotations[0][1], "target": "not a key"}))
    log.rotations[0][1]["target"] = "not a key"
    log.sign(K0)
    result = follow(page, log, K0, seen)
    assert result["error"] == "bad-rotation"
    assert result["forged"] is False
