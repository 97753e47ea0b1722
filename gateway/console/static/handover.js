// Following the log's key hand-overs in the browser (a port of gateway/audit/handover.py).
//
// A `key-rotation` entry at index r names the next key (its `target`). The first checkpoint
// of more than r entries is the hand-over: it must be signed by the key this browser trusts
// now, hold that very entry (inclusion proof), be consistent with the last checkpoint this
// browser saw, and be cosigned by the new key; only then does the pin move to the new key.
// Without the new key's cosignature the rotation never completed: the old key stays.
//
// A hand-over the trusted key did not sign, or whose entry or history does not check out,
// is forged: `follow` reports it as {forged} (the caller raises the red banner) when the
// trusted key has verified this log before; otherwise the pinned key may simply be wrong,
// and the hand-over is not ours to judge.

import { decodeBase64, strictUtf8 } from "./verify/encoding.js";
import { leafHash, verifyConsistency, verifyInclusion } from "./verify/merkle.js";
import { parseVerifierKey, verifyCheckpoint } from "./verify/note.js";

export class HandOverError extends Error {
  constructor(code, detail, forged = false) {
    super(`${code}: ${detail}`);
    this.name = "HandOverError";
    this.code = code;
    this.forged = forged;
  }
}

async function consistent(api, seen, checkpoint) {
  if (seen === null || seen.size === checkpoint.size) {
    if (seen !== null && seen.root.join() !== checkpoint.root.join()) {
      throw new HandOverError("root-mismatch", `two roots for ${seen.size} entries`, true);
    }
    return;
  }
  const [small, large] = seen.size < checkpoint.size ? [seen, checkpoint] : [checkpoint, seen];
  const proof = await api(`/v1/audit/proofs/consistency?size1=${small.size}&size2=${large.size}`);
  try {
    await verifyConsistency(small.size, large.size, proof.hashes.map(decodeBase64), small.root, large.root);
  } catch (error) {
    throw new HandOverError(error.code ?? "root-mismatch", `the hand-over checkpoint is not consistent with the one this browser saw`, true);
  }
}

async function rotationEntry(api, index) {
  const bytes = await api(`/v1/audit/entries/${index}`, "bytes");
  const entry = JSON.parse(strictUtf8.decode(bytes));
  if (entry?.event !== "key-rotation" || typeof entry.target !== "string") {
    throw new HandOverError("bad-rotation", `entry ${index} is not a key-rotation entry`, true);
  }
  return { bytes, target: entry.target };
}

// One hand-over: {key, checkpoint} when completed, null when never completed (no cosignature),
// {skip} for one before the last checkpoint this browser saw that the trusted key did not sign.
async function handOver(api, index, key, seen, proven) {
  const { bytes, target } = await rotationEntry(api, index);
  let next;
  try {
    next = await parseVerifierKey(target);
  } catch (error) {
    throw new HandOverError("bad-rotation", `key-rotation entry ${index}: ${error.message}`);
  }
  const note = await api(`/v1/audit/checkpoint?at_least=${index + 1n}`, "text");
  let checkpoint;
  try {
    checkpoint = await verifyCheckpoint(note, key);
  } catch (error) {
    // before what this browser saw: a hand-over among earlier keys, not to the trusted one
    if (seen !== null && index < seen.size) return { skip: true };
    throw new HandOverError("forged-hand-over", `the checkpoint covering key-rotation entry ${index} is not signed by the trusted key (${error.code ?? error.message})`, proven);
  }
  const proof = await api(`/v1/audit/proofs/inclusion?index=${index}&tree_size=${checkpoint.size}`);
  try {
    await verifyInclusion(await leafHash(bytes), index, checkpoint.size, proof.hashes.map(decodeBase64), checkpoint.root);
  } catch (error) {
    throw new HandOverError("forged-hand-over", `key-rotation entry ${index} is not in the signed hand-over checkpoint (${error.code})`, true);
  }
  await consistent(api, seen, checkpoint);
  try {
    await verifyCheckpoint(note, next);
  } catch {
    return null; // not cosigned by the new key: the rotation never completed
  }
  return { key: next, checkpoint };
}

// Follow every hand-over from `key` (the pinned one), in the log's order.
// Returns {key, seen, followed: [{index, key}], void: [index]}; throws HandOverError.
export async function follow(api, key, seen, proven) {
  const listing = await api("/v1/audit/entries?event=key-rotation&limit=1000");
  const result = { key, seen, followed: [], void: [] };
  for (const { index: raw, entry } of listing.entries) {
    const index = BigInt(raw);
    if (entry.target === result.key.keyString) continue; // a hand-over to the trusted key
    const done = await handOver(api, index, result.key, result.seen, proven);
    if (done?.skip) continue;
    if (done === null) {
      result.void.push(index);
      continue;
    }
    result.key = done.key;
    if (result.seen === null || done.checkpoint.size > result.seen.size) result.seen = done.checkpoint;
    result.followed.push({ index, key: done.key });
  }
  return result;
}
