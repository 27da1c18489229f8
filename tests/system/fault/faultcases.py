"""What the fault scripts share: each case runs in a fresh folder of its
own, every problem is collected (a case goes on after its first one, so one
run shows them all) and printed at the end, and the script's exit code says
whether there was any."""
import re
import shutil
import subprocess
import sys
import tempfile


def report(problems, prefix="FAIL "):
    """Prints each problem and returns the exit code: 1 if there was any."""
    for p in problems:
        print(prefix + p)
    return 1 if problems else 0


def run_cases(cases, problems, prefix, select=None):
    """Calls each case with a fresh folder (removed afterwards), those whose
    name matches the regular expression `select` when given, then exits
    with report()'s code after a count of cases and problems."""
    if select:
        cases = [c for c in cases if re.search(select, c.__name__)]
    for case in cases:
        folder = tempfile.mkdtemp(prefix=prefix)
        try:
            case(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    code = report(problems)
    print(f"{len(cases)} cases, {len(problems)} problems")
    sys.exit(code)


# Private mount namespaces: as root (-m), or else in a user namespace of
# the test's own (-rm) where the kernel allows it.
MOUNT_NAMESPACES = (["unshare", "-m", "--propagation", "private"],
                    ["unshare", "-rm", "--propagation", "private"])


def in_mount_namespace(script, args, root_only=False):
    """Runs `python3 SCRIPT --inner ARGS...` in a private mount namespace,
    where it may mount what it needs without touching the machine's own
    mounts. Its exit code, or None when no such namespace can be made here
    (the caller then says what stands in for it)."""
    for unshare in MOUNT_NAMESPACES[:1] if root_only else MOUNT_NAMESPACES:
        if subprocess.run(unshare + ["true"], capture_output=True).returncode == 0:
            print(f"in a private mount namespace ({' '.join(unshare)})")
            return subprocess.run(unshare + [sys.executable, script, "--inner"]
                                  + list(args)).returncode
    return None
