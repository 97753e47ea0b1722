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

// The agreement's own state changes, from its agreement-changed entries, each linked to its
// entry page (which verifies it in the log).
async function showHistory(button, agreement) {
  const row = button.closest("tr");
  const next = row.nextElementSibling;
  if (next?.classList.contains("history")) {
    next.remove();
    button.setAttribute("aria-expanded", "false");
    return;
  }
  const cell = el("td", { colspan: String(row.children.length) });
  row.after(el("tr", { class: "history" }, cell));
  button.setAttribute("aria-expanded", "true");
  try {
    const events = await api(`/v1/officer/agreements/${encodeURIComponent(agreement.id)}/history`);
    const items = events.map((e) =>
      el("li", {},
        el("a", { href: `/console/entry?index=${Number(e.index)}` }, `entry ${Number(e.index)}`),
        ` ${e.time}: ${e.action ?? "?"} → ${e.state ?? "?"}`,
        e.participant ? ` by ${e.participant}` : "",
        e.reasons.length && e.reasons[0] ? `, reason: ${e.reasons[0]}` : "",
        e.reasons.length > 1 ? ` (${e.reasons.slice(1, 3).join("; ")})` : "",
      ),
    );
    cell.append(
      el("p", { class: "status ok" }, `${events.length} state changes of agreement ${agreement.id}, oldest first (open an entry to verify it in the log):`),
      el("ol", { class: "history" }, ...items),
    );
  } catch (error) {
    cell.append(status(el("p", {}), "fail", `History unavailable: ${reason(error)}`));
  }
}

// Uses left under the limit the policy version states (the usage state is the consumer's
// under that version: an ended agreement's count goes on in the next one).
function usesLeft(a) {
  if (a.use_limit === null) return "no limit";
  return a.state === "active" ? `${a.uses_left} of ${a.use_limit}` : `(ended; limit ${a.use_limit})`;
}

function historyButton(agreement) {
  const button = el("button", { type: "button", "aria-expanded": "false", class: "history" }, "history");
  button.addEventListener("click", () => showHistory(button, agreement));
  return button;
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
    usesLeft(a),
    a.policy_hash.slice(0, 16),
    a.updated_at,
    historyButton(a),
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
