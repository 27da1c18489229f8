// flowlua ui: the flows page, and the actions of every page (start a run,
// resume one, cancel one); ui.js, loaded first, has the shared helpers. Untrusted text from the history goes in through
// textContent only. Every action is a form POST carrying the server's CSRF
// token (GET /api/session) and, when the server asks for one, the token
// the user typed (kept for this tab only, in sessionStorage).
"use strict";

const flowlua = (() => {
  async function answer(r) {
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const err = new Error((body && body.error) || ("HTTP " + r.status));
      err.status = r.status;
      throw err;
    }
    return body;
  }

  let session = null;
  async function getSession() {
    if (!session) session = await answer(await fetch("/api/session"));
    return session;
  }

  // The token field, shown when the server needs one.
  function tokenInput() {
    let box = document.getElementById("token-box");
    if (!box) {
      box = el("p", null, "token-box");
      box.id = "token-box";
      const label = el("label", "Token ");
      const input = el("input");
      input.type = "password";
      input.id = "ui-token";
      input.autocomplete = "off";
      input.value = sessionStorage.getItem("flowlua.token") || "";
      input.addEventListener("change", () =>
        sessionStorage.setItem("flowlua.token", input.value));
      label.appendChild(input);
      box.appendChild(label);
      document.querySelector("main").prepend(box);
    }
    return document.getElementById("ui-token");
  }

  async function act(path, fields) {
    const s = await getSession();
    const form = new URLSearchParams();
    form.set("csrf", s.csrf);
    for (const [k, v] of fields) form.append(k, v);
    const headers = { "Content-Type": "application/x-www-form-urlencoded" };
    if (s.token_required) {
      const token = tokenInput().value;
      if (!token) throw new Error("this server needs its token: type it in the Token field");
      headers.Authorization = "Bearer " + token;
    }
    return answer(await fetch(path, { method: "POST", headers, body: form }));
  }

  // After a start or resume: the run's page, told where the run runs.
  function openRun(started) {
    sessionStorage.setItem("flowlua.where." + started.run_id, started.where);
    location.href = "/runs/" + encodeURIComponent(started.run_id);
  }

  // ---- the flows page ----------------------------------------------------

  function paramText(v) {
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  // A param as param_types describes it: "integer >= 1 <= 10",
  // "enum: full, delta", "date YYYY-MM-DD".
  function typeText(t) {
    let s = t.type === "date" ? "date YYYY-MM-DD" : String(t.type);
    if (t.min !== undefined) s += " >= " + t.min;
    if (t.max !== undefined) s += " <= " + t.max;
    if (Array.isArray(t.choices)) s += ": " + t.choices.join(", ");
    return s + (t.required ? " (required)" : "");
  }

  function startForm(flow) {
    const form = el("form", null, "start");
    const defaults = flow.params || {};
    // A required typed param has no default: param_types names it.
    const types = flow.param_types && typeof flow.param_types === "object" ? flow.param_types : {};
    const names = Array.from(new Set(Object.keys(defaults).concat(Object.keys(types)))).sort();
    for (const name of names) {
      const label = el("label", name);
      const input = el("input");
      input.name = "param." + name;
      input.value = name in defaults ? paramText(defaults[name]) : "";
      input.dataset.default = input.value;
      const t = types[name];
      if (t && typeof t === "object") {
        input.title = typeText(t);
        input.placeholder = typeText(t);
        input.required = t.required === true;
      }
      label.appendChild(input);
      form.appendChild(label);
    }
    const button = el("button", "Start a run");
    button.type = "submit";
    form.appendChild(button);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      // Only the params changed from their defaults are sent: the others
      // keep their types as the script gives them.
      const fields = [];
      for (const input of form.querySelectorAll("input"))
        if (input.value !== input.dataset.default) fields.push([input.name, input.value]);
      try {
        openRun(await act("/api/flows/" + encodeURIComponent(flow.name) + "/start", fields));
      } catch (e) {
        say(e.message, true);
        button.disabled = false;
      }
    });
    return form;
  }

  function flowCard(flow) {
    const card = el("section", null, "flow");
    card.id = "flow-" + flow.name;
    card.appendChild(el("h2", flow.name));
    const dl = el("dl");
    const row = (k, v) => { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); };
    row("Script", flow.script ? flow.script + " on " + flow.host : "not recorded (runs only)");
    row("Schedule", flow.schedule ? flow.schedule.text + " (overlap: " + flow.schedule.overlap + ")" : "none");
    if (flow.next_fires) row("Next fires", flow.next_fires.map(when).join(", ") || "none left");
    if (flow.next_fires_error) row("Next fires", "cannot tell: " + flow.next_fires_error);
    card.appendChild(dl);
    const recent = el("p", null, "recent");
    recent.appendChild(el("span", "Recent runs: ", "muted"));
    if (!flow.recent_runs.length) recent.appendChild(el("span", "none"));
    for (const run of flow.recent_runs) {
      const a = el("a", run.state, stateClass(run.state));
      a.href = "/runs/" + encodeURIComponent(run.id);
      a.title = run.id + " " + when(run.started_at);
      recent.appendChild(a);
      recent.appendChild(document.createTextNode(" "));
    }
    card.appendChild(recent);
    if (flow.fire_events.length) {
      const t = el("table", null, "fires");
      const head = el("tr");
      for (const h of ["Fire time", "Outcome", "Count", "Detail"]) head.appendChild(el("th", h));
      t.appendChild(head);
      for (const f of flow.fire_events) {
        const tr = el("tr");
        tr.appendChild(el("td", when(f.scheduled_at)));
        tr.appendChild(el("td", f.outcome));
        tr.appendChild(el("td", f.count, "num"));
        tr.appendChild(el("td", f.detail || ""));
        t.appendChild(tr);
      }
      card.appendChild(t);
    }
    if (flow.script) card.appendChild(startForm(flow));
    return card;
  }

  async function flowsPage() {
    let page;
    try {
      page = await answer(await fetch("/api/flows"));
    } catch (e) {
      say(e.message, true);
      return;
    }
    const box = document.getElementById("flows");
    for (const flow of page.flows) box.appendChild(flowCard(flow));
    if (!page.flows.length) say("No flows yet: run a flow script with this history once.");
  }

  // ---- a run's page: resume and cancel ----------------------------------

  function runToolbar() {
    const stateEl = document.getElementById("r-state");
    const flowEl = document.getElementById("r-flow");
    if (!stateEl || !flowEl) return;
    const id = decodeURIComponent(location.pathname.replace(/^\/runs\//, "").split("/")[0]);
    const where = sessionStorage.getItem("flowlua.where." + id);
    if (where) say("Runs in " + where + ".");
    const bar = el("p", null, "actions");
    bar.id = "run-actions";
    const resume = el("button", "Resume");
    resume.id = "resume";
    const cancel = el("button", "Cancel");
    cancel.id = "cancel";
    bar.appendChild(resume);
    bar.appendChild(cancel);
    stateEl.closest("section").prepend(bar);
    const update = () => {
      const state = stateEl.textContent;
      resume.hidden = !["Failed", "Cancelled", "Crashed"].includes(state);
      cancel.hidden = state !== "Running";
    };
    update();
    new MutationObserver(update).observe(stateEl, { childList: true, characterData: true, subtree: true });
    resume.addEventListener("click", async () => {
      resume.disabled = true;
      try {
        openRun(await act("/api/runs/" + encodeURIComponent(id) + "/resume",
                          [["flow", flowEl.textContent]]));
      } catch (e) {
        say(e.message, true);
        resume.disabled = false;
      }
    });
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        const r = await act("/api/runs/" + encodeURIComponent(id) + "/cancel", []);
        say("Cancel " + r.cancel + ".");
      } catch (e) {
        say(e.message, true);
        cancel.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    if (page === "flows") flowsPage();
    else if (page === "run") runToolbar();
  });
  return { act };
})();
