#!/usr/bin/env python3
"""Installs flowlua into a temporary prefix and builds the embedding
examples against the installed files only, twice: with pkg-config and with
find_package(flowlua). Each build is run and its output checked:
run_string.c (a flow from a string, run once) and events.c (a C function
registered into the flowlua module, every state change printed) and
poll_loop.c (a run driven by the host's own poll() loop) and
two_threads.c (two runtimes on two threads at once).

    install_test.py BUILD_DIR CC CMAKE [SANITIZE]

SANITIZE 1: the library was built with ASan and UBSan, so the examples
are too (the sanitizer runtime must come first in the program).

Also checks the installed shared library's SONAME and that it exports
nothing but flowlua_* functions.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
EVENTS = [
    r"^refused: flowlua_register_function: flow\.task already exists in the flowlua module$",
    r"^flow events Running$",
    r"^task sum Running 1$",
    r"^task sum Success 1$",
    r"^task show Running 1$",
    r"^task show Success 1$",
    r"^flow events Success$",
    r"^6 events$",
]
TWO_THREADS = [
    r"^thread 1: Success, 201 task runs, 406 events$",
    r"^thread 2: Success, 201 task runs, 406 events$",
]
POLL_LOOP = [
    r"^second start: not allowed in the runtime's current state$",
    r"^wait right after start: 0 ms$",
    r"^flow Success, 4 tasks$",
    r"^the naps overlapped$",
    r"^stepped more than once: yes$",
]
EXPECTED = [
    r"^flowlua (\d+\.\d+\.\d+) \(header \1\)$",
    r"^broken script: the script could not be loaded$",
    r"^double Success$",
    r"^check Success$",
    r"^flow Success$",
]


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"install_test.py: {' '.join(cmd)} exited {p.returncode}:\n"
                 f"{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def check_output(what, out, expected=EXPECTED):
    lines = out.strip().splitlines()
    if len(lines) != len(expected) or not all(
            re.match(p, l) for p, l in zip(expected, lines)):
        sys.exit(f"install_test.py: {what}: unexpected output:\n{out}")
    print(f"{what}: ok")


def main():
    build, cc, cmake = sys.argv[1:4]
    sanitize = len(sys.argv) > 4 and sys.argv[4] == "1"
    san = ["-fsanitize=address,undefined"] if sanitize else []
    with tempfile.TemporaryDirectory(prefix="flowlua-install-") as d:
        prefix = os.path.join(d, "prefix")
        run([cmake, "--install", build, "--prefix", prefix])
        libdirs = [p for p in ("lib", "lib64", "lib/x86_64-linux-gnu")
                   if os.path.exists(os.path.join(prefix, p, "libflowlua.so"))]
        if not libdirs:
            sys.exit("install_test.py: no libflowlua.so installed")
        libdir = os.path.join(prefix, libdirs[0])
        env = dict(os.environ,
                   PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"),
                   LD_LIBRARY_PATH=libdir)

        soname = run(["objdump", "-p", os.path.join(libdir, "libflowlua.so")])
        m = re.search(r"SONAME\s+(\S+)", soname)
        if not m or not re.fullmatch(r"libflowlua\.so\.(0\.\d+|[1-9]\d*)", m.group(1)):
            sys.exit(f"install_test.py: SONAME is {m.group(1) if m else 'missing'}")
        dyn = run(["nm", "-D", "--defined-only",
                   os.path.join(libdir, "libflowlua.so")])
        exported = [l.split()[-1] for l in dyn.splitlines()
                    if l.split() and l.split()[-2] in ("T", "D", "B", "R")]
        stray = [s for s in exported if not s.startswith("flowlua_")]
        if stray:
            sys.exit(f"install_test.py: exported beyond flowlua_*: {stray[:10]}")
        print(f"SONAME {m.group(1)}; {len(exported)} symbols, all flowlua_*")

        # 1. pkg-config
        flags = run(["pkg-config", "--cflags", "--libs", "flowlua"], env=env).split()
        exe = os.path.join(d, "run_string_pc")
        run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror"] + san +
            [os.path.join(HERE, "run_string.c"), "-o", exe] + flags, env=env)
        check_output("pkg-config build", run([exe], env=env, cwd=d))
        exe = os.path.join(d, "events_pc")
        run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror"] + san +
            [os.path.join(HERE, "events.c"), "-o", exe] + flags, env=env)
        check_output("pkg-config build of events", run([exe], env=env, cwd=d),
                     EVENTS)
        exe = os.path.join(d, "two_threads_pc")
        run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread"] + san +
            [os.path.join(HERE, "two_threads.c"), "-o", exe] + flags, env=env)
        check_output("pkg-config build of two_threads",
                     run([exe], env=env, cwd=d), TWO_THREADS)
        exe = os.path.join(d, "poll_loop_pc")
        run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror"] + san +
            [os.path.join(HERE, "poll_loop.c"), "-o", exe] + flags, env=env)
        check_output("pkg-config build of poll_loop",
                     run([exe], env=env, cwd=d), POLL_LOOP)

        # 2. find_package
        src = os.path.join(d, "cmake-src")
        os.makedirs(src)
        shutil.copy(os.path.join(HERE, "run_string.c"), src)
        shutil.copy(os.path.join(HERE, "events.c"), src)
        shutil.copy(os.path.join(HERE, "poll_loop.c"), src)
        shutil.copy(os.path.join(HERE, "two_threads.c"), src)
        with open(os.path.join(prefix, "include", "flowlua.h")) as f:
            header = f.read()
        major_minor = ".".join(
            re.search(rf"#define FLOWLUA_VERSION_{part} (\d+)", header).group(1)
            for part in ("MAJOR", "MINOR"))
        with open(os.path.join(HERE, "CMakeLists.txt.in")) as f:
            lists = f.read().replace("@FLOWLUA_MAJOR_MINOR@", major_minor)
        with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
            f.write(lists)
        out = os.path.join(d, "cmake-build")
        run([cmake, "-S", src, "-B", out, f"-DCMAKE_PREFIX_PATH={prefix}",
             f"-DCMAKE_C_COMPILER={cc}", f"-DCMAKE_C_FLAGS={' '.join(san)}",
             f"-DCMAKE_EXE_LINKER_FLAGS={' '.join(san)}"], env=env)
        run([cmake, "--build", out], env=env)
        check_output("find_package build",
                     run([os.path.join(out, "run_string")], env=env, cwd=d))
        check_output("find_package build, static library",
                     run([os.path.join(out, "run_string_static")], env=env,
                         cwd=d))
        check_output("find_package build of events",
                     run([os.path.join(out, "events")], env=env, cwd=d), EVENTS)
        check_output("find_package build of two_threads",
                     run([os.path.join(out, "two_threads")], env=env, cwd=d),
                     TWO_THREADS)
        check_output("find_package build of poll_loop",
                     run([os.path.join(out, "poll_loop")], env=env, cwd=d),
                     POLL_LOOP)


if __name__ == "__main__":
    main()
