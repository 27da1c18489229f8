/*
 * fuzz_wal.c — the WAL scanner of store_wal.c on hostile WAL files.
 *
 * A WAL beside a state database is outside input (a copied or damaged
 * folder). Two kinds of input: raw bytes as the file (the scanner must not
 * crash, read out of bounds or hang, whatever the file holds), and WAL
 * files built from a description: valid checksums written as SQLite
 * writes them, then some frames damaged (a flipped byte, a foreign salt, a
 * zero page number) or the header broken. For those the scanner's verdict
 * must be the model's: the chain breaks at the first damaged frame, and
 * (unless no frame of this WAL follows it: a torn last write) the
 * transactions lost are the commit frames of this WAL (its salts) at
 * or after it.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "store_wal.h"

#define MAX_FRAMES 16

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* The WAL checksum as SQLite's documentation defines it (fileformat2.html,
   "Checksum Algorithm"), written here again as the model's own. */
static void model_checksum(int big_endian, const uint8_t *d, size_t n, uint32_t s[2]) {
  for (size_t i = 0; i < n; i += 8) {
    uint32_t w[2];
    for (int k = 0; k < 2; k++) {
      const uint8_t *p = d + i + 4 * k;
      w[k] = big_endian ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                              (uint32_t)p[2] << 8 | p[3]
                        : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
                              (uint32_t)p[1] << 8 | p[0];
    }
    s[0] += w[0] + s[1];
    s[1] += w[1] + s[0];
  }
}

static int scan_bytes(const uint8_t *data, size_t len, fl_wal_scan *out) {
  int fd = memfd_create("fuzz-wal", MFD_CLOEXEC);
  if (fd < 0) abort();
  if (len && write(fd, data, len) != (ssize_t)len) abort();
  if (lseek(fd, 0, SEEK_SET) != 0) abort();
  int rc = fl_wal_scan_fd(fd, (off_t)len, out);
  close(fd);
  return rc;
}

static void raw(const uint8_t *data, size_t size) {
  fl_wal_scan out;
  int rc = scan_bytes(data, size, &out);
  FUZZ_CHECK(rc == 0 || rc == 1, "result %d", rc);
  if (rc == 1)
    FUZZ_CHECK(out.header_bad || out.lost_commits > 0,
               "damage reported with nothing lost");
}

static void built(fuzz_input *in, uint8_t mode) {
  size_t page = (size_t)512 << (mode & 1);
  int big_endian = (mode >> 1) & 1, header_damage = (mode >> 2) & 1;
  uint64_t salts = fuzz_u64(in);
  size_t n = 0, frame_len = 24 + page;
  uint8_t flags[MAX_FRAMES];
  while (in->left && n < MAX_FRAMES) flags[n++] = fuzz_byte(in);
  size_t len = 32 + n * frame_len;
  uint8_t *w = calloc(1, len);
  if (!w) abort();
  put32(w, 0x377f0682u | (uint32_t)big_endian);
  put32(w + 4, 3007000u);
  put32(w + 8, (uint32_t)page);
  put32(w + 16, (uint32_t)(salts >> 32));
  put32(w + 20, (uint32_t)salts);
  uint32_t s[2] = {0, 0};
  model_checksum(big_endian, w, 24, s);
  put32(w + 24, s[0]);
  put32(w + 28, s[1]);
  size_t first_break = n, lost = 0, ours_after = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t *f = w + 32 + i * frame_len, fl = flags[i];
    int zero_page = fl & 1, commit = fl & 2, foreign = fl & 4, damaged = fl & 8;
    put32(f, zero_page ? 0 : 1u + (fl >> 4));
    put32(f + 4, commit ? (uint32_t)i + 1 : 0);
    memcpy(f + 8, w + 16, 8);
    if (foreign) f[8] ^= 0x5a;
    f[24] = fl; /* some page content */
    f[24 + page - 1] = (uint8_t)i;
    model_checksum(big_endian, f, 8, s);
    model_checksum(big_endian, f + 24, page, s);
    put32(f + 16, s[0]);
    put32(f + 20, s[1]);
    if (damaged) f[24 + page / 2] ^= 0x01; /* after its checksum was taken */
    if (first_break == n && (zero_page || foreign || damaged)) first_break = i;
    if (first_break <= i && commit && !foreign) lost++;
    if (first_break < i && !foreign) ours_after++;
  }
  if (!ours_after) lost = 0;
  if (header_damage) w[31] ^= 0x01;

  fl_wal_scan out;
  int rc = scan_bytes(w, len, &out);
  free(w);
  if (header_damage) {
    int expect = len >= 32 + 24 + 512;
    FUZZ_CHECK(rc == expect && out.header_bad == expect,
               "broken header: result %d, header_bad %d, expected %d", rc,
               out.header_bad, expect);
    return;
  }
  FUZZ_CHECK(rc == (lost > 0), "result %d with %zu commit(s) lost", rc, lost);
  if (lost)
    FUZZ_CHECK(out.broken_frame == first_break && out.lost_commits == lost,
               "broken at frame %zu with %zu lost, model says %zu and %zu",
               out.broken_frame, out.lost_commits, first_break, lost);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size};
  uint8_t mode = fuzz_byte(&in);
  if (mode & 0x80)
    raw(in.p, in.left);
  else
    built(&in, mode);
  return 0;
}
