// Overview: pin the log's key, verify the newest checkpoint against it and against the last
// one this browser saw, and count what happened over a period.

import { api, el, handOvers, pinKey, pinnedKey, reason, status, verifiedCheckpoint } from "./console.js";
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
    showHandOvers();
  } catch (error) {
    status("checkpoint-status", "fail", `Checkpoint NOT verified: ${reason(error)}`);
  }
}

// The key hand-overs this browser followed, each one signed by the key pinned before it.
function showHandOvers() {
  const list = document.getElementById("hand-overs");
  list.replaceChildren(
    ...handOvers().map((step) =>
      el("li", {},
        "Key handed over at ",
        el("a", { href: `/console/entry?index=${encodeURIComponent(step.index)}` }, `entry ${step.index}`),
        ` to ${step.key} (signed by the key pinned before, cosigned by the new one): the pin moved.`,
      ),
    ),
  );
}

// The server draws the charts (SVG images: no script runs in them); the period is the counts'.
function showCharts(since, until) {
  const query = new URLSearchParams();
  if (since) query.set("since", since);
  if (until) query.set("until", until);
  const names = ["requests", "denials", "consumers", "limits"];
  let pending = names.length;
  const failed = [];
  const done = () => {
    if (--pending > 0) return;
    if (failed.length) status("charts-status", "fail", `Charts unavailable: ${failed.join(", ")}`);
    else status("charts-status", "ok", `Drawn by the gateway ${since ? `since ${since}` : "over the whole log"}${until ? ` until ${until}` : ""} (as stored: counts are not proofs).`);
  };
  for (const name of names) {
    const image = document.getElementById(`chart-${name}`);
    image.onload = done;
    image.onerror = () => {
      failed.push(name);
      done();
    };
    image.src = `/console/charts/${name}.svg?${query}`;
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

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

// One bar per dataset: permits (green) then denials (red), scaled to the busiest dataset.
function bar(permit, deny, widest) {
  const width = 400;
  const scale = widest ? width / widest : 0;
  const chart = svg("svg", { viewBox: `0 0 ${width} 16`, width, height: 16, role: "img" });
  chart.setAttribute("aria-label", `${permit} permitted, ${deny} denied`);
  chart.append(svg("rect", { x: 0, y: 0, width: permit * scale, height: 16, class: "permit" }));
  chart.append(svg("rect", { x: permit * scale, y: 0, width: deny * scale, height: 16, class: "deny" }));
  return chart;
}

async function showActivity(since, until) {
  const query = new URLSearchParams();
  if (since) query.set("since", since);
  if (until) query.set("until", until);
  const box = document.getElementById("activity");
  box.replaceChildren();
  try {
    const { datasets } = await api(`/v1/audit/activity?${query}`);
    const widest = Math.max(0, ...datasets.map((d) => d.permit + d.deny));
    for (const d of datasets) {
      const top = d.top_consumers.map((c) => `${c.participant} (${c.count})`).join(", ");
      box.append(
        el("div", { class: "activity" },
          el("a", { href: `/console/entries?${new URLSearchParams({ dataset: d.dataset, event: "access-decision" })}` }, d.dataset),
          bar(d.permit, d.deny, widest),
          el("span", {}, `${d.permit} permitted, ${d.deny} denied`),
          el("span", { class: "top" }, top ? `top consumers: ${top}` : ""),
        ),
      );
    }
    status("activity-status", "ok", datasets.length ? `${datasets.length} datasets asked for, busiest first (as stored: not proofs).` : "No access decisions in this period.");
  } catch (error) {
    status("activity-status", "fail", `Activity unavailable: ${reason(error)}`);
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
  await showCheckpoint();
  await showKey();
});

document.getElementById("counts-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const since = document.getElementById("counts-since").value.trim();
  const until = document.getElementById("counts-until").value.trim();
  showCounts(since, until);
  showActivity(since, until);
  showCharts(since, until);
});

await showCheckpoint(); // first: it may follow a key hand-over and move the pin
await showKey();
// The morning round: the last 24 hours (a count over the whole log is a full index scan).
const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
document.getElementById("counts-since").value = since;
await showCounts(since, "");
await showActivity(since, "");
showCharts(since, "");
