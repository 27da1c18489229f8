/*
 * wire.h — the bytes between a driver and its workers (wire.c): values in a
 * compact tagged binary form, frames around messages, the messages of the
 * worker protocol, and non-blocking reading and writing of frames.
 *
 * A worker task's attempt runs in a worker process. The driver sends it a
 * JOB, the worker answers with LOG, SECRET and finally RESULT frames. The
 * same JOB and RESULT frames are what a PostgreSQL queue will store (one
 * frame as one bytea), so a frame says its own protocol version and type
 * and needs nothing around it to be read back.
 *
 * No Lua and no SQL here: value_wire.c (engine) turns Lua values into the
 * value form and back with the primitives below, the pool and the queue
 * move frames without looking inside the values (they stay opaque blobs
 * inside messages, so the driver forwards and stores them as they are).
 *
 * Every reader here takes hostile bytes: lengths and counts are checked
 * against the bytes left before anything is allocated, nesting is bounded,
 * and an error is a message naming the byte offset, never a crash.
 */
#ifndef FL_WIRE_H
#define FL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* ---- limits ------------------------------------------------------------- */

/* The first byte of every frame: flowlua's wire, version 1. A byte that is
   not a known version means the other end is not a flowlua of this
   protocol (or the stream lost its place), which no later byte can fix. */
#define FL_WIRE_MAGIC 0xF1
#define FL_WIRE_VERSION 1
/* magic, type, payload length (u32, little-endian) */
#define FL_WIRE_HEADER_SIZE 6
/* A result may be up to 256 MiB (the task option max_result); the slack is
   for the RESULT's other fields. A frame announcing more is refused from
   its header, before its bytes are buffered. */
#define FL_WIRE_PAYLOAD_MAX (((size_t)256 << 20) + ((size_t)1 << 20))
/* Tables nested deeper than this are refused both ways: the history's own
   limit (value_json.c), so that what the history keeps also crosses, and
   what bounds the C recursion of a decoder fed hostile bytes. */
#define FL_WIRE_DEPTH_MAX 1000
/* Room for an error message of this file, NUL included. */
#define FL_WIRE_ERR_MAX 256

/* ---- values ------------------------------------------------------------- */

/* One byte before each value. Numbers keep their kind (an integer is never
   read back as a float, nor the reverse), doubles keep every bit (-0.0,
   NaN, infinities), strings keep every byte. */
enum fl_wire_tag {
  FL_WIRE_NIL = 0x00,
  FL_WIRE_FALSE = 0x01,
  FL_WIRE_TRUE = 0x02,
  FL_WIRE_INT = 0x03,    /* zigzag varint: small negatives stay short */
  FL_WIRE_DOUBLE = 0x04, /* 8 bytes, IEEE 754, little-endian */
  FL_WIRE_STRING = 0x05, /* varint length, then the bytes */
  /* varint count of the array part, varint count of the hash part, the
     array's values (keys 1..n), then the hash part's key/value pairs.
     Keys are strings, integers or doubles (not NaN). */
  FL_WIRE_TABLE = 0x06,
  /* The same, for a table whose metatable is json.array_mt: it must stay
     an array when the driver writes it as JSON, empty or not. */
  FL_WIRE_ARRAY = 0x07,
  FL_WIRE_JSON_NULL = 0x08,   /* json.null */
  FL_WIRE_EMPTY_ARRAY = 0x09, /* json.empty_array */
};

/* Appending values. Allocation failure is sticky in the buffer (buf.h):
   check out->oom once at the end. */
void fl_wire_put_tag(fl_buf *out, int tag);
void fl_wire_put_int(fl_buf *out, int64_t v);  /* tag and value */
void fl_wire_put_double(fl_buf *out, double v); /* tag and value */
void fl_wire_put_string(fl_buf *out, const char *s, size_t n); /* tag too */
/* A table's tag and room for its two counts; returns the mark that
   fl_wire_table_end takes once the array values and the hash pairs have
   been appended. The counts are patched in afterwards because a Lua table
   only tells its sizes by being walked, and walking it twice would cost a
   second pass over every element. */
size_t fl_wire_table_begin(fl_buf *out, int tag);
void fl_wire_table_end(fl_buf *out, size_t mark, uint64_t narr, uint64_t nhash);

/* Appending message fields: the same varints and lengths, without tags. */
void fl_wire_put_uint(fl_buf *out, uint64_t v);
void fl_wire_put_sint(fl_buf *out, int64_t v);
void fl_wire_put_bytes(fl_buf *out, const char *s, size_t n);

