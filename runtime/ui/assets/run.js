// flowlua ui: a run's page (after ui.js, whose helpers it uses). Reads the
// run in parts: /summary, a page of /tasks, the /graph and a page of the
// /timeline, and while the run goes, follows /events (server-sent events)
// and reads again what changed. Text from the history is written with
// textContent or drawn with fillText on a canvas: never parsed as markup.
"use strict";

const TASKS_PAGE = 100;
const TIMELINE_PAGE = 500;
const COLOURS = {
  Success: "#1a7f37", Cached: "#4ac26b", Failed: "#cf222e", TimedOut: "#a40e26",
  TriggerFailed: "#e16f24", Crashed: "#82071e", Running: "#0969da",
  Retrying: "#54aeff", Cancelled: "#9a6700", Skipped: "#bf8700",
  Pending: "#afb8c1",
};
const colour = (state) => COLOURS[state] || "#6e7781";

const view = {
  ref: null,          // the run as the URL names it, then its full id
  run: null,          // the latest summary
  taskState: "", taskOffset: 0, taskTotal: 0,
  rowOffset: 0, rowsTotal: 0,
  events: null,       // the one EventSource, while the run goes
  busy: false, again: false,
};

function text(id, v) {
  document.getElementById(id).textContent = v === null || v === undefined ? "-" : String(v);
}

function firstLine(s) {
  if (!s) return "";
  const i = s.indexOf("\n");
  return i < 0 ? s : s.slice(0, i);
}

function apiPath(part, query) {
  return "/api/runs/" + encodeURIComponent(view.ref) + "/" + part +
    (query && query.toString() ? "?" + query : "");
}

function showSummary(run) {
  view.run = run;
  document.title = "flowlua: " + run.flow + " " + run.state;
  text("r-flow", run.flow);
  text("r-state", run.state);
  document.getElementById("r-state").className = stateClass(run.state);
  text("r-id", run.id);
  text("r-script", run.script);
  text("r-started", when(run.started_at));
  text("r-ended", run.ended_at ? when(run.ended_at) : (run.state === "Running" ? "running" : "-"));
  text("r-duration", run.state === "Running" && run.started_at
    ? seconds((Date.now() - Date.parse(run.started_at)) / 1000) + " so far"
    : seconds(run.duration));
  const resumed = document.getElementById("r-resumed");
  resumed.textContent = "";
  if (run.resumed_from) {
    const a = el("a", run.resumed_from);
    a.href = "/runs/" + encodeURIComponent(run.resumed_from);
    resumed.appendChild(a);
  } else {
    resumed.textContent = "-";
  }
  showLinks(run);
  text("r-counts", run.task_runs + " (" + counts(run.task_counts) + ")");
  text("r-error", run.error);
  text("r-params", JSON.stringify(run.params, null, 2));
  document.getElementById("summary").hidden = false;
}

function runLink(id) {
  const a = el("a", id);
  a.href = "/runs/" + encodeURIComponent(id);
  return a;
}

// A subflow's run links to the run that called it; a run that called
// subflows lists them (the calling task run, the run, its state), the
// first SUBFLOWS_SHOWN of them: a map over a subflow may call thousands.
const SUBFLOWS_SHOWN = 100;

function showLinks(run) {
  const parent = document.getElementById("r-parent");
  parent.replaceChildren();
  if (run.parent_run_id) {
    parent.append(runLink(run.parent_run_id), " (task " + run.parent_task + ")");
  }
  for (const e of document.querySelectorAll(".r-parent")) e.hidden = !run.parent_run_id;
  const subflows = run.subflows || [];
  const list = document.getElementById("r-subflows");
  const lines = [];
  for (const s of subflows.slice(0, SUBFLOWS_SHOWN)) {
    const line = el("div");
    line.append(s.task + " \u2192 ", runLink(s.run_id), " ");
    line.appendChild(el("span", s.state, stateClass(s.state)));
    lines.push(line);
  }
  if (subflows.length > SUBFLOWS_SHOWN)
    lines.push(el("div", "\u2026 and " + (subflows.length - SUBFLOWS_SHOWN) + " more"));
  list.replaceChildren(...lines);
  for (const e of document.querySelectorAll(".r-subflows")) e.hidden = !subflows.length;
}

// ---- task runs: one page at a time ---------------------------------------

