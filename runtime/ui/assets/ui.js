// flowlua ui: fills the static pages from the JSON API. Everything from
// the history (flow and task names, errors, params) is untrusted: it goes
// into the page through textContent only, never parsed as markup.
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
  if (s === null || s === undefined) return "-";
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}

function stateCell(state) {
  return el("td", state, "state state-" + String(state).replace(/[^A-Za-z]/g, ""));
}

function counts(obj) {
  const parts = [];
  for (const k of Object.keys(obj || {})) parts.push(obj[k] + " " + k);
  return parts.length ? parts.join(", ") : "-";
}

async function runsPage() {
  const q = new URLSearchParams(location.search);
  const api = new URLSearchParams();
  for (const k of ["flow", "state", "limit", "before"])
    if (q.get(k)) api.set(k, q.get(k));
  document.getElementById("f-flow").value = q.get("flow") || "";
  document.getElementById("f-state").value = q.get("state") || "";
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

async function runPage() {
  const id = decodeURIComponent(location.pathname.replace(/^\/runs\//, ""));
  let run;
  try {
    run = await getJSON("/api/runs/" + encodeURIComponent(id));
  } catch (e) {
    say(e.message, true);
    return;
  }
  document.title = "flowlua: " + run.flow + " " + run.state;
  const set = (elId, v) => { document.getElementById(elId).textContent = v === null || v === undefined ? "-" : String(v); };
  set("r-flow", run.flow);
  set("r-state", run.state);
  document.getElementById("r-state").className = "state state-" + String(run.state).replace(/[^A-Za-z]/g, "");
  set("r-id", run.id);
  set("r-script", run.script);
  set("r-started", when(run.started_at));
  set("r-duration", seconds(run.duration));
  set("r-resumed", run.resumed_from);
  set("r-error", run.error);
  set("r-params", JSON.stringify(run.params, null, 2));
  const body = document.querySelector("#tasks tbody");
  for (const t of run.tasks) {
    const tr = el("tr");
    tr.appendChild(el("td", t.key));
    tr.appendChild(stateCell(t.state));
    tr.appendChild(el("td", t.attempts, "num"));
    tr.appendChild(el("td", seconds(t.duration), "num"));
    const err = el("td");
    if (t.error) err.appendChild(el("pre", t.error));
    tr.appendChild(err);
    body.appendChild(tr);
  }
  document.getElementById("summary").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "runs") runsPage();
  else if (page === "run") runPage();
});
