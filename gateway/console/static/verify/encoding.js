// Strict encodings shared by the verifier: canonical standard base64 (with padding), hex,
// UTF-8. Mirrors gateway/audit/encoding.py: a value has exactly one accepted spelling.

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function encodeBase64(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

// Canonical standard base64 to bytes; throws TypeError on anything else.
export function decodeBase64(text) {
  if (typeof text !== "string" || !BASE64.test(text) || text.length % 4 !== 0) {
    throw new TypeError("not canonical standard base64");
  }
  const binary = atob(text);
  const out = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  if (encodeBase64(out) !== text) throw new TypeError("non-canonical base64");
  return out;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function unhex(text) {
  if (!/^(?:[0-9a-f]{2})*$/.test(text)) throw new TypeError("not lower-case hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export const utf8 = new TextEncoder();
export const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
