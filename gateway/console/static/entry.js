// Entry detail: the stored canonical bytes, their leaf hash computed here, and the inclusion
// proof verified here against the newest checkpoint, itself verified with the pinned key.

import { api, el, reason, status, verifiedCheckpoint, visible } from "./console.js";
import { decodeBase64, encodeBase64, hex, strictUtf8 } from "./verify/encoding.js";
import { leafHash, verifyInclusion } from "./verify/merkle.js";
import { showLinks } from "./entry-links.js";

function fact(term, value) {
  document.getElementById("entry-facts").append(el("dt", {}, term), el("dd", {}, value));
}

function related(text, href) {
  document.getElementById("related").append(el("li", {}, el("a", { href }, text)));
}

function showRelated(index, entry) {
  const filters = { participant: entry.actor?.participant, dataset: entry.dataset };
  for (const [name, value] of Object.entries(filters)) {
    if (typeof value === "string" && value) {
      related(`Entries of this ${name}`, `/console/entries?${new URLSearchParams({ [name]: value })}`);
    }
  }
  related("Entries after this one", `/console/entries?order=asc&after=${index}`);
  related("Entries before this one", `/console/entries?before=${index}`);
  if (typeof entry.trace_id === "string") fact("Trace id (for the tracing backend)", entry.trace_id);
  showLinks(document.getElementById("related"), index, entry);
}

async function verify(index) {
  const bytes = await api(`/v1/audit/entries/${index}`, "bytes");
  const text = strictUtf8.decode(bytes);
  const entry = JSON.parse(text);
  document.getElementById("entry-canonical").textContent = visible(text);
  document.getElementById("entry-json").textContent = visible(JSON.stringify(entry, null, 2));
  const leaf = await leafHash(bytes);
  fact("Index", String(index));
  fact("Leaf hash (computed here)", hex(leaf));
  showRelated(index, entry);
  const { checkpoint } = await verifiedCheckpoint();
  fact("Checkpoint", `${checkpoint.size} entries, root ${encodeBase64(checkpoint.root)}`);
  if (BigInt(index) >= checkpoint.size) {
    status("entry-status", "warn", "Not yet covered by a signed checkpoint: reload in a second.");
    return;
  }
  const proof = await api(`/v1/audit/proofs/inclusion?index=${index}&tree_size=${checkpoint.size}`);
  try {
    await verifyInclusion(leaf, index, checkpoint.size, proof.hashes.map(decodeBase64), checkpoint.root);
  } catch (error) {
    status("entry-status", "fail", `Inclusion NOT verified: this entry is not the one the signed log holds at ${index} (${reason(error)}).`);
    return;
  }
  status("entry-status", "ok", `Verified: this entry is at index ${index} of the log whose checkpoint of ${checkpoint.size} entries is signed by the pinned key.`);
}

const raw = new URLSearchParams(location.search).get("index") ?? "";
if (!/^(0|[1-9][0-9]{0,18})$/.test(raw)) {
  status("entry-status", "fail", "No entry index given.");
} else {
  try {
    await verify(BigInt(raw));
  } catch (error) {
    status("entry-status", "fail", `NOT verified: ${reason(error)}`);
  }
}