async function loadTasks() {
  const q = new URLSearchParams();
  if (view.taskState) q.set("state", view.taskState);
  if (view.taskOffset) q.set("offset", view.taskOffset);
  q.set("limit", TASKS_PAGE);
  const page = await getJSON(apiPath("tasks", q));
  view.taskTotal = page.total;
  const body = document.querySelector("#tasks tbody");
  const rows = [];
  for (const t of page.tasks) {
    const tr = el("tr");
    const keyCell = el("td");
    const a = el("a", t.key);
    a.href = "/runs/" + encodeURIComponent(view.run.id) + "/tasks/" +
      encodeURIComponent(t.key);
    keyCell.appendChild(a);
    tr.appendChild(keyCell);
    tr.appendChild(stateCell(t.state));
    tr.appendChild(el("td", t.attempts, "num"));
    tr.appendChild(el("td", seconds(t.duration), "num"));
    const err = el("td");
    if (t.error) {
      const pre = el("pre", firstLine(t.error));
      pre.title = t.error; // a tooltip is text too
      err.appendChild(pre);
    }
    tr.appendChild(err);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  const last = Math.min(view.taskOffset + page.tasks.length, page.total);
  text("k-range", page.total
    ? (view.taskOffset + 1) + "–" + last + " of " + page.total
    : "none" + (view.taskState ? " " + view.taskState : ""));
  document.getElementById("k-prev").disabled = view.taskOffset === 0;
  document.getElementById("k-next").disabled = last >= page.total;
}

// ---- the graph, on a canvas ------------------------------------------------

function sizeCanvas(canvas, w, h) {
  const ratio = window.devicePixelRatio || 1;
  // A canvas larger than the browser allows draws nothing: bound it.
  w = Math.min(Math.max(w, 10), 16000);
  h = Math.min(Math.max(h, 10), 16000);
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  canvas.style.width = w + "px";
  canvas.style.height = h + "px";
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.font = "12px system-ui, sans-serif";
  g.textBaseline = "middle";
  return g;
}

function clip(g, s, width) {
  if (g.measureText(s).width <= width) return s;
  while (s.length > 1 && g.measureText(s + "…").width > width) s = s.slice(0, -1);
  return s + "…";
}

const NODE_W = 150, NODE_H = 26, PITCH_X = 190, PITCH_Y = 38, MARGIN = 10;

function drawNodes(canvas, graph) {
  let rows = 0;
  for (const n of graph.nodes) rows = Math.max(rows, n.row + 1);
  const g = sizeCanvas(canvas, MARGIN * 2 + Math.max(graph.layers, 1) * PITCH_X,
                       MARGIN * 2 + Math.max(rows, 1) * PITCH_Y);
  const at = (n) => [MARGIN + n.layer * PITCH_X, MARGIN + n.row * PITCH_Y];
  g.strokeStyle = "#8c959f";
  for (const [from, to, ordering] of graph.edges) {
    const [x1, y1] = at(graph.nodes[from]), [x2, y2] = at(graph.nodes[to]);
    g.setLineDash(ordering ? [4, 3] : []);
    g.beginPath();
    g.moveTo(x1 + NODE_W, y1 + NODE_H / 2);
    g.lineTo(x2, y2 + NODE_H / 2);
    g.stroke();
  }
  g.setLineDash([]);
  for (const n of graph.nodes) {
    const [x, y] = at(n);
    g.fillStyle = colour(n.state);
    g.fillRect(x, y, NODE_W, NODE_H);
    if (n.map) { g.strokeStyle = "#1d2329"; g.strokeRect(x + 2, y + 2, NODE_W - 4, NODE_H - 4); }
    g.fillStyle = "#fff";
    const label = n.map ? n.key + " ×" + n.map : n.key;
    g.fillText(clip(g, label, NODE_W - 10), x + 5, y + NODE_H / 2);
  }
  // A click on a node opens its task run.
  canvas.onclick = (ev) => {
    const r = canvas.getBoundingClientRect();
    const px = ev.clientX - r.left, py = ev.clientY - r.top;
    for (const n of graph.nodes) {
      const [x, y] = at(n);
      if (px >= x && px <= x + NODE_W && py >= y && py <= y + NODE_H) {
        location.href = "/runs/" + encodeURIComponent(view.run.id) + "/tasks/" +
          encodeURIComponent(n.key);
        return;
      }
    }
  };
  canvas.style.cursor = "pointer";
}

// Too many nodes to draw one by one: a column per layer, its height the
// layer's task count, split by state.
function drawLayers(canvas, graph) {
  const layers = graph.by_layer, colW = Math.max(6, Math.min(40, 1200 / layers.length));
  let most = 1;
  for (const l of layers) most = Math.max(most, l.tasks);
  const H = 220;
  const g = sizeCanvas(canvas, MARGIN * 2 + layers.length * colW, H + MARGIN * 2 + 16);
  layers.forEach((l, i) => {
    let y = MARGIN + H;
    for (const [state, n] of Object.entries(l.states)) {
      const h = (n / most) * H;
      g.fillStyle = colour(state);
      g.fillRect(MARGIN + i * colW + 1, y - h, colW - 2, h);
      y -= h;
    }
  });
  g.fillStyle = "#5c6670";
  g.fillText("layers 1–" + layers.length + "; the tallest has " + most + " tasks",
             MARGIN, MARGIN + H + 12);
  canvas.onclick = null;
  canvas.style.cursor = "";
}

async function loadGraph() {
  const graph = await getJSON(apiPath("graph"));
  const canvas = document.getElementById("graph");
  let note = graph.tasks + " tasks, " + graph.edges_count + " edges";
  if (graph.note) note += ". The edges are not shown: " + graph.note;
  if (graph.aggregated) {
    note += ". Too many to draw one by one: each column is a layer, coloured by state.";
    drawLayers(canvas, graph);
  } else {
    note += ". Solid lines pass data, dashed ones only order; a framed node is a map.";
    drawNodes(canvas, graph);
  }
  text("g-note", note);
}

// ---- the timeline, on a canvas -------------------------------------------

const LABEL_W = 180, CHART_W = 760, ROW_H = 14, AXIS_H = 20;

async function loadTimeline() {
  const q = new URLSearchParams();
  if (view.rowOffset) q.set("offset", view.rowOffset);
  q.set("limit", TIMELINE_PAGE);
  const t = await getJSON(apiPath("timeline", q));
  view.rowsTotal = t.rows_total;
  const canvas = document.getElementById("timeline");
  const g = sizeCanvas(canvas, LABEL_W + CHART_W + 20, AXIS_H + t.rows.length * ROW_H + 4);
  const span = t.span > 0 ? t.span : 0.001;
  const x = (s) => LABEL_W + (s / span) * CHART_W;
  g.fillStyle = "#5c6670";
  for (let k = 0; k <= 4; k++) {
    const s = (span * k) / 4;
    g.fillText(seconds(s), Math.min(x(s), LABEL_W + CHART_W - 40), AXIS_H / 2);
    g.fillRect(x(s), AXIS_H - 4, 1, t.rows.length * ROW_H + 4);
  }
  t.rows.forEach((row, i) => {
    const y = AXIS_H + i * ROW_H;
    g.fillStyle = "#1d2329";
    g.fillText(clip(g, row.key, LABEL_W - 8), 2, y + ROW_H / 2);
    for (const [from, to, state] of row.bars) {
      g.fillStyle = colour(state);
      g.fillRect(x(from), y + 2, Math.max(x(to) - x(from), 2), ROW_H - 4);
    }
  });
  const last = view.rowOffset + t.rows.length;
  text("t-note", t.attempts + " attempts of " + t.rows_total + " task runs over " +
       seconds(t.span) + (t.rows_total > t.rows.length
         ? "; rows " + (t.rows.length ? view.rowOffset + 1 : 0) + "–" + last + " drawn"
         : "") + ". One bar per attempt, coloured by how it ended.");
  document.getElementById("t-prev").disabled = view.rowOffset === 0;
  document.getElementById("t-next").disabled = last >= t.rows_total;
  document.getElementById("t-prev").hidden = document.getElementById("t-next").hidden =
    t.rows_total <= TIMELINE_PAGE;
}

// ---- live updates ------------------------------------------------------------

// Reads everything again; a change that comes meanwhile reads again once
// more after, never twice at the same time.
async function refresh() {
  if (view.busy) { view.again = true; return; }
  view.busy = true;
  try {
    showSummary(await getJSON(apiPath("summary")));
    await Promise.all([loadTasks(), loadGraph(), loadTimeline()]);
  } catch (e) {
    say(e.message, true);
  } finally {
    view.busy = false;
  }
  if (view.again) { view.again = false; refresh(); }
}

// One EventSource per page: it reconnects by itself after an error, so a
// second one is never opened; it is closed for good when the run ends.
function follow() {
  if (view.events || view.run.state !== "Running") return;
  const es = new EventSource(apiPath("events"));
  view.events = es;
  document.getElementById("live").hidden = false;
  const stop = () => {
    es.close();
    view.events = null;
    document.getElementById("live").hidden = true;
  };
  es.addEventListener("run", () => refresh());
  es.addEventListener("end", () => { stop(); refresh(); });
  es.addEventListener("gone", () => { stop(); say("This run is no longer in the history.", true); });
}

async function runPage() {
  view.ref = decodeURIComponent(location.pathname.replace(/^\/runs\//, ""));
  try {
    showSummary(await getJSON(apiPath("summary")));
  } catch (e) {
    say(e.message, true);
    return;
  }
  view.ref = view.run.id; // a prefix or "last" could name another run later
  document.getElementById("k-state").addEventListener("change", (ev) => {
    view.taskState = ev.target.value;
    view.taskOffset = 0;
    loadTasks().catch((e) => say(e.message, true));
  });
  const step = (id, field, by, load) => document.getElementById(id).addEventListener("click", () => {
    view[field] = Math.max(0, view[field] + by);
    load().catch((e) => say(e.message, true));
  });
  step("k-prev", "taskOffset", -TASKS_PAGE, loadTasks);
  step("k-next", "taskOffset", TASKS_PAGE, loadTasks);
  step("t-prev", "rowOffset", -TIMELINE_PAGE, loadTimeline);
  step("t-next", "rowOffset", TIMELINE_PAGE, loadTimeline);
  try {
    await Promise.all([loadTasks(), loadGraph(), loadTimeline()]);
  } catch (e) {
    say(e.message, true);
  }
  follow();
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "run") runPage();
});
