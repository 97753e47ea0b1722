// What every console page shares: the pinned key, the local witness, the alarm banner, and
// small DOM helpers. Audit data is attacker-writable: it only ever reaches the page through
// textContent (never innerHTML), and links are built from numbers and fixed paths only.

import { decodeBase64, encodeBase64 } from "./verify/encoding.js";
import { verifyConsistency } from "./verify/merkle.js";
import { parseVerifierKey, verifyCheckpoint } from "./verify/note.js";
import { follow } from "./handover.js";

const KEY = "sluis-console:key";
const WITNESS = "sluis-console:witness";
const ALARM = "sluis-console:alarm";
const PROVEN = "sluis-console:proven"; // the pinned key once it verified a checkpoint here
const HANDED = "sluis-console:hand-overs"; // the hand-overs this browser followed

// Bidi overrides and invisible format characters, shown as ⟨U+XXXX⟩: an entry cannot
// reorder or hide what the officer reads (e.g. "\u202Eexe.txt" reads as "txt.exe").
const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

export function visible(text) {
  return String(text).replace(INVISIBLE, (c) => `\u27e8U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}\u27e9`);
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : visible(child));
  return node;
}

export function status(target, kind, text) {
  const node = typeof target === "string" ? document.getElementById(target) : target;
  node.className = `status ${kind}`;
  node.textContent = visible(text);
  return node;
}

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export async function api(path, as = "json") {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) {
    let detail = `${response.status}`;
    try {
      const problem = await response.json();
      detail = `${response.status} ${problem.title ?? ""}: ${problem.detail ?? ""}`;
    } catch {
      // not problem+json: the status says enough
    }
    throw new ApiError(`${path}: ${detail}`, response.status);
  }
  if (as === "bytes") return new Uint8Array(await response.arrayBuffer());
  return as === "text" ? response.text() : response.json();
}

// The officer's pinned key (parsed), or null. Never taken from the server.
export async function pinnedKey() {
  const stored = localStorage.getItem(KEY);
  return stored === null ? null : parseVerifierKey(stored);
}

export async function pinKey(text) {
  const key = await parseVerifierKey(text);
  localStorage.setItem(KEY, key.keyString);
  localStorage.removeItem(PROVEN);
  return key;
}

export function handOvers() {
  return JSON.parse(localStorage.getItem(HANDED) ?? "[]");
}

// The newest checkpoint is not signed by the pinned key: follow the log's signed hand-overs
// from it (handover.js). The pin moves only when the pinned key signed the hand-over.
async function followed(note, key, unverified) {
  const proven = localStorage.getItem(PROVEN) === key.keyString;
  const seen = witness();
  let result;
  try {
    result = await follow(api, key, seen, proven);
  } catch (error) {
    if (error.forged) {
      raiseAlarm(`a forged key hand-over (${error.message})`, `${seen?.note ?? ""}\n${note}`);
    }
    // forged, or a rotation naming no key: say so; else (the pinned key may be wrong) unverified
    throw error.forged || error.code === "bad-rotation" ? error : unverified;
  }
  if (!result.followed.length) throw unverified;
  const checkpoint = await verifyCheckpoint(note, result.key); // throws: still unverified
  const done = handOvers();
  for (const step of result.followed) done.push({ index: String(step.index), key: step.key.keyString, at: new Date().toISOString() });
  localStorage.setItem(HANDED, JSON.stringify(done));
  localStorage.setItem(KEY, result.key.keyString);
  localStorage.setItem(PROVEN, result.key.keyString);
  if (result.seen !== seen) remember(result.seen);
  return checkpoint;
}

export function witness() {
  const stored = localStorage.getItem(WITNESS);
  if (stored === null) return null;
  const { size, root, note } = JSON.parse(stored);
  return { size: BigInt(size), root: decodeBase64(root), note };
}

function remember(checkpoint) {
  const { size, root, note } = checkpoint;
  localStorage.setItem(WITNESS, JSON.stringify({ size: String(size), root: encodeBase64(root), note }));
}

// A red banner on every page from now on: there is no button to dismiss it.
export function raiseAlarm(message, evidence) {
  const alarm = { message, evidence, at: new Date().toISOString() };
  localStorage.setItem(ALARM, JSON.stringify(alarm));
  showAlarm();
}

export function showAlarm() {
  const stored = localStorage.getItem(ALARM);
  const banner = document.getElementById("alarm");
  if (stored === null || banner === null) return;
  const alarm = JSON.parse(stored);
  banner.hidden = false;
  banner.replaceChildren(
    el("strong", {}, "The audit log failed a consistency check. "),
    el("span", {}, `${alarm.message} (seen ${alarm.at}). `),
    el("span", {}, "Do not trust this log's server; keep this browser's state as evidence."),
    el("pre", {}, alarm.evidence),
  );
}

// The newest checkpoint, its signature verified with the pinned key and checked against the
// last one this browser saw (the witness). Returns {checkpoint, consistency}, where
// consistency is "first" | "same" | "extended" | "older"; throws on any failure, raising
// the alarm when the log contradicts what this browser saw before.
export async function verifiedCheckpoint() {
  const key = await pinnedKey();
  if (key === null) throw new Error("no key pinned: pin the log's public key on the overview page");
  const note = await api("/v1/audit/checkpoint", "text");
  let checkpoint;
  try {
    checkpoint = await verifyCheckpoint(note, key);
  } catch (error) {
    if (error.code !== "unverified") throw error;
    checkpoint = await followed(note, key, error);
  }
  localStorage.setItem(PROVEN, (await pinnedKey()).keyString);
  const seen = witness();
  if (seen === null) {
    remember(checkpoint);
    return { checkpoint, consistency: "first" };
  }
  const [small, large] = checkpoint.size < seen.size ? [checkpoint, seen] : [seen, checkpoint];
  if (small.size !== large.size) {
    const path = `/v1/audit/proofs/consistency?size1=${small.size}&size2=${large.size}`;
    let proof;
    try {
      proof = await api(path);
    } catch (error) {
      // The log cannot prove it still holds the larger tree this browser saw: rolled back.
      // (404: a size the log has not reached; 400/422: no proof from the empty tree.)
      if (error instanceof ApiError && [400, 404, 422].includes(error.status) && small === checkpoint) {
        raiseAlarm(`the log now has ${checkpoint.size} entries and cannot prove it holds the ${seen.size} this browser saw (rolled back?)`, `${seen.note}\n${checkpoint.note}`);
      }
      throw error;
    }
    try {
      await verifyConsistency(small.size, large.size, proof.hashes.map(decodeBase64), small.root, large.root);
    } catch (error) {
      raiseAlarm(`checkpoints of ${small.size} and ${large.size} entries are not consistent (${error.code ?? error.message})`, `${seen.note}\n${checkpoint.note}`);
      throw error;
    }
  } else if (encodeBase64(small.root) !== encodeBase64(large.root)) {
    raiseAlarm(`two different roots for ${small.size} entries: a forked log`, `${seen.note}\n${checkpoint.note}`);
    throw new Error("forked checkpoint: two roots for one size");
  }
  if (checkpoint.size > seen.size) remember(checkpoint);
  const consistency = checkpoint.size > seen.size ? "extended" : checkpoint.size === seen.size ? "same" : "older";
  return { checkpoint, consistency };
}

export function reason(error) {
  return error?.code ? `${error.code}: ${error.message.replace(`${error.code}: `, "")}` : String(error?.message ?? error);
}

showAlarm();
