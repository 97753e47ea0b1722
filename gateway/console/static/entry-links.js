// The entries related to one entry: the access decision and its completion (they share a
// request id), the agreement's history (entries whose target is `agreement:<id>`), the
// entries of its target and of its trace. Every link is a fixed path with the values in
// its query string, so no entry text can become a scheme or a path.

import { api, el, reason, visible } from "./console.js";

const PARTNER = {
  "access-decision": "The access decision",
  "exchange-completed": "Its completion",
};

function item(list, text, href) {
  const node = el("li", {}, href ? el("a", { href }, text) : text);
  list.append(node);
  return node;
}

// The tracing backend's page of a trace, when the operator set `trace_url` (a template
// with {trace_id}); only for a well-formed trace id and an http(s) result.
export function traceLink(template, traceId) {
  if (!template || !/^[0-9a-f]{32}$/.test(traceId)) return null;
  try {
    const url = new URL(template.replace("{trace_id}", traceId));
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

function entriesOf(filters) {
  return `/console/entries?${new URLSearchParams({ ...filters, order: "asc" })}`;
}

// Direct links to the other entries of the same request: a decision's completion, a
// completion's decision. Looked up in the log, not guessed from the index.
async function partners(list, index, entry) {
  const request = entry.request_id;
  const holder = item(list, `Entries of request ${request}: looking them up…`);
  try {
    const page = await api(`/v1/audit/entries?${new URLSearchParams({ request_id: request, limit: "20" })}`);
    const others = page.entries.filter((e) => BigInt(e.index) !== index);
    holder.replaceChildren(el("a", { href: entriesOf({ request_id: request }) }, `All entries of request ${request}`));
    for (const other of others) {
      const label = PARTNER[other.entry?.event] ?? `Entry of event ${other.entry?.event ?? "?"}`;
      item(list, `${label}: entry ${Number(other.index)}`, `/console/entry?index=${Number(other.index)}`).classList.add("partner");
    }
    if (!others.length && entry.event === "access-decision") item(list, "No completion recorded for this request (yet).");
  } catch (error) {
    holder.textContent = visible(`Entries of request ${request} unavailable: ${reason(error)}`);
  }
}

export async function showLinks(list, index, entry) {
  const target = typeof entry.target === "string" ? entry.target : "";
  if (target.startsWith("agreement:") && target.length > "agreement:".length) {
    item(list, "This agreement's history", entriesOf({ agreement: target.slice("agreement:".length) }));
  } else if (target) {
    item(list, "Entries with this target", entriesOf({ target }));
  }
  if (typeof entry.trace_id === "string" && entry.trace_id) {
    item(list, "Entries of this trace", entriesOf({ trace_id: entry.trace_id }));
    const template = document.querySelector('meta[name="sluis-trace-url"]')?.content;
    const backend = traceLink(template, entry.trace_id);
    if (backend) item(list, "This trace in the tracing backend", backend).classList.add("trace-backend");
  }
  if (typeof entry.request_id === "string" && entry.request_id) await partners(list, index, entry);
}
