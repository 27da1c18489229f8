/*
 * liocloexec.c — Lua's own io library, made to open files close-on-exec.
 *
 * liolib.c opens files with fopen(name, mode) and popen(cmd, mode), never
 * with "e" (O_CLOEXEC): every file a script opens with io.open, io.lines,
 * io.tmpfile, io.input or io.output, and the parent's end of an io.popen
 * pipe, would be inherited by each child that os.execute or io.popen
 * starts (flow.shell closes every descriptor above 2 in its children
 * itself). So those functions are replaced by ones that open the file the
 * same way but close-on-exec, and otherwise behave as Lua 5.4's do.
 *
 * Why replacements and not wrappers that call the originals: a C function
 * called from C has no name and no caller's line, so an original's errors
 * ("bad argument #2 to 'open'", "cannot open file 'x' (...)") would lose
 * both, and a pcall around it would turn an out-of-memory error into an
 * ordinary one. The replacements raise those errors themselves, with the
 * same text. A file they open is a luaL_Stream with LUA_FILEHANDLE's
 * metatable, the documented way for a library to make io file handles,
 * so every method (read, lines, close, __gc, __close) works on it.
 * io.lines uses the file's own lines method and marks the iterator to
 * close the file at its end, as io.lines does (the third upvalue of
 * liolib's iterator, checked before it is set).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lflowlua.h"

/* liolib's limit on the formats io.lines takes. */
#define MAX_LINES_FORMATS 250

/* Sets FD_CLOEXEC on f's descriptor. fopen's "e" does it already, unless
   the mode had more letters than glibc reads; tmpfile has no such mode. */
