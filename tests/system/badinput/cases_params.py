"""--param values flowlua must refuse before anything runs: exit 2, naming
the flow, the parameter, the type its default asks for and (shortened)
the text it got. tests/flows/params.lua holds the first examples (not a
number, not a boolean, not JSON, an unknown name); these are the rest."""
from case import Case, script

NOT_RUNNING = r"(?i)\bRunning\b"

FLOW = script('return flow.define("f", {\n'
              '  params = { n = 1, ratio = 0.5, on = true, name = "x", list = {} },\n'
              '}, function(p) end)\n')


def param_case(name, args, message, flow=FLOW):
    return Case(f"param {name}", {"flow.lua": flow}, args=["flow.lua"] + args,
                exit=2, stderr=[message], not_stderr=[NOT_RUNNING])


DEEP = "[" * 5000 + "]" * 5000

CASES = [
    param_case("without a name", ["--param", "=5"], r"--param expects NAME=VALUE, got '=5'"),
    param_case("without a value at the end of the line", ["--param"],
               r"option '--param' needs a value"),
    param_case("an empty number", ["--param", "n="],
               r"flow 'f': parameter 'n' must be an integer \(its default is 1\), got ''"),
    param_case("a number that is not finite", ["--param", "ratio=1e999"],
               r"flow 'f': parameter 'ratio' must be a finite number, got '1e999'"),
    param_case("NaN", ["--param", "n=nan"], r"flow 'f': parameter 'n' must be an integer \(its default is 1\), got 'nan'"),
    param_case("a number with a unit", ["--param", "n=10k"],
               r"flow 'f': parameter 'n' must be an integer \(its default is 1\), got '10k'"),
    param_case("an empty boolean", ["--param", "on="],
               r"flow 'f': parameter 'on' must be true or false \(true/false, yes/no, "
               r"on/off, 1/0, in any case\), got ''"),
    param_case("truncated JSON", ["--param", "list=[1,2"],
               r"flow 'f': parameter 'list' must be a JSON object or array, got '\[1,2' "
               r"\(json\.decode: unexpected end of input at offset 4 \(line 1, column 5\)\)"),
    param_case("JSON nested 5000 deep", ["--param", "list=" + DEEP],
               r"flow 'f': parameter 'list' must be a JSON object or array, got '\[\[\[.*\.\.\.' "
               r"\(10000 bytes\) \(json\.decode: arrays and objects nested deeper than 1000"),
    param_case("a JSON string 100 KB long", ["--param", 'list="' + "x" * 100000 + '"'],
               r"flow 'f': parameter 'list' must be a JSON object or array, got '\"xxx.*\.\.\.' "
               r"\(100002 bytes\) \(not a table\)"),
    param_case("a name the flow does not declare, with a space", ["--param", "a b=1"],
               r"flow 'f' has no parameter 'a b' \(its parameters: .*list.*\)"),
    param_case("a parameter for a flow that takes none", ["--param", "n=1"],
               r"flow 'f' has no parameter 'n' \(it takes none\)",
               flow=script('return flow.define("f", function() end)\n')),
]
