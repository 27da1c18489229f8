// flowlua ui: the task run page. Fills task.html from
// /api/runs/ID/tasks/KEY. Everything from the history (names, errors,
// tracebacks, log lines) is untrusted: it goes into the page through
// textContent only, never parsed as markup. ui.js, loaded first, has the
// helpers every page shares (el, say, when, seconds, stateCell).
"use strict";

function worker(w) {
  return w ? w.host + ":" + w.pid : "-";
}

function preCell(text) {
  const td = el("td");
  if (text) td.appendChild(el("pre", text));
  return td;
}

// "/runs/ID/tasks/KEY": ID, and KEY decoded (it may hold '/', '[', '#').
function ids() {
  const m = /^\/runs\/([^/]+)\/tasks\/(.+)$/.exec(location.pathname);
  if (!m) return null;
  try {
    return { run: decodeURIComponent(m[1]), key: decodeURIComponent(m[2]) };
  } catch (e) {
    return null;
  }
}

// Attempts from the state changes: each Running opens one, the next
// change of the task run ends it (its state and error).
function attemptsOf(events) {
  const out = [];
  let open = null;
  for (const e of events) {
    if (open) {
      open.ended = e.at;
      open.state = e.state;
      open.error = e.error;
      open = null;
    }
    if (e.state === "Running" && e.attempt > 0) {
      open = { attempt: e.attempt, started: e.at, ended: null,
               state: "Running", error: null, worker: e.worker };
      out.push(open);
    }
  }
  return out;
}

function span(from, to) {
  if (!from || !to) return null;
  return (new Date(to) - new Date(from)) / 1000;
}

function fillAttempts(t) {
  const body = document.querySelector("#attempts tbody");
  for (const a of attemptsOf(t.events)) {
    const tr = el("tr");
    tr.appendChild(el("td", a.attempt, "num"));
    tr.appendChild(stateCell(a.state));
    tr.appendChild(el("td", when(a.started)));
    tr.appendChild(el("td", seconds(span(a.started, a.ended)), "num"));
    tr.appendChild(el("td", worker(a.worker)));
    tr.appendChild(preCell(a.error));
    body.appendChild(tr);
  }
}

function fillEvents(t) {
  const body = document.querySelector("#events tbody");
  for (const e of t.events) {
    const tr = el("tr");
    tr.appendChild(el("td", e.seq, "num"));
    tr.appendChild(el("td", when(e.at)));
    tr.appendChild(stateCell(e.state));
    tr.appendChild(el("td", e.attempt, "num"));
    tr.appendChild(el("td", worker(e.worker)));
    tr.appendChild(preCell(e.error));
    body.appendChild(tr);
  }
}

function fillLogs(t) {
  const logs = t.logs || [];
  const dropped = t.logs_dropped;
  if (dropped) {
    const p = document.getElementById("logs-dropped");
    p.textContent = dropped.lines + " earlier line" +
      (dropped.lines === 1 ? "" : "s") + " (" + dropped.bytes +
      " bytes) dropped: a task run keeps its last 1,000 lines and 64 KiB.";
    p.hidden = false;
  }
  if (!logs.length) {
    document.getElementById("logs-none").hidden = false;
    document.getElementById("logs").hidden = true;
    return;
  }
  const body = document.querySelector("#logs tbody");
  for (const l of logs) {
    const tr = el("tr", null, "log log-" + String(l.level).replace(/[^A-Z]/g, ""));
    tr.appendChild(el("td", when(l.at)));
    tr.appendChild(el("td", l.level));
    tr.appendChild(el("td", l.attempt, "num"));
    tr.appendChild(preCell(l.line));
    body.appendChild(tr);
  }
}

async function taskPage() {
  const id = ids();
  if (!id) {
    say("not a task run's address", true);
    return;
  }
  const back = document.getElementById("t-back");
  back.href = "/runs/" + encodeURIComponent(id.run);
  let t;
  try {
    const r = await fetch("/api/runs/" + encodeURIComponent(id.run) +
                          "/tasks/" + encodeURIComponent(id.key),
                          { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) throw new Error((body && body.error) || ("HTTP " + r.status));
    t = body;
  } catch (e) {
    say(e.message, true);
    return;
  }
  back.href = "/runs/" + encodeURIComponent(t.run);
  document.title = t.key + " - flowlua";
  document.getElementById("t-key").textContent = t.key;
  const st = document.getElementById("t-state");
  st.textContent = t.state;
  st.className = "state state-" + String(t.state).replace(/[^A-Za-z]/g, "");
  document.getElementById("t-task").textContent = t.task;
  document.getElementById("t-run").textContent = t.run;
  document.getElementById("t-attempts").textContent = t.attempts;
  document.getElementById("t-started").textContent = when(t.started_at);
  document.getElementById("t-duration").textContent = seconds(t.duration);
  document.getElementById("t-worker").textContent = worker(t.worker);
  document.getElementById("t-error").textContent = t.error || "";
  fillAttempts(t);
  fillEvents(t);
  fillLogs(t);
  document.getElementById("summary").hidden = false;
}

document.addEventListener("DOMContentLoaded", taskPage);
