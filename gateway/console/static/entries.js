// Entries: one page of the log, filtered, paged by index (keyset: `before` newest first,
// `after` oldest first).

import { api, el, reason, status } from "./console.js";

const FILTERS = ["since", "until", "event", "participant", "dataset", "decision", "order", "limit"];

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

async function load() {
  const params = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  const form = document.getElementById("filters");
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value) {
      query.set(name, value);
      form.elements[name].value = value;
    }
  }
  if (!query.has("limit")) query.set("limit", "50");
  if (!query.has("order")) query.set("order", "desc");
  const cursor = query.get("order") === "desc" ? "before" : "after";
  if (params.get(cursor)) query.set(cursor, params.get(cursor));
  const body = document.querySelector("#entries tbody");
  try {
    const page = await api(`/v1/audit/entries?${query}`);
    body.replaceChildren(...page.entries.map(row));
    const first = page.entries.length ? page.entries[0].index : null;
    const text = first === null ? "No entries match." : `Entries ${first} to ${page.entries.at(-1).index} (${page.entries.length}).`;
    status("entries-status", "ok", `${text} Shown as stored; open an entry to verify it.`);
    const next = document.getElementById("next-page");
    query.delete(cursor);
    document.getElementById("first-page").href = `/console/entries?${query}`;
    const following = cursor === "before" ? page.next_before : page.next_after;
    if (following !== null && following !== undefined) {
      query.set(cursor, String(Number(following)));
      next.href = `/console/entries?${query}`;
      next.textContent = cursor === "before" ? "Older entries" : "Newer entries";
      next.hidden = false;
    }
  } catch (error) {
    status("entries-status", "fail", `Entries unavailable: ${reason(error)}`);
  }
}

await load();
