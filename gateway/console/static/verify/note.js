// C2SP signed notes and tlog checkpoints, verified with WebCrypto Ed25519 (a port of
// gateway/audit/{keys,note,checkpoint}.py, with the same stable error codes).
//
//   verifier key   <name>+<8 hex digits: key ID>+<base64(0x01 || 32-byte public key)>
//   key ID         SHA-256(name || 0x0A || 0x01 || public key)[:4]
//   signed note    <text ending in \n>\n— <name> <base64(key ID || signature)>\n...
//   checkpoint     <origin>\n<tree size>\n<base64 root>\n<extension lines>...
//
// Fail closed: a signature by the pinned key that does not verify rejects the note,
// signatures by other keys are ignored, and a note with no verified signature is refused.

import { concat, decodeBase64, equalBytes, hex, strictUtf8, utf8 } from "./encoding.js";

export const MAX_NOTE_SIZE = 1 << 20;
export const MAX_SIGNATURES = 100;
const ED25519 = 0x01;
const KEY_SIZE = 32;
const SIGNATURE_PREFIX = "\u2014 ";
const CONTROL = /[\x00-\x09\x0b-\x1f]/;
const BAD_NAME_CHAR = /[\s+\x00-\x1f\x7f]/u;
const BAD_LINE_CHAR = /[\x00-\x1f]/;
const SIZE = /^(0|[1-9][0-9]*)$/;
const MAX_TREE_SIZE = 2n ** 64n - 1n;

export class NoteError extends Error {
  constructor(code, detail) {
    super(`${code}: ${detail}`);
    this.name = "NoteError";
    this.code = code;
  }
}

function checkName(name) {
  if (!name || BAD_NAME_CHAR.test(name)) throw new NoteError("bad-name", "invalid key name");
}

async function keyId(name, typedKey) {
  const digest = await crypto.subtle.digest("SHA-256", concat(utf8.encode(`${name}\n`), typedKey));
  return new Uint8Array(digest).slice(0, 4);
}

// A verifier key string to {name, keyId, publicKey, keyString}; throws NoteError.
export async function parseVerifierKey(keyString) {
  const text = String(keyString).trim();
  const first = text.indexOf("+");
  const second = text.indexOf("+", first + 1);
  const parts =
    first < 0 || second < 0
      ? [text]
      : [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
  if (parts.length !== 3 || !/^[0-9a-f]{8}$/.test(parts[1])) {
    throw new NoteError("bad-key", "a key string is <name>+<8 hex digits>+<base64 key>");
  }
  const [name, idHex, encoded] = parts;
  checkName(name);
  let typed;
  try {
    typed = decodeBase64(encoded);
  } catch {
    throw new NoteError("bad-key", "the key is not canonical base64");
  }
  if (hex(await keyId(name, typed)) !== idHex) {
    throw new NoteError("key-id-mismatch", `key ID ${idHex} does not match the key`);
  }
  if (typed.length < 1 || typed[0] !== ED25519) {
    throw new NoteError("unknown-algorithm", "only Ed25519 (type 0x01) keys are supported");
  }
  const publicKey = typed.slice(1);
  if (publicKey.length !== KEY_SIZE) {
    throw new NoteError("bad-key-length", `Ed25519 keys are ${KEY_SIZE} bytes`);
  }
  return { name, keyId: await keyId(name, typed), publicKey, keyString: text };
}

async function ed25519Verify(publicKey, signature, message) {
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
      "verify",
    ]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch (error) {
    if (error instanceof DOMException && error.name === "NotSupportedError") {
      throw new NoteError("no-ed25519", "this browser's WebCrypto has no Ed25519");
    }
    return false; // a malformed signature verifies nothing
  }
}

function decodeNote(message) {
  const bytes = typeof message === "string" ? utf8.encode(message) : message;
  if (bytes.length > MAX_NOTE_SIZE) throw new NoteError("too-large", "a note is at most 1 MiB");
  let text;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new NoteError("invalid-utf8", "a note must be valid UTF-8");
  }
  if (CONTROL.test(text)) throw new NoteError("control-character", "a note holds a control char");
  return text;
}

