// Export: a range of the log as a download, in each format of GET /v1/audit/export. The
// links are built from two numbers and fixed format names; the verifiable bundle is checked
// offline by `sluis audit verify`, with the key pinned in this browser.

import { api, pinnedKey, reason, status } from "./console.js";

const FORMATS = ["jsonl", "ocsf", "syslog", "bundle"];
const INDEX = /^(0|[1-9][0-9]{0,18})$/;

function range(form) {
  const start = form.elements.start.value.trim() || "0";
  const end = form.elements.end.value.trim();
  if (!INDEX.test(start) || (end && !INDEX.test(end))) return null;
  return { start, end };
}

function update(form, size) {
  const chosen = range(form);
  for (const format of FORMATS) {
    const link = document.getElementById(`download-${format}`);
    if (chosen === null) {
      link.removeAttribute("href");
      continue;
    }
    const query = new URLSearchParams({ format, start: chosen.start });
    if (chosen.end) query.set("end", chosen.end);
    link.href = `/v1/audit/export?${query}`;
  }
  if (chosen === null) status("export-status", "fail", "Give the range as entry indices (whole numbers).");
  else status("export-status", "ok", `The log holds ${size} entries. Range: entries ${chosen.start} to ${chosen.end || size} (exclusive).`);
}

async function verifyCommand() {
  let key = "<the log's public key>";
  try {
    const pinned = await pinnedKey();
    if (pinned !== null) key = pinned.keyString;
  } catch {
    // a key that no longer parses: the placeholder says what to give
  }
  document.getElementById("verify-command").textContent = `sluis audit verify sluis-audit-START-END.zip --key '${key}'`;
}

async function load() {
  const form = document.getElementById("range");
  const params = new URLSearchParams(location.search);
  for (const name of ["start", "end"]) {
    if (INDEX.test(params.get(name) ?? "")) form.elements[name].value = params.get(name);
  }
  await verifyCommand();
  try {
    const newest = await api("/v1/audit/entries?order=desc&limit=1");
    const size = newest.entries.length ? Number(newest.entries[0].index) + 1 : 0;
    if (!form.elements.end.value) form.elements.end.value = String(size);
    form.addEventListener("input", () => update(form, size));
    form.addEventListener("submit", (event) => event.preventDefault());
    update(form, size);
  } catch (error) {
    status("export-status", "fail", `The log is unavailable: ${reason(error)}`);
  }
}

await load();
