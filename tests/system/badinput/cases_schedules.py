"""Cron strings and schedule options flowlua must refuse when the script
loads, through `flowlua next` and through a plain run: exit 2, with the
field (or option) named, its text, and why. tests/flows/cron.lua and
schedule_options.lua hold the first examples of each kind (an out-of-range
minute, a wrong field count, a zero step, a bad zone); these are the rest.
"""
import re

from case import Case, script

NOT_RUNNING = r"(?i)\bRunning\b"


def cron_case(name, expr, message, args=("next", "flow.lua")):
    """flow.cron(expr) on line 2, from the environment so that the text
    reaches the parser exactly as written."""
    return Case(f"cron {name}",
                {"flow.lua": script('local c = flow.cron(os.getenv("CRON"))\n'
                                    'return flow.define("f", { schedule = c }, function() end)\n')},
                args=list(args), env={"CRON": expr}, exit=2,
                stderr=[r"flow\.lua:2: flow\.cron: cron '" + re.escape(expr) + "': " + message],
                not_stderr=[NOT_RUNNING])


def schedule_case(name, call, message, args=("next", "flow.lua")):
    return Case(f"schedule {name}",
                {"flow.lua": script(f"local s = {call}\n"
                                    'return flow.define("f", { schedule = s }, function() end)\n')},
                args=list(args), exit=2, stderr=[r"flow\.lua:2: " + message],
                not_stderr=[NOT_RUNNING], max_seconds=15)


CASES = [
    cron_case("empty", "", r"expected 5 fields, got 0"),
    cron_case("six fields (seconds are not a field)", "0 * * * * *", r"expected 5 fields, got 6"),
    cron_case("a range whose end is out of range", "0 17-25 * * *",
              r"field 2 \(hour\) '17-25': 25 is out of range 0-23"),
    cron_case("a range without its end", "5- * * * *", r"field 1 \(minute\) '5-': missing value after '-'"),
    cron_case("an empty list item", "0 1,,2 * * *", r"field 2 \(hour\) '1,,2': empty item in list"),
    cron_case("a step without a number", "*/ * * * *",
              r"field 1 \(minute\) '\*/': missing step number after '/'"),
    cron_case("a step longer than the field", "*/61 * * * *",
              r"field 1 \(minute\) '\*/61': step 61 is out of range 1-60"),
    cron_case("a number too large for any integer", "99999999999999999999 * * * *",
              r"field 1 \(minute\) '99999999999999999999': 99999999999999999999 is out of range 0-59"),
    cron_case("month 13", "0 0 1 13 *", r"field 4 \(month\) '13': 13 is out of range 1-12"),
    cron_case("day of month 0", "0 0 0 * *", r"field 3 \(day-of-month\) '0': 0 is out of range 1-31"),
    cron_case("Quartz's L", "0 0 L * *", r"field 3 \(day-of-month\) 'L': 'L' is not a number"),
    cron_case("Quartz's #", "0 0 * * 1#2", r"field 5 \(day-of-week\) '1#2': unexpected '#'"),
    cron_case("a full month name", "0 0 1 JANUARY *",
              r"field 4 \(month\) 'JANUARY': unknown month name 'JANUARY' \(use JAN-DEC\)"),
    cron_case("a non-ASCII byte", "0 0 * * \u00e9", r"field 5 \(day-of-week\) '\u00e9': unexpected 0xc3"),
    cron_case("@reboot", "@reboot", r"unknown shortcut '@reboot' \(use @yearly"),
    cron_case("a day no listed month has", "0 0 31 2,4,6,9,11 *",
              r"never fires: February, April, June, September and November have no day 31"),
    cron_case("refused by a plain run too", "0 0 31 4 *", r"never fires: April has no day 31",
              args=("flow.lua",)),

    schedule_case("cron options of the wrong type", 'flow.cron("* * * * *", "UTC")',
                  r"bad argument #2 to 'cron' \(table expected, got string\)"),
    schedule_case("tz as a number", 'flow.cron("* * * * *", { tz = 1 })',
                  r"flow\.cron: option 'tz' must be a zone name like 'Europe/Madrid', got number"),
    schedule_case("dst as a string", 'flow.cron("* * * * *", { dst = "shift" })',
                  r"flow\.cron: option 'dst' must be a table \{ missing=, repeated= \}, got string"),
    schedule_case("dst.missing as a number", 'flow.cron("* * * * *", { dst = { missing = 1 } })',
                  r"flow\.cron: dst\.missing must be 'shift' or 'skip', got number"),
    schedule_case("interval seconds as a string", 'flow.interval { seconds = "30" }',
                  r"flow\.interval: option 'seconds' must be a number of seconds >= 0, got string"),
    schedule_case("interval minutes not a number (NaN)", "flow.interval { minutes = 0/0 }",
                  r"flow\.interval: option 'minutes' must be a number of seconds >= 0, got -?nan"),
    schedule_case("interval of a nanosecond", "flow.interval { seconds = 1e-9 }",
                  r"flow\.interval: the interval must be at least 0\.001 seconds, got 1e-09"),
    schedule_case("interval longer than flowlua can count", "flow.interval { days = 1e300 }",
                  r"flow\.interval: the interval must be at most 3153600000 seconds \(100 years\), got 8\.64e\+304"),
    schedule_case("start beyond the year 9999", "flow.interval { minutes = 1, start = 1e300 }",
                  r"flow\.interval: option 'start' must be epoch seconds from 0 to 253402300799 "
                  r"\(the year 9999\), got 1e\+300"),
    schedule_case("catchup_window as a string", 'flow.interval { minutes = 1, catchup_window = "1h" }',
                  r"flow\.interval: option 'catchup_window' must be a number of seconds >= 0, got string"),
    schedule_case("max_runs as a numeric string", 'flow.interval { minutes = 1, max_runs = "3" }',
                  r"flow\.interval: option 'max_runs' must be a whole number >= 1, got string"),
    schedule_case("until as a boolean", 'flow.interval { minutes = 1, ["until"] = true }',
                  r"flow\.interval: option 'until' must be epoch seconds or an ISO 8601 time, got boolean"),
    schedule_case("a field name that is not a string", "flow.interval { minutes = 1, [1] = 2 }",
                  r"flow\.interval: field names must be strings, got number"),
    schedule_case("overlap as a number", "flow.interval { minutes = 1, overlap = 1 }",
                  r"flow\.interval: option 'overlap' must be one of skip, queue, queue_all, cancel_other, "
                  r"allow, got 1"),
]
