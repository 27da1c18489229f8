#!/usr/bin/env python3
"""Python's csv module on the CSV benchmark's file, for the same operations
as bench.lua (issue 22's references), one per process:

    ref_python.py OP FILE ROWS

OP: read (list(csv.reader(f))), stream (for row in csv.reader(f), adding
up every field's length), stream_holding (the same while holding
list(csv.reader(f)) of the file, read first), records (csv.DictReader,
adding up every value's length). Prints "rows N seconds S" as the C
references do; the timed part is the operation alone, as in bench.lua.
Run with Debian's python3 (/usr/bin/python3), the Python a user of the
machine has.
"""
import csv
import sys
import time


def main():
    op, path, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    held = None
    if op == "stream_holding":
        with open(path, newline="") as f:
            held = list(csv.reader(f))
    t0 = time.perf_counter()
    count = total = 0
    with open(path, newline="") as f:
        if op == "read":
            count = len(list(csv.reader(f)))
        elif op in ("stream", "stream_holding"):
            for r in csv.reader(f):
                for v in r:
                    total += len(v)
                count += 1
        elif op == "records":
            for r in csv.DictReader(f):
                for v in r.values():
                    total += len(v)
                count += 1
            count += 1  # the header line, as the other ops count it
        else:
            raise SystemExit(f"ref_python.py: unknown op {op!r}")
    seconds = time.perf_counter() - t0
    if count != rows or (held is not None and len(held) != rows):
        raise SystemExit(f"ref_python.py: expected {rows} rows, got {count}")
    print(f"rows {count} seconds {seconds:.4f}")


if __name__ == "__main__":
    main()
