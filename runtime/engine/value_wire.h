/*
 * value_wire.h — Lua values to the worker wire's value form and back
 * (value_wire.c, on the primitives of core/wire.h): the arguments a driver
 * sends with a JOB and the result a worker sends back.
 *
 * What crosses is what the history keeps (value_json.c), kept more exactly:
 * nil, booleans, integers and floats apart (every bit of a float, NaN and
 * the infinities too, which JSON cannot write: the history still refuses
 * them when it stores a result), strings of any bytes, json.null,
 * json.empty_array, and tables of these with string or number keys; a
 * table with json.array_mt keeps it. Other metatables are not sent (the
 * table's raw content is), as the history does not keep them either. A
 * table reached twice by different ways is sent twice, by value; a table
 * that contains itself is refused.
 *
 * Refused, with the place named (`argument 2 at 'rows[3].f' is a
 * function`): functions, userdata (but json.null and json.empty_array),
 * threads, cycles, keys that are not strings or numbers, tables nested
 * deeper than FL_WIRE_DEPTH_MAX.
 */
#ifndef FL_VALUE_WIRE_H
#define FL_VALUE_WIRE_H

#include <stddef.h>

#include <lua.h>

#include "buf.h"
#include "wire.h"

/* Appends the encoding of the value at idx to out. 0, or -1 with out's
   length as before and why given "LABEL at 'PATH' is a function" (label:
   "result", say). Never raises: the caller may hold its own state across
   the call, and an error must be reported before anything is sent. */
int fl_wire_encode_lua(lua_State *L, int idx, const char *label, fl_buf *out,
                       fl_buf *why);
/* The n values from stack index first on (n may be 0, and the values nil)
   as one value, a table whose array holds them: the JOB's args. Errors
   are labelled "argument N" as fl_wire_encode_lua labels them. */
int fl_wire_encode_lua_args(lua_State *L, int first, int n, fl_buf *out,
                            fl_buf *why);

/* Pushes the value that data[0..len) encodes. 0, or -1 with nothing
   pushed and why given what is wrong and at which offset. Runs in a
   protected call: running out of memory (under --memory-limit, say) is an
   error like the others, never a longjmp through the caller. */
int fl_wire_decode_lua(lua_State *L, const char *data, size_t len, fl_buf *why);
/* Pushes the arguments fl_wire_encode_lua_args encoded, one stack value
   each (nils kept), and sets *n to their count; 0 or -1 as above. */
int fl_wire_decode_lua_args(lua_State *L, const char *data, size_t len, int *n,
                            fl_buf *why);

#endif
