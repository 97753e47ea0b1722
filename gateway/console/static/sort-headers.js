// Column headers that sort: each header with a `data-sort` column becomes a link to the
// same listing sorted by that column (the current one flips its order), with
// `aria-sort` saying how the table is sorted now. Links are built from fixed column
// names and the page's own filters; paging cursors are dropped (they belong to one sort).

import { el } from "./console.js";

const LABEL = { asc: "ascending", desc: "descending" };

export function sortHeaders(head, query) {
  const sort = query.get("sort") ?? "index";
  const order = query.get("order") ?? "desc";
  for (const th of head.querySelectorAll("th[data-sort]")) {
    const column = th.dataset.sort;
    const target = new URLSearchParams(query);
    for (const cursor of ["cursor", "before", "after"]) target.delete(cursor);
    const current = column === sort;
    const flipped = current && order === "desc" ? "asc" : current ? "desc" : order;
    target.set("order", flipped);
    if (column === "index") target.delete("sort");
    else target.set("sort", column);
    th.setAttribute("aria-sort", current ? LABEL[order] : "none");
    const text = th.textContent;
    const mark = current ? (order === "desc" ? " ▼" : " ▲") : "";
    th.replaceChildren(el("a", { href: `/console/entries?${target}`, title: `Sort by ${text.toLowerCase()}` }, text + mark));
  }
}
