"""CSV files (and CSV options) that a task reads: the task fails (exit 1)
with the function, the file, the line and column, and why; and writes
that fail leave the old file as it was and no temporary file. Files the
cases write are named in `unchanged` or nowhere: the driver fails a case
that leaves anything else. tests/flows/csv_errors.lua holds the first
example of each message; these are the files that make them harder to get
right (a BOM, CRLF, quoted line breaks, other delimiters, raw bytes)."""
from case import Case, one_task_flow

READ = '  return flow.csv.read("data.csv"{opts})'
ROWS = '  local n = 0\n  for row in flow.csv.rows("data.csv"{opts}) do n = n + 1 end\n  return n'


def csv_case(name, data, message, opts="", reader=READ):
    body = reader.format(opts=", " + opts if opts else "")
    return Case(f"csv {name}", {"flow.lua": one_task_flow(body), "data.csv": data},
                exit=1, stderr=[r"t: Failed .*" + message], unchanged=["data.csv"])


CASES = [
    csv_case("a stray quote after a BOM (columns count from after it)",
             b"\xef\xbb\xbfid,name\n1,ab\"c\n",
             r"csv\.read: data\.csv:2:5: unexpected '\"' in an unquoted field"),
    csv_case("a stray quote after a quoted line break (lines count the break)",
             b'id,note\n1,"two\nlines"\n2,x"y\n',
             r"csv\.read: data\.csv:4:4: unexpected '\"' in an unquoted field"),
    csv_case("junk after a closing quote, CRLF lines",
             b'a,b\r\n1,2\r\n3,"4"5\r\n',
             r"csv\.read: data\.csv:3:6: unexpected '5' after a closed quoted field"),
    csv_case("junk after a closing quote, tab-delimited",
             b'a\tb\n1\t"x"y\n', r"csv\.rows: data\.csv:2:6: unexpected 'y' after a closed quoted field",
             opts='{ delimiter = "\\t" }', reader=ROWS),
    csv_case("a NUL byte after a closing quote is named, not printed",
             b'a\n"x"\x00\n', r"csv\.read: data\.csv:2:4: unexpected byte 0x00 after a closed quoted field"),
    csv_case("a Latin-1 byte after a closing quote",
             b'a\n"caf"\xe9\n', r"csv\.read: data\.csv:2:6: unexpected byte 0xE9 after a closed quoted field"),
    csv_case("a quote opened on the last line",
             b'a,b\n1,"', r"csv\.read: data\.csv:2:3: unterminated quoted field: no closing '\"' "
                          r"before the end of the input"),
    csv_case("random bytes",
             bytes(range(1, 256)) * 8, r"csv\.read: data\.csv:2:24: unexpected '\"' in an unquoted field"),
    csv_case("a record wider than the header, streamed",
             b"a,b\n1,2\n3,4,5\n", r"csv\.rows: data\.csv:3: record has 3 fields but the header has 2",
             opts="{ header = true }", reader=ROWS),
    csv_case("a duplicate column name, streamed",
             b"a,b,a\n1,2,3\n", r"csv\.rows: data\.csv:1: duplicate column name 'a' in the header "
                                r"\(columns 1 and 3\)",
             opts="{ header = true }", reader=ROWS),
    csv_case("a delimiter given as a number", b"a\n",
             r"csv\.read: option 'delimiter' must be a one-character string, got number",
             opts="{ delimiter = 1 }"),
    csv_case("header given as a string when reading", b"a\n",
             r"csv\.read: option 'header' must be true or false when reading, got string",
             opts='{ header = "yes" }'),
    csv_case("an empty quote character", b"a\n",
             r"csv\.rows: option 'quote' must be one character \(one byte\), got ''",
             opts='{ quote = "" }', reader=ROWS),
    Case("csv a write that fails halfway keeps the old file and leaves no temporary file",
         {"flow.lua": one_task_flow(
             '  local rows = {}\n'
             '  for i = 1, 20000 do rows[i] = { i, "row " .. i } end\n'
             '  rows[15000] = { {} }\n'
             '  flow.csv.write("out.csv", rows)'),
          "out.csv": b"id,name\n1,old\n"},
         exit=1, stderr=[r"t: Failed .*csv\.write: row 15000, column 1: cannot write a table"],
         unchanged=["out.csv"]),
    Case("csv a writer whose task fails commits nothing",
         {"flow.lua": one_task_flow(
             '  local w <close> = flow.csv.writer("out.csv", { header = { "id" } })\n'
             '  for i = 1, 1000 do w:write({ i }) end\n'
             '  error("the source went away")'),
          "out.csv": b"id\nold\n"},
         exit=1, stderr=[r"t: Failed .*flow\.lua:5: the source went away"],
         unchanged=["out.csv"]),
    Case("csv a writer to a folder that does not exist",
         {"flow.lua": one_task_flow('  flow.csv.writer("missing/out.csv")')},
         exit=1, stderr=[r"t: Failed .*csv\.writer: cannot write 'missing/out\.csv': No such file or directory"]),
]
