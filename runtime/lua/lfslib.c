/*
 * lfslib.c — flow.fs: read, write, exists, mkdir, remove.
 *
 * Whole-file operations for flows: write is atomic (fsutil.c: a crash
 * leaves the old file or the new, never half), read returns the whole file.
 * Every failure raises "fs.fn: cannot ... 'path': cause", so a task that
 * trips on the file system fails, and retries, like any other; the only
 * failures that are answers rather than errors are "it is not there" for
 * exists and remove, and "it is there already" for mkdir.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>

#include "fsutil.h"
#include "engine.h"
#include "lflowlua.h"

#define FILEDATA_MT "flowlua.fs.filedata"

/* A file's contents read into C memory, freed when the C function that
   holds it returns or raises. */
static int filedata_close(lua_State *L) {
  char **data = luaL_checkudata(L, 1, FILEDATA_MT);
  free(*data);
  *data = NULL;
  return 0;
}

/* A path argument: a string without zero bytes (the OS would cut it). */
static const char *check_path(lua_State *L, int arg) {
  size_t n;
  const char *path = luaL_checklstring(L, arg, &n);
  if (strlen(path) != n) luaL_argerror(L, arg, "path contains a zero byte");
  return path;
}

/* fs.read(path) -> the file's contents */
static int fs_read(lua_State *L) {
  const char *path = check_path(L, 1);
  lua_settop(L, 1);
  char **data = lua_newuserdatauv(L, sizeof *data, 0);
  *data = NULL;
  luaL_setmetatable(L, FILEDATA_MT);
  lua_toclose(L, 2);
  size_t len;
  if (fl_read_file(path, data, &len) != 0)
    return luaL_error(L, "fs.read: cannot open '%s': %s", path,
                      strerror(errno));
  lua_pushlstring(L, *data, len);
  free(*data);
  *data = NULL;
  return 1;
}

/* fs.write(path, data): replaces the file atomically; its folder must
   exist (fs.mkdir makes it). */
static int fs_write(lua_State *L) {
  const char *path = check_path(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  char why[FL_FS_WHY_SIZE];
  if (fl_write_file_atomic_why(path, data, len, why, sizeof why) != 0)
    return luaL_error(L, "fs.write: cannot write '%s': %s", path, why);
  return 0;
}

/* fs.exists(path) -> whether a file or folder is there (a symbolic link
   counts when what it points to exists). */
static int fs_exists(lua_State *L) {
  const char *path = check_path(L, 1);
  struct stat st;
  if (stat(path, &st) == 0) {
    lua_pushboolean(L, 1);
  } else if (errno == ENOENT || errno == ENOTDIR) {
    lua_pushboolean(L, 0);
  } else { /* a permission problem, a link loop: not an answer */
    return luaL_error(L, "fs.exists: cannot check '%s': %s", path,
                      strerror(errno));
  }
  return 1;
}

/* fs.mkdir(path) -> true if it made the folder (and any missing parents),
   false if the folder was there already. */
static int fs_mkdir(lua_State *L) {
  const char *path = check_path(L, 1);
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (fl_mkdir_p(path) != 0)
    return luaL_error(L, "fs.mkdir: cannot create '%s': %s", path,
                      strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}

/* fs.remove(path) -> true if it removed the file (or empty folder), false if
   there was nothing to remove. */
static int fs_remove(lua_State *L) {
  const char *path = check_path(L, 1);
  if (remove(path) == 0) {
    lua_pushboolean(L, 1);
  } else if (errno == ENOENT) {
    lua_pushboolean(L, 0);
  } else {
    return luaL_error(L, "fs.remove: cannot remove '%s': %s", path,
                      strerror(errno));
  }
  return 1;
}

int luaopen_flowlua_fs(lua_State *L) {
  static const luaL_Reg funcs[] = {{"read", fs_read},
                                   {"write", fs_write},
                                   {"exists", fs_exists},
                                   {"mkdir", fs_mkdir},
                                   {"remove", fs_remove},
                                   {NULL, NULL}};
  if (luaL_newmetatable(L, FILEDATA_MT)) {
    lua_pushcfunction(L, filedata_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, filedata_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
