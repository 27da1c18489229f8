-- flowlua graph: the task graph as Graphviz DOT or Mermaid, data edges
-- solid and ordering edges dashed, a map as one node; with --run, each
-- node coloured by its state in a stored run and a map with its count.
-- The 'render' flow pipes the DOT through Graphviz's dot -Tsvg.
-- run: DOT
-- args: graph --flow g {script}
-- stdout: ^digraph "g" \{\n  rankdir=LR;\n  node \[shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="sans-serif"\];\n  "load" \[label="load"\];\n  "sq" \[label="sq \(map\)", peripheries=2\];\n  "report" \[label="report"\];\n  "cleanup" \[label="cleanup"\];\n  "load" -> "sq";\n  "sq" -> "report";\n  "report" -> "cleanup" \[style=dashed\];\n\}\n$
-- run: Mermaid
-- args: graph --flow g --format mermaid {script}
-- stdout: ^flowchart LR\n  n0\["load"\]\n  n1\[\["sq \(map\)"\]\]\n  n2\["report"\]\n  n3\["cleanup"\]\n  n0 --> n1\n  n1 --> n2\n  n2 -.-> n3\n$
-- run: coloured by a stored run
-- env: FAIL=1
-- before: 1 {script} --flow g
-- args: graph --flow g --run last {script}
-- stdout: "load" \[label="load\\nSuccess", fillcolor="#c8e6c9"\];
-- stdout: "sq" \[label="sq \(map of 3\)\\nFailed", peripheries=2, fillcolor="#ffcdd2"\];
-- stdout: "report" \[label="report\\nTriggerFailed", fillcolor="#ffe0b2"\];
-- run: from the history alone: graph --run without the script
-- env: FAIL=1
-- before: 1 {script} --flow g
-- args: graph --run last
-- stdout: "load" \[label="load\\nSuccess", fillcolor="#c8e6c9"\];
-- stdout: "sq" \[label="sq \(map of 3\)\\nFailed", peripheries=2, fillcolor="#ffcdd2"\];
-- stdout: "report" -> "cleanup" \[style=dashed\];
-- run: Mermaid coloured by a stored run
-- env: FAIL=1
-- before: 1 {script} --flow g
-- args: graph --flow g --run last --format mermaid {script}
-- stdout: n1\[\["sq \(map of 3\)<br/>Failed"\]\]
-- stdout: classDef s3 fill:#ffcdd2
-- stdout: class n1 s3
-- run: the DOT renders with Graphviz
-- args: {script} --flow render
-- stderr: render: Success
-- run: a bad format
-- args: graph --format svg {script}
-- exit: 2
-- stderr: --format expects dot or mermaid, got 'svg'
-- run: --run with no history
-- args: graph --flow g --run last {script}
-- exit: 2
-- stderr: no runs recorded yet
local flow = require "flowlua"
local script = debug.getinfo(1, "S").source:sub(2)

local load = flow.task("load", function() return { 1, 2, 3 } end)
local sq = flow.task("sq", function(x)
  if x == 2 and os.getenv("FAIL") then error("two fails") end
  return x * x
end)
local report = flow.task("report", function(xs) return #xs end)
local cleanup = flow.task("cleanup", { trigger = "all_done" }, function() end)

local render = flow.task("render", function()
  -- /proc/self/exe: this flowlua binary, in the child before it execs
  local dot = flow.shell({ "/proc/self/exe", "graph", "--flow", "g", script },
                         { check = true }).stdout
  local svg = flow.shell({ "dot", "-Tsvg" }, { stdin = dot, check = true }).stdout
  assert(svg:find("<svg", 1, true), "dot made no SVG")
  for _, key in ipairs({ "load", "sq (map)", "report", "cleanup" }) do
    assert(svg:find(key, 1, true), "the SVG has no node " .. key)
  end
end)

return {
  flow.define("g", function()
    local r = report(sq:map(load()))
    cleanup():after(r)
  end),
  flow.define("render", function() render() end),
}