/* Reading: a cursor over bytes that are not trusted. */
typedef struct fl_wire_in {
  const unsigned char *start, *p, *end;
  int depth;                 /* tables open, for fl_wire_enter */
  char err[FL_WIRE_ERR_MAX]; /* set when a call returns -1 */
} fl_wire_in;

void fl_wire_in_init(fl_wire_in *in, const void *data, size_t len);

/* One value's head. Scalars come whole; a table gives its counts (already
   checked against the bytes left) and its elements follow in the input. */
typedef struct fl_wire_item {
  int tag;
  size_t at; /* the offset of its tag, for messages */
  int64_t i;
  double d;
  const char *s; /* a string: its bytes inside the input, not copied */
  size_t len;
  uint64_t narr, nhash; /* a table */
} fl_wire_item;

/* Each returns 0, or -1 with in->err set: what is wrong and at which byte
   offset ("a string of 4294967295 bytes with 12 left, at offset 5"). */
int fl_wire_get_item(fl_wire_in *in, fl_wire_item *it);
/* An item that must be a table key: a string, an integer or a double that
   is not NaN (Lua cannot hold nil or NaN as a key). */
int fl_wire_get_key(fl_wire_in *in, fl_wire_item *it);
/* Around a table's elements: refuses nesting past FL_WIRE_DEPTH_MAX,
   naming the table's offset. */
int fl_wire_enter(fl_wire_in *in, const fl_wire_item *table);
void fl_wire_leave(fl_wire_in *in);
/* Checks one whole value and steps over it. */
int fl_wire_skip_value(fl_wire_in *in);
/* Whether data[0..len) is exactly one well-formed value: 0, or -1 with
   err (FL_WIRE_ERR_MAX bytes) set. */
int fl_wire_check_value(const char *data, size_t len, char *err);

int fl_wire_get_uint(fl_wire_in *in, uint64_t *v);
int fl_wire_get_sint(fl_wire_in *in, int64_t *v);

/* Bytes inside a decoded message: a view into the frame's payload, valid
   while that payload is. Not NUL-terminated. */
typedef struct fl_wire_bytes {
  const char *p;
  size_t n;
} fl_wire_bytes;

int fl_wire_get_bytes(fl_wire_in *in, fl_wire_bytes *b);

/* ---- messages ----------------------------------------------------------- */

/* The byte after the magic. Messages are read whole and strictly: a
   payload with bytes left over after its last field is refused, since a
   change of fields is a new FL_WIRE_VERSION that HELLO announces. */
typedef enum fl_wire_type {
  /* worker -> driver, first: who is speaking and what it loaded. The
     driver sends jobs only to a worker whose protocol it speaks and whose
     script is the one the run loaded (by SHA-256 of its text: a worker
     must run the code the driver means, not a file changed since). */
  FL_WIRE_HELLO = 1,
  /* driver -> worker: one attempt to run. */
  FL_WIRE_JOB = 2,
  /* driver -> worker: several JOBs in one frame. A map of 10,000 no-op
     elements must reach 50,000 tasks/s; one frame (one write, one read,
     one wake-up) per job would spend that budget on system calls. */
  FL_WIRE_JOBS = 3,
  /* driver -> worker: stop this job (a timeout, a cancelled run). The
     worker answers with its RESULT; the driver kills it after a grace. */
  FL_WIRE_CANCEL = 4,
  /* worker -> driver: how an attempt ended. */
  FL_WIRE_RESULT = 5,
  /* worker -> driver: a flow.log line of a job, for the run's log. */
  FL_WIRE_LOG = 6,
  /* worker -> driver: a secret the job read (flow.secret). Sent before any
     LOG or RESULT that might hold it, so the driver masks it everywhere. */
  FL_WIRE_SECRET = 7,
  /* either way: the sender is leaving; the other end sees EOF next, and
     EOF without BYE is a crash. */
  FL_WIRE_BYE = 8,
} fl_wire_type;

/* The name of a message type ("JOB"), "unknown" for others. */
const char *fl_wire_type_name(int type);

/* HELLO. payload: uint version, sint pid, bytes script_sha256 (64 lower
   hex digits), bytes runtime ("flowlua 0.6.0, Lua 5.4.6"). */
typedef struct fl_wire_hello {
  uint64_t version; /* FL_WIRE_VERSION of the worker */
  int64_t pid;
  fl_wire_bytes script_sha256;
  fl_wire_bytes runtime; /* for messages: which flowlua and Lua it is */
} fl_wire_hello;

