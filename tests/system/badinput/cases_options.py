"""Every task option and every flow option given a value of the wrong type
(and the few values whose message once came out wrong). Each script is
three lines, the bad call on line 3; it must exit 2 before any task runs,
with a message naming the function, the option, what it must be and what
it got. tests/flows/bad_options.lua holds the out-of-range values."""
import re

from case import Case, script

NOT_RUNNING = r"(?i)\bRunning\b"


def task_case(name, opts, message, call=None):
    call = call or f'flow.task("t", {{ {opts} }}, noop)'
    return Case(f"task: {name}",
                {"flow.lua": script("local function noop() end\n"
                                    f"local t = {call}\n"
                                    'return flow.define("f", function() t() end)\n')},
                exit=2, stderr=[r"flow\.lua:3: " + message], not_stderr=[NOT_RUNNING])


def flow_case(name, opts, message, call=None):
    call = call or f'flow.define("f", {{ {opts} }}, noop)'
    return Case(f"flow: {name}",
                {"flow.lua": script("local function noop() end\n"
                                    f"return {call}\n")},
                exit=2, stderr=[r"flow\.lua:3: " + message], not_stderr=[NOT_RUNNING])


T = re.escape("flow.task 't': ")
F = re.escape("flow.define 'f': ")

CASES = [
    task_case("retries as a numeric string", 'retries = "3"',
              T + r"option 'retries' must be a whole number, got string"),
    task_case("retries as a table", "retries = {}",
              T + r"option 'retries' must be a whole number, got table"),
    task_case("retries too large to count", "retries = 1e12",
              T + r"option 'retries' must be a whole number from 0 to 1000000000, got 1000000000000"),
    task_case("retry_delay as a boolean", "retry_delay = true",
              T + r"option 'retry_delay' must be a number or a list of numbers, got boolean"),
    task_case("backoff as a string", 'backoff = "2"',
              T + r"option 'backoff' must be a number, got string"),
    task_case("max_retry_delay as a string", 'max_retry_delay = "1m"',
              T + r"option 'max_retry_delay' must be a number, got string"),
    task_case("retry_jitter as a table", "retry_jitter = {}",
              T + r"option 'retry_jitter' must be a number, got table"),
    task_case("retry_if as a string", 'retry_if = "always"',
              T + r"option 'retry_if' must be a function, got string"),
    task_case("timeout as a string", 'timeout = "10s"',
              T + r"option 'timeout' must be a number, got string"),
    task_case("timeout not a number (NaN)", "timeout = 0/0",
              T + r"option 'timeout' must be between 0 and 1e\+09, got -?nan"),
    task_case("trigger as a table", 'trigger = { "all_done" }',
              T + r"option 'trigger' must be a rule name or a function, got table"),
    task_case("tags as a number", "tags = 5",
              T + r"option 'tags' must be a list of names, got number"),
    task_case("a tag that is a number", "tags = { 5 }",
              T + r"option 'tags' entry 1 must be a non-empty string"),
    task_case("cache_key as a string", 'cache_key = "by-day"',
              T + r"option 'cache_key' must be a function, got string"),
    task_case("cache_for as a string", 'cache_key = tostring, cache_for = "1h"',
              T + r"option 'cache_for' must be a number, got string"),
    task_case("on_success as a number", "on_success = 1",
              T + r"option 'on_success' must be a function, got number"),
    task_case("on_retry as a table", "on_retry = {}",
              T + r"option 'on_retry' must be a function, got table"),
    task_case("an option name that is not a string", "[1] = 2",
              T + r"option names must be strings, got number"),
    task_case("options of the wrong type before the body", None,
              T + r"options must be a table, got number", call='flow.task("t", 5, noop)'),
    task_case("options given after the body", None,
              T + r"the options go before the body: flow\.task\(name, options, body\)",
              call='flow.task("t", noop, { retries = 1 })'),
    task_case("a name of the wrong type", None,
              r"bad argument #1 to 'task' \(string expected, got table\)",
              call='flow.task({ "t" }, noop)'),

    flow_case("params as a string", 'params = "n=1"',
              F + r"option 'params' must be a table, got string"),
    flow_case("a parameter name that is not a string", "params = { 1, 2 }",
              F + r"parameter names must be strings"),
    flow_case("schedule as a string", 'schedule = "hourly"',
              F + r"option 'schedule' must be made by flow\.interval or flow\.cron, got string"),
    flow_case("concurrency as a numeric string", 'concurrency = "4"',
              F + r"option 'concurrency' must be a whole number, got string"),
    flow_case("concurrency as a table", "concurrency = {}",
              F + r"option 'concurrency' must be a whole number, got table"),
    flow_case("concurrency too large to count", "concurrency = 1e10",
              F + r"option 'concurrency' must be a whole number from 1 to 1000000000, got 10000000000"),
    flow_case("limits as a string", 'limits = "db=2"',
              F + r"option 'limits' must be a table \{ tag = n \}, got string"),
    flow_case("a limit as a string", 'limits = { db = "2" }',
              F + r"option 'limits\.db' must be a whole number, got string"),
    flow_case("a limit without a tag name", "limits = { 2 }",
              F + r"option 'limits' keys must be tag names"),
    flow_case("an option name that is not a string", "[1] = 2",
              F + r"option names must be strings, got number"),
    flow_case("options of the wrong type before the body", None,
              F + r"options must be a table, got number", call='flow.define("f", 5, noop)'),
    flow_case("options given after the body", None,
              F + r"the options go before the body: flow\.define\(name, options, body\)",
              call='flow.define("f", noop, { concurrency = 2 })'),
]
