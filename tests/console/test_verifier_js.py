"""The console's JavaScript verifier, run in Chromium against the Python core's vectors.

The same transparency-dev probes, RFC 6962 reference tree and signed-note vectors as
tests/audit, plus attacks: each must fail with the Python verifier's stable code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.audit import Checkpoint, Signer, sign_checkpoint
from tests.audit.helpers import MERKLE_VECTORS, MISSING
from tests.audit.test_note import EXPECTED_CODES
from tests.console.browser import STATIC_ORIGIN, chromium, serve_static

# In the page: import the verifier modules and run `body` with them and `args`.
RUN = """async ([body, args]) => {
  const merkle = await import("/verify/merkle.js");
  const note = await import("/verify/note.js");
  const enc = await import("/verify/encoding.js");
  const fn = new Function("merkle", "note", "enc", "args", `return (async () => {${body}})()`);
  return fn(merkle, note, enc, args);
}"""
# Run each probe; report the error code of each (null when it verified).
PROBES = """
const out = [];
for (const p of args.probes) {
  try {
    if (args.kind === "inclusion") {
      await merkle.verifyInclusion(enc.unhex(p.leafHash), p.leafIdx, p.treeSize,
        p.proof.map(enc.unhex), enc.unhex(p.root));
    } else {
      await merkle.verifyConsistency(p.size1, p.size2, p.proof.map(enc.unhex),
        enc.unhex(p.root1), enc.unhex(p.root2));
    }
    out.push(null);
  } catch (e) { out.push(e.code ?? String(e)); }
}
return out;
"""
OPEN = """
const out = [];
for (const v of args.vectors) {
  try {
    const keys = [];
    for (const k of v.vkeys ?? [v.vkey]) keys.push(await note.parseVerifierKey(k));
    if (v.note === undefined) { out.push(null); continue; }
    const opened = await note.openNote(v.note, keys);
    out.push({verified: opened.verified, unverified: opened.unverified, text: opened.text});
  } catch (e) { out.push(e.code ?? String(e)); }
}
return out;
"""
CHECKPOINT = """
try {
  const key = await note.parseVerifierKey(args.key);
  const cp = await note.verifyCheckpoint(args.note, key);
  return {size: String(cp.size), root: enc.hex(cp.root), origin: cp.origin};
} catch (e) { return e.code ?? String(e); }
"""


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with chromium() as browser:
        context = browser.new_context()
        serve_static(context)
        tab = context.new_page()
        tab.goto(f"{STATIC_ORIGIN}/blank.html")
        yield tab
        context.close()


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    if not MERKLE_VECTORS.is_dir():
        pytest.skip(MISSING)
    names = ["inclusion_probes.hex.json", "consistency_probes.hex.json"]
    names += ["rfc6962_reference_tree.json", "signed_note_checkpoint_vectors.json"]
    return {n: json.loads((MERKLE_VECTORS / n).read_text(encoding="utf-8")) for n in names}


def run(page: Any, body: str, args: Any) -> Any:
    return page.evaluate(RUN, [body, args])


@pytest.mark.parametrize("kind", ["inclusion", "consistency"])
def test_transparency_dev_probes(page: Any, vectors: dict[str, Any], kind: str) -> None:
    probes = vectors[f"{kind}_probes.hex.json"]["probes"]
    codes = run(page, PROBES, {"kind": kind, "probes": probes})
    for probe, code in zip(probes, codes, strict=True):
        assert (code is not None) == probe["wantErr"], (probe["file"], code)
        assert code is None or code.islower(), (probe["file"], code)  # a ProofError code


def test_reference_tree_proofs(page: Any, vectors: dict[str, Any]) -> None:
    tree = vectors["rfc6962_reference_tree.json"]
    inclusion = [
        {"leafHash": c["leaf_hash"], "leafIdx": c["leaf_index"], "treeSize": c["tree_size"]}
        | {"proof": c["proof"], "root": c["root"]}
        for c in tree["inclusion_proofs"]
    ]
    consistency = [
        {k: c[k] for k in ("size1", "size2", "proof", "root1", "root2")}
        for c in tree["consistency_proofs"]
    ]
    assert set(run(page, PROBES, {"kind": "inclusion", "probes": inclusion})) == {None}
    assert set(run(page, PROBES, {"kind": "consistency", "probes": consistency})) == {None}
    leaves = run(
        page,
        "return Promise.all(args.map(async (l) => enc.hex(await merkle.leafHash(enc.unhex(l)))))",
        tree["leaves_hex"],
    )
    assert leaves == tree["leaf_hashes"]


def test_signed_note_vectors(page: Any, vectors: dict[str, Any]) -> None:
    cases = list(vectors["signed_note_checkpoint_vectors.json"]["signed_note_vectors"])
    results = dict(zip([v["id"] for v in cases], run(page, OPEN, {"vectors": cases}), strict=True))
    assert results["c2sp-signed-note-example"]["verified"] == ["example.com/foo"]
    for vector_id in ("go-note-open-two-sigs", "go-note-open-peter-only-known"):
        vector = next(v for v in cases if v["id"] == vector_id)
        assert results[vector_id]["verified"] == vector["expect_verified"]
        assert results[vector_id]["unverified"] == vector.get("expect_unverified", [])
    for vector_id, code in EXPECTED_CODES.items():
        assert results[vector_id] == code, vector_id


def test_derived_checkpoint(page: Any, vectors: dict[str, Any]) -> None:
    derived = vectors["signed_note_checkpoint_vectors.json"]["derived_signed_checkpoint"]
    # Its key's name is not its origin: the console insists they agree (Sluis signs so).
    got = run(page, CHECKPOINT, {"key": derived["vkey"], "note": derived["checkpoint"]})
    assert got == "wrong-origin"


SIGNER = Signer("example.com/log", bytes(range(32)))
OTHER = Signer("example.com/log", bytes(range(1, 33)))  # same name, another key
ROOT = bytes(range(32))


def _note(signer: Signer = SIGNER, root: bytes = ROOT, size: int = 5) -> str:
    return sign_checkpoint(Checkpoint(signer.name, size, root), signer).decode()


def test_checkpoint_signed_by_the_pinned_key_verifies(page: Any) -> None:
    got = run(page, CHECKPOINT, {"key": SIGNER.verifier().key_string(), "note": _note()})
    assert got == {"size": "5", "root": ROOT.hex(), "origin": "example.com/log"}


@pytest.mark.parametrize(
    ("note", "key", "code"),
    [
        # a checkpoint whose root was changed after signing
        (_note().replace("AAECAwQF", "AAECAwQG", 1), SIGNER, "invalid-signature"),
        # a signature byte flipped
        (_note()[:-10] + ("A" if _note()[-10] != "A" else "B") + _note()[-9:], SIGNER, None),
        # signed by another key of the same name: the pinned key's ID differs
        (_note(OTHER), SIGNER, "unverified"),
        # the right note, the wrong key pinned
        (_note(), OTHER, "unverified"),
        # a second, bad signature by the pinned key beside a good one
        (_note() + _note(root=bytes(32)).rsplit("\n\n", 1)[1], SIGNER, "invalid-signature"),
        # text after the signatures, control characters, no signatures at all
        (_note() + "junk\n", SIGNER, "malformed"),
        (_note().replace("\n5\n", "\n5\x07\n"), SIGNER, "control-character"),
        (_note().rsplit("\n", 2)[0] + "\n", SIGNER, "malformed"),
    ],
)
def test_checkpoint_attacks(page: Any, note: str, key: Signer, code: str | None) -> None:
    got = run(page, CHECKPOINT, {"key": key.verifier().key_string(), "note": note})
    assert got in ({"invalid-signature", "bad-signature-line"} if code is None else {code})


def test_tampered_leaf_and_proof_fail_with_root_mismatch(page: Any) -> None:
    body = """
    const leaves = await Promise.all([0, 1, 2, 3, 4].map((i) => merkle.leafHash(Uint8Array.of(i))));
    const n = (a, b) => merkle.nodeHash(a, b);
    const left = await n(await n(leaves[0], leaves[1]), await n(leaves[2], leaves[3]));
    const root = await n(left, leaves[4]);
    const proof = [leaves[3], await n(leaves[0], leaves[1]), leaves[4]];
    const check = async (leaf, path, r = root, index = 2) => {
      try { await merkle.verifyInclusion(leaf, index, 5, path, r); return null; }
      catch (e) { return e.code; }
    };
    const tampered = await merkle.leafHash(Uint8Array.of(9));
    const bent = [proof[0], proof[1], await merkle.leafHash(Uint8Array.of(8))];
    return [await check(leaves[2], proof), await check(tampered, proof),
            await check(leaves[2], bent), await check(leaves[2], proof.slice(1)),
            await check(leaves[2], proof, root, 3), await check(leaves[2], proof, root, 5)];
    """
    assert run(page, body, None) == [
        None,
        "root-mismatch",
        "root-mismatch",
        "wrong-proof-size",
        "root-mismatch",
        "index-out-of-range",
    ]


def test_sizes_beyond_two_to_the_53(page: Any) -> None:
    # JS numbers lose integers past 2^53 and bit operators cut at 32 bits: the verifier
    # uses BigInt, so a proof in a huge tree is checked on the exact sizes.
    body = """
    const leaf = await merkle.leafHash(Uint8Array.of(1));
    const size = 2n ** 60n + 3n, index = size - 1n;
    try { await merkle.verifyInclusion(leaf, index, size, [], leaf); return "accepted"; }
    catch (e) { return e.code; }
    """
    assert run(page, body, None) == "wrong-proof-size"