/* JOB. payload: uint job_id, bytes run_id, bytes task_key, bytes
   task_name, sint map_index, uint attempt, uint timeout_ms, uint
   memory_limit, bytes args, bytes params, bytes flow, uint scheduled_at,
   uint started_at (the doubles' IEEE 754 bits: every bit crosses). */
typedef struct fl_wire_job {
  /* The driver's number for this attempt, unique among its jobs in
     flight: RESULT, LOG, SECRET and CANCEL name the job by it. */
  uint64_t job_id;
  fl_wire_bytes run_id, task_key, task_name; /* for flow.context() */
  int64_t map_index; /* 1-based element of a map; 0 for a graph node */
  uint64_t attempt;  /* 1-based */
  /* The worker enforces them too (a hook, a counting allocator), so an
     attempt ends even where the driver would have to kill the process. */
  uint64_t timeout_ms;   /* 0: none */
  uint64_t memory_limit; /* bytes; 0: none */
  /* Encoded values (fl_wire_encode_lua_args and fl_wire_encode_lua):
     opaque here, checked when decoded into the worker's Lua state. */
  fl_wire_bytes args;
  fl_wire_bytes params;
  /* The rest of flow.context(): the flow's name, the run's fire time and
     start (wall clock, seconds since the epoch), the same numbers as the
     driver's own. */
  fl_wire_bytes flow;
  double scheduled_at, started_at;
} fl_wire_job;

/* RESULT. payload: uint job_id, uint outcome, then for SUCCESS bytes value;
   for the others bytes message, bytes traceback. */
typedef enum fl_wire_outcome {
  FL_WIRE_SUCCESS = 0,
  FL_WIRE_FAILED = 1,       /* an error: the task's retries apply */
  FL_WIRE_FAILED_FINAL = 2, /* flow.fail: failed for good, no retry */
  FL_WIRE_SKIPPED = 3,      /* flow.skip: message is the reason */
} fl_wire_outcome;

typedef struct fl_wire_result {
  uint64_t job_id;
  int outcome;               /* fl_wire_outcome */
  fl_wire_bytes value;       /* SUCCESS: the encoded result */
  fl_wire_bytes message;     /* the others: the error or the reason */
  fl_wire_bytes traceback;   /* FAILED: may be empty */
} fl_wire_result;

/* LOG. payload: uint job_id, sint level, bytes text. */
typedef struct fl_wire_log {
  uint64_t job_id;
  int64_t level; /* flowlua_log_level */
  fl_wire_bytes text;
} fl_wire_log;

/* SECRET. payload: uint job_id, bytes secret. CANCEL. payload: uint
   job_id. BYE: an empty payload. */
typedef struct fl_wire_secret {
  uint64_t job_id;
  fl_wire_bytes secret;
} fl_wire_secret;

/* Appending whole frames to out. Each returns 0, or -1 when memory ran
   out or the payload would pass FL_WIRE_PAYLOAD_MAX: out's length is then
   as before the call (its oom flag stays, as buf.h has it) and err, when
   not NULL (FL_WIRE_ERR_MAX bytes), says which. */
int fl_wire_put_hello(fl_buf *out, const fl_wire_hello *m, char *err);
int fl_wire_put_job(fl_buf *out, const fl_wire_job *m, char *err);
int fl_wire_put_cancel(fl_buf *out, uint64_t job_id, char *err);
int fl_wire_put_result(fl_buf *out, const fl_wire_result *m, char *err);
int fl_wire_put_log(fl_buf *out, const fl_wire_log *m, char *err);
int fl_wire_put_secret(fl_buf *out, const fl_wire_secret *m, char *err);
int fl_wire_put_bye(fl_buf *out, char *err);

/* JOBS: begin, add the jobs, end. payload: u32 count (little-endian, so
   that it is patched at the end), then per job: bytes (a JOB payload).
   Each job keeps its own length so that a reader can hand one on, or
   store it, without decoding the others. */
typedef struct fl_wire_batch {
  size_t mark; /* where the frame starts in out */
  uint32_t count;
} fl_wire_batch;

void fl_wire_jobs_begin(fl_buf *out, fl_wire_batch *batch);
void fl_wire_jobs_add(fl_buf *out, fl_wire_batch *batch, const fl_wire_job *m);
/* 0, or -1 (out as before begin) when memory ran out, no job was added or
   the frame is over the limit. */
