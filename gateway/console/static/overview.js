// Overview: pin the log's key, verify the newest checkpoint against it and against the last
// one this browser saw, and count what happened over a period.

import { api, el, pinKey, pinnedKey, reason, status, verifiedCheckpoint } from "./console.js";
import { encodeBase64, hex } from "./verify/encoding.js";

const DESCRIBE = {
  first: "first checkpoint this browser has seen: remembered as its witness",
  same: "the same checkpoint this browser saw last",
  extended: "consistent with the last checkpoint this browser saw (consistency proof verified)",
  older: "older than one this browser saw, and consistent with it",
};

async function showKey() {
  try {
    const key = await pinnedKey();
    if (key === null) status("key-status", "warn", "No key pinned: paste the log's public key below.");
    else status("key-status", "ok", `Pinned key: ${key.name}+${hex(key.keyId)}`);
  } catch (error) {
    status("key-status", "fail", `The pinned key is unusable: ${reason(error)}`);
  }
}

function fact(list, term, value) {
  list.append(el("dt", {}, term), el("dd", {}, value));
}

async function showCheckpoint() {
  const list = document.getElementById("checkpoint");
  list.replaceChildren();
  try {
    const { checkpoint, consistency } = await verifiedCheckpoint();
    status("checkpoint-status", "ok", `Signature verified with the pinned key; ${DESCRIBE[consistency]}.`);
    fact(list, "Origin", checkpoint.origin);
    fact(list, "Tree size", String(checkpoint.size));
    fact(list, "Root hash", encodeBase64(checkpoint.root));
    for (const line of checkpoint.extensions) fact(list, "Extension", line);
  } catch (error) {
    status("checkpoint-status", "fail", `Checkpoint NOT verified: ${reason(error)}`);
  }
}

async function showCounts(since, until) {
  const query = new URLSearchParams();
  if (since) query.set("since", since);
  if (until) query.set("until", until);
  const box = document.getElementById("counts");
  box.replaceChildren();
  try {
    const counts = await api(`/v1/audit/counts?${query}`);
    const tiles = [
      ["Permits", counts.decisions.permit ?? 0],
      ["Denials", counts.decisions.deny ?? 0],
      ["Token refusals", counts.events["token-refused"] ?? 0],
      ["Certificate refusals", counts.events["certificate-refused"] ?? 0],
      ["Admin changes", counts.events["admin-change"] ?? 0],
      ["Agreement changes", counts.events["agreement-changed"] ?? 0],
    ];
    for (const [label, value] of tiles) box.append(el("div", {}, el("strong", {}, String(value)), " ", label));
    status("counts-status", "ok", `${counts.total} entries ${since ? `since ${since}` : "in the log"}${until ? ` until ${until}` : ""} (as stored: counts are not proofs).`);
  } catch (error) {
    status("counts-status", "fail", `Counts unavailable: ${reason(error)}`);
  }
}

async function readKeyInput() {
  const file = document.getElementById("key-file").files[0];
  return file ? (await file.text()).trim() : document.getElementById("key-input").value.trim();
}

document.getElementById("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await pinKey(await readKeyInput());
  } catch (error) {
    status("key-status", "fail", `Key NOT pinned: ${reason(error)}`);
    return;
  }
  await showKey();
  await showCheckpoint();
});

document.getElementById("counts-form").addEventListener("submit", (event) => {
  event.preventDefault();
  showCounts(document.getElementById("counts-since").value.trim(), document.getElementById("counts-until").value.trim());
});

await showKey();
await showCheckpoint();
// The morning round: the last 24 hours (a count over the whole log is a full index scan).
const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
document.getElementById("counts-since").value = since;
await showCounts(since, "");
