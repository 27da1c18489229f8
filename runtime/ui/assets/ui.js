// flowlua ui: what every page shares (loaded first), and the runs page.
// Everything from the history (flow and task names, errors, params) is
// untrusted: it goes into the page through textContent only, never parsed
// as markup.
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function say(text, isError) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.className = isError ? "message error" : "message";
  m.hidden = false;
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || ("HTTP " + r.status));
  return body;
}

function when(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function seconds(s) {
  if (s === null || s === undefined || !(s >= 0)) return "-";
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}

function stateClass(state) {
  return "state state-" + String(state).replace(/[^A-Za-z]/g, "");
}

function stateCell(state) {
  return el("td", state, stateClass(state));
}

function counts(obj) {
  const parts = [];
  for (const k of Object.keys(obj || {})) parts.push(obj[k] + " " + k);
  return parts.length ? parts.join(", ") : "-";
}

// The URL keeps times as the API takes them (ISO 8601 UTC); the form's
// inputs show them in local time, as people type them.
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
    "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
}

// The filter goes into the page's URL, so that a filtered list can be
// linked and reloaded; an empty field is left out (the API refuses empty
// parameters).
function filterSubmit(ev) {
  ev.preventDefault();
  const f = new URLSearchParams();
  const flow = document.getElementById("f-flow").value.trim();
  const state = document.getElementById("f-state").value;
  if (flow) f.set("flow", flow);
  if (state) f.set("state", state);
  for (const k of ["since", "until"]) {
    const v = document.getElementById("f-" + k).value;
    const d = v ? new Date(v) : null;
    if (d && !isNaN(d)) f.set(k, d.toISOString());
  }
  location.href = "/" + (f.toString() ? "?" + f : "");
}

async function runsPage() {
  const q = new URLSearchParams(location.search);
  const api = new URLSearchParams();
  for (const k of ["flow", "state", "limit", "before", "since", "until"])
    if (q.get(k)) api.set(k, q.get(k));
  document.getElementById("f-flow").value = q.get("flow") || "";
  document.getElementById("f-state").value = q.get("state") || "";
  document.getElementById("f-since").value = localInput(q.get("since"));
  document.getElementById("f-until").value = localInput(q.get("until"));
  document.getElementById("filter").addEventListener("submit", filterSubmit);
  let page;
  try {
    page = await getJSON("/api/runs" + (api.toString() ? "?" + api : ""));
  } catch (e) {
    say(e.message, true);
    return;
  }
  const body = document.querySelector("#runs tbody");
  for (const run of page.runs) {
    const tr = el("tr");
    const idCell = el("td");
    const a = el("a", run.id.slice(0, 8));
    a.href = "/runs/" + encodeURIComponent(run.id);
    a.title = run.id;
    idCell.appendChild(a);
    tr.appendChild(idCell);
    tr.appendChild(el("td", run.flow));
    tr.appendChild(stateCell(run.state));
    tr.appendChild(el("td", when(run.started_at)));
    tr.appendChild(el("td", run.state === "Running" ? "running" : seconds(run.duration), "num"));
    tr.appendChild(el("td", counts(run.tasks)));
    body.appendChild(tr);
  }
  if (!page.runs.length) say("No runs" + (api.toString() ? " match." : " yet."));
  if (page.next_before) {
    api.set("before", page.next_before);
    const older = document.getElementById("older");
    older.href = "/?" + api;
    older.hidden = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  // Each page's own script (run.js...) starts its page; this one the runs.
  if (document.body.dataset.page === "runs") runsPage();
});
