// RFC 9162 Merkle proofs, verified with WebCrypto SHA-256 (a port of gateway/audit/merkle.py).
//
// leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right). Indices and sizes are
// BigInt (a log may outgrow 2^53, and JS bit operators on numbers are 32-bit). Each failure
// is a ProofError with the same stable code as the Python verifier's.

import { concat, equalBytes } from "./encoding.js";

export const HASH_SIZE = 32;

export class ProofError extends Error {
  constructor(code, detail) {
    super(`${code}: ${detail}`);
    this.name = "ProofError";
    this.code = code;
  }
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export function leafHash(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

export function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function big(value, what) {
  if (typeof value === "bigint") return value;
  if (Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === "string" && /^(0|[1-9][0-9]*)$/.test(value)) return BigInt(value);
  throw new ProofError("bad-size", `${what} is not an integer`);
}

function bitLength(n) {
  return n === 0n ? 0 : n.toString(2).length;
}

function bitCount(n) {
  let count = 0;
  for (const c of n.toString(2)) if (c === "1") count++;
  return count;
}

function checkHashLengths(...hashes) {
  if (hashes.some((h) => !(h instanceof Uint8Array) || h.length !== HASH_SIZE)) {
    throw new ProofError("bad-hash-length", `every hash must be ${HASH_SIZE} bytes`);
  }
}

function checkProofSize(got, want) {
  if (BigInt(got) !== BigInt(want)) {
    throw new ProofError("wrong-proof-size", `proof does not fit the tree sizes (${got}/${want})`);
  }
}

function checkRoot(calculated, expected) {
  if (!equalBytes(calculated, expected)) {
    throw new ProofError("root-mismatch", "calculated root does not match the expected root");
  }
}

function shiftWhileEven(fn, sn) {
  while (fn && !(fn & 1n)) {
    fn >>= 1n;
    sn >>= 1n;
  }
  return [fn, sn];
}

// RFC 9162 §2.1.3.2; throws ProofError unless `proof` puts `leaf` at `index` under `root`.
export async function verifyInclusion(leaf, index, size, proof, root) {
  index = big(index, "index");
  size = big(size, "tree size");
  if (!(index >= 0n && index < size)) {
    throw new ProofError("index-out-of-range", `leaf index ${index} not in a tree of ${size}`);
  }
  checkHashLengths(leaf, root, ...proof);
  const inner = BigInt(bitLength(index ^ (size - 1n)));
  checkProofSize(proof.length, inner + BigInt(bitCount(index >> inner)));
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (fn & 1n || fn === sn) {
      r = await nodeHash(p, r);
      [fn, sn] = shiftWhileEven(fn, sn);
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError("wrong-proof-size", "proof ends below the root");
  checkRoot(r, root);
}

function consistencyProofSize(size1, size2) {
  const inner = BigInt(bitLength((size1 - 1n) ^ (size2 - 1n)));
  const border = BigInt(bitCount((size1 - 1n) >> inner));
  const shift = BigInt(bitLength(size1 & -size1) - 1);
  const seedInProof = size1 === 1n << shift ? 0n : 1n;
  return seedInProof + inner - shift + border;
}

// RFC 9162 §2.1.4.2; throws ProofError unless the tree of `size2` extends that of `size1`.
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  size1 = big(size1, "size1");
  size2 = big(size2, "size2");
  if (!(size1 >= 0n && size1 <= size2)) {
    throw new ProofError("size-out-of-range", `need 0 <= size1 <= size2, got ${size1}, ${size2}`);
  }
  if (size1 === 0n) {
    throw new ProofError("empty-tree", "a consistency proof from the empty tree proves nothing");
  }
  if (size1 === size2) {
    checkProofSize(proof.length, 0);
    checkRoot(root1, root2);
    return;
  }
  checkHashLengths(root1, root2, ...proof);
  checkProofSize(proof.length, consistencyProofSize(size1, size2));
  const path = (size1 & (size1 - 1n)) === 0n ? [root1, ...proof] : [...proof];
  let fn = size1 - 1n;
  let sn = size2 - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (fn & 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      [fn, sn] = shiftWhileEven(fn, sn);
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError("wrong-proof-size", "proof ends below the root");
  checkRoot(fr, root1);
  checkRoot(sr, root2);
}
