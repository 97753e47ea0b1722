// Entries: one page of the log, filtered, sorted and paged by keyset. By index: `before`
// (newest first) or `after` (oldest first). By another column: the API's opaque `cursor`,
// which holds the last row's (value, index); the column headers choose the sort.

import { api, el, reason, status } from "./console.js";
import { sortHeaders } from "./sort-headers.js";

const FILTERS = [
  "since", "until", "event", "participant", "dataset", "decision",
  "agreement", "target", "trace_id", "request_id", "sort", "order", "limit",
];

function actor(entry) {
  const a = entry.actor ?? {};
  return a.participant ?? a.client ?? a.source ?? a.certificate ?? "";
}

function row({ index, entry }) {
  const link = el("a", { href: `/console/entry?index=${Number(index)}` }, String(index));
  const cells = [
    entry.time ?? "",
    entry.event ?? "",
    actor(entry),
    entry.dataset ?? "",
    entry.decision?.result ?? "",
    (entry.decision?.reasons ?? []).join("; "),
  ];
  return el("tr", {}, el("td", { class: "index" }, link), ...cells.map((c, i) => el("td", i === 0 ? { class: "time" } : {}, String(c))));
}

// The query for the API and the page: the filters in the address, shown in the form.
function query() {
  const params = new URLSearchParams(location.search);
  const out = new URLSearchParams();
  const form = document.getElementById("filters");
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value) {
      out.set(name, value);
      form.elements[name].value = value;
    }
  }
  if (!out.has("limit")) out.set("limit", "50");
  if (!out.has("order")) out.set("order", "desc");
  if (out.get("sort") === "index") out.delete("sort");
  return { params, out };
}

// Where the next page starts: `before` / `after` by index, `cursor` by another column.
function cursorName(out) {
  if (out.has("sort")) return "cursor";
  return out.get("order") === "desc" ? "before" : "after";
}

function following(page, name) {
  if (name === "cursor") return page.next_cursor ?? null;
  const value = name === "before" ? page.next_before : page.next_after;
  return value === null || value === undefined ? null : String(Number(value));
}

function exportLink(page, out) {
  // By index, a page is a range of indices: offer it on the export page.
  if (out.has("sort") || !page.entries.length) return;
  const indices = page.entries.map((e) => Number(e.index));
  const range = new URLSearchParams({ start: String(Math.min(...indices)), end: String(Math.max(...indices) + 1) });
  const link = document.getElementById("export-page");
  link.href = `/console/export?${range}`;
  link.hidden = false;
}

async function load() {
  const { params, out } = query();
  const name = cursorName(out);
  if (params.get(name)) out.set(name, params.get(name));
  sortHeaders(document.querySelector("#entries thead"), out);
  const body = document.querySelector("#entries tbody");
  try {
    const page = await api(`/v1/audit/entries?${out}`);
    body.replaceChildren(...page.entries.map(row));
    const shown = page.entries.length;
    const text = shown ? `${shown} entries (${page.entries[0].index} … ${page.entries.at(-1).index}).` : "No entries match.";
    status("entries-status", "ok", `${text} Shown as stored; open an entry to verify it.`);
    out.delete(name);
    document.getElementById("first-page").href = `/console/entries?${out}`;
    const next = following(page, name);
    if (next !== null) {
      const link = document.getElementById("next-page");
      out.set(name, next);
      link.href = `/console/entries?${out}`;
      link.textContent = name === "cursor" ? "Next page" : name === "before" ? "Older entries" : "Newer entries";
      link.hidden = false;
    }
    exportLink(page, out);
  } catch (error) {
    status("entries-status", "fail", `Entries unavailable: ${reason(error)}`);
  }
}

await load();