static void set_cloexec(FILE *f) {
  int fd = fileno(f);
  if (fd <= 2) return; /* io.stdin and co.: the children's own */
  /* Fails only for a descriptor that is not open, which f's is. */
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

static int close_file(lua_State *L) {
  luaL_Stream *p = luaL_checkudata(L, 1, LUA_FILEHANDLE);
  errno = 0;
  return luaL_fileresult(L, fclose(p->f) == 0, NULL);
}

static int close_pipe(lua_State *L) {
  luaL_Stream *p = luaL_checkudata(L, 1, LUA_FILEHANDLE);
  errno = 0;
  return luaL_execresult(L, pclose(p->f));
}

/* Pushes a new file handle, holding no file yet, closed by closef. */
static luaL_Stream *new_stream(lua_State *L, lua_CFunction closef) {
  luaL_Stream *p = lua_newuserdatauv(L, sizeof *p, 0);
  p->closef = NULL; /* "closed" until set up, should the next call raise */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  p->f = NULL;
  p->closef = closef;
  return p;
}

/* fopen(name, mode) close-on-exec; NULL with errno set on failure. The
   mode was checked by the caller. */
static FILE *open_cloexec(lua_State *L, const char *name, const char *mode) {
  const char *mode_e = lua_pushfstring(L, "%se", mode);
  FILE *f = fopen(name, mode_e);
  int saved = errno;
  lua_pop(L, 1);
  if (f) set_cloexec(f);
  errno = saved;
  return f;
}

/* As liolib's opencheckfile: pushes a handle on name, or raises. */
static void open_or_raise(lua_State *L, const char *name, const char *mode) {
  luaL_Stream *p = new_stream(L, close_file);
  p->f = open_cloexec(L, name, mode);
  if (!p->f) luaL_error(L, "cannot open file '%s' (%s)", name, strerror(errno));
}

/* As liolib's tofile: the open file handle at idx, or raises. */
static void check_open_file(lua_State *L, int idx) {
  luaL_Stream *p = luaL_checkudata(L, idx, LUA_FILEHANDLE);
  if (!p->closef) luaL_error(L, "attempt to use a closed file");
}

/* "r", "w" or "a", then an optional "+", then only "b"s: liolib's check. */
static int valid_mode(const char *mode) {
  if (!*mode || !strchr("rwa", *mode++)) return 0;
  if (*mode == '+') mode++;
  return strspn(mode, "b") == strlen(mode);
}

static int io_open(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  luaL_Stream *p = new_stream(L, close_file);
  luaL_argcheck(L, valid_mode(mode), 2, "invalid mode");
  errno = 0;
  p->f = open_cloexec(L, name, mode);
  return p->f ? 1 : luaL_fileresult(L, 0, name);
}

static int io_tmpfile(lua_State *L) {
  luaL_Stream *p = new_stream(L, close_file);
  errno = 0;
  p->f = tmpfile();
  if (p->f) set_cloexec(p->f);
  return p->f ? 1 : luaL_fileresult(L, 0, NULL);
}

static int io_popen(lua_State *L) {
  const char *command = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  luaL_Stream *p = new_stream(L, NULL);
  luaL_argcheck(L, (mode[0] == 'r' || mode[0] == 'w') && mode[1] == '\0', 2,
                "invalid mode");
  errno = 0;
  fflush(NULL); /* as liolib: what was written goes before the child's */
  p->f = popen(command, mode[0] == 'r' ? "re" : "we");
  p->closef = close_pipe;
  return p->f ? 1 : luaL_fileresult(L, 0, command);
}

/* io.input / io.output: a file name is opened here (close-on-exec), then
   the original sets it as the default; anything else goes to the original
   once checked, so that the original cannot raise (an error raised from
   it, called from here, would name no function and no line). */
static int set_default_file(lua_State *L, const char *mode) {
  if (!lua_isnoneornil(L, 1)) {
    const char *name = lua_tostring(L, 1);
    if (name) {
      open_or_raise(L, name, mode);
      lua_replace(L, 1);
    } else {
      check_open_file(L, 1);
    }
    lua_settop(L, 1);
  } else {
    lua_settop(L, 0);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int io_input(lua_State *L) { return set_default_file(L, "r"); }
static int io_output(lua_State *L) { return set_default_file(L, "w"); }

/* io.lines([name, ...]): the file's lines iterator over name (opened here,
   close-on-exec, closed when the iterator ends) or the default input. */
static int io_lines(lua_State *L) {
  if (lua_isnone(L, 1)) lua_pushnil(L);
  int close_at_end = !lua_isnil(L, 1);
  if (close_at_end) {
    const char *name = luaL_checkstring(L, 1);
    open_or_raise(L, name, "r");
  } else {
    lua_pushvalue(L, lua_upvalueindex(1)); /* the original io.input */
    lua_call(L, 0, 1);
    check_open_file(L, -1);
  }
  lua_replace(L, 1);
  luaL_argcheck(L, lua_gettop(L) - 1 <= MAX_LINES_FORMATS, MAX_LINES_FORMATS + 2,
                "too many arguments");
  int n = lua_gettop(L);
  lua_getfield(L, 1, "lines"); /* file:lines(...), then made to close */
  lua_insert(L, 2);
  lua_pushvalue(L, 1);
  lua_insert(L, 3);
  lua_call(L, n, 1); /* stack: file, iterator */
  if (!close_at_end) return 1;
  /* liolib's iterator keeps (file, count, close-at-end) as its first three
     upvalues; anything else would be another io library. */
  const char *uv = lua_getupvalue(L, -1, 3);
  if (!uv || !lua_isboolean(L, -1))
    luaL_error(L, "io.lines: the io library's lines iterator is not Lua 5.4's");
  lua_pop(L, 1);
  lua_pushboolean(L, 1);
  lua_setupvalue(L, -2, 3);
  lua_pushnil(L);          /* state */
  lua_pushnil(L);          /* control */
  lua_pushvalue(L, 1);     /* the file, as the for loop's to-be-closed value */
  return 4;
}

int fl_open_io_cloexec(lua_State *L) {
  lua_getglobal(L, LUA_IOLIBNAME);
  luaL_checktype(L, -1, LUA_TTABLE);
  int io = lua_gettop(L);
  static const luaL_Reg plain[] = {
      {"open", io_open}, {"tmpfile", io_tmpfile}, {"popen", io_popen}, {NULL, NULL}};
  luaL_setfuncs(L, plain, 0);
  /* These three call the original io.input / io.output, an upvalue. */
  lua_getfield(L, io, "output");
  lua_pushcclosure(L, io_output, 1);
  lua_setfield(L, io, "output");
  lua_getfield(L, io, "input");
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, io_lines, 1);
  lua_setfield(L, io, "lines");
  lua_pushcclosure(L, io_input, 1);
  lua_setfield(L, io, "input");
  lua_pop(L, 1);
  return 0;
}