int fl_wire_jobs_end(fl_buf *out, fl_wire_batch *batch, char *err);

/* A frame as read: its type and payload (inside the reader's buffer, or
   the caller's bytes for fl_wire_frame_parse). */
typedef struct fl_wire_frame {
  int type;
  const char *payload;
  size_t len;
} fl_wire_frame;

/* data[0..len) as exactly one frame (a stored job or result): 0, or -1
   with err. */
int fl_wire_frame_parse(const char *data, size_t len, fl_wire_frame *f, char *err);

/* Decoding a frame's payload as its message: 0, or -1 with err (the
   offsets count from the payload's first byte). The structs point into
   the payload. */
int fl_wire_get_hello(const fl_wire_frame *f, fl_wire_hello *m, char *err);
int fl_wire_get_job(const fl_wire_frame *f, fl_wire_job *m, char *err);
int fl_wire_get_cancel(const fl_wire_frame *f, uint64_t *job_id, char *err);
int fl_wire_get_result(const fl_wire_frame *f, fl_wire_result *m, char *err);
int fl_wire_get_log(const fl_wire_frame *f, fl_wire_log *m, char *err);
int fl_wire_get_secret(const fl_wire_frame *f, fl_wire_secret *m, char *err);
int fl_wire_get_bye(const fl_wire_frame *f, char *err);

/* The jobs of a JOBS frame, one at a time, without allocating. */
typedef struct fl_wire_jobs_iter {
  fl_wire_in in;
  uint32_t count, done;
} fl_wire_jobs_iter;

/* 0, or -1 with it->in.err: not a JOBS frame, or its count cannot fit. */
int fl_wire_jobs_open(fl_wire_jobs_iter *it, const fl_wire_frame *f);
/* 1 and *m set, 0 after the last job, -1 with it->in.err. */
int fl_wire_jobs_next(fl_wire_jobs_iter *it, fl_wire_job *m);

/* ---- frames on a non-blocking descriptor --------------------------------- */

/* Collects bytes (from an fd or given) and hands out whole frames. A bad
   magic or a length over the limit is refused as soon as the header is in,
   before the payload is buffered. */
typedef struct fl_wire_reader {
  fl_buf in;
  size_t off; /* the first byte not yet handed out */
  int failed; /* a refused header: the stream has lost its place for good */
  char err[FL_WIRE_ERR_MAX];
} fl_wire_reader;

void fl_wire_reader_init(fl_wire_reader *r);
void fl_wire_reader_free(fl_wire_reader *r);
/* Adds bytes; 0, or -1 when memory ran out. */
int fl_wire_reader_feed(fl_wire_reader *r, const void *data, size_t n);
/* Reads what fd has now (up to a few MiB, so that one busy peer cannot
   keep the caller's loop to itself), retrying EINTR. 1: bytes read (or
   none yet: EAGAIN), 0: end of file, -1: error, with r->err. */
int fl_wire_reader_fill(fl_wire_reader *r, int fd);
/* The next whole frame: 1 with *f set (valid until the next feed, fill or
   next), 0 when more bytes are needed, -1 with r->err. */
int fl_wire_reader_next(fl_wire_reader *r, fl_wire_frame *f);
/* After end of file: 0 when it fell between frames, -1 with r->err naming
   the frame cut short ("end of file inside a RESULT frame: 10 of 4006
   bytes"). */
int fl_wire_reader_at_eof(fl_wire_reader *r);

/* Frames waiting to go out on a non-blocking descriptor. */
typedef struct fl_wire_writer {
  fl_buf out; /* append frames here (fl_wire_put_*) */
  size_t off; /* bytes of out already written */
  int not_socket; /* a pipe: write(2) instead of send(2) */
  char err[FL_WIRE_ERR_MAX];
} fl_wire_writer;

void fl_wire_writer_init(fl_wire_writer *w);
void fl_wire_writer_free(fl_wire_writer *w);
/* Writes as much as fd takes. On a socket it uses send(MSG_NOSIGNAL), on
   a pipe write(2), which needs SIGPIPE ignored: a peer gone is then an
   error (EPIPE), never a signal. EINTR is retried. 1: everything written,
   0: the rest must wait for POLLOUT, -1: error, with w->err. */
int fl_wire_writer_flush(fl_wire_writer *w, int fd);
/* Bytes appended and not yet written. */
size_t fl_wire_writer_pending(const fl_wire_writer *w);

#endif
