/*
 * value_json.h — Lua values to JSON text and back (value_json.c): the one
 * codec behind flow.json and the task results the history stores.
 */
#ifndef FL_VALUE_JSON_H
#define FL_VALUE_JSON_H

#include <stddef.h>

#include <lua.h>

#include "buf.h"

/* json.array_mt: a table with this metatable encodes as an array, even
   when empty (as in OpenResty's lua-cjson). */
#define FL_JSON_ARRAY_MT "flowlua.json.array"
/* json.empty_array: a light userdata with this address encodes as []. */
const void *fl_json_empty_array(void);

/* Decodes text[0..len) (text[len] must be '\0') and pushes the value;
   raises naming fn (and path, when not NULL) with the offset, line and
   column of the problem. */
void fl_json_decode_lua(lua_State *L, const char *text, size_t len,
                        const char *fn, const char *path);
/* Appends the JSON of the value at idx to b; raises naming fn and the
   path inside the value of what cannot be encoded. (The frames take 24 KB
   of C stack while it works.) */
void fl_json_encode_lua(lua_State *L, int idx, fl_buf *b, const char *fn);
/* The same, with indent spaces a level (0: one line, as above) and, with
   sort_keys, every object's keys in byte order: json.encode's options. */
void fl_json_encode_lua_with(lua_State *L, int idx, fl_buf *b, const char *fn,
                             int indent, int sort_keys);

#endif
