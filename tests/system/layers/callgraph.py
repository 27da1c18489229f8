#!/usr/bin/env python3
"""The library's call graph, read from the built static library with nm,
checked against the layers of docs/design.md:

- every global symbol carries a prefix: flowlua_ (public), fl_ or fl__
  (internal), luaopen_ (Lua modules);
- no file calls a file of a layer it may not use (the #include rules of
  CMake catch headers; this catches a declaration made elsewhere);
- no cycle between files: each file can be read knowing only those it
  calls;
- no file calls libcurl or libpq by name: the library does not link them,
  they are loaded on first use and called through their tables
  (curlapi.h, pg_api.h), and a call by name would fail only when run.

    callgraph.py LIBFLOWLUA_A SOURCE_DIR

Prints the graph's size, and on failure every offending edge or cycle
with the symbols behind it.
"""
import collections
import glob
import os
import subprocess
import sys

ALLOWED = {
    "core": {"core"},
    "store": {"store", "core"},
    "engine": {"engine", "store", "core"},
    "report": {"report", "store", "core"},
    "lua": {"lua", "engine", "store", "core"},
    "api": {"api", "lua", "engine", "report", "store", "core"},
}
PREFIXES = ("flowlua_", "fl_", "luaopen_")
LOADED = {"curl_": "libcurl (curlapi.h)", "PQ": "libpq (pg_api.h)"}


def read_library(lib):
    """{object file: (defined globals, undefined symbols)} from nm -A."""
    out = subprocess.run(["nm", "-A", lib], capture_output=True, text=True,
                         check=True).stdout
    objects = collections.defaultdict(lambda: (set(), set()))
    for line in out.splitlines():
        # "LIB:MEMBER:ADDRESS T name", or "LIB:MEMBER:   U name"
        parts = line.split()
        if len(parts) < 3 or parts[0].count(":") < 2:
            continue
        member = parts[0].split(":")[-2]
        kind, sym = parts[-2], parts[-1]
        if sym.startswith("__"):
            continue  # the compiler's own (__odr_asan.*, __sancov_*...)
        if kind in ("T", "D", "B", "R", "C"):
            objects[member][0].add(sym)
        elif kind == "U":
            objects[member][1].add(sym)
    return objects


def cycles(edges):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def main():
    lib, src = sys.argv[1:3]
    layer_of = {}
    for path in glob.glob(os.path.join(src, "runtime", "*", "*.c")):
        layer = os.path.basename(os.path.dirname(path))
        layer_of[os.path.basename(path) + ".o"] = layer
    objects = read_library(lib)
    missing = [o for o in objects if o not in layer_of]
    if missing or not objects:
        sys.exit(f"callgraph.py: objects of no known layer: {missing[:5]} "
                 f"(read {len(objects)} from {lib})")
    defined_in = {}
    problems = []
    for obj, (defs, _) in objects.items():
        for sym in defs:
            defined_in[sym] = obj
            if not sym.startswith(PREFIXES):
                problems.append(f"{obj}: global '{sym}' has no fl_/flowlua_ "
                                "prefix")
    edges = collections.defaultdict(set)
    why = collections.defaultdict(set)
    for obj, (_, uses) in objects.items():
        for sym in uses:
            for prefix, lib in LOADED.items():
                if sym.startswith(prefix):
                    problems.append(f"{obj} calls {sym} by name: {lib} is "
                                    "loaded on first use, call it through "
                                    "its table")
            to = defined_in.get(sym)
            if to and to != obj:
                edges[obj].add(to)
                why[(obj, to)].add(sym)
    n_edges = sum(len(v) for v in edges.values())
    for a, targets in edges.items():
        for b in targets:
            if layer_of[b] not in ALLOWED[layer_of[a]]:
                problems.append(
                    f"{layer_of[a]}/{a} calls {layer_of[b]}/{b} "
                    f"({', '.join(sorted(why[(a, b)]))}): {layer_of[a]} may "
                    f"not use {layer_of[b]}")
    for comp in cycles(edges):
        inner = [f"{a} -> {b} ({', '.join(sorted(why[(a, b)])[:3])})"
                 for a in comp for b in sorted(edges[a]) if b in comp]
        problems.append("cycle between " + ", ".join(comp) + ":\n    " +
                        "\n    ".join(inner))
    print(f"{len(objects)} files, {n_edges} calls between files, "
          f"{len(defined_in)} global symbols")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("no cycle, every call goes down the layers, every global prefixed")


if __name__ == "__main__":
    main()