function splitNote(text) {
  const split = text.lastIndexOf("\n\n");
  const block = text.slice(split + 2);
  if (split < 0 || !block.endsWith("\n")) {
    throw new NoteError("malformed", "no blank line followed by newline-ended signatures");
  }
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw new NoteError("too-many-signatures", "too many");
  return [text.slice(0, split + 1), lines];
}

function parseSignatureLine(line) {
  if (!line.startsWith(SIGNATURE_PREFIX)) {
    throw new NoteError("malformed", "a line after the blank line is not a signature");
  }
  const rest = line.slice(SIGNATURE_PREFIX.length);
  const space = rest.indexOf(" ");
  const name = space < 0 ? rest : rest.slice(0, space);
  let raw;
  try {
    checkName(name);
    raw = decodeBase64(space < 0 ? "" : rest.slice(space + 1));
  } catch {
    throw new NoteError("bad-signature-line", "bad key name or signature encoding");
  }
  if (raw.length < 5) throw new NoteError("bad-signature-line", "signature too short");
  return { name, keyId: raw.slice(0, 4), signature: raw.slice(4) };
}

// Open a signed note with trusted keys (from parseVerifierKey). Returns {text, verified,
// unverified} (key names); throws NoteError ("invalid-signature", "unverified", ...).
export async function openNote(message, keys) {
  const [text, lines] = splitNote(decodeNote(message));
  const signed = utf8.encode(text);
  const verified = new Set();
  const unverified = new Set();
  for (const sig of lines.map(parseSignatureLine)) {
    const key = keys.find((k) => k.name === sig.name && equalBytes(k.keyId, sig.keyId));
    if (key === undefined) {
      unverified.add(sig.name);
    } else if (await ed25519Verify(key.publicKey, sig.signature, signed)) {
      verified.add(sig.name);
    } else {
      throw new NoteError("invalid-signature", `signature by ${sig.name} does not verify`);
    }
  }
  if (verified.size === 0) throw new NoteError("unverified", "no signature by a known key");
  return { text, verified: [...verified], unverified: [...unverified] };
}

function checkLine(line, code, what) {
  if (!line || BAD_LINE_CHAR.test(line)) {
    throw new NoteError(code, `the ${what} must be non-empty, one line, no control chars`);
  }
}

// Strictly parse a checkpoint body: {origin, size (BigInt), root (32 bytes), extensions}.
export function parseCheckpoint(text) {
  if (!text.endsWith("\n")) throw new NoteError("malformed", "a checkpoint ends in a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new NoteError("malformed", "a checkpoint has at least 3 lines");
  const [origin, sizeLine, rootLine, ...extensions] = lines;
  checkLine(origin, "bad-origin", "origin");
  if (!SIZE.test(sizeLine) || BigInt(sizeLine) > MAX_TREE_SIZE) {
    throw new NoteError("bad-size", "the tree size is decimal without leading zeros");
  }
  let root;
  try {
    root = decodeBase64(rootLine);
  } catch {
    throw new NoteError("bad-root-hash", "the root hash is not canonical base64");
  }
  if (root.length !== 32) throw new NoteError("bad-root-hash", "the root hash must be 32 bytes");
  for (const line of extensions) checkLine(line, "bad-extension", "extension line");
  return { origin, size: BigInt(sizeLine), root, extensions };
}

// A signed checkpoint verified with the pinned key, whose name must be the log's origin.
export async function verifyCheckpoint(note, key) {
  const opened = await openNote(note, [key]);
  const checkpoint = parseCheckpoint(opened.text);
  if (checkpoint.origin !== key.name) {
    throw new NoteError("wrong-origin", `checkpoint of ${checkpoint.origin}, not of the pinned key`);
  }
  return { ...checkpoint, note: typeof note === "string" ? note : strictUtf8.decode(note) };
}
