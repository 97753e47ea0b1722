// Agreements, participants and revoked certificates, as the registry and the CRL hold them,
// each row linked to the log's entries that tell how it came to be.

import { api, el, reason, status } from "./console.js";

function entriesLink(text, filters) {
  return el("a", { href: `/console/entries?${new URLSearchParams(filters)}` }, text);
}

function cells(values) {
  return values.map((v) => (v instanceof Node ? el("td", {}, v) : el("td", {}, String(v ?? ""))));
}

async function fill(name, path, row, describe) {
  try {
    const items = await api(path);
    document.querySelector(`#${name} tbody`).replaceChildren(...items.map((item) => el("tr", {}, ...cells(row(item)))));
    status(`${name}-status`, "ok", describe(items));
  } catch (error) {
    status(`${name}-status`, "fail", `Unavailable: ${reason(error)}`);
  }
}

await fill(
  "agreements",
  "/v1/officer/agreements",
  (a) => [
    a.id,
    entriesLink(a.dataset_id, { dataset: a.dataset_id, event: "agreement-changed" }),
    entriesLink(a.consumer_id, { participant: a.consumer_id }),
    a.purpose,
    a.state,
    a.reason,
    a.use_count,
    a.policy_hash.slice(0, 16),
    a.updated_at,
  ],
  (items) => `${items.length} agreements, most recently changed first.`,
);
await fill(
  "participants",
  "/v1/officer/participants",
  (p) => [p.id, p.name, p.roles.join(", "), p.status, entriesLink("entries", { participant: p.id })],
  (items) => `${items.length} participants, ${items.filter((p) => p.status !== "active").length} not active.`,
);
await fill(
  "revoked",
  "/v1/officer/revocations",
  (r) => [r.serial, r.revoked_at, r.issuer],
  (items) => `${items.length} certificates revoked in the gateway's CRL.`,
);
