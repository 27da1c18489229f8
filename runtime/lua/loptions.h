/*
 * loptions.h — reading an options table, shared by the Lua bindings: the
 * walk over its keys with the errors every binding gives the same way (a
 * name that is not a string, an unknown name with the list of known ones),
 * and the value checks more than one binding needs.
 *
 *   static const char *const names[] = {"header", "delimiter", NULL};
 *   fl_opts o;
 *   fl_opts_begin(&o, L, idx, "csv.read", "option", names);
 *   for (int k; (k = fl_opts_next(&o)) >= 0;)
 *     switch (k) { case 0: ... lua_toboolean(L, o.value) ... }
 *
 * Every check raises with luaL_error, naming the caller (`who`) and the
 * option, as the messages of the bindings always have.
 */
#ifndef FL_LOPTIONS_H
#define FL_LOPTIONS_H

#include <stddef.h>

#include <lua.h>

typedef struct fl_opts {
  lua_State *L;
  int table;                /* absolute index of the options table */
  const char *who;          /* "csv.read", "flow.task 'fetch'" */
  const char *noun;         /* "option", or "field" for flow.interval */
  const char *const *names; /* the known names, NULL-terminated */
  const char *key;          /* the current name */
  int value;                /* stack index of its value; 0 before, after */
} fl_opts;

/* Starts a walk over the table at idx (the caller checked it is one). */
void fl_opts_begin(fl_opts *o, lua_State *L, int idx, const char *who,
                   const char *noun, const char *const *names);
/* The next option's position in names, with o->key and o->value set; -1
   at the end. Raises for a name that is not a string or not known. The
   value and whatever the caller pushed after it are popped by the next
   call. */
int fl_opts_next(fl_opts *o);

/* "a, b, c": the names joined, as messages list them, pushed and returned. */
const char *fl_opts_push_list(lua_State *L, const char *const *names);

/* A number option in [lo, hi] (hi may be HUGE_VAL). */
double fl_opt_number(lua_State *L, int idx, const char *who, const char *key,
                     double lo, double hi);
/* A whole-number option in [lo, 1e9]; a numeric string is refused like any
   other string. */
int fl_opt_integer(lua_State *L, int idx, const char *who, const char *key,
                   lua_Integer lo);
/* A finite number of seconds of at least lo. */
double fl_opt_seconds(lua_State *L, int idx, const char *who, const char *key,
                      double lo);
/* A function option (left where it is). */
void fl_opt_function(lua_State *L, int idx, const char *who, const char *key);
/* What a bad option value was, for a message: a number as %g would show it
   (lua_pushfstring has no %g), anything else by its type. */
const char *fl_opt_shown(lua_State *L, int idx, char *out, size_t size);

#endif
